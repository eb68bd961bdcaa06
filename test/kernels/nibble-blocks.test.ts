/**
 * Q4_1, Q5_0, Q5_1 and IQ4_NL matmuls (assembly/nibble_blocks.ts, src/kernels/reference/nibble-blocks.ts):
 *   - WASM against the reference twin on random blocks: the rounded activations byte for byte,
 *     the products to float rounding, over odd row counts cut into thread slices, odd token
 *     counts (the four-token tile and its tail) and rows of 1..129 blocks, both builds;
 *   - WASM against a model of its own float order, to the bit, through every tile and tail;
 *   - the reference against the ggml dequantizer (src/formats/quants, bit for bit ggml's):
 *     dequantized weights times dequantized activations, with ggml's Q8_1 s term for Q4_1/Q5_1;
 *   - the Q8_1 rounding (s = f16(amax/127 * sum of codes), ties to even) on hand-made blocks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize, f16ToF32, f32ToF16 } from "../../src/formats/quants/index.js";
import { KVALUES_IQ4NL } from "../../src/formats/quants/iq4.js";
import { KernelMemory, Kernels, MATMUL_TYPES, rowBytes } from "../../src/kernels/index.js";
import { quantizeQ8_0 } from "../../src/kernels/reference/index.js";
import { quantizeQ8_1 } from "../../src/kernels/reference/nibble-blocks.js";
import { checkWebGpuTypes, WebGpuError } from "../../src/kernels/webgpu/index.js";
import { kernelPair, KERNEL_BUILDS, maxRelDiff, randomF32, randomWeights, rng, withMark } from "./helpers.js";

const TYPES = [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL] as const;
type NibbleType = (typeof TYPES)[number];
const BLOCK = { [GGMLType.Q4_1]: 20, [GGMLType.Q5_0]: 22, [GGMLType.Q5_1]: 24, [GGMLType.IQ4_NL]: 18 } as const;
const QS = { [GGMLType.Q4_1]: 4, [GGMLType.Q5_0]: 6, [GGMLType.Q5_1]: 8, [GGMLType.IQ4_NL]: 2 } as const;
const hasMin = (t: NibbleType) => t === GGMLType.Q4_1 || t === GGMLType.Q5_1;
const f = Math.fround;
const f16At = (w: Uint8Array, o: number) => f16ToF32(w[o] | (w[o + 1] << 8));

/** Random rows; block 0 of row 0 has every code bit set, block 1 none (the extreme codes). */
function weights(type: NibbleType, rows: number, cols: number, r: () => number): Uint8Array {
  const w = randomWeights(type, rows, cols, r);
  const bb = BLOCK[type];
  for (const [k, fill] of [[0, 0xff], [1, 0x00]] as const) {
    if ((k + 1) * bb > w.length) break;
    w.fill(fill, k * bb + (hasMin(type) ? 4 : 2), (k + 1) * bb);
  }
  return w;
}

/** The weight code that multiplies activation code j of the block at o: signed, offset removed (Q5_0: c - 16). */
function weightCode(type: NibbleType, w: Uint8Array, o: number, j: number): number {
  const qs = o + QS[type];
  let c = j < 16 ? w[qs + j] & 15 : w[qs + j - 16] >> 4;
  if (type === GGMLType.Q5_0 || type === GGMLType.Q5_1) {
    const qhAt = o + (type === GGMLType.Q5_0 ? 2 : 4);
    const qh = (w[qhAt] | (w[qhAt + 1] << 8) | (w[qhAt + 2] << 16) | (w[qhAt + 3] << 24)) >>> 0;
    c |= ((qh >>> j) & 1) << 4;
  }
  return type === GGMLType.IQ4_NL ? KVALUES_IQ4NL[c] : type === GGMLType.Q5_0 ? c - 16 : c;
}

/**
 * y = W x in the kernels' float order (assembly/nibble_blocks.ts, "Summation order"): exact
 * integer block sums; block b's sum times (d_w * d_x) into lane b % 4; lanes folded
 * (0 + 2) + (1 + 3); later blocks one by one; Q4_1 / Q5_1's m_w * s_x terms the same way apart,
 * added at the end.
 */
