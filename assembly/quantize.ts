/*
 * On-the-fly quantization of matmul INPUT activations, the way llama.cpp's CPU backend does it,
 * so that our logits match llama.cpp's to float rounding (see ../shared/reference/README.md).
 *
 * Our activation rows are NOT ggml's interleaved block structs; the values are identical but the
 * fields are split into arrays so that the dot-product loops read aligned vectors:
 *
 *   Q8_0 row of n floats (n % 32 == 0), at q:       Q8_K row (n % 256 == 0), at q:
 *   +-------------------+ q                          +-------------------+ q
 *   | qs  i8[n]         |                            | qs  i8[n]         |
 *   | d   f32[n/32]     | q + n                      | d   f32[n/256]    | q + n
 *   | sum i32[n/32]     | q + n + n/8                | bsum i32[n/16]    | q + n + n/64
 *   +-------------------+                            +-------------------+
 *
 * For Q4_0 and Q8_0 weights the plain build stores the codes widened to i16 and permuted so that
 * the weight side needs no byte shuffles (see q4_0.ts, q8_0.ts; the relaxed build keeps i8 codes
 * for Q4_0, and for Q8_0 where it runs on the i8 dot-add); per block of 32 codes c[0..31]:
 *   Q4_0 order: c0 c2 .. c14 | c16 c18 .. c30 | c1 c3 .. c15 | c17 c19 .. c31
 *   Q8_0 order: c0 c2 .. c14 | c1 c3 .. c15   | c16 c18 .. c30 | c17 c19 .. c31
 *   +-------------------+ q
 *   | qs  i16[n]        |
 *   | d   f32[n/32]     | q + 2n
 *   | sum i32[n/32]     | q + 2n + n/8
 *   +-------------------+
 *
 * For Q4_K and Q5_K weights, Q8_K codes are widened to i16 the same way; per 64-value chunk
 * (sub-blocks A = values 0..31, B = 32..63 of the chunk) and half h (values 16h..16h+15 of each):
 *   A even, A odd, B even, B odd   (8 codes each; "even" = values 16h + 0, 2, .., 14)
 *   +-------------------+ q
 *   | qs  i16[n]        |
 *   | d   f32[n/256]    | q + 2n
 *   | sum i32[n/32]     | q + 2n + n/64     (sums of each 32-value sub-block)
 *   +-------------------+
 *
 * Q8_0 (ggml quantize_row_q8_0, x86 path): amax = max|x|, d = fp16(amax/127),
 *   q = round_half_even(x * (127/amax)); `sum` = sum of the block's q (used by relaxed SIMD).
 * Q8_K (ggml quantize_row_q8_K_ref): m = the x of largest |x| (first one), s = -127/m,
 *   q = min(127, round_half_even(s*x)), d = 1/s (f32), bsum = sums of 16 consecutive q.
 */
import { floatToHalf, halfToFloat, maxAbs } from "./common";

/** Bytes of one quantized Q8_0 activation row of n values, rounded up to 16. */
export function act_q8_0_bytes(n: i32): i32 {
  return (n + (n >> 3) + (n >> 3) + 15) & ~15;
}

/** Bytes of one quantized Q8_K activation row of n values, rounded up to 16. */
export function act_q8_K_bytes(n: i32): i32 {
  return (n + (n >> 6) + (n >> 2) + 15) & ~15;
}

/**
 * Quantize rows [r0, r1) of x (rows of n f32, contiguous) to Q8_0 activation rows at q (the
 * relaxed build's Q5_0 input, and its Q8_0 input on the i8 dot-add (q8_0.ts, q8_0DotAddOk); its
 * Q4_0 input is this with groups transposed: q4_0.ts). Rows are spaced like the i16 layout (act_q8_0_i16_bytes), so the
 * row stride of a type's activations is the same in every build.
 */
