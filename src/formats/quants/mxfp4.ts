/**
 * MXFP4 (OCP microscaling FP4): 32 values in 17 bytes.
 *
 *   offset 0     1                   17
 *          [ e ][ qs[16]            ]   value j = E2M1[qs[j] & 15], value j + 16 = E2M1[qs[j] >> 4]
 *           E8M0 exponent
 *
 *   x = 2^(e - 128) * KVALUES[q]   (KVALUES are the E2M1 values doubled, hence the -128)
 *
 * Dequantize only (ggml dequantize_row_mxfp4).
 */
import { f32FromBits } from "./half.js";

/** ggml's kvalues_mxfp4: E2M1 code -> 2 * its value. */
export const KVALUES_MXFP4 = new Int8Array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** ggml_e8m0_to_fp32_half: 2^(e - 128), subnormal for e < 2. */
function e8m0Half(e: number): number {
  return f32FromBits(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

export function dequantizeMXFP4(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 17;
    const d = e8m0Half(src[o]);
    const y = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 1 + j];
      out[y + j] = KVALUES_MXFP4[q & 0xf] * d;
      out[y + j + 16] = KVALUES_MXFP4[q >>> 4] * d;
    }
  }
}
