/**
 * The synchronous pool (src/runtime/sync-pool.ts): the caller runs a step as thread 0 with the
 * pool's workers and returns when all are done. Barriers order dependent ops across the caller and
 * the workers; registers carry addresses; a failure anywhere is reported (the worker's own message)
 * without a hang, and the pool goes on working. Workers run the compiled dist/ (npm test builds first).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { createWasmKernels, KernelMemory, type Kernels } from "../../src/kernels/index.js";
import { createSyncPool, encodeProgram, execute, PoolError, type Op, type SyncPool } from "../../src/runtime/index.js";
import { randomF32, rng } from "../kernels/helpers.js";

/** A chain of dependent F32 matvecs: any missing barrier reads a half-written vector. */
function chain(mem: KernelMemory, n: number, steps: number, r: () => number) {
  const w = mem.put(randomF32(r, n * n, 1 / Math.sqrt(n)));
  const bufs = [mem.put(randomF32(r, n)), mem.alloc(4 * n)];
  const ops: Op[] = [];
  for (let s = 0; s < steps; s++) ops.push({ op: "matmul", type: GGMLType.F32, w, xq: bufs[s % 2], y: bufs[(s + 1) % 2], cols: n, rows: n, nTok: 1, ldy: n });
  return { ops, out: bufs[steps % 2], input: bufs[0] };
}

function single(k: Kernels, ops: Op[], regs = new Float64Array(16)): void {
  const p = encodeProgram(ops);
  execute(k, new Float64Array(p.sab), 0, p.length, regs, { thread: 0, threads: 1, peers: [] }, undefined);
}

describe.each([2, 3])("a synchronous pool of %i threads", (threads) => {
  let mem: KernelMemory;
  let k: Kernels;
  let pool: SyncPool;
  beforeAll(async () => {
    mem = KernelMemory.create({ initialBytes: 8 << 20 });
    k = await createWasmKernels(mem, "simd");
    pool = await createSyncPool(k, threads, { maxOps: 64 });
  });
  afterAll(() => pool.dispose());

  it("barriers order dependent ops: 40 chained matvecs equal the single-threaded run, step after step", () => {
    const { ops, out, input } = chain(mem, 67, 40, rng(1));
    const x0 = mem.f32(input, 67).slice();
    pool.run(encodeProgram(ops));
    const got = mem.f32(out, 67).slice();
    mem.f32(input, 67).set(x0);
    single(k, ops);
    expect(Array.from(got)).toEqual(Array.from(mem.f32(out, 67)));
    const short = encodeProgram(ops.slice(0, 3));
    for (let i = 0; i < 50; i++) pool.run(short);
  });

  it("registers carry the addresses; one encoded program serves every call", () => {
    const r = rng(2);
    const rows = 45, cols = 33;
    const w = mem.put(randomF32(r, rows * cols));
    const xs = [mem.put(randomF32(r, cols)), mem.put(randomF32(r, cols))];
    const ys = [mem.alloc(4 * rows), mem.alloc(4 * rows)];
    const program = encodeProgram([{ op: "matmul", type: GGMLType.F32, w: { reg: 1 }, xq: { reg: 2 }, y: { reg: 0 }, cols, rows, nTok: 1, ldy: rows, sync: false }]);
    const want = mem.alloc(4 * rows);
    for (let i = 0; i < 2; i++) {
      pool.run(program, [ys[i]!, w, xs[i]!]);
      k.matmul(GGMLType.F32, w, xs[i]!, want, cols, 0, rows, 1, rows);
      expect(Array.from(mem.f32(ys[i]!, rows))).toEqual(Array.from(mem.f32(want, rows)));
    }
  });

  it("failures: the caller's own error, a worker's (with its message), then work as before", () => {
    const { ops, out, input } = chain(mem, 16, 6, rng(3));
    const x0 = mem.f32(input, 16).slice();
    single(k, ops);
    const want = Array.from(mem.f32(out, 16));
    const bytes = mem.memory.buffer.byteLength;
    // storeF16 runs on thread 0 only, the caller: its trap is thrown as it is.
    const callerFails = encodeProgram([...ops.slice(0, 2), { op: "storeF16", x: 65536, h: 2 ** 32 - 64, n: 64 }, ...ops]);
    // Rows past the memory's end fall in the workers' shares (the second half): a worker traps,
    // the caller is released from the barrier and reports the worker's message.
    const rows = 8 * threads, cols = 64;
    const workerFails = encodeProgram([{ op: "matmul", type: GGMLType.F32, w: bytes - (rows / 2) * cols * 4, xq: 65536, y: 65536, cols, rows, nTok: 1, ldy: rows }, ...ops]);
    const good = encodeProgram(ops);
    for (let i = 0; i < 10; i++) {
      expect(() => pool.run(callerFails)).toThrow(/out of bounds/);
      expect(() => pool.run(workerFails)).toThrow(/a synchronous step failed in thread [1-9]: .*out of bounds/);
      mem.f32(input, 16).set(x0);
      pool.run(good);
      expect(Array.from(mem.f32(out, 16))).toEqual(want);
    }
  });

  it("refuses a program longer than its slot", () => {
    const { ops } = chain(mem, 8, 65, rng(4));
    expect(() => pool.run(encodeProgram(ops))).toThrow(PoolError);
    expect(() => pool.run(encodeProgram(ops))).toThrow(/65 ops; this pool takes 64/);
  });
});

describe("a synchronous pool's life", () => {
  it("needs 2+ threads and the wasm kernels; a disposed pool refuses work; dispose twice is fine", async () => {
    const mem = KernelMemory.create({ initialBytes: 1 << 20 });
    const k = await createWasmKernels(mem, "simd");
    await expect(createSyncPool(k, 1)).rejects.toThrow(/2 or more threads/);
    const pool = await createSyncPool(k, 2);
    expect(pool.threads).toBe(2);
    pool.run(encodeProgram([{ op: "add", a: 65536, b: 65536, out: 65536, n: 4 }]));
    await pool.dispose();
    expect(() => pool.run(encodeProgram([{ op: "add", a: 65536, b: 65536, out: 65536, n: 4 }]))).toThrow(/disposed/);
    await pool.dispose();
  });
});
