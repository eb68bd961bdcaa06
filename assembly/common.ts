/*
 * Shared helpers for every kernel file: IEEE half <-> single conversion and horizontal sums.
 *
 * Half floats (ggml_fp16_t) are little-endian u16: 1 sign bit, 5 exponent bits (bias 15),
 * 10 mantissa bits. Conversions round to nearest-even, as x86's F16C instructions do, because
 * llama.cpp's CPU build uses them and we want its exact block scales.
 *
 * The kernels never allocate: every pointer comes from the caller, who carves tensors out of
 * the shared memory (src/kernels/wasm/arena.ts).
 */

/** 2^112: rescales a half's exponent field (bias 15) into single precision (bias 127). */
export const HALF_TO_SINGLE: f32 = 5.192296858534828e33;

/**
 * One half to single, exactly. Normal halves are rebiased in the integers, subnormal ones (and
 * zero) are m * 2^-24: no float op sees a subnormal single, which costs x86 a microcode assist
 * (k-quant super-block scales are subnormal halves in real models: Q6_K's d is about amax/4096;
 * a Q6_K matmul with such scales ran at 0.43x speed when this multiplied by 2^112).
 */
// @ts-ignore: decorator
@inline
export function halfToFloat(h: u32): f32 {
  const em = h & 0x7fff;
  let f = em < 0x400 ? <f32>em * <f32>5.9604644775390625e-8 : reinterpret<f32>((em << 13) + 0x38000000);
  // Inf / NaN: exponent 255.
  if (em >= 0x7c00) f = reinterpret<f32>((em << 13) | 0x7f800000);
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/** Single to half, round to nearest-even, overflow to inf, NaN kept NaN. */
export function floatToHalf(f: f32): u32 {
  const w = reinterpret<u32>(f);
  const sign = w & 0x80000000;
  const shl1 = w << 1;
  // Scaling by 2^112 then 2^-110 lets the FPU do the rounding at the half's precision.
  let base: f32 = (abs<f32>(f) * reinterpret<f32>(0x77800000)) * reinterpret<f32>(0x08800000);
  let bias = shl1 & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits = reinterpret<u32>(base);
  const nonsign = ((bits >> 13) & 0x7c00) + (bits & 0x0fff);
  return (sign >> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign);
}

/**
 * Four halves, sign-extended into i32 lanes (load16x4_s / extend_*_i16x8_s), to four singles
 * (finite inputs). Shifted left by 13 the sign lands in bit 31 and exponent+mantissa in bits
 * 27..13, with copies of the sign in 30..28 that HALVES_MASK clears; the multiply by 2^112 then
 * rebiases the exponent (exact, subnormals included) and keeps the sign. Three ops for four.
 */
// @ts-ignore: decorator
@inline
export function halves4(s: v128, magic: v128, mask: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(s, 13), mask), magic);
}

/** The mask halves4 takes (splat it outside loops). */
export const HALVES_MASK: i32 = 0x8fffe000;

/**
 * The f16 scales at p, p+stride, p+2*stride, p+3*stride as f32x4. Each half lands in the top
 * 16 bits of its i32 lane (sign at bit 31); an arithmetic shift by 3 puts exponent and mantissa
 * where a single's go (bits 13..27), the mask drops the sign copies, and 2^112 rebiases.
 */
// @ts-ignore: decorator
@inline
export function scales4(p: usize, stride: usize, magic: v128, mask: v128): v128 {
  let h = v128.load16_lane(p, i32x4.splat(0), 1);
  h = v128.load16_lane(p + stride, h, 3);
  h = v128.load16_lane(p + 2 * stride, h, 5);
  h = v128.load16_lane(p + 3 * stride, h, 7);
  return highHalves4(h, magic, mask);
}

/**
 * scales4's conversion alone, for halves already loaded into the top 16 bits of each i32 lane.
 * A kernel with a fixed block size gathers them with load16_lane's constant offset, which V8
 * folds into the address; `p + stride` costs an add per lane.
 */
// @ts-ignore: decorator
@inline
export function highHalves4(h: v128, magic: v128, mask: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(h, 3), mask), magic);
}

/**
 * highHalves4, exactly and without a float op on a subnormal single (see halfToFloat), for finite
 * halves: normal ones rebiased by +112 in the integers; exponent 0 (subnormal halves, zero)
 * rebiased by +113 reads +-2^-14 (1 + m/1024), and subtracting its own +-2^-14 leaves
 * +-m 2^-24; the sign is or'ed back for -0. Six more ops than highHalves4: for the k-quants'
 * per-super-block scales, where subnormal halves are the rule, not for per-block ones.
 */
