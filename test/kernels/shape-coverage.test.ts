/**
 * Shape coverage (issue 16): the WASM kernels against their TypeScript twins on every row length
 * a model can have, not only powers of two and the benchmark shapes, both builds.
 *
 *   - matmul, every type: every multiple of the block size up to 1024 (32-blocks) or 4096
 *     (256-blocks), every width 1..160 for F16 / F32 (the 16- and 64-lane orders' tails), the
 *     real widths 2048, 2880, 4096, 5120, 11008, 13824 and a few odd block counts past those
 *     (1056, 1312, 2080, 4128; 4352, 4608); rows a multiple of 8 (the grouped Q4_0
 *     layout, laid out by each backend's own layMatrix) and not (1, 3, 4, 5, 7, 12, 13: F16's
 *     order depends on rows % 4); 1..9 tokens (tiles and their tails); thread slices cut inside
 *     groups of four rows. Each type is held to what its own tests claim:
 *       bit for bit with the twin: Q4_0 grouped (llama.cpp's CPU_REPACK order), F16, Q2_K, Q3_K, IQ4_XS,
 *       Q8_0 where relaxed_madd is fused (llama.cpp's 8-lane order);
 *       bit for bit with the kernels' documented order, a few ulps from the twin: Q4_0 ungrouped
 *       and Q8_0 without a fused madd (helpers.ts, matmulKernelOrder), and for those, Q4_K / Q5_K / Q6_K and
 *       Q4_1 / Q5_0 / Q5_1 / IQ4_NL one order whatever the token count or slice (a token's
 *       result is the same bits in a 1-token call as in a 9-token tile), within 3e-6 of the twin;
 *       F32 within 3e-6.
 *     The rounded activations are byte-identical for every type.
 *   - rope: head sizes 48, 64, 80, 96, 112, 128, full and partial rotation, both pair layouts,
 *     positions up to 4095; within 1e-6.
 *   - attention: the same head sizes, grouped-query ratios 1, 2, 3, 4, 8, f32 / f16 caches and the
 *     Q8_0 cache where the head size is a multiple of 32, one and several queries at positions
 *     beyond 0, heads split inside a KV group as threads split them; within 2e-6 (the claim of
 *     kernels.test.ts and attention-q8_0.test.ts), except, with the f16 cache, where an attention
 *     weight sits at an f16 rounding midpoint (checkF16Attention says exactly what is allowed).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType, GGML_TYPES } from "../../src/formats/ggml-types.js";
import { isGrouped, KernelMemory, Kernels, MATMUL_TYPES, MatmulType, ropeFrequencies, rowBytes, type RopeConfig } from "../../src/kernels/index.js";
import { f16ToF32, f32ToF16 } from "../../src/formats/quants/index.js";
import { roundF16, softmaxRow } from "../../src/kernels/reference/index.js";
import { kernelPair, KERNEL_BUILDS, matmulKernelOrder, maxRelDiff, randomF32, randomWeights, rng, withMark } from "./helpers.js";

/** Real widths (LLaMA 7B/13B, stories15M-style ffn 2880), and a few odd block counts past 32. */
const BIG_32 = [1056, 1312, 2048, 2080, 2880, 4096, 4128, 5120, 11008, 13824];
const BIG_256 = [4352, 4608, 11008, 13824];
const range = (from: number, to: number, step: number) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

/** Row lengths for a type: every multiple of its block up to 1024 / 4096, the real widths. */
function widths(type: MatmulType): number[] {
  const block = GGML_TYPES[type].blockSize;
  if (block === 1) return [...new Set([...range(1, 160, 1), ...range(192, 1024, 32), 4099, ...BIG_32])];
  if (block === 32) return [...range(32, 1024, 32), ...BIG_32];
  return [...range(256, 4096, 256), ...BIG_256];
}

/** Bit for bit with the twin (kernel claims, see above). */
const EXACT_TO_TWIN = new Set<MatmulType>([GGMLType.F16, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS]);
/** One float order whatever the token count and slice. */
const ONE_ORDER = new Set<MatmulType>([
  GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS,
  GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL,
]);
const MAX_TOK = 9;
const bits = (a: Float32Array) => new Uint32Array(Float32Array.from(a).buffer);
const HEAD_DIMS = [48, 64, 80, 96, 112, 128];