export function quantize_q8_0(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  const stride = <usize>act_q8_0_i16_bytes(n);
  for (let r = r0; r < r1; r++) {
    quantizeRowQ8_0(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
  }
}

/**
 * The 32 Q8_0 codes of the block at xb (largest magnitude amax), as i8 at out:
 * roundHalfEven(x * (127/amax)). Returns their sum as four i32 lanes.
 */
// @ts-ignore: decorator
@inline
export function codesQ8_0(xb: usize, amax: f32, out: usize): v128 {
  const id: f32 = amax != 0 ? <f32>127.0 / amax : 0;
  const mul = f32x4.splat(id);
  let sum = i32x4.splat(0);
  for (let j = 0; j < 32; j += 16) {
    const p = xb + (<usize>j << 2);
    const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), mul)));
    const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), mul)));
    const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), mul)));
    const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), mul)));
    sum = i32x4.add(sum, i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3)));
    v128.store(out + <usize>j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
  }
  return sum;
}

function quantizeRowQ8_0(x: usize, q: usize, n: i32): void {
  const nb = n >> 5;
  const dOut = q + <usize>n;
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 7);
    const amax = maxAbs(xb, 32);
    const d = halfToFloat(floatToHalf(amax / <f32>127.0));
    const sum = codesQ8_0(xb, amax, q + (<usize>b << 5));
    store<f32>(dOut + (<usize>b << 2), d);
    const s2 = i32x4.add(sum, i32x4.shuffle(sum, sum, 2, 3, 0, 1));
    store<i32>(sOut + (<usize>b << 2), i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1));
  }
}

/** Bytes of one Q8_0 activation row widened to i16 (for Q4_0 / Q8_0 weights), rounded up to 16. */
export function act_q8_0_i16_bytes(n: i32): i32 {
  return ((n << 1) + (n >> 3) + (n >> 3) + 15) & ~15;
}

/**
 * Quantize rows [r0, r1) of x to Q8_0 codes widened to i16 in the order Q4_0 (order = 4) or
 * Q8_0 (order = 8) weights read them.
 */
export function quantize_q8_0_i16(x: usize, q: usize, n: i32, r0: i32, r1: i32, order: i32): void {
  const stride = <usize>act_q8_0_i16_bytes(n);
  for (let r = r0; r < r1; r++) {
    quantizeRowQ8_0i16(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n, order);
  }
}

function quantizeRowQ8_0i16(x: usize, q: usize, n: i32, order: i32): void {
  const nb = n >> 5;
  const dOut = q + (<usize>n << 1);
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 7);
    const amax = maxAbs(xb, 32);
    const d = halfToFloat(floatToHalf(amax / <f32>127.0));
    const id: f32 = amax != 0 ? <f32>127.0 / amax : 0;
    const mul = f32x4.splat(id);
    const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb), mul)));
    const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 16), mul)));
    const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 32), mul)));
    const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 48), mul)));
    const i4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 64), mul)));
    const i5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 80), mul)));
    const i6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 96), mul)));
    const i7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb, 112), mul)));
    const s = i32x4.add(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3)), i32x4.add(i32x4.add(i4, i5), i32x4.add(i6, i7)));
    const s2 = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
    store<i32>(sOut + (<usize>b << 2), i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1));
    store<f32>(dOut + (<usize>b << 2), d);
    const c0 = i16x8.narrow_i32x4_s(i0, i1); // codes 0..7
    const c1 = i16x8.narrow_i32x4_s(i2, i3); // 8..15
    const c2 = i16x8.narrow_i32x4_s(i4, i5); // 16..23
    const c3 = i16x8.narrow_i32x4_s(i6, i7); // 24..31
    const e01 = i16x8.shuffle(c0, c1, 0, 2, 4, 6, 8, 10, 12, 14);
    const o01 = i16x8.shuffle(c0, c1, 1, 3, 5, 7, 9, 11, 13, 15);
    const e23 = i16x8.shuffle(c2, c3, 0, 2, 4, 6, 8, 10, 12, 14);
    const o23 = i16x8.shuffle(c2, c3, 1, 3, 5, 7, 9, 11, 13, 15);
    const qb = q + (<usize>b << 6);
    v128.store(qb, e01);
    if (order == 4) {
      v128.store(qb, e23, 16);
      v128.store(qb, o01, 32);
    } else {
      v128.store(qb, o01, 16);
      v128.store(qb, e23, 32);
    }
    v128.store(qb, o23, 48);
  }
}

