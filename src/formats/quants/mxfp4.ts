/**
 * MXFP4 (OCP microscaling FP4): 32 values in 17 bytes.
 *
 *   offset 0     1                   17
 *          [ e ][ qs[16]            ]   value j = E2M1[qs[j] & 15], value j + 16 = E2M1[qs[j] >> 4]
 *           E8M0 exponent
 *
 *   x = 2^(e - 128) * KVALUES[q]   (KVALUES are the E2M1 values doubled, hence the -128)
 *
 * Quantize (ggml quantize_row_mxfp4_ref): e = floor(log2(max |x|)) - 2 + 127, then each
 * value to the code whose KVALUES[q] * 2^(e-128) is nearest (first code on ties). log2 is
 * Math.log2 rounded to float32, which agrees with C's log2f wherever floor() can tell.
 */
import { f, truncToUint8 } from "./common.js";
import { f32FromBits } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 17 bytes a block, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.MXFP4].bytesPerBlock;

/** ggml's kvalues_mxfp4: E2M1 code -> 2 * its value. */
export const KVALUES_MXFP4 = new Int8Array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** ggml_e8m0_to_fp32_half: 2^(e - 128), subnormal for e < 2. */
function e8m0Half(e: number): number {
  return f32FromBits(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

export function dequantizeMXFP4(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = e8m0Half(src[o]);
    const y = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 1 + j];
      out[y + j] = KVALUES_MXFP4[q & 0xf] * d;
      out[y + j + 16] = KVALUES_MXFP4[q >>> 4] * d;
    }
  }
}

/** ggml's best_index_mxfp4: the code whose value times d is nearest x. */
function bestIndex(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(f(f(KVALUES_MXFP4[0] * d) - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(f(f(KVALUES_MXFP4[i] * d) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

export function quantizeMXFP4(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const x0 = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(src[x0 + j]);
      if (amax < a) amax = a;
    }
    const e = amax > 0 ? truncToUint8(Math.floor(f(Math.log2(amax))) - 2 + 127) : 0;
    const d = e8m0Half(e);
    out[o] = e;
    for (let j = 0; j < 16; j++) {
      out[o + 1 + j] = bestIndex(src[x0 + j], d) | (bestIndex(src[x0 + j + 16], d) << 4);
    }
  }
}
