/**
 * Q4_0: 32 values in 18 bytes, symmetric 4-bit.
 *
 *   offset 0      2                   18
 *          [ d  ][ qs[0] ... qs[15]  ]
 *           f16   value j      = low  nibble of qs[j]   (j = 0..15)
 *                 value j + 16 = high nibble of qs[j]
 *
 *   x = d * (q - 8),  q in 0..15
 *
 * Quantize (ggml quantize_row_q4_0_ref): m = the value of largest |x| (first one on ties),
 * d = m / -8, q = min(15, trunc(x / d + 8.5)) computed with id = 1/d in float32.
 */
import { f, readF16, truncToInt8, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 32 values in 18 bytes: the layout above, as ggml-types.ts records it. */
export const QK4_0 = GGML_TYPES[GGMLType.Q4_0].blockSize;
const BYTES = GGML_TYPES[GGMLType.Q4_0].bytesPerBlock;

export function dequantizeQ4_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const y = b * QK4_0;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[y + j] = ((q & 0x0f) - 8) * d;
      out[y + j + 16] = ((q >>> 4) - 8) * d;
    }
  }
}

export function quantizeQ4_0(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = src[x0 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * BYTES;
    writeU16(out, o, f32ToF16(d));
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, truncToInt8(f(f(src[x0 + j] * id) + 8.5)));
      const hi = Math.min(15, truncToInt8(f(f(src[x0 + j + 16] * id) + 8.5)));
      out[o + 2 + j] = (lo & 0xff) | ((hi << 4) & 0xff);
    }
  }
}