function matmulKernelOrder(type: NibbleType, w: Uint8Array, x: Float32Array, rows: number, cols: number, nTok: number): Float32Array {
  const bb = BLOCK[type];
  const nb = cols / 32;
  const y = new Float32Array(nTok * rows);
  const laneSum = (term: (b: number) => number): number => {
    const lanes = [0, 0, 0, 0];
    let b = 0;
    for (; b + 3 < nb; b += 4) for (let k = 0; k < 4; k++) lanes[k] = f(lanes[k] + term(b + k));
    let sum = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
    for (; b < nb; b++) sum = f(sum + term(b));
    return sum;
  };
  for (let t = 0; t < nTok; t++) {
    const xt = x.subarray(t * cols, (t + 1) * cols);
    const xq1 = quantizeQ8_1(xt);
    const xq = hasMin(type) ? xq1 : quantizeQ8_0(xt);
    for (let r = 0; r < rows; r++) {
      const dot = laneSum((b) => {
        const o = (r * nb + b) * bb;
        let isum = 0;
        for (let j = 0; j < 32; j++) isum += weightCode(type, w, o, j) * xq.qs[b * 32 + j];
        return f(f(isum) * f(f16At(w, o) * xq.d[b]));
      });
      const mins = hasMin(type) ? laneSum((b) => f(f16At(w, (r * nb + b) * bb + 2) * xq1.s[b])) : 0;
      y[t * rows + r] = hasMin(type) ? f(dot + mins) : dot;
    }
  }
  return y;
}

