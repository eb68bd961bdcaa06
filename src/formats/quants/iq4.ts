/**
 * IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear table of 16 levels.
 *
 *   IQ4_NL, 32 values in 18 bytes:
 *     offset 0      2                   18
 *            [ d  ][ qs[16]            ]   value j = KVALUES[qs[j] & 15], value j + 16 = KVALUES[qs[j] >> 4]
 *     x = d * KVALUES[q]
 *
 *   IQ4_XS, 256 values in 136 bytes; 8 sub-blocks of 32 with 6-bit scales:
 *     offset 0      2            4              8                136
 *            [ d  ][ scales_h ][ scales_l[4] ][ qs[128]          ]
 *             f16   u16: 2 high bits per sub-block; scales_l: 4 low bits per sub-block
 *     sub-block s uses qs[16s .. 16s+15] as IQ4_NL does;  ls = low | high << 4
 *     x = d * (ls - 32) * KVALUES[q]
 *
 * Dequantize only (ggml dequantize_row_iq4_nl / _iq4_xs).
 */
import { f, readF16 } from "./common.js";
import { QK_K } from "../ggml-types.js";

/** ggml's kvalues_iq4nl. */
export const KVALUES_IQ4NL = new Int8Array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

export function dequantizeIQ4_NL(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 18;
    const d = readF16(src, o);
    const y = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[y + j] = d * KVALUES_IQ4NL[q & 0xf];
      out[y + j + 16] = d * KVALUES_IQ4NL[q >>> 4];
    }
  }
}

export function dequantizeIQ4_XS(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 136;
    const d = readF16(src, o);
    const scalesH = src[o + 2] | (src[o + 3] << 8);
    for (let s = 0; s < 8; s++) {
      const ls = ((src[o + 4 + (s >>> 1)] >>> (4 * (s & 1))) & 0xf) | (((scalesH >>> (2 * s)) & 3) << 4);
      const dl = f(d * (ls - 32));
      const q = o + 8 + 16 * s;
      const y = b * QK_K + 32 * s;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * KVALUES_IQ4NL[src[q + j] & 0xf];
        out[y + j + 16] = dl * KVALUES_IQ4NL[src[q + j] >>> 4];
      }
    }
  }
}
