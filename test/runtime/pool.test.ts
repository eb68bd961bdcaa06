/**
 * The worker pool: steps with barriers on 1 and 2 threads, the message-per-op mode, errors,
 * dispose, and tensor parallelism across two memories. Workers run the compiled dist/ (npm test
 * builds first).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { createWasmKernels, KernelMemory, Kernels, rowBytes } from "../../src/kernels/index.js";
import { createPool, encodeProgram, execute, Op, Pool, sliceStart } from "../../src/runtime/index.js";
import { randomF32, randomWeights, rng } from "../kernels/helpers.js";

/** A chain of dependent F32 matvecs: any missing barrier reads a half-written vector. */
function chain(mem: KernelMemory, n: number, steps: number, r: () => number) {
  const w = mem.put(randomF32(r, n * n, 1 / Math.sqrt(n)));
  const bufs = [mem.put(randomF32(r, n)), mem.alloc(4 * n)];
  const ops: Op[] = [];
  for (let s = 0; s < steps; s++) {
    ops.push({ op: "matmul", type: GGMLType.F32, w, xq: bufs[s % 2], y: bufs[(s + 1) % 2], cols: n, rows: n, nTok: 1, ldy: n });
  }
  return { ops, out: bufs[steps % 2], input: bufs[0] };
}

function single(k: Kernels, ops: Op[], regs = new Float64Array(16)): void {
  const p = encodeProgram(ops);
  execute(k, new Float64Array(p.sab), 0, p.length, regs, { thread: 0, threads: 1, peers: [] }, undefined);
}

describe.each([1, 2])("pool with %i thread(s) on one memory", (threads) => {
  let mem: KernelMemory;
  let k: Kernels;
  let pool: Pool;
  beforeAll(async () => {
    mem = KernelMemory.create({ initialBytes: 8 << 20 });
    k = await createWasmKernels(mem, "simd");
    pool = await createPool({ memories: [mem], threadsPerMemory: threads, build: "simd" });
  });
  afterAll(() => pool.dispose());

  it("barriers order dependent ops: 40 chained matvecs equal the single-threaded run", async () => {
    const r = rng(1);
    const { ops, out, input } = chain(mem, 67, 40, r);
    const x0 = mem.f32(input, 67).slice();
    await pool.run(encodeProgram(ops));
    const got = mem.f32(out, 67).slice();
    mem.f32(input, 67).set(x0);
    single(k, ops);
    expect(Array.from(got)).toEqual(Array.from(mem.f32(out, 67)));
    // Many steps in a row: the barrier generation keeps counting correctly.
    for (let i = 0; i < 20; i++) await pool.run(encodeProgram(ops.slice(0, 3)));
  });

  it("one message per op gives the same numbers", async () => {
    const r = rng(2);
    const { ops, out, input } = chain(mem, 33, 10, r);
    const x0 = mem.f32(input, 33).slice();
    await pool.run(encodeProgram(ops));
    const a = mem.f32(out, 33).slice();
    mem.f32(input, 33).set(x0);
    await pool.runPerOp(encodeProgram(ops));
    expect(Array.from(mem.f32(out, 33))).toEqual(Array.from(a));
  });

  it("registers and memory-indirect arguments (a routed expert's weight matrix)", async () => {
    const r = rng(3);
    const cols = 64, rows = 16, nExp = 3;
    const rb = rowBytes(GGMLType.Q8_0, cols) * rows;
    const w = mem.put(randomWeights(GGMLType.Q8_0, rows * nExp, cols, r));
    const x = mem.put(randomF32(r, cols));
    const xq = mem.alloc(k.actBytes(GGMLType.Q8_0, cols));
    const y = mem.alloc(4 * rows * 4);
    const idx = mem.put(Int32Array.from([2]));
    await pool.run(
      encodeProgram([
        { op: "quantize", type: GGMLType.Q8_0, x, xq, cols, nTok: 1 },
        // expert id read from memory; output row chosen by register 0
        { op: "matmul", type: GGMLType.Q8_0, w: { i32At: idx, mul: rb, add: w }, xq, y: { reg: 0, mul: 4 * rows, add: y }, cols, rows, nTok: 1, ldy: rows },
      ]),
      [3],
    );
    const expect2 = mem.alloc(4 * rows);
    k.matmul(GGMLType.Q8_0, w + 2 * rb, xq, expect2, cols, 0, rows, 1, rows);
    expect(Array.from(mem.f32(y + 3 * 4 * rows, rows))).toEqual(Array.from(mem.f32(expect2, rows)));
  });

  it("a failing op rejects the step without hanging the other workers, and the pool recovers", async () => {
    const bad = encodeProgram([{ op: "copy", src: 0, dst: 0, bytes: 0 }]);
    new Float64Array(bad.sab)[0] = 99; // an opcode no worker knows
    await expect(pool.run(bad)).rejects.toThrow();
    // Only thread 0 fails (a worker-side error while the other waits at the barrier).
    const r = rng(4);
    const { ops, out, input } = chain(mem, 16, 4, r);
    const x0 = mem.f32(input, 16).slice();
    // storeF16 runs on thread 0 only; writing past the memory's end traps there.
    const failing = encodeProgram([{ op: "storeF16", x: 65536, h: 2 ** 32 - 64, n: 64 }, ...ops]);
    await expect(pool.run(failing)).rejects.toThrow();
    mem.f32(input, 16).set(x0);
    await pool.run(encodeProgram(ops));
    const got = mem.f32(out, 16).slice();
    mem.f32(input, 16).set(x0);
    single(k, ops);
    expect(Array.from(got)).toEqual(Array.from(mem.f32(out, 16)));
  });
});