describe.each(KERNEL_BUILDS)("Q4_1 / Q5_0 / Q5_1 / IQ4_NL kernels (%s build)", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    ({ mem, wasm, ref } = await kernelPair(build, 64 << 20));
  });

  for (const type of TYPES) {
    it(`${GGMLType[type]}: WASM against the reference (odd rows, row slices, 1..9 tokens, 32..4128 columns)`, () => {
      const r = rng(type * 31 + 5);
      const shapes: Array<[rows: number, cols: number]> = [[1, 32], [3, 96], [7, 288], [13, 160], [5, 4128]];
      for (const [rows, cols] of shapes) {
        for (const nTok of [1, 3, 4, 5, 9]) {
          withMark(mem, () => {
            const w = mem.put(weights(type, rows, cols, r));
            const xs = randomF32(r, nTok * cols, 3);
            if (nTok > 1) xs.fill(0, cols, cols + 32); // a block of zeros (d = 0, s = 0)
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xqW = mem.alloc(ab * nTok), xqR = mem.alloc(ab * nTok);
            mem.u8(xqW, ab * nTok).fill(0);
            mem.u8(xqR, ab * nTok).fill(0);
            // Tokens quantized in two slices, as two threads would.
            wasm.quantize(type, x, xqW, cols, 0, nTok >> 1);
            wasm.quantize(type, x, xqW, cols, nTok >> 1, nTok);
            ref.quantize(type, x, xqR, cols, 0, nTok);
            expect(Array.from(mem.u8(xqW, ab * nTok))).toEqual(Array.from(mem.u8(xqR, ab * nTok)));
            const yW = mem.alloc(4 * rows * nTok), yR = mem.alloc(4 * rows * nTok);
            const mid = rows >> 1;
            wasm.matmul(type, w, xqW, yW, cols, 0, mid, nTok, rows);
            wasm.matmul(type, w, xqW, yW, cols, mid, rows, nTok, rows);
            ref.matmul(type, w, xqR, yR, cols, 0, rows, nTok, rows);
            expect(maxRelDiff(mem.f32(yW, rows * nTok), mem.f32(yR, rows * nTok)), `${rows}x${cols}, ${nTok} tokens`).toBeLessThan(3e-6);
          });
        }
      }
    });

    it(`${GGMLType[type]}: every tile and tail sums in the kernel order, to the bit`, () => {
      const r = rng(type + 303);
      // Blocks per row 1, 3, 4, 5, 9: groups of four and left-over blocks.
      const shapes: Array<[rows: number, cols: number]> = [[1, 32], [5, 96], [7, 128], [9, 160], [13, 288]];
      for (const [rows, cols] of shapes) {
        for (const nTok of [1, 2, 3, 4, 5, 7, 8, 9]) {
          withMark(mem, () => {
            const wBytes = weights(type, rows, cols, r);
            const xs = randomF32(r, nTok * cols, 3);
            const w = mem.put(wBytes);
            const x = mem.put(xs);
            const xq = mem.alloc(wasm.actBytes(type, cols) * nTok);
            wasm.quantize(type, x, xq, cols, 0, nTok);
            const want = Array.from(new Uint32Array(matmulKernelOrder(type, wBytes, xs, rows, cols, nTok).buffer));
            for (const cuts of [[0, rows], [0, 1, rows], [0, Math.min(3, rows), rows]]) {
              const y = mem.alloc(4 * rows * nTok);
              for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(type, w, xq, y, cols, cuts[i], cuts[i + 1], nTok, rows);
              expect(Array.from(new Uint32Array(mem.f32(y, rows * nTok).slice().buffer)), `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(want);
            }
          });
        }
      }
    });
  }
});

describe("Q4_1 / Q5_0 / Q5_1 / IQ4_NL reference against the ggml dequantizer", () => {
  for (const type of TYPES) {
    it(`${GGMLType[type]}: dequantized row . dequantized activations${hasMin(type) ? ", with the Q8_1 s term" : ""}`, async () => {
      const r = rng(500 + type);
      const { mem, ref } = await kernelPair("simd", 8 << 20);
      const rows = 6, cols = 1024;
      const wb = weights(type, rows, cols, r);
      const xs = randomF32(r, cols, 2);
      const w = mem.put(wb), x = mem.put(xs);
      const xq = mem.alloc(ref.actBytes(type, cols)), y = mem.alloc(4 * rows);
      ref.quantize(type, x, xq, cols, 0, 1);
      ref.matmul(type, w, xq, y, cols, 0, rows, 1, rows);
      expect(rowBytes(type, cols) * rows).toBe(wb.length);
      const wf = dequantize(type, wb, rows * cols);
      // ggml's vec_dot: sum_j (d_w c_j) (d_x q_j) per block, and for Q4_1 / Q5_1 m_w * s_x in place
      // of m_w * d_x * sum_j q_j (s_x: the block's code sum times d before its f16 rounding).
      const kq = quantizeQ8_1(xs);
      for (let i = 0; i < rows; i++) {
        let s = 0, mag = 0;
        for (let j = 0; j < cols; j++) {
          const xa = kq.qs[j] * kq.d[j >> 5];
          s += wf[i * cols + j] * xa;
          mag += Math.abs(wf[i * cols + j] * xa);
        }
        if (hasMin(type)) {
          for (let b = 0; b < cols / 32; b++) {
            const m = f16At(wb, (i * cols / 32 + b) * BLOCK[type] + 2);
            s += m * (kq.s[b] - kq.d[b] * kq.sums[b]);
            mag += Math.abs(m * kq.s[b]);
          }
        }
        expect(Math.abs(mem.f32(y, rows)[i] - s), `row ${i}`).toBeLessThan(1e-5 * mag + 1e-7);
      }
    });
  }

  it("Q8_1: codes and d as Q8_0's, s = f16(amax/127 * sum of codes), ties to even", () => {
    const xs = new Float32Array(64);
    xs.set([127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5]); // amax 127: scale 1, exact ties
    for (let j = 32; j < 64; j++) xs[j] = Math.sin(j) * 0.37;
    const q = quantizeQ8_1(xs);
    expect(Array.from(q.qs.slice(0, 8))).toEqual([127, 2, -4, 0, 0, 2, 126, -126]);
    expect(q.sums[0]).toBe(127 + 2 - 4 + 2);
    expect(q.s[0]).toBe(f16ToF32(f32ToF16(127)));
    let amax = 0;
    for (let j = 32; j < 64; j++) amax = Math.max(amax, Math.abs(xs[j]));
    expect(q.d[1]).toBe(f16ToF32(f32ToF16(f(amax / 127))));
    expect(q.s[1]).toBe(f16ToF32(f32ToF16(f(f(amax / 127) * q.sums[1]))));
    expect(Array.from(q.qs)).toEqual(Array.from(quantizeQ8_0(xs).qs));
  });

  it("the four types have kernels (models keep them); the WebGPU backend refuses them by name", () => {
    for (const type of TYPES) {
      expect(MATMUL_TYPES).toContain(type);
      expect(() => checkWebGpuTypes([type])).toThrow(WebGpuError);
      expect(() => checkWebGpuTypes([type])).toThrow(new RegExp(`no kernel for ${GGMLType[type]} weights`));
    }
  });
});