/** Quantize rows [r0, r1) of x (rows of n f32, contiguous) to Q8_K activation rows at q. */
export function quantize_q8_K(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  const stride = <usize>act_q8_K_bytes(n);
  for (let r = r0; r < r1; r++) {
    quantizeRowQ8_K(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
  }
}

function quantizeRowQ8_K(x: usize, q: usize, n: i32): void {
  const nb = n >> 8;
  const dOut = q + <usize>n;
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 10);
    const qb = q + (<usize>b << 8);
    let amax: f32 = 0;
    let m: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(xb + (<usize>j << 2));
      const a = abs<f32>(v);
      if (a > amax) {
        amax = a;
        m = v;
      }
    }
    if (amax == 0) {
      memory.fill(qb, 0, 256);
      store<f32>(dOut + (<usize>b << 2), 0);
      for (let j = 0; j < 16; j++) store<i32>(sOut + (<usize>(b * 16 + j) << 2), 0);
      continue;
    }
    const iscale: f32 = <f32>-127.0 / m;
    const mul = f32x4.splat(iscale);
    const lim = i32x4.splat(127);
    for (let j = 0; j < 256; j += 16) {
      const p = xb + (<usize>j << 2);
      const i0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), mul))), lim);
      const i1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), mul))), lim);
      const i2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), mul))), lim);
      const i3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), mul))), lim);
      const s = i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3));
      const s2 = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
      store<i32>(sOut + (<usize>(b * 16 + (j >> 4)) << 2), i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1));
      v128.store(qb + <usize>j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
    }
    store<f32>(dOut + (<usize>b << 2), <f32>1.0 / iscale);
  }
}

/** Bytes of one Q8_K activation row widened to i16 (for Q4_K / Q5_K weights), rounded up to 16. */
export function act_q8_K_i16_bytes(n: i32): i32 {
  return ((n << 1) + (n >> 6) + (n >> 3) + 15) & ~15;
}

/**
 * Quantize rows [r0, r1) of x to Q8_K codes widened to i16 in the order Q4_K / Q5_K read them;
 * the relaxed-SIMD build writes plain Q8_K rows instead (i8 codes, d, sums of 16, as
 * quantize_q8_K), spaced act_q8_K_i16_bytes apart like the i16 rows (see k_quants.ts).
 */
export function quantize_q8_K_i16(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  const stride = <usize>act_q8_K_i16_bytes(n);
  for (let r = r0; r < r1; r++) {
    if (ASC_FEATURE_RELAXED_SIMD) quantizeRowQ8_K(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
    else quantizeRowQ8_Ki16(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
  }
}

function quantizeRowQ8_Ki16(x: usize, q: usize, n: i32): void {
  const nb = n >> 8;
  const dOut = q + (<usize>n << 1);
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 10);
    const qb = q + (<usize>b << 9);
    let amax: f32 = 0;
    let m: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(xb + (<usize>j << 2));
      const a = abs<f32>(v);
      if (a > amax) {
        amax = a;
        m = v;
      }
    }
    const iscale: f32 = amax == 0 ? 0 : <f32>-127.0 / m;
    const mul = f32x4.splat(iscale);
    const lim = i32x4.splat(127);
    let sum32 = 0;
    for (let j = 0; j < 256; j += 16) {
      const p = xb + (<usize>j << 2);
      const i0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), mul))), lim);
      const i1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), mul))), lim);
      const i2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), mul))), lim);
      const i3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), mul))), lim);
      const s = i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3));
      const s2 = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
      sum32 += i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1);
      if (j & 16) {
        store<i32>(sOut + (<usize>(b * 8 + (j >> 5)) << 2), sum32);
        sum32 = 0;
      }
      const c0 = i16x8.narrow_i32x4_s(i0, i1);
      const c1 = i16x8.narrow_i32x4_s(i2, i3);
      // value j..j+15: chunk j/64, sub-block B if bit 5, half h = bit 4
      const base = qb + (<usize>(j & ~63) << 1) + (<usize>(j & 16) << 2) + (j & 32 ? 32 : 0);
      v128.store(base, i16x8.shuffle(c0, c1, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(base, i16x8.shuffle(c0, c1, 1, 3, 5, 7, 9, 11, 13, 15), 16);
    }
    store<f32>(dOut + (<usize>b << 2), amax == 0 ? 0 : <f32>1.0 / iscale);
  }
}