// @ts-ignore: decorator
@inline
export function highHalvesExact4(h: v128): v128 {
  const b = v128.and(i32x4.shr_s(h, 3), i32x4.splat(SCALES4_MASK));
  const normal = i32x4.add(b, i32x4.splat(0x38000000));
  const x = i32x4.add(b, i32x4.splat(0x38800000));
  const small = v128.or(f32x4.sub(x, v128.and(x, i32x4.splat(0xff800000))), v128.and(b, i32x4.splat(0x80000000)));
  return v128.bitselect(small, normal, i32x4.eq(v128.and(b, i32x4.splat(0x0f800000)), i32x4.splat(0)));
}

/** Mask for scales4: sign bit and the 15 exponent/mantissa bits shifted to 13..27. */
export const SCALES4_MASK: i32 = 0x8fffe000;
const SCALES4_MASK_U: u32 = 0x8fffe000;

/**
 * Vector constants the hot loops read from memory. Newer V8 (Node 24) rebuilds a v128.const at
 * every use inside a loop, three instructions each (movabs, vmovq, vpunpcklqdq), even from a
 * local; a value loaded from memory is one load, or stays in a register.
 */
export const VCONST: usize = memory.data<u32>([
  0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, // 0: i8 15
  0x10101010, 0x10101010, 0x10101010, 0x10101010, // 16: i8 16
  0x30303030, 0x30303030, 0x30303030, 0x30303030, // 32: i8 0x30
  0x7c000000, 0x7c000000, 0x7c000000, 0x7c000000, // 48: a high half's exponent bits
  0x04000000, 0x04000000, 0x04000000, 0x04000000, // 64: a high half's exponent 1
  <u32>SCALES4_MASK_U, <u32>SCALES4_MASK_U, <u32>SCALES4_MASK_U, <u32>SCALES4_MASK_U, // 80: SCALES4_MASK
  0x38000000, 0x38000000, 0x38000000, 0x38000000, // 96: exponent rebias half -> single
  0x77800000, 0x77800000, 0x77800000, 0x77800000, // 112: HALF_TO_SINGLE
  0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f, // 128: i16 15
  0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f, 0x3f3f3f3f, // 144: i8 63
  0x00ff00ff, 0x00ff00ff, 0x00ff00ff, 0x00ff00ff, // 160: i16 255
  0x01000100, 0x01000100, 0x01000100, 0x01000100, // 176: byte shuffle: i16 lane 0 to every lane
  0x03020302, 0x03020302, 0x03020302, 0x03020302, // 192: byte shuffle: i16 lane 1 to every lane
  0x05040504, 0x05040504, 0x05040504, 0x05040504, // 208: byte shuffle: i16 lane 2 to every lane
  0x07060706, 0x07060706, 0x07060706, 0x07060706, // 224: byte shuffle: i16 lane 3 to every lane
  0x09080908, 0x09080908, 0x09080908, 0x09080908, // 240: byte shuffle: i16 lane 4 to every lane
  0x0b0a0b0a, 0x0b0a0b0a, 0x0b0a0b0a, 0x0b0a0b0a, // 256: byte shuffle: i16 lane 5 to every lane
  0x0d0c0d0c, 0x0d0c0d0c, 0x0d0c0d0c, 0x0d0c0d0c, // 272: byte shuffle: i16 lane 6 to every lane
  0x0f0e0f0e, 0x0f0e0f0e, 0x0f0e0f0e, 0x0f0e0f0e, // 288: byte shuffle: i16 lane 7 to every lane
  0x00000000, 0x04040404, 0x08080808, 0x0c0c0c0c, // 304: byte shuffle: byte 0 of each i32 lane to its 4 bytes
  0x01010101, 0x05050505, 0x09090909, 0x0d0d0d0d, // 320: byte 1 of each i32 lane to its 4 bytes
  0x02020202, 0x06060606, 0x0a0a0a0a, 0x0e0e0e0e, // 336: byte 2 ..
  0x03030303, 0x07070707, 0x0b0b0b0b, 0x0f0f0f0f, // 352: byte 3 ..
  0x03030303, 0x03030303, 0x03030303, 0x03030303, // 368: i8 3
  0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c, // 384: i8 12
  0x38800000, 0x38800000, 0x38800000, 0x38800000, // 400: exponent rebias half -> single, plus one
  0xff800000, 0xff800000, 0xff800000, 0xff800000, // 416: a single's sign and exponent
  0x80000000, 0x80000000, 0x80000000, 0x80000000, // 432: a single's sign
], 16);
export const V_I8_15: i32 = 0;
export const V_I8_16: i32 = 16;
export const V_I8_0X30: i32 = 32;
export const V_HALF_EXP: i32 = 48;
export const V_HALF_EXP1: i32 = 64;
export const V_SCALES4_MASK: i32 = 80;
export const V_REBIAS: i32 = 96;
export const V_HALF_TO_SINGLE: i32 = 112;
export const V_I16_15: i32 = 128;
export const V_I8_63: i32 = 144;
export const V_I16_255: i32 = 160;
/** Byte shuffles (i8x16.relaxed_swizzle) putting i16 lane k in every lane: at V_SPLAT16 + 16 k. */
export const V_SPLAT16: i32 = 176;
/** Byte shuffles putting byte j of each i32 lane in its four bytes: at V_LANE_BYTE + 16 j. */
export const V_LANE_BYTE: i32 = 304;
export const V_I8_3: i32 = 368;
export const V_I8_12: i32 = 384;
export const V_REBIAS1: i32 = 400;
export const V_SIGN_EXP: i32 = 416;
export const V_SIGN: i32 = 432;

