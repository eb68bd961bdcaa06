/**
 * 16-bit floats: IEEE binary16 (F16) and brain float (BF16), converted exactly as ggml does.
 *
 *   F16   s eeeee mmmmmmmmmm          value = (-1)^s * 2^(e-15) * 1.m   (e = 0: 2^-14 * 0.m)
 *   BF16  s eeeeeeee mmmmmmm          the top half of a float32
 *   F32   s eeeeeeee mmmmmmmmmmmmmmmmmmmmmmm
 *
 * float32 -> F16 rounds to nearest, ties to even, with F16 subnormals; values from 65520 up
 * become infinity and every NaN becomes sign|0x7E00 (ggml_compute_fp32_to_fp16).
 * float32 -> BF16 rounds to nearest even and quiets NaNs by setting bit 6
 * (ggml_compute_fp32_to_bf16). F16 -> float32 is exact; NaNs come back quiet.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The bit pattern of `x` rounded to float32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

/** float32 bit pattern -> F16 bit pattern. */
export function f32BitsToF16(w: number): number {
  const sign = (w >>> 16) & 0x8000;
  const abs = w & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds past 65504: infinity
  if (abs >= 0x38800000) {
    // Normal F16: rebias the exponent (127 -> 15) and round 23 mantissa bits to 10; a carry out
    // of the mantissa correctly bumps the exponent.
    const m = abs - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  // F16 subnormal (or zero): the value in units of 2^-24, rounded to nearest even.
  const e = abs >>> 23;
  if (e < 102) return sign; // below 2^-25: rounds to zero
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e; // 14..24
  let q = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) !== 0)) q++;
  return sign | q;
}

/** F16 bit pattern -> float32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13) | (m !== 0 ? 0x400000 : 0)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  return (sign | f32Bits(m * 2 ** -24)) >>> 0; // subnormal: exact in float32
}

/**
 * F16 -> float32 for all 65536 bit patterns, as bits and as values (one buffer, two views).
 * Dequantizers read scales through it; F16 tensors copy the bits so NaN payloads survive.
 */
export const F16_TO_F32_BITS = new Uint32Array(65536);
export const F16_TO_F32 = new Float32Array(F16_TO_F32_BITS.buffer);
for (let h = 0; h < 65536; h++) F16_TO_F32_BITS[h] = f16BitsToF32Bits(h);

/** float32 (x rounded to float32 first) -> F16 bits, as ggml's GGML_FP32_TO_FP16. */
export function f32ToF16(x: number): number {
  return f32BitsToF16(f32Bits(x));
}

/** F16 bits -> float32 value. */
export function f16ToF32(bits: number): number {
  return F16_TO_F32[bits & 0xffff];
}

/** float32 bit pattern -> BF16 bit pattern. */
export function f32BitsToBf16(w: number): number {
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 64) & 0xffff; // NaN: force quiet
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 (x rounded to float32 first) -> BF16 bits, as ggml's GGML_FP32_TO_BF16. */
export function f32ToBf16(x: number): number {
  return f32BitsToBf16(f32Bits(x));
}

/** BF16 bits -> float32 value. */
export function bf16ToF32(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}