/** The first differing index of two bit arrays, or -1. */
function firstDiff(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Thread slices of `rows` rows: whole, and cut at odd places (inside groups of four rows). */
function cutsFor(rows: number, k: number): number[] {
  const patterns = [[0, rows], [0, 1, rows], [0, 3, rows], [0, (rows >> 1) + 1, rows], [0, 5, 6, rows], [0, 2, 7, rows]];
  const c = patterns[k % patterns.length]!;
  return c.every((v, i) => i === 0 || v > c[i - 1]!) ? c : [0, rows];
}

/**
 * With an f16 cache both engines round each attention weight p to f16 (as llama.cpp's F16 KQV
 * product rounds its input), and their p differ by float rounding (WASM: f32 SIMD scores times an
 * f32 scale, Mathf.exp; the twin: f64 dot, f64 scale, Math.exp). Where the twin's p_j lies within
 * 2^-18 (relative) of a midpoint between two halves the two may round apart, one f16 ulp
 * (2^-11 relative) of p_j: up to ~1e-4 of the output on these random inputs. So for each (token,
 * head) whose output is more than 2e-6 from the twin's, this requires such near-midpoint weights
 * and that WASM's output is the twin's with some of them rounded to the other half (within 2e-6).
 * Returns how many (token, head) pairs needed it.
 */
function checkF16Attention(
  got: Float32Array, want: Float32Array, qv: Float32Array, kh: Float32Array, vh: Float32Array,
  nHead: number, nKvHead: number, headDim: number, pos0: number, nTok: number, scale: number, label: string,
): number {
  const f = Math.fround;
  let top = 1e-6;
  for (const w of want) top = Math.max(top, Math.abs(w));
  const kvRow = nKvHead * headDim, group = nHead / nKvHead;
  let flipped = 0;
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHead; h++) {
      const qo = (t * nHead + h) * headDim, g = Math.floor(h / group), nKv = pos0 + t + 1;
      const rowDiff = (o: ArrayLike<number>) => {
        let m = 0;
        for (let d = 0; d < headDim; d++) m = Math.max(m, Math.abs(got[qo + d]! - o[d]!));
        return m / top;
      };
      // The twin's weights (src/kernels/reference/attention.ts) and its output from them.
      const score = new Float32Array(nKv);
      for (let j = 0; j < nKv; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += roundF16(qv[qo + d]!) * kh[j * kvRow + g * headDim + d]!;
        score[j] = dot * scale;
      }
      const p = softmaxRow(score, nKv, true); // as the twin does (llama.cpp's exp, rows padded to 16)
      const p16 = Array.from(p, roundF16);
      const outFor = (w: number[]) => {
        const o = new Float32Array(headDim);
        for (let j = 0; j < nKv; j++) for (let d = 0; d < headDim; d++) o[d] = f(o[d]! + w[j]! * vh[j * kvRow + g * headDim + d]!);
        return o;
      };
      expect(rowDiff(outFor(p16)) === rowDiff(want.subarray(qo, qo + headDim)), `${label}: the twin's weights, recomputed`).toBe(true);
      if (rowDiff(want.subarray(qo, qo + headDim)) < 2e-6) continue;
      // Weights near a rounding midpoint between two halves, and the other half for each.
      const near: Array<[j: number, other: number]> = [];
      for (let j = 0; j < nKv; j++) {
        const hb = f32ToF16(p[j]!);
        const other = f16ToF32(p[j]! > p16[j]! ? hb + 1 : hb - 1);
        if (Math.abs(p[j]! - (p16[j]! + other) / 2) <= 2 ** -18 * p[j]!) near.push([j, other]);
      }
      expect(near.length, `${label}, token ${t}, head ${h}: ${rowDiff(want.subarray(qo, qo + headDim)).toExponential(2)} from the twin with no weight near an f16 midpoint`).toBeGreaterThan(0);
      expect(near.length).toBeLessThanOrEqual(10);
      let best = Infinity;
      for (let mask = 1; mask < 1 << near.length && best >= 2e-6; mask++) {
        const w = p16.slice();
        near.forEach(([j, other], i) => { if (mask & (1 << i)) w[j] = other; });
        best = Math.min(best, rowDiff(outFor(w)));
      }
      expect(best, `${label}, token ${t}, head ${h}: not the twin with a weight rounded to the other half`).toBeLessThan(2e-6);
      flipped++;
    }
  }
  return flipped;
}

