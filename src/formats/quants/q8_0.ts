/**
 * Q8_0: 32 values in 34 bytes, symmetric 8-bit.
 *
 *   offset 0      2                         34
 *          [ d  ][ qs[0] ... qs[31] (int8) ]
 *
 *   x = d * q,  q in -127..127
 *
 * Quantize (ggml quantize_row_q8_0_ref): d = max|x| / 127, q = roundf(x * (1/d))
 * (round half away from zero).
 */
import { f, readF16, roundf, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType } from "../ggml-types.js";

/** 32 values in 34 bytes: the layout above, as ggml-types.ts records it. */
export const QK8_0 = GGML_TYPES[GGMLType.Q8_0].blockSize;
const BYTES = GGML_TYPES[GGMLType.Q8_0].bytesPerBlock;

export function dequantizeQ8_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o);
    const y = b * QK8_0;
    for (let j = 0; j < QK8_0; j++) out[y + j] = ((src[o + 2 + j] << 24) >> 24) * d;
  }
}

export function quantizeQ8_0(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(src[x0 + j]);
      if (amax < a) amax = a;
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * BYTES;
    writeU16(out, o, f32ToF16(d));
    for (let j = 0; j < QK8_0; j++) out[o + 2 + j] = roundf(f(src[x0 + j] * id)) & 0xff;
  }
}
