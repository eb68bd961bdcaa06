/**
 * Tensor parallelism end to end: a two-layer LLaMA-style decoder (GQA attention with RoPE and an
 * f16 KV cache, SwiGLU feed-forward, Q8_0 weights) decoding four tokens, laid out once in a single
 * memory and once split across two memories — each holding only its heads' Q/K/V rows, its own
 * KV cache, and its row slices of O, gate, up and down. Both runs must agree bit for bit.
 *
 * This is also the worked example of writing a step for the pool: one program per memory, a
 * register for the position, `gather` after every row-split product whose result all need.
 */
import { describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { createWasmKernels, KernelMemory, Kernels, ropeFrequencies, rowBytes } from "../../src/kernels/index.js";
import { createPool, encodeProgram, execute, Op, sliceStart } from "../../src/runtime/index.js";
import { randomF32, randomWeights, rng } from "../kernels/helpers.js";

const type = GGMLType.Q8_0;
const dim = 64, nHead = 4, nKvHead = 2, headDim = 16, ffn = 96, nLayers = 2, maxPos = 8;
const rope = { nDims: headDim, base: 10000, neox: false, scaling: { type: "yarn", factor: 4, originalContext: 4 } } as const;

interface LayerWeights {
  attnNorm: Float32Array;
  wq: Uint8Array;
  wk: Uint8Array;
  wv: Uint8Array;
  wo: Uint8Array;
  ffnNorm: Float32Array;
  wg: Uint8Array;
  wu: Uint8Array;
  wd: Uint8Array;
}

function makeWeights(): LayerWeights[] {
  const r = rng(42);
  return Array.from({ length: nLayers }, () => ({
    attnNorm: randomF32(r, dim),
    wq: randomWeights(type, dim, dim, r),
    wk: randomWeights(type, nKvHead * headDim, dim, r),
    wv: randomWeights(type, nKvHead * headDim, dim, r),
    wo: randomWeights(type, dim, dim, r),
    ffnNorm: randomF32(r, dim),
    wg: randomWeights(type, ffn, dim, r),
    wu: randomWeights(type, ffn, dim, r),
    wd: randomWeights(type, dim, ffn, r),
  }));
}

/** Lay out part `m` of `parts` in `mem`; returns the program and where x lives. */
function build(mem: KernelMemory, k: Kernels, weights: LayerWeights[], m: number, parts: number, x0: Float32Array) {
  const cut = (n: number): [number, number] => [sliceStart(n, m, parts), sliceStart(n, m + 1, parts)];
  const rows = (bytes: Uint8Array, [a, b]: [number, number], cols: number) => {
    const rb = rowBytes(type, cols);
    return mem.put(bytes.subarray(a * rb, b * rb));
  };
  const [h0, h1] = cut(nHead);
  const [g0, g1] = cut(nKvHead);
  // Heads split so that each part keeps whole GQA groups.
  expect(h0 * nKvHead).toBe(g0 * nHead);
  const lq = (h1 - h0) * headDim, lkv = (g1 - g0) * headDim;
  const [o0, o1] = cut(dim);
  const [f0, f1] = cut(ffn);
  const freqs = ropeFrequencies(rope);
  const invFreq = mem.put(freqs.invFreq, 8);
  const cs = mem.alloc(4 * headDim);
  const x = mem.put(x0);
  const h = mem.alloc(4 * dim), hq = mem.alloc(k.actBytes(type, dim));
  const q = mem.alloc(4 * lq), kt = mem.alloc(4 * lkv), vt = mem.alloc(4 * lkv);
  const attn = mem.alloc(4 * dim), aq = mem.alloc(k.actBytes(type, dim)), o = mem.alloc(4 * dim);
  const g = mem.alloc(4 * ffn), u = mem.alloc(4 * ffn), s = mem.alloc(4 * ffn), sq = mem.alloc(k.actBytes(type, ffn));
  const scores = mem.alloc(4 * maxPos), qh = mem.alloc(4 * headDim);
  const pos = { reg: 0 };
  const ops: Op[] = [];
  for (const w of weights) {
    const kCache = mem.alloc(2 * maxPos * lkv), vCache = mem.alloc(2 * maxPos * lkv);
    const an = mem.put(w.attnNorm), fnw = mem.put(w.ffnNorm);
    const wq = rows(w.wq, [h0 * headDim, h1 * headDim], dim);
    const wk = rows(w.wk, [g0 * headDim, g1 * headDim], dim);
    const wv = rows(w.wv, [g0 * headDim, g1 * headDim], dim);
    const wo = rows(w.wo, [o0, o1], dim);
    const wg = rows(w.wg, [f0, f1], dim), wu = rows(w.wu, [f0, f1], dim), wd = rows(w.wd, [o0, o1], ffn);
    const mm = (wp: number, xq: number, y: number, n: number, cols: number, ldy: number, sync = true): Op => ({
      op: "matmul", type, w: wp, xq, y, cols, rows: n, nTok: 1, ldy, sync,
    });
    ops.push(
      { op: "rmsnorm", x, w: an, y: h, n: dim, eps: 1e-5, nTok: 1 },
      { op: "quantize", type, x: h, xq: hq, cols: dim, nTok: 1 },
      mm(wq, hq, q, lq, dim, lq, false), mm(wk, hq, kt, lkv, dim, lkv, false), mm(wv, hq, vt, lkv, dim, lkv),
      { op: "rope", x: q, cs, nHeads: h1 - h0, headDim, nDims: headDim, pos, invFreq, mscale: freqs.mscale, neox: false, nTok: 1, ld: lq },
      { op: "rope", x: kt, cs, nHeads: g1 - g0, headDim, nDims: headDim, pos, invFreq, mscale: freqs.mscale, neox: false, nTok: 1, ld: lkv },
      // This part's KV cache holds only its kv heads: row `pos` at cache + pos * lkv halves.
      { op: "storeF16", x: kt, h: { reg: 0, mul: 2 * lkv, add: kCache }, n: lkv, sync: false },
      { op: "storeF16", x: vt, h: { reg: 0, mul: 2 * lkv, add: vCache }, n: lkv },
      {
        op: "attention", q, k: kCache, v: vCache, out: attn + 4 * h0 * headDim, scores, scoresStride: 4 * maxPos,
        qh, qhStride: 4 * headDim, nHead: h1 - h0, nKvHead: g1 - g0, headDim, pos, nTok: 1, kvType: GGMLType.F16,
        scale: 1 / Math.sqrt(headDim),
      },
      { op: "gather", ptr: attn + 4 * h0 * headDim, bytes: 4 * lq, nRows: 1, stride: 0 },
      { op: "quantize", type, x: attn, xq: aq, cols: dim, nTok: 1 },
      mm(wo, aq, o + 4 * o0, o1 - o0, dim, dim),
      { op: "gather", ptr: o + 4 * o0, bytes: 4 * (o1 - o0), nRows: 1, stride: 0 },
      { op: "add", a: x, b: o, out: x, n: dim },
      { op: "rmsnorm", x, w: fnw, y: h, n: dim, eps: 1e-5, nTok: 1 },
      { op: "quantize", type, x: h, xq: hq, cols: dim, nTok: 1 },
      mm(wg, hq, g + 4 * f0, f1 - f0, dim, ffn, false), mm(wu, hq, u + 4 * f0, f1 - f0, dim, ffn),
      { op: "swiglu", a: g + 4 * f0, b: u + 4 * f0, out: s + 4 * f0, n: f1 - f0 },
      { op: "gather", ptr: s + 4 * f0, bytes: 4 * (f1 - f0), nRows: 1, stride: 0 },
      { op: "quantize", type, x: s, xq: sq, cols: ffn, nTok: 1 },
      mm(wd, sq, o + 4 * o0, o1 - o0, ffn, dim),
      { op: "gather", ptr: o + 4 * o0, bytes: 4 * (o1 - o0), nRows: 1, stride: 0 },
      { op: "add", a: x, b: o, out: x, n: dim },
    );
  }
  return { ops, x };
}

describe("tensor parallelism across two memories", () => {
  it("a two-layer decoder, four decode steps: bit-identical to one memory", async () => {
    const weights = makeWeights();
    const x0 = randomF32(rng(5), dim);
    const steps = 4;

    const m1 = KernelMemory.create({ initialBytes: 1 << 20 });
    const k1 = await createWasmKernels(m1, "simd");
    const one = build(m1, k1, weights, 0, 1, x0);
    const p1 = encodeProgram(one.ops);
    const want: number[][] = [];
    for (let pos = 0; pos < steps; pos++) {
      const regs = new Float64Array(16);
      regs[0] = pos;
      execute(k1, new Float64Array(p1.sab), 0, p1.length, regs, { thread: 0, threads: 1, peers: [] }, undefined);
      want.push(Array.from(m1.f32(one.x, dim)));
    }
    expect(want[steps - 1].every(Number.isFinite)).toBe(true);

    const mems = [KernelMemory.create({ initialBytes: 1 << 20 }), KernelMemory.create({ initialBytes: 1 << 20 })];
    const parts = await Promise.all(mems.map(async (m, i) => build(m, await createWasmKernels(m, "simd"), weights, i, 2, x0)));
    expect(mems[0].used - 65536).toBeLessThan(0.6 * (m1.used - 65536));
    const pool = await createPool({ memories: mems, threadsPerMemory: 1, build: "simd" });
    try {
      const programs = parts.map((p) => encodeProgram(p.ops));
      for (let pos = 0; pos < steps; pos++) {
        await pool.run(programs, [pos]);
        for (const [i, m] of mems.entries()) expect(Array.from(m.f32(parts[i].x, dim))).toEqual(want[pos]);
      }
    } finally {
      await pool.dispose();
    }
  });
});
