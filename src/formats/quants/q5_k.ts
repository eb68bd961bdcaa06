/**
 * Q5_K: 256 values in 176 bytes; 8 sub-blocks of 32, each with a 6-bit scale and min.
 *
 *   offset 0      2       4              16          48                176
 *          [ d  ][ dmin ][ scales[12]   ][ qh[32]   ][ qs[128]         ]
 *           f16   f16     as Q4_K         5th bits    low 4 bits, as Q4_K
 *
 *   value 64c + l:      q = (qs[32c + l] & 15) + 16 * bit 2c   of qh[l]   (sub-block 2c)
 *   value 64c + 32 + l: q = (qs[32c + l] >> 4) + 16 * bit 2c+1 of qh[l]   (sub-block 2c+1)
 *
 *   x = d * sc_j * q - dmin * m_j,  q in 0..31
 *
 * Quantize (ggml quantize_row_q5_K_ref): as Q4_K with nmax 31 and 16 trial ranges.
 */
import { F_0_1, f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { makeQkx2Quants, minK4, packScaleMinK4, scaleK4 } from "./k-common.js";
import { QK_K } from "../ggml-types.js";

const BYTES = 176;

export function dequantizeQ5_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const dmin = readF16(src, o + 2);
    const qh = o + 16;
    let y = b * QK_K;
    for (let c = 0; c < 4; c++) {
      const d1 = f(d * scaleK4(src, o + 4, 2 * c));
      const m1 = f(dmin * minK4(src, o + 4, 2 * c));
      const d2 = f(d * scaleK4(src, o + 4, 2 * c + 1));
      const m2 = f(dmin * minK4(src, o + 4, 2 * c + 1));
      const s1 = 2 * c; // qh bit of sub-block 2c; bit 2c+1 is sub-block 2c+1's
      const q = o + 48 + 32 * c;
      for (let l = 0; l < 32; l++) {
        out[y + l] = f(d1 * ((src[q + l] & 0xf) | (((src[qh + l] >>> s1) & 1) << 4))) - m1;
      }
      for (let l = 0; l < 32; l++) {
        out[y + 32 + l] = f(d2 * ((src[q + l] >>> 4) | (((src[qh + l] >>> (s1 + 1)) & 1) << 4))) - m2;
      }
      y += 64;
    }
  }
}

const L = new Uint8Array(QK_K);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const mins = new Float32Array(QK_K / 32);
const scales = new Float32Array(QK_K / 32);

export function quantizeQ5_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < QK_K / 32; j++) {
      const xo = x0 + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(src[xo + l] * src[xo + l]));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(src[xo + l]);
      scales[j] = makeQkx2Quants(32, 31, src, xo, weights, L, 32 * j, mins, j, Laux, -0.5, F_0_1, 15, false);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    for (let j = 0; j < QK_K / 32; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff);
      const lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
      packScaleMinK4(out, o + 4, j, ls, lm);
    }
    writeU16(out, o, f32ToF16(f(maxScale / 63)));
    writeU16(out, o + 2, f32ToF16(f(maxMin / 63)));
    const dAll = readF16(out, o);
    const dminAll = readF16(out, o + 2);
    for (let j = 0; j < QK_K / 32; j++) {
      const d = f(dAll * scaleK4(out, o + 4, j));
      if (d === 0) continue;
      const dm = f(dminAll * minK4(out, o + 4, j));
      for (let i = 0; i < 32; i++) {
        const l = nearestInt(f(f(src[x0 + 32 * j + i] + dm) / d));
        L[32 * j + i] = Math.max(0, Math.min(31, l));
      }
    }
    const qh = o + 16;
    out.fill(0, qh, qh + 32);
    for (let c = 0; c < 4; c++) {
      const q = o + 48 + 32 * c;
      const m1 = 1 << (2 * c);
      const m2 = 2 << (2 * c);
      for (let l = 0; l < 32; l++) {
        let l1 = L[64 * c + l];
        let l2 = L[64 * c + 32 + l];
        if (l1 > 15) {
          l1 -= 16;
          out[qh + l] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          out[qh + l] |= m2;
        }
        out[q + l] = l1 | (l2 << 4);
      }
    }
  }
}
