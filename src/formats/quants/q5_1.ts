/**
 * Q5_1: 32 values in 24 bytes, 5-bit with an offset.
 *
 *   offset 0      2      4            8                   24
 *          [ d  ][ m  ][ qh (u32) ][ qs[0] ... qs[15]  ]
 *           f16   f16   bit j of qh = 5th bit of value j
 *                       value j = low nibble of qs[j], value j + 16 = high nibble
 *
 *   x = d * q + m,  q in 0..31
 *
 * Quantize (ggml quantize_row_q5_1_ref): m = min x, d = (max - min) / 31,
 * q = trunc((x - m) / d + 0.5) (no clamp, as in ggml).
 */
import { f, readF16, readU32, truncToUint8, writeU16, writeU32 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 32 values in 24 bytes: the layout above, as ggml-types.ts records it. */
export const QK5_1 = GGML_TYPES[GGMLType.Q5_1].blockSize;
const BYTES = GGML_TYPES[GGMLType.Q5_1].bytesPerBlock;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeQ5_1(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const m = readF16(src, o + 2);
    const qh = readU32(src, o + 4);
    const y = b * QK5_1;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 8 + j];
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      out[y + j] = f(((q & 0x0f) | h0) * d) + m;
      out[y + j + 16] = f(((q >>> 4) | h1) * d) + m;
    }
  }
}

export function quantizeQ5_1(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK5_1;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK5_1; j++) {
      const v = src[x0 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f(f(max - min) / 31);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * BYTES;
    writeU16(out, o, f32ToF16(d));
    writeU16(out, o + 2, f32ToF16(min));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = truncToUint8(f(f(f(src[x0 + j] - min) * id) + 0.5));
      const hi = truncToUint8(f(f(f(src[x0 + j + 16] - min) * id) + 0.5));
      out[o + 8 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
      qh |= ((lo & 0x10) >>> 4) << j;
      qh |= ((hi & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 4, qh >>> 0);
  }
}
