/**
 * Q4_K, Q5_K and Q6_K matmuls (assembly/k_quants.ts; Q4_K and Q6_K matrices of a multiple of 4
 * rows in groups of four rows, assembly/q4_k_r4.ts, q6_k_r4.ts): one token at a time (decoding) and four
 * tokens per tile (prompt processing) give the same bits, and those bits are the kernels' float
 * order written out here (kOrder): exact integer super-block sums, then per super-block, in f32,
 *   Q4_K / Q5_K:  sum += (d_x * d) * f32(S) - (d_x * dmin) * f32(M)
 *   Q6_K:         sum += (d_x * d) * f32(S - 32 B)
 * (S = sum_j sc_j (q_j . x_j), M = sum_j m_j bsum_j, B = sum_s sc_s bsum_s). Odd row counts cut
 * into slices, 1..9 tokens (tiles and their tails), a token whose first super-block is all
 * zeros, every code and scale bit pattern; both builds.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { f16ToF32 } from "../../src/formats/quants/index.js";
import { KernelMemory, Kernels, rowBytes } from "../../src/kernels/index.js";
import { codeQ6K, quantizeQ8_K, scaleMinK4 } from "../../src/kernels/reference/index.js";
import { kernelPair, KERNEL_BUILDS, maxRelDiff, randomF32, randomWeights, rng, withMark } from "./helpers.js";

const TYPES = [GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K] as const;
type KType = (typeof TYPES)[number];
const BLOCK = { [GGMLType.Q4_K]: 144, [GGMLType.Q5_K]: 176, [GGMLType.Q6_K]: 210 } as const;
const f = Math.fround;

/** y (nTok x rows) in the kernels' float order (see above). */
function kOrder(type: KType, w: Uint8Array, x: Float32Array, rows: number, cols: number, nTok: number): Float32Array {
  const bb = BLOCK[type];
  const nb = cols / 256;
  const y = new Float32Array(nTok * rows);
  const h = (o: number) => f16ToF32(w[o] | (w[o + 1] << 8));
  for (let t = 0; t < nTok; t++) {
    const xq = quantizeQ8_K(x.subarray(t * cols, (t + 1) * cols));
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * bb;
        const dx = xq.d[b];
        if (type === GGMLType.Q6_K) {
          let s = 0;
          for (let j = 0; j < 256; j++) s += (w[o + 192 + (j >> 4)] << 24 >> 24) * (codeQ6K(w, o, j) - 32) * xq.qs[b * 256 + j];
          sum = f(sum + f(f(dx * h(o + 208)) * f(s)));
        } else {
          const qs = o + (type === GGMLType.Q5_K ? 48 : 16);
          let s = 0, m = 0;
          for (let j = 0; j < 8; j++) {
            const [sc, mn] = scaleMinK4(w, o + 4, j);
            for (let l = 0; l < 32; l++) {
              let q = j & 1 ? w[qs + 32 * (j >> 1) + l] >> 4 : w[qs + 32 * (j >> 1) + l] & 15;
              if (type === GGMLType.Q5_K) q |= ((w[o + 16 + l] >> j) & 1) << 4;
              s += sc * q * xq.qs[b * 256 + 32 * j + l];
            }
            m += mn * (xq.sums[b * 16 + 2 * j] + xq.sums[b * 16 + 2 * j + 1]);
          }
          sum = f(sum + f(f(f(dx * h(o)) * f(s)) - f(f(dx * h(o + 2)) * f(m))));
        }
      }
      y[t * rows + r] = sum;
    }
  }
  return y;
}

/** Random rows, with the first super-block all ones bits and the second all zeros (scales kept), the third with a subnormal scale. */
function weights(type: KType, rows: number, cols: number, r: () => number): Uint8Array {
  const w = randomWeights(type, rows, cols, r);
  const bb = BLOCK[type];
  const scaleAt = type === GGMLType.Q6_K ? [208] : [0, 2];
  for (const [k, fill] of [[0, 0xff], [1, 0x00]] as const) {
    if ((k + 1) * bb > w.length) break;
    const saved = scaleAt.map((a) => [w[k * bb + a], w[k * bb + a + 1]] as const);
    w.fill(fill, k * bb, (k + 1) * bb);
    scaleAt.forEach((a, i) => ((w[k * bb + a] = saved[i][0]), (w[k * bb + a + 1] = saved[i][1])));
  }
  // super-block 2: a subnormal d (and a zero dmin), converted exactly by every path
  if (3 * bb <= w.length) {
    w[2 * bb + scaleAt[0]] = 0x37;
    w[2 * bb + scaleAt[0] + 1] = 0x82; // -0x237 * 2^-24
    if (scaleAt.length > 1) w[2 * bb + scaleAt[1]] = w[2 * bb + scaleAt[1] + 1] = 0;
  }
  return w;
}

