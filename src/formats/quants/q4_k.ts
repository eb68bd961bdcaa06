/**
 * Q4_K: 256 values in 144 bytes; 8 sub-blocks of 32, each with a 6-bit scale and min.
 *
 *   offset 0      2       4               16                  144
 *          [ d  ][ dmin ][ scales[12]    ][ qs[128]          ]
 *           f16   f16     6-bit (sc, m) pairs, see k-common.ts
 *
 *   qs: 64 values per 32 bytes; value 64c + l      = low  nibble of qs[32c + l]  (sub-block 2c)
 *                               value 64c + 32 + l = high nibble of qs[32c + l]  (sub-block 2c+1)
 *
 *   x = d * sc_j * q - dmin * m_j,  q in 0..15
 *
 * Quantize (ggml quantize_row_q4_K_ref): per sub-block, weights av(|x|) + |x| and an
 * asymmetric search (makeQkx2Quants, nmax 15, 21 trial ranges); scales and mins are then
 * quantized to 6 bits against their maxima, and every value is re-rounded with the final
 * (f16 d, 6-bit sc) scale.
 */
import { f, readF16 } from "./common.js";
import { minK4, quantizeScalesMinsK, scaleK4 } from "./k-common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 144: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q4_K].bytesPerBlock;

export function dequantizeQ4_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const dmin = readF16(src, o + 2);
    let y = b * QK_K;
    for (let c = 0; c < 4; c++) {
      const d1 = f(d * scaleK4(src, o + 4, 2 * c));
      const m1 = f(dmin * minK4(src, o + 4, 2 * c));
      const d2 = f(d * scaleK4(src, o + 4, 2 * c + 1));
      const m2 = f(dmin * minK4(src, o + 4, 2 * c + 1));
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) out[y + l] = f(d1 * (src[q + l] & 0xf)) - m1;
      for (let l = 0; l < 32; l++) out[y + 32 + l] = f(d2 * (src[q + l] >>> 4)) - m2;
      y += 64;
    }
  }
}

const L = new Uint8Array(QK_K);

export function quantizeQ4_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    quantizeScalesMinsK(src, x0, out, o, L, 15, -1, 20);
    for (let c = 0; c < 4; c++) {
      const q = o + 16 + 32 * c;
      for (let l = 0; l < 32; l++) out[q + l] = L[64 * c + l] | (L[64 * c + 32 + l] << 4);
    }
  }
}
