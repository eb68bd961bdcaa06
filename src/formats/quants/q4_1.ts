/**
 * Q4_1: 32 values in 20 bytes, 4-bit with an offset.
 *
 *   offset 0      2      4                   20
 *          [ d  ][ m  ][ qs[0] ... qs[15]  ]
 *           f16   f16   value j = low nibble of qs[j], value j + 16 = high nibble
 *
 *   x = d * q + m,  q in 0..15
 *
 * Quantize (ggml quantize_row_q4_1_ref): m = min x, d = (max - min) / 15,
 * q = min(15, trunc((x - m) / d + 0.5)) computed with id = 1/d in float32.
 */
import { f, readF16, truncToInt8, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 32 values in 20 bytes: the layout above, as ggml-types.ts records it. */
export const QK4_1 = GGML_TYPES[GGMLType.Q4_1].blockSize;
const BYTES = GGML_TYPES[GGMLType.Q4_1].bytesPerBlock;
const FLT_MAX = 3.4028234663852886e38;

export function dequantizeQ4_1(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const m = readF16(src, o + 2);
    const y = b * QK4_1;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j];
      out[y + j] = f((q & 0x0f) * d) + m;
      out[y + j + 16] = f((q >>> 4) * d) + m;
    }
  }
}

export function quantizeQ4_1(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK4_1;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK4_1; j++) {
      const v = src[x0 + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f(f(max - min) / 15);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * BYTES;
    writeU16(out, o, f32ToF16(d));
    writeU16(out, o + 2, f32ToF16(min));
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, truncToInt8(f(f(f(src[x0 + j] - min) * id) + 0.5)));
      const hi = Math.min(15, truncToInt8(f(f(f(src[x0 + j + 16] - min) * id) + 0.5)));
      out[o + 4 + j] = (lo & 0xff) | ((hi << 4) & 0xff);
    }
  }
}
