/**
 * Q5_0: 32 values in 22 bytes, symmetric 5-bit.
 *
 *   offset 0      2            6                   22
 *          [ d  ][ qh (u32) ][ qs[0] ... qs[15]  ]
 *           f16   bit j of qh = 5th bit of value j
 *                 value j = low nibble of qs[j], value j + 16 = high nibble
 *
 *   x = d * (q - 16),  q in 0..31
 *
 * Quantize (ggml quantize_row_q5_0_ref): m = the value of largest |x|, d = m / -16,
 * q = min(31, trunc(x / d + 16.5)).
 */
import { f, readF16, readU32, truncToInt8, writeU16, writeU32 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 32 values in 22 bytes: the layout above, as ggml-types.ts records it. */
export const QK5_0 = GGML_TYPES[GGMLType.Q5_0].blockSize;
const BYTES = GGML_TYPES[GGMLType.Q5_0].bytesPerBlock;

export function dequantizeQ5_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const qh = readU32(src, o + 2);
    const y = b * QK5_0;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[y + j] = (((q & 0x0f) | h0) - 16) * d;
      out[y + j + 16] = (((q >>> 4) | h1) - 16) * d;
    }
  }
}

export function quantizeQ5_0(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK5_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5_0; j++) {
      const v = src[x0 + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -16);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * BYTES;
    writeU16(out, o, f32ToF16(d));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(31, truncToInt8(f(f(src[x0 + j] * id) + 16.5))) & 0xff;
      const hi = Math.min(31, truncToInt8(f(f(src[x0 + j + 16] * id) + 16.5))) & 0xff;
      out[o + 6 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
      qh |= ((lo & 0x10) >>> 4) << j;
      qh |= ((hi & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 2, qh >>> 0);
  }
}
