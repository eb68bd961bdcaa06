/**
 * Q2_K: 256 values in 84 bytes; 16 sub-blocks of 16, each with a 4-bit scale and min.
 *
 *   offset 0              16             80     82      84
 *          [ scales[16]  ][ qs[64]      ][ d  ][ dmin ]
 *            sc | m << 4                  f16   f16
 *
 *   qs: 128 values per 32 bytes; value 128h + 32s + l = bits 2s..2s+1 of qs[32h + l]
 *       (h = 0..1, s = 0..3, l = 0..31); its sub-block is 8h + 2s + (l >= 16)
 *
 *   x = d * sc_j * q - dmin * m_j,  q in 0..3
 *
 * Quantize (ggml quantize_row_q2_K_ref): per sub-block, weights |x| and an asymmetric search
 * minimising weighted |error| (makeQkx2Quants, nmax 3); scales and mins to 4 bits against
 * their maxima; values re-rounded with the final scales.
 */
import { F_0_1, f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { makeQkx2Quants } from "./k-common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 84: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q2_K].bytesPerBlock;

export function dequantizeQ2_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o + 80);
    const dmin = readF16(src, o + 82);
    let y = b * QK_K;
    let is = 0;
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const sc = src[o + is++];
          const dl = f(d * (sc & 0xf));
          const ml = f(dmin * (sc >>> 4));
          for (let l = 0; l < 16; l++) out[y + l] = f(dl * ((src[q + half + l] >>> shift) & 3)) - ml;
          y += 16;
        }
      }
    }
  }
}

const L = new Uint8Array(QK_K);
const Laux = new Uint8Array(16);
const weights = new Float32Array(16);
const mins = new Float32Array(QK_K / 16);
const scales = new Float32Array(QK_K / 16);

export function quantizeQ2_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  const q4scale = 15;
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < QK_K / 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(src[x0 + 16 * j + l]);
      scales[j] = makeQkx2Quants(16, 3, src, x0 + 16 * j, weights, L, 16 * j, mins, j, Laux, -0.5, F_0_1, 15, true);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    if (maxScale > 0) {
      const iscale = f(q4scale / maxScale);
      for (let j = 0; j < QK_K / 16; j++) out[o + j] = nearestInt(f(iscale * scales[j]));
      writeU16(out, o + 80, f32ToF16(f(maxScale / q4scale)));
    } else {
      out.fill(0, o, o + 16);
      writeU16(out, o + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = f(q4scale / maxMin);
      for (let j = 0; j < QK_K / 16; j++) out[o + j] |= nearestInt(f(iscale * mins[j])) << 4;
      writeU16(out, o + 82, f32ToF16(f(maxMin / q4scale)));
    } else {
      writeU16(out, o + 82, 0);
    }
    const dAll = readF16(out, o + 80);
    const dminAll = readF16(out, o + 82);
    for (let j = 0; j < QK_K / 16; j++) {
      const d = f(dAll * (out[o + j] & 0xf));
      if (d === 0) continue;
      const dm = f(dminAll * (out[o + j] >>> 4));
      for (let i = 0; i < 16; i++) {
        const l = nearestInt(f(f(src[x0 + 16 * j + i] + dm) / d));
        L[16 * j + i] = Math.max(0, Math.min(3, l));
      }
    }
    for (let h = 0; h < 2; h++) {
      const q = o + 16 + 32 * h;
      const Lh = 128 * h;
      for (let l = 0; l < 32; l++) {
        out[q + l] = L[Lh + l] | (L[Lh + l + 32] << 2) | (L[Lh + l + 64] << 4) | (L[Lh + l + 96] << 6);
      }
    }
  }
}