/**
 * Every scale a subnormal half, zero or the smallest normal ones, as real models have them (Q6_K's
 * d is about amax / 4096: subnormal for typical weights): the kernels convert them without a float
 * op on a subnormal single (common.ts, halfToFloat), still exactly.
 */
function smallScaleWeights(type: KType, rows: number, cols: number, r: () => number): Uint8Array {
  const w = randomWeights(type, rows, cols, r);
  const bb = BLOCK[type];
  const scaleAt = type === GGMLType.Q6_K ? [208] : [0, 2];
  const halves = [0x0001, 0x03ff, 0x0237, 0x0400, 0x0000, 0x0100];
  for (let k = 0; k * bb < w.length; k++) {
    for (const a of scaleAt) {
      const h = halves[Math.floor(r() * halves.length)] | (type === GGMLType.Q6_K && r() < 0.5 ? 0x8000 : 0);
      w[k * bb + a] = h & 255;
      w[k * bb + a + 1] = h >> 8;
    }
  }
  return w;
}

describe.each(KERNEL_BUILDS)("Q4_K / Q5_K / Q6_K tiles (%s build)", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    ({ mem, wasm, ref } = await kernelPair(build, 64 << 20));
  });

  for (const type of TYPES) {
    it(`${GGMLType[type]}: 1..9 tokens at once, in row slices, give the kernels' float order bit for bit, near the reference`, () => {
      const r = rng(type * 31 + 7);
      // 8 and 12 rows: Q4_K and Q6_K in groups of four rows (assembly/q4_k_r4.ts, q6_k_r4.ts), cut inside groups too
      for (const [rows, cols] of [[5, 256], [7, 768], [3, 4352], [8, 512], [12, 4352], [8, 8704]] as const) {
        for (const nTok of [1, 2, 3, 4, 5, 8, 9]) {
          withMark(mem, () => {
            const wb = weights(type, rows, cols, r);
            expect(wb.length).toBe(rows * rowBytes(type, cols));
            const w = mem.put(wb);
            wasm.layMatrix(type, w, rows, cols); // the loader's layout, read by both backends
            const xs = randomF32(r, nTok * cols, 3);
            if (nTok > 1) xs.fill(0, cols, cols + 256); // a super-block with d = 0
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xq = mem.alloc(ab * nTok);
            wasm.quantize(type, x, xq, cols, 0, nTok);
            const want = kOrder(type, wb, xs, rows, cols, nTok);
            const wantBits = Array.from(new Uint32Array(want.buffer));
            for (const cuts of [[0, rows], [0, 1, rows], [0, rows - 2, rows], ...(rows > 6 ? [[0, 3, 6, rows]] : [])]) {
              const yW = mem.alloc(4 * rows * nTok);
              for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(type, w, xq, yW, cols, cuts[i], cuts[i + 1], nTok, rows);
              const got = Array.from(new Uint32Array(mem.f32(yW, rows * nTok).slice().buffer));
              expect(got, `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(wantBits);
            }
            const xqR = mem.alloc(ab * nTok);
            ref.quantize(type, x, xqR, cols, 0, nTok);
            const yR = mem.alloc(4 * rows * nTok);
            ref.matmul(type, w, xqR, yR, cols, 0, rows, nTok, rows);
            expect(maxRelDiff(want, mem.f32(yR, rows * nTok))).toBeLessThan(3e-6);
          });
        }
      }
    });
  }

  for (const type of TYPES) {
    it(`${GGMLType[type]}: subnormal and zero scales everywhere, bit for bit in the kernels' order`, () => {
      const r = rng(type * 17 + 3);
      for (const [rows, cols] of [[5, 768], [4, 512]] as const) {
        for (const nTok of [1, 4, 5]) {
          withMark(mem, () => {
            const wb = smallScaleWeights(type, rows, cols, r);
            const w = mem.put(wb);
            wasm.layMatrix(type, w, rows, cols);
            const xs = randomF32(r, nTok * cols, 3);
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xq = mem.alloc(ab * nTok);
            wasm.quantize(type, x, xq, cols, 0, nTok);
            const want = kOrder(type, wb, xs, rows, cols, nTok);
            const yW = mem.alloc(4 * rows * nTok);
            wasm.matmul(type, w, xq, yW, cols, 0, rows, nTok, rows);
            expect(Array.from(new Uint32Array(mem.f32(yW, rows * nTok).slice().buffer))).toEqual(Array.from(new Uint32Array(want.buffer)));
          });
        }
      }
    });
  }
});