describe.each(KERNEL_BUILDS)("shape coverage: wasm (%s build) vs the TypeScript twin", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    ({ mem, wasm, ref } = await kernelPair(build, 64 << 20));
  });

  for (const type of MATMUL_TYPES) {
    const name = GGMLType[type];
    it(`matmul ${name}: every row length, rows % 8 == 0 and not, 1..9 tokens, slices inside groups`, () => {
      const r = rng(1600 + type);
      const ws = widths(type);
      let checked = 0;
      ws.forEach((cols, i) => {
        const big = cols > 4096;
        const rowCounts = [8 * (1 + (i % 3)), [1, 3, 4, 5, 7, 12, 13][i % 7]!].map((n) => (big ? Math.min(n, 8) : n));
        for (const rows of rowCounts) {
          withMark(mem, () => {
            const label = `${name} ${rows}x${cols}`;
            const wBytes = randomWeights(type, rows, cols, r);
            const xs = randomF32(r, MAX_TOK * cols, 3);
            // The matrix as each backend's loader lays it out (layMatrix: grouped Q4_0, Q4_K and Q6_K rows).
            const wW = mem.put(wBytes), wR = mem.put(wBytes);
            wasm.layMatrix(type, wW, rows, cols);
            ref.layMatrix(type, wR, rows, cols);
            const wb = rows * rowBytes(type, cols);
            expect(Buffer.compare(mem.u8(wW, wb), mem.u8(wR, wb)), `${label}: layMatrix bytes`).toBe(0);
            // Activations of nine tokens, rounded by both; a call on t tokens reads the first t rows.
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xqW = mem.alloc(ab * MAX_TOK), xqR = mem.alloc(ab * MAX_TOK);
            mem.u8(xqW, ab * MAX_TOK).fill(0);
            mem.u8(xqR, ab * MAX_TOK).fill(0);
            wasm.quantize(type, x, xqW, cols, 0, MAX_TOK);
            ref.quantize(type, x, xqR, cols, 0, MAX_TOK);
            expect(Buffer.compare(mem.u8(xqW, ab * MAX_TOK), mem.u8(xqR, ab * MAX_TOK)), `${label}: rounded activations`).toBe(0);
            // The twin: 9 tokens, and 1 token (F16's order differs for one token).
            const twin = (nTok: number) => {
              const y = mem.alloc(4 * rows * nTok);
              ref.matmul(type, wR, xqR, y, cols, 0, rows, nTok, rows);
              return mem.f32(y, rows * nTok).slice();
            };
            const ref9 = twin(MAX_TOK);
            const ref1 = type === GGMLType.F16 ? twin(1) : ref9.subarray(0, rows);
            const order =
              ((type === GGMLType.Q8_0 && !wasm.fusedMadd) || (type === GGMLType.Q4_0 && !isGrouped(type, rows))) ? matmulKernelOrder(type, wBytes, xs, rows, cols, MAX_TOK) : undefined;
            // Grouped Q4_0 and fused Q8_0 are llama.cpp's order, which the twin follows; grouped Q4_K and Q6_K keep the plain kernel's.
            const exact = EXACT_TO_TWIN.has(type) || (type === GGMLType.Q4_0 && isGrouped(type, rows)) || (type === GGMLType.Q8_0 && wasm.fusedMadd);
            let wasm9: Uint32Array | undefined;
            for (let nTok = MAX_TOK; nTok >= 1; nTok--) {
              const cuts = nTok === MAX_TOK ? [0, rows] : cutsFor(rows, nTok + i);
              const y = mem.alloc(4 * rows * nTok);
              mem.f32(y, rows * nTok).fill(Number.NaN);
              for (let k = 0; k + 1 < cuts.length; k++) wasm.matmul(type, wW, xqW, y, cols, cuts[k]!, cuts[k + 1]!, nTok, rows);
              const got = mem.f32(y, rows * nTok).slice();
              const want = nTok === 1 ? ref1 : ref9.subarray(0, rows * nTok);
              const at = `${label}, ${nTok} tokens, rows cut at ${cuts}`;
              if (exact) {
                const d = firstDiff(bits(got), bits(want));
                expect(d, `${at}: [${d}] ${got[d]} != twin ${want[d]}`).toBe(-1);
              } else {
                expect(maxRelDiff(got, want), at).toBeLessThan(3e-6);
              }
              if (order) {
                const d = firstDiff(bits(got), bits(order.subarray(0, rows * nTok)));
                expect(d, `${at}: [${d}] ${got[d]} != kernel order ${order[d]}`).toBe(-1);
              }
              if (ONE_ORDER.has(type)) {
                if (!wasm9) wasm9 = bits(got);
                const d = firstDiff(bits(got), wasm9.subarray(0, rows * nTok));
                expect(d, `${at}: [${d}] differs from the same token in the 9-token call`).toBe(-1);
              }
              checked++;
            }
          });
        }
      });
      expect(checked).toBe(ws.length * 2 * MAX_TOK);
    });
  }

  it("rope: head sizes 48..128, full and partial rotation, both pair layouts, positions to 4095", () => {
    const r = rng(1601);
    for (const headDim of HEAD_DIMS) {
      for (const nDims of [headDim, headDim >> 1, 32]) {
        for (const neox of [false, true]) {
          const cfg: RopeConfig = { nDims, base: neox ? 1e6 : 10000, neox, scaling: nDims === headDim ? { type: "yarn", factor: 4, originalContext: 1024 } : { type: "none" } };
          const freqs = ropeFrequencies(cfg, 4096);
          for (const [pos0, nTok] of [[0, 1], [0, 5], [17, 3], [1000, 1], [4090, 6]] as const) {
            withMark(mem, () => {
              const nHeads = 3, ld = nHeads * headDim + 4;
              const inv = mem.put(freqs.invFreq, 8);
              const cs = mem.put(randomF32(r, nDims, 1e6));
              const data = randomF32(r, nTok * ld, 2);
              const a = mem.put(data), b = mem.put(data);
              wasm.rope(a, cs, nHeads, headDim, nDims, pos0, inv, freqs.mscale, neox, nTok, ld);
              ref.rope(b, cs, nHeads, headDim, nDims, pos0, inv, freqs.mscale, neox, nTok, ld);
              expect(maxRelDiff(mem.f32(a, nTok * ld), mem.f32(b, nTok * ld)), `head ${headDim}, ${nDims} dims, neox ${neox}, pos ${pos0}+${nTok}`).toBeLessThan(1e-6);
            });
          }
        }
      }
    }
  });

  const kvTypes = [GGMLType.F32, GGMLType.F16, GGMLType.Q8_0] as const;
  for (const headDim of HEAD_DIMS) {
    it(`attention, heads of ${headDim}: GQA 1/2/3/4/8, ${headDim % 32 === 0 ? "f32 / f16 / Q8_0" : "f32 / f16"} caches, one and several queries at positions beyond 0`, () => {
      const r = rng(1700 + headDim);
      let flipped = 0;
      for (const ratio of [1, 2, 3, 4, 8]) {
        const nKvHead = ratio === 8 ? 1 : 2, nHead = ratio * nKvHead;
        for (const kvType of kvTypes) {
          if (kvType === GGMLType.Q8_0 && headDim % 32 !== 0) continue;
          for (const [pos0, nTok] of [[0, 1], [0, 6], [9, 1], [21, 3], [40, 9]] as const) {
            withMark(mem, () => {
              const nKv = pos0 + nTok, kvDim = nKvHead * headDim, qDim = nHead * headDim;
              const qv = randomF32(r, nTok * qDim, 2);
              const q = mem.put(qv);
              const kf = mem.put(randomF32(r, nKv * kvDim, 2)), vf = mem.put(randomF32(r, nKv * kvDim));
              let k = kf, v = vf;
              if (kvType !== GGMLType.F32) {
                const bytes = kvType === GGMLType.F16 ? 2 * nKv * kvDim : rowBytes(GGMLType.Q8_0, nKv * kvDim);
                k = mem.alloc(bytes);
                v = mem.alloc(bytes);
                const k2 = mem.alloc(bytes), v2 = mem.alloc(bytes);
                const store = (kk: Kernels, src: number, dst: number) => (kvType === GGMLType.F16 ? kk.storeF16(src, dst, nKv * kvDim) : kk.storeQ8_0(src, dst, nKv * kvDim));
                store(wasm, kf, k);
                store(wasm, vf, v);
                store(ref, kf, k2);
                store(ref, vf, v2);
                expect(Buffer.compare(mem.u8(k, bytes), mem.u8(k2, bytes)), `${GGMLType[kvType]} K rows`).toBe(0);
                expect(Buffer.compare(mem.u8(v, bytes), mem.u8(v2, bytes)), `${GGMLType[kvType]} V rows`).toBe(0);
              }
              // Scratch full of garbage: neither may read what it did not write.
              const scores = mem.put(randomF32(r, nKv, 1e6)), qh = mem.put(randomF32(r, headDim, 1e6));
              const o1 = mem.alloc(4 * nTok * qDim), o2 = mem.alloc(4 * nTok * qDim);
              const scale = 1 / Math.sqrt(headDim);
              // Split the heads inside a KV group where there is one (as threads split them).
              const split = Math.min(nHead - 1, Math.max(1, ratio > 1 ? ratio + 1 : nHead >> 1));
              wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, scale, 0, split);
              wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, scale, split, nHead);
              ref.attention(q, k, v, o2, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, scale, 0, nHead);
              const label = `${nHead} q / ${nKvHead} kv heads of ${headDim}, ${GGMLType[kvType]} cache, pos ${pos0}+${nTok}`;
              const got = mem.f32(o1, nTok * qDim).slice(), want = mem.f32(o2, nTok * qDim).slice();
              if (kvType === GGMLType.F16) {
                const half = (p: number) => Float32Array.from(mem.u16(p, nKv * kvDim), f16ToF32);
                flipped += checkF16Attention(got, want, qv, half(k), half(v), nHead, nKvHead, headDim, pos0, nTok, scale, label);
              } else {
                expect(maxRelDiff(got, want), label).toBeLessThan(2e-6);
              }
            });
          }
        }
      }
      if (flipped) console.log(`${build} build, heads of ${headDim}: ${flipped} (token, head) pairs with the f16 cache where one attention weight rounded to the other half`);
    });
  }
});
