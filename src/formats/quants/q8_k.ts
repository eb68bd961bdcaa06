/**
 * Q8_K: 256 values in 292 bytes; ggml's format for activations in k-quant dot products.
 *
 *   offset 0            4                      260                  292
 *          [ d (f32)  ][ qs[256] (int8)      ][ bsums[16] (int16)  ]
 *                                              sum of each 16 qs
 *
 *   x = d * q,  q in -128..127
 *
 * Quantize (ggml quantize_row_q8_K_ref): m = the value of largest |x|, iscale = -127 / m,
 * q = min(127, nearest_int(iscale * x)), d = 1 / iscale.
 */
import { f, f32FromU8, nearestInt, writeF32 } from "./common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 292: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q8_K].bytesPerBlock;

export function dequantizeQ8_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = f32FromU8(src, o);
    const y = b * QK_K;
    for (let j = 0; j < QK_K; j++) out[y + j] = d * ((src[o + 4 + j] << 24) >> 24);
  }
}

export function quantizeQ8_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    let max = 0;
    let amax = 0;
    for (let j = 0; j < QK_K; j++) {
      const ax = Math.abs(src[x0 + j]);
      if (ax > amax) {
        amax = ax;
        max = src[x0 + j];
      }
    }
    if (amax === 0) {
      // ggml leaves bsums untouched here; zero them so the output never depends on old bytes
      out.fill(0, o, o + BYTES);
      continue;
    }
    const iscale = f(-127 / max);
    for (let j = 0; j < QK_K; j++) out[o + 4 + j] = Math.min(127, nearestInt(f(iscale * src[x0 + j])));
    for (let j = 0; j < QK_K / 16; j++) {
      let sum = 0;
      for (let i = 0; i < 16; i++) sum += (out[o + 4 + 16 * j + i] << 24) >> 24;
      out[o + 260 + 2 * j] = sum & 0xff;
      out[o + 261 + 2 * j] = (sum >>> 8) & 0xff;
    }
    writeF32(out, o, f(1 / iscale));
  }
}
