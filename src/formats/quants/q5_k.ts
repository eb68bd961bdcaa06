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
import { f, readF16 } from "./common.js";
import { minK4, quantizeScalesMinsK, scaleK4 } from "./k-common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 176: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q5_K].bytesPerBlock;

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

export function quantizeQ5_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    quantizeScalesMinsK(src, x0, out, o, L, 31, -0.5, 15);
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
