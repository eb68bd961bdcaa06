/**
 * Q2_K, Q3_K and IQ4_XS matmuls (assembly/k_quants_low.ts, src/kernels/reference/k-quants-low.ts):
 *   - the WASM kernels give the reference's bits (same integer sums, same float order) on random
 *     blocks, odd row counts cut into slices, several token counts and row lengths, both builds;
 *   - the reference's integer sums equal the ggml dequantizer's weights (src/formats/quants, bit
 *     for bit ggml's) times the Q8_K codes, and its product equals dequantized row . dequantized
 *     activations to float rounding.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize, f16ToF32 } from "../../src/formats/quants/index.js";
import { KernelMemory, Kernels, rowBytes } from "../../src/kernels/index.js";
import { quantizeQ8_K } from "../../src/kernels/reference/index.js";
import { dotIQ4_XS, dotQ2_K, dotQ3_K, sumIQ4_XS, sumQ3_K, sumsQ2_K } from "../../src/kernels/reference/k-quants-low.js";
import { kernelPair, KERNEL_BUILDS, randomF32, randomWeights, rng, withMark } from "./helpers.js";

const TYPES = [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS] as const;
type LowType = (typeof TYPES)[number];
const BLOCK = { [GGMLType.Q2_K]: 84, [GGMLType.Q3_K]: 110, [GGMLType.IQ4_XS]: 136 } as const;
const DOT = { [GGMLType.Q2_K]: dotQ2_K, [GGMLType.Q3_K]: dotQ3_K, [GGMLType.IQ4_XS]: dotIQ4_XS } as const;

/** Random rows, with the first super-block all ones bits and the second all zeros (extreme scales and codes). */
function weights(type: LowType, rows: number, cols: number, r: () => number): Uint8Array {
  const w = randomWeights(type, rows, cols, r);
  const bb = BLOCK[type];
  const keep = (o: number, at: number[]) => at.map((a) => [w[o + a], w[o + a + 1]] as const);
  const scaleAt = type === GGMLType.Q2_K ? [80, 82] : type === GGMLType.Q3_K ? [108] : [0];
  for (const [k, fill] of [[0, 0xff], [1, 0x00]] as const) {
    if ((k + 1) * bb > w.length) break;
    const saved = keep(k * bb, scaleAt);
    w.fill(fill, k * bb, (k + 1) * bb);
    scaleAt.forEach((a, i) => ((w[k * bb + a] = saved[i][0]), (w[k * bb + a + 1] = saved[i][1])));
  }
  return w;
}

describe.each(KERNEL_BUILDS)("Q2_K / Q3_K / IQ4_XS kernels (%s build)", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    ({ mem, wasm, ref } = await kernelPair(build, 64 << 20));
  });

  for (const type of TYPES) {
    it(`${GGMLType[type]}: WASM gives the reference's bits (odd rows, row slices, 1..5 tokens, 256..4352 columns)`, () => {
      const r = rng(type * 31 + 7);
      const shapes: Array<[rows: number, cols: number]> = [[1, 256], [3, 256], [7, 768], [5, 4352], [2, 512]];
      for (const [rows, cols] of shapes) {
        for (const nTok of [1, 2, 3, 5]) {
          withMark(mem, () => {
            const w = mem.put(weights(type, rows, cols, r));
            const xs = randomF32(r, nTok * cols, 3);
            if (nTok > 1) xs.fill(0, cols, cols + 256); // a token whose first super-block is all zeros (d = 0)
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xqW = mem.alloc(ab * nTok), xqR = mem.alloc(ab * nTok);
            mem.u8(xqW, ab * nTok).fill(0);
            mem.u8(xqR, ab * nTok).fill(0);
            // Two thread slices of the tokens for the quantizer, as the runtime splits them.
            wasm.quantize(type, x, xqW, cols, 0, nTok >> 1);
            wasm.quantize(type, x, xqW, cols, nTok >> 1, nTok);
            ref.quantize(type, x, xqR, cols, 0, nTok);
            expect(Array.from(mem.u8(xqW, ab * nTok))).toEqual(Array.from(mem.u8(xqR, ab * nTok)));
            const yR = mem.alloc(4 * rows * nTok);
            ref.matmul(type, w, xqR, yR, cols, 0, rows, nTok, rows);
            const want = Array.from(new Uint32Array(mem.f32(yR, rows * nTok).slice().buffer));
            for (const cuts of [[0, rows], [0, 1, rows], [0, rows >> 1, rows]]) {
              const yW = mem.alloc(4 * rows * nTok);
              for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(type, w, xqW, yW, cols, cuts[i], cuts[i + 1], nTok, rows);
              const got = Array.from(new Uint32Array(mem.f32(yW, rows * nTok).slice().buffer));
              expect(got, `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(want);
            }
          });
        }
      }
    });
  }
});

describe("Q2_K / Q3_K / IQ4_XS reference against ggml's dequantizer", () => {
  for (const type of TYPES) {
    it(`${GGMLType[type]}: integer super-block sums are dequantized weights times Q8_K codes`, () => {
      const r = rng(type * 131 + 3);
      const rows = 6, cols = 1024, nb = cols / 256, bb = BLOCK[type];
      const w = weights(type, rows, cols, r);
      const wf = dequantize(type, w, rows * cols);
      const xq = quantizeQ8_K(randomF32(r, cols, 2));
      const h = (o: number) => f16ToF32(w[o] | (w[o + 1] << 8));
      for (let row = 0; row < rows; row++) {
        for (let B = 0; B < nb; B++) {
          const o = (row * nb + B) * bb;
          // Dequantized weights dotted with the integer codes, in float64 (exact for Q3_K and
          // IQ4_XS, whose dequantized weights d*sc*q are exact floats and whose sums fit 53 bits).
          let s = 0, mag = 0;
          for (let j = 0; j < 256; j++) {
            s += wf[row * cols + 256 * B + j] * xq.qs[256 * B + j];
            mag += Math.abs(wf[row * cols + 256 * B + j] * xq.qs[256 * B + j]);
          }
          if (type === GGMLType.Q2_K) {
            // ggml rounds d*sc*q - dmin*m to float32 per weight: equal to that rounding.
            const [isum, summs] = sumsQ2_K(w, o, xq, B);
            expect(Math.abs(s - (h(o + 80) * isum - h(o + 82) * summs))).toBeLessThanOrEqual(mag * 2 ** -23);
          } else if (type === GGMLType.Q3_K) {
            expect(s).toBe(h(o + 108) * sumQ3_K(w, o, xq, B));
          } else {
            expect(s).toBe(h(o) * sumIQ4_XS(w, o, xq, B));
          }
        }
      }
    });

    it(`${GGMLType[type]}: the product is dequantized row . dequantized Q8_K activations, to float rounding`, () => {
      const r = rng(type * 7 + 1);
      const rows = 5, cols = 768;
      const w = weights(type, rows, cols, r);
      expect(w.length).toBe(rows * rowBytes(type, cols));
      const wf = dequantize(type, w, rows * cols);
      const xq = quantizeQ8_K(randomF32(r, cols, 2));
      const xa = Float32Array.from(xq.qs, (q, j) => q * xq.d[j >> 8]);
      for (let row = 0; row < rows; row++) {
        let s = 0, mag = 0;
        for (let j = 0; j < cols; j++) {
          s += wf[row * cols + j] * xa[j];
          mag += Math.abs(wf[row * cols + j] * xa[j]);
        }
        expect(Math.abs(DOT[type](w, row * rowBytes(type, cols), xq) - s)).toBeLessThan(4e-7 * mag + 1e-9);
      }
    });
  }
});
