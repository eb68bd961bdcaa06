/**
 * Plain element types: F32, F16, BF16 (block size 1).
 *
 *   F32   [b0 b1 b2 b3]  little-endian IEEE binary32
 *   F16   [b0 b1]        little-endian IEEE binary16
 *   BF16  [b0 b1]        little-endian top half of a binary32
 *
 * Conversions work on bit patterns (see half.ts) and write through a Uint32Array view of the
 * output, so NaN payloads come out exactly as ggml writes them.
 */
import { F16_TO_F32_BITS, f32BitsToBf16, f32BitsToF16 } from "./half.js";

function u32View(a: Float32Array, n: number): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, n);
}

export function dequantizeF32(src: Uint8Array, out: Float32Array, n: number): void {
  new Uint8Array(out.buffer, out.byteOffset, n * 4).set(src.subarray(0, n * 4));
}

export function quantizeF32(src: Float32Array, out: Uint8Array, n: number): void {
  out.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
}

export function dequantizeF16(src: Uint8Array, out: Float32Array, n: number): void {
  const y = u32View(out, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) y[i] = F16_TO_F32_BITS[src[o] | (src[o + 1] << 8)];
}

export function quantizeF16(src: Float32Array, out: Uint8Array, n: number): void {
  const x = u32View(src, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    const h = f32BitsToF16(x[i]);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
  }
}

export function dequantizeBF16(src: Uint8Array, out: Float32Array, n: number): void {
  const y = u32View(out, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) y[i] = ((src[o] | (src[o + 1] << 8)) << 16) >>> 0;
}

export function quantizeBF16(src: Float32Array, out: Uint8Array, n: number): void {
  const x = u32View(src, n);
  for (let i = 0, o = 0; i < n; i++, o += 2) {
    const h = f32BitsToBf16(x[i]);
    out[o] = h & 0xff;
    out[o + 1] = h >>> 8;
  }
}