describe("a failed step ends only when every worker has left it", () => {
  it("fails and recovers 40 times in a row without a hang or a wrong result", async () => {
    // The race this guards: the step's promise settling at the first worker's error while a
    // worker released by the abort still runs the old step, whose barrier arrivals would then
    // pair with the next step's (seen as a rare 120 s hang in CI).
    const mem = KernelMemory.create({ initialBytes: 1 << 20 });
    const k = await createWasmKernels(mem, "simd");
    const pool = await createPool({ memories: [mem], threadsPerMemory: 2, build: "simd" });
    try {
      const r = rng(9);
      const { ops, out, input } = chain(mem, 16, 12, r);
      const x0 = mem.f32(input, 16).slice();
      single(k, ops);
      const want = Array.from(mem.f32(out, 16));
      const failing = encodeProgram([...ops.slice(0, 3), { op: "storeF16", x: 65536, h: 2 ** 32 - 64, n: 64 }, ...ops]);
      const good = encodeProgram(ops);
      for (let i = 0; i < 40; i++) {
        // The error reported is the trap itself, not the peer the abort released.
        await expect(pool.run(failing)).rejects.toThrow(/out of bounds/);
        mem.f32(input, 16).set(x0);
        await pool.run(good);
        expect(Array.from(mem.f32(out, 16))).toEqual(want);
        mem.f32(input, 16).set(x0);
      }
    } finally {
      await pool.dispose();
    }
  }, 60_000);
});

describe("dispose", () => {
  it("stops the workers; a disposed pool refuses work; dispose twice is fine", async () => {
    const mem = KernelMemory.create({ initialBytes: 1 << 20 });
    const pool = await createPool({ memories: [mem], threadsPerMemory: 2, build: "simd" });
    await pool.run(encodeProgram([{ op: "add", a: 65536, b: 65536, out: 65536, n: 4 }]));
    await pool.dispose();
    await pool.dispose();
    await expect(pool.run(encodeProgram([{ op: "add", a: 65536, b: 65536, out: 65536, n: 4 }]))).rejects.toThrow(/disposed/);
  });
});