/** VCONST's vector at offset off (a constant). */
// @ts-ignore: decorator
@inline
export function vconst(off: i32): v128 {
  return v128.load(VCONST + <usize>off);
}


/** Sum of the four i32 lanes. */
// @ts-ignore: decorator
@inline
export function hsumI32(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** Sum of the four f32 lanes, pairwise. */
// @ts-ignore: decorator
@inline
export function hsumF32(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/**
 * Integer dot product of 16 signed bytes with 16 signed bytes, as i32x4 partial sums:
 * widen both to i16 and multiply-add pairs (i32x4.dot_i16x8_s). With relaxed SIMD and `b`
 * known to be 0..127, one relaxed_dot_i8x16_i7x16_add does the same work.
 */
// @ts-ignore: decorator
@inline
export function dotI8(a: v128, b: v128, acc: v128): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b));
  return i32x4.add(acc, i32x4.add(lo, hi));
}

/**
 * As dotI8 but `b` must hold 0..127 (quant codes); uses relaxed SIMD when built with it. The
 * pairwise i16 form plus a widening add, not relaxed_dot_i8x16_i7x16_add_s: Node 20's
 * experimental relaxed SIMD returns twice the right sum for the latter (Deno and Bun do not).
 */
// @ts-ignore: decorator
@inline
export function dotI8U7(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(a, b)));
  } else {
    return dotI8(a, b, acc);
  }
}

/** Largest absolute value among n floats (n % 4 == 0). */
export function maxAbs(x: usize, n: i32): f32 {
  let m = f32x4.splat(0);
  for (let i = 0; i < n; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>i << 2))));
  const s = f32x4.max(m, f32x4.shuffle(m, m, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/**
 * halfToFloat(floatToHalf(x)) on four lanes, to the bit: x rounded to the nearest half (ties to
 * even; zero, subnormal halves, overflow to infinity and NaN as the scalar pair gives them).
 * floatToHalf's steps, lane-wise: the float unit rounds at the half's precision (|x| * 2^112 *
 * 2^-110 plus a bias at x's exponent, at least 2^-14's); then halfToFloat's, also without a
 * float op on a subnormal single (x86 takes a microcode assist for each, and softmax weights
 * below 2^-14 are common): normal halves rebiased in the integers, subnormal ones converted
 * from their integer mantissa and scaled by 2^-24.
 */
// @ts-ignore: decorator
@inline
export function roundHalf4(x: v128): v128 {
  const shl1 = i32x4.shl(x, 1);
  let base = f32x4.mul(f32x4.mul(f32x4.abs(x), vconst(V_HALF_TO_SINGLE)), f32x4.splat(reinterpret<f32>(0x08800000)));
  const bias = i32x4.max_u(v128.and(shl1, i32x4.splat(0xff000000)), i32x4.splat(0x71000000));
  base = f32x4.add(i32x4.add(i32x4.shr_u(bias, 1), i32x4.splat(0x07800000)), base);
  const nonsign = i32x4.add(v128.and(i32x4.shr_u(base, 13), i32x4.splat(0x7c00)), v128.and(base, i32x4.splat(0x0fff)));
  const normal = i32x4.add(i32x4.shl(nonsign, 13), vconst(V_REBIAS));
  const subnormal = f32x4.mul(f32x4.convert_i32x4_s(nonsign), f32x4.splat(5.9604644775390625e-8));
  let y = v128.bitselect(subnormal, normal, i32x4.lt_s(nonsign, i32x4.splat(0x400)));
  // 0x7c00: the half's exponent is all ones, infinity (NaN inputs below)
  y = v128.bitselect(i32x4.splat(0x7f800000), y, i32x4.eq(nonsign, i32x4.splat(0x7c00)));
  // NaN: floatToHalf gives 0x7e00, halfToFloat the quiet NaN 0x7fc00000; the sign stays
  y = v128.bitselect(i32x4.splat(0x7fc00000), y, f32x4.ne(x, x));
  return v128.or(y, v128.and(x, i32x4.splat(0x80000000)));
}

/** Round every float of x to half precision in place-out (what ggml does to F16 matmul inputs). */
export function round_f16(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), roundHalf4(v128.load(x + (<usize>i << 2))));
  for (; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(y + p, halfToFloat(floatToHalf(load<f32>(x + p))));
  }
}
