/**
 * The arithmetic ggml's quantizers are built from, reproduced bit for bit.
 *
 * ggml computes in C `float`: every +, -, *, / and sqrtf rounds to float32. A JS number is a
 * double, so each float operation here is written `f(a op b)` with f = Math.fround. For a
 * single operation on float32 operands that is exactly the float32 result (a double has more
 * than 2*24+2 mantissa bits), so chains of f(...) replay ggml's rounding step by step.
 */
import { F16_TO_F32, f32Bits, f32FromBits } from "./half.js";

export const f = Math.fround;

/** ggml's GROUP_MAX_EPS: a group whose largest |x| is below this quantizes to all zeros. */
export const GROUP_MAX_EPS = f(1e-15);

/** The float32 nearest to 0.1, as C's `0.1f`. */
export const F_0_1 = f(0.1);

/**
 * ggml's nearest_int: adds 1.5 * 2^23 in float32 and reads the low mantissa bits, i.e. rounds
 * to nearest with ties to even for |x| < 2^22. Outside that range (reached only by degenerate
 * blocks) the same bit trick is replayed so NaN -> 0 and infinity -> -2^22 as in ggml.
 */
export function nearestInt(x: number): number {
  // In range the float32 sum has a unit last place, so it is x rounded to an integer (ties
  // to even), and subtracting the constant back is exact.
  if (x >= -4194304 && x < 4194303.5) return (f(x + 12582912) - 12582912) | 0;
  return (f32Bits(x + 12582912) & 0x007fffff) - 0x00400000;
}

/** C's roundf: to nearest, ties away from zero (exact for float32 inputs). */
export function roundf(x: number): number {
  return x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5);
}

/**
 * C's float -> int32 conversion as x86 performs it (cvttss2si): truncate toward zero, and
 * 0x80000000 for NaN or out-of-range values.
 */
export function truncToInt32(x: number): number {
  return x > -2147483649 && x < 2147483648 ? Math.trunc(x) | 0 : -2147483648;
}

/** C's `(int8_t)x` for a float x: the low byte of the int32 conversion, sign-extended. */
export function truncToInt8(x: number): number {
  return (truncToInt32(x) << 24) >> 24;
}

/** C's `(uint8_t)x` for a float x. */
export function truncToUint8(x: number): number {
  return truncToInt32(x) & 0xff;
}

/** The F16 at src[o..o+1] (little-endian), as a float32 value. */
export function readF16(src: Uint8Array, o: number): number {
  return F16_TO_F32[src[o] | (src[o + 1] << 8)];
}

/** Store F16 bits little-endian at out[o..o+1]. */
export function writeU16(out: Uint8Array, o: number, bits: number): void {
  out[o] = bits & 0xff;
  out[o + 1] = (bits >>> 8) & 0xff;
}

/** The little-endian uint32 at src[o..o+3]. */
export function readU32(src: Uint8Array, o: number): number {
  return (src[o] | (src[o + 1] << 8) | (src[o + 2] << 16) | (src[o + 3] << 24)) >>> 0;
}

/** Store a uint32 little-endian at out[o..o+3]. */
export function writeU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v & 0xff;
  out[o + 1] = (v >>> 8) & 0xff;
  out[o + 2] = (v >>> 16) & 0xff;
  out[o + 3] = (v >>> 24) & 0xff;
}

/** A dequantizer: `nBlocks` blocks from `src` to `nBlocks * blockSize` floats in `out`. */
export type BlockDequantizer = (src: Uint8Array, out: Float32Array, nBlocks: number) => void;

/** A quantizer: `nBlocks * blockSize` floats from `src` to `nBlocks` blocks in `out`. */
export type BlockQuantizer = (src: Float32Array, out: Uint8Array, nBlocks: number) => void;

/** The little-endian float32 at src[o..o+3]. */
export function f32FromU8(src: Uint8Array, o: number): number {
  return f32FromBits(readU32(src, o));
}

/** Store a float32 little-endian at out[o..o+3]. */
export function writeF32(out: Uint8Array, o: number, x: number): void {
  writeU32(out, o, f32Bits(x));
}