describe("tensor parallelism: a feed-forward block split across two memories", () => {
  it("gives bit-identical results to the one-memory run", async () => {
    const r = rng(7);
    const dim = 128, ffn = 320, type = GGMLType.Q4_0;
    const gate = randomWeights(type, ffn, dim, r);
    const up = randomWeights(type, ffn, dim, r);
    const down = randomWeights(type, dim, ffn, r);
    const norm = randomF32(r, dim);
    const x0 = randomF32(r, dim, 2);

    /** Lay one memory out; `part` = [r0, r1) row slices this memory holds, or the whole. */
    const build = (mem: KernelMemory, k: Kernels, slice: (rows: number) => [number, number]) => {
      const rowsOf = (bytes: Uint8Array, rows: number, cols: number) => {
        const [a, b] = slice(rows);
        const rb = rowBytes(type, cols);
        return { ptr: mem.put(bytes.subarray(a * rb, b * rb)), a, b };
      };
      const g = rowsOf(gate, ffn, dim), u = rowsOf(up, ffn, dim), d = rowsOf(down, dim, ffn);
      const x = mem.put(x0), nw = mem.put(norm);
      const h = mem.alloc(4 * dim), hq = mem.alloc(k.actBytes(type, dim));
      const ga = mem.alloc(4 * ffn), ua = mem.alloc(4 * ffn), s = mem.alloc(4 * ffn);
      const sq = mem.alloc(k.actBytes(type, ffn)), y = mem.alloc(4 * dim), out = mem.alloc(4 * dim);
      const ops: Op[] = [
        { op: "rmsnorm", x, w: nw, y: h, n: dim, eps: 1e-5, nTok: 1 },
        { op: "quantize", type, x: h, xq: hq, cols: dim, nTok: 1 },
        // Each memory's weights start at its first local row; y is indexed by global row.
        { op: "matmul", type, w: g.ptr, xq: hq, y: ga + 4 * g.a, cols: dim, rows: g.b - g.a, nTok: 1, ldy: ffn, sync: false },
        { op: "matmul", type, w: u.ptr, xq: hq, y: ua + 4 * u.a, cols: dim, rows: u.b - u.a, nTok: 1, ldy: ffn },
        { op: "swiglu", a: ga + 4 * g.a, b: ua + 4 * u.a, out: s + 4 * g.a, n: g.b - g.a },
        { op: "gather", ptr: s + 4 * g.a, bytes: 4 * (g.b - g.a), nRows: 1, stride: 0 },
        { op: "quantize", type, x: s, xq: sq, cols: ffn, nTok: 1 },
        { op: "matmul", type, w: d.ptr, xq: sq, y: y + 4 * d.a, cols: ffn, rows: d.b - d.a, nTok: 1, ldy: dim },
        { op: "gather", ptr: y + 4 * d.a, bytes: 4 * (d.b - d.a), nRows: 1, stride: 0 },
        { op: "add", a: x, b: y, out, n: dim },
      ];
      return { ops, out };
    };

    // One memory, one thread, in this thread.
    const m1 = KernelMemory.create({ initialBytes: 2 << 20 });
    const k1 = await createWasmKernels(m1, "simd");
    const whole = build(m1, k1, (rows) => [0, rows]);
    single(k1, whole.ops);
    const want = m1.f32(whole.out, dim).slice();

    // Two memories, each with its own row slices, one worker each.
    const mems = [KernelMemory.create({ initialBytes: 2 << 20 }), KernelMemory.create({ initialBytes: 2 << 20 })];
    const layouts = await Promise.all(
      mems.map(async (m, i) => build(m, await createWasmKernels(m, "simd"), (rows) => [sliceStart(rows, i, 2), sliceStart(rows, i + 1, 2)])),
    );
    // Each memory holds about half of the weights.
    expect(mems[0].used).toBeLessThan(m1.used);
    const pool = await createPool({ memories: mems, threadsPerMemory: 1, build: "simd" });
    try {
      await pool.run(layouts.map((l) => encodeProgram(l.ops)));
      for (const [i, m] of mems.entries()) expect(Array.from(m.f32(layouts[i].out, dim))).toEqual(Array.from(want));
    } finally {
      await pool.dispose();
    }
  });
});
