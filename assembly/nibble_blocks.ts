/*
 * Q4_1, Q5_0, Q5_1 and IQ4_NL weights: 32 weights per block whose 4-bit codes are packed as
 * Q4_0's (byte j of qs: low nibble = weight j, high nibble = weight j + 16).
 *
 *   Q4_1   (20 bytes): | d: f16 | m: f16 | qs: u8[16] |              weight = d * c + m      c = nibble, 0..15
 *   Q5_0   (22 bytes): | d: f16 | qh: u32 | qs: u8[16] |             weight = d * (c - 16)   c = nibble | (bit j of qh) << 4
 *   Q5_1   (24 bytes): | d: f16 | m: f16 | qh: u32 | qs: u8[16] |    weight = d * c + m      c as Q5_0, 0..31
 *   IQ4_NL (18 bytes): | d: f16 | qs: u8[16] |                       weight = d * KVALUES[nibble]
 *
 * Activations are rounded as llama.cpp's CPU backend rounds them for each type's vec_dot:
 * Q8_0 for Q5_0 and IQ4_NL; Q8_1 for Q4_1 and Q5_1 (Q8_0's codes q and f16 scale d_x, plus
 * s_x = f16(amax/127 * sum_j q_j), ggml's quantize_row_q8_1 on x86: quantize_q8_1 below).
 *
 *   y[t][r] = sum over blocks b of
 *     Q5_0:       d_w * d_x * (sum_j c_j q_j  -  16 * sum_j q_j)
 *     IQ4_NL:     d_w * d_x * sum_j KVALUES[c_j] q_j
 *     Q4_1, Q5_1: d_w * d_x * sum_j c_j q_j   +   m_w * s_x
 *
 * Decoding works on bytes: the 16 qs bytes give the low and high nibbles with one mask and one
 * shift; Q5's fifth bits are qh's bytes spread over 16 lanes by a byte swizzle, each lane
 * tested against its own bit (and, eq) and turned into 0 or 16; IQ4_NL's table is one byte swizzle.
 * The plain SIMD build widens the code bytes to i16 without shuffles (lane & 0xff = the even
 * byte, lane >> 8 the odd one), so the activations are stored widened in Q8_0 order
 * (quantize.ts); the relaxed build multiplies the bytes directly (codes 0..31 are the "i7"
 * operand of relaxed_dot_i8x16_i7x16_s; two products and a second pair fit an i16 lane:
 * 4 * 31 * 127 < 32768) against plain i8 activations. IQ4_NL's codes are signed, so it takes
 * the widened Q8_0 order in both builds.
 *
 * Summation order, as q4_0.ts: exact integer block sums; block b's product with its two scales
 * goes into float lane b % 4; the lanes fold as (0 + 2) + (1 + 3); the blocks past the last
 * group of four are added one at a time. Q4_1 / Q5_1 keep the m_w * s_x terms apart in the
 * same way (lanes, fold, tail) and add them to the sum at the end, as ggml's x86 vec_dot adds
 * its separate `summs` to the folded accumulator.
 *
 * Tiles (driven by tiles.ts): dot1x4, one weight row against four tokens, decodes each block
 * once for the four tokens and keeps dotRow's order for every (row, token) pair: same bits.
 */
import { floatToHalf, halfToFloat, highHalves4, hsumI32, maxAbs, HALF_TO_SINGLE, SCALES4_MASK, vconst, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { act_q8_0_i16_bytes, codesQ8_0 } from "./quantize";
import { column, pairSums, transposeSum } from "./q4_0";

export const Q4_1: i32 = 3;
export const Q5_0: i32 = 6;
export const Q5_1: i32 = 7;
export const IQ4_NL: i32 = 20;

/** Bytes of one block of `type`. */
// @ts-ignore: decorator
@inline
export function blockBytes(type: i32): usize {
  return type == Q4_1 ? 20 : type == Q5_0 ? 22 : type == Q5_1 ? 24 : 18;
}

/** log2 of a block's activation bytes: i8 codes (32) in the relaxed build, else i16 (64). */
// @ts-ignore: decorator
@inline
function actShift(type: i32): usize {
  return ASC_FEATURE_RELAXED_SIMD && type != IQ4_NL ? 5 : 6;
}

/** Whether the type has an offset m (the m_w * s_x terms). */
// @ts-ignore: decorator
@inline
function hasMin(type: i32): bool {
  return type == Q4_1 || type == Q5_1;
}

/** The block's 16 code bytes. */
// @ts-ignore: decorator
@inline
function loadQs(type: i32, wb: usize): v128 {
  if (type == Q4_1) return v128.load(wb, 4);
  if (type == Q5_0) return v128.load(wb, 6);
  if (type == Q5_1) return v128.load(wb, 8);
  return v128.load(wb, 2);
}

/** Q5_0 / Q5_1: the block's qh in lanes 0..3 (other types: unused). */
// @ts-ignore: decorator
@inline
function loadQh(type: i32, wb: usize): v128 {
  let h = i32x4.splat(0);
  if (type == Q5_0) h = v128.load32_zero(wb, 2);
  if (type == Q5_1) h = v128.load32_zero(wb, 4);
  return h;
}

/**
 * The codes of weights 16k..16k+15 (k = 0: the low nibbles, 1: the high ones) as bytes.
 * m4: 0x0f bytes; bits: the byte masks 1, 2, 4, .., 128 twice; x: IQ4_NL's table, or 16s (Q5);
 * S0, S1: the swizzles that spread qh's bytes 0, 1 (S0) or 2, 3 (S1) over 8 lanes each. (Q5_0,
 * 11008x4096, 1 thread: 9.2 GB/s with constant byte shuffles, 10.0 with unpacks, 10.8 with these
 * swizzles held in registers; relaxed build 11.9, 13.3, 14.6.)
 */
// @ts-ignore: decorator
@inline
function codeBytes(type: i32, v: v128, h: v128, k: i32, m4: v128, bits: v128, x: v128, S0: v128, S1: v128): v128 {
  const c = k == 0 ? v128.and(v, m4) : v128.and(i16x8.shr_u(v, 4), m4);
  if (type == IQ4_NL) return ASC_FEATURE_RELAXED_SIMD ? i8x16.relaxed_swizzle(x, c) : i8x16.swizzle(x, c);
  if (type == Q4_1) return c;
  // qh byte 2k to lanes 0..7, byte 2k+1 to lanes 8..15; lane i keeps bit i % 8
  const rep = ASC_FEATURE_RELAXED_SIMD ? i8x16.relaxed_swizzle(h, k == 0 ? S0 : S1) : i8x16.swizzle(h, k == 0 ? S0 : S1);
  return v128.or(c, v128.and(i8x16.eq(v128.and(rep, bits), bits), x));
}

/**
 * Code vector k (0..3) of a block whose code bytes are lo (weights 0..15) and hi (16..31), in
 * the activations' layout: widened to i16 in Q8_0 order (evens, odds of lo, then of hi; m8 =
 * 0x00ff lanes), or in the relaxed build the bytes lo, hi themselves (k = 0, 1).
 */
// @ts-ignore: decorator
@inline
function widened(type: i32, lo: v128, hi: v128, k: i32, m8: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && type != IQ4_NL) return k == 0 ? lo : hi;
  const v = k < 2 ? lo : hi;
  if (type == IQ4_NL) return k & 1 ? i16x8.shr_s(v, 8) : i16x8.shr_s(i16x8.shl(v, 8), 8);
  return k & 1 ? i16x8.shr_u(v, 8) : v128.and(v, m8);
}

/** The integer sum of one block for one (row, token), as four i32 lanes: codes c0..c3 times the token's activations at qb. */
// @ts-ignore: decorator
@inline
function decodedDot(type: i32, c0: v128, c1: v128, c2: v128, c3: v128, qb: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && type != IQ4_NL) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb), c0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb, 16), c1)));
  }
  let s = i32x4.dot_i16x8_s(c0, v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c2, v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/** One block of one row (at wb) against one token (codes at qb). */
// @ts-ignore: decorator
@inline
function blockDot(type: i32, wb: usize, qb: usize, m4: v128, bits: v128, x: v128, m8: v128, S0: v128, S1: v128): v128 {
  const v = loadQs(type, wb);
  const h = loadQh(type, wb);
  const lo = codeBytes(type, v, h, 0, m4, bits, x, S0, S1);
  const hi = codeBytes(type, v, h, 1, m4, bits, x, S0, S1);
  return decodedDot(type, widened(type, lo, hi, 0, m8), widened(type, lo, hi, 1, m8), widened(type, lo, hi, 2, m8), widened(type, lo, hi, 3, m8), qb);
}

/** The f16s at p, p + B, p + 2B, p + 3B (B = the block size) as f32x4: four blocks' d, or m from p = wb + 2. */
// @ts-ignore: decorator
@inline
function blockScales4(type: i32, p: usize, magic: v128, mask: v128): v128 {
  let h = v128.load16_lane(p, i32x4.splat(0), 1);
  if (type == Q4_1) {
    h = v128.load16_lane(p, h, 3, 20);
    h = v128.load16_lane(p, h, 5, 40);
    h = v128.load16_lane(p, h, 7, 60);
  } else if (type == Q5_0) {
    h = v128.load16_lane(p, h, 3, 22);
    h = v128.load16_lane(p, h, 5, 44);
    h = v128.load16_lane(p, h, 7, 66);
  } else if (type == Q5_1) {
    h = v128.load16_lane(p, h, 3, 24);
    h = v128.load16_lane(p, h, 5, 48);
    h = v128.load16_lane(p, h, 7, 72);
  } else {
    h = v128.load16_lane(p, h, 3, 18);
    h = v128.load16_lane(p, h, 5, 36);
    h = v128.load16_lane(p, h, 7, 54);
  }
  return highHalves4(h, magic, mask);
}

/**
 * One group of four blocks for one (row, token): acc + their d-products, block k in lane k.
 * isum: the four integer block sums; dw, dx: the scales; sx: the activations' code sums (Q5_0).
 */
// @ts-ignore: decorator
@inline
function addGroup(type: i32, acc: v128, isum: v128, dw: v128, dx: v128, sx: v128): v128 {
  const s = type == Q5_0 ? i32x4.sub(isum, i32x4.shl(sx, 4)) : isum;
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(dw, dx)));
}

/** Lanes folded as (0 + 2) + (1 + 3). */
// @ts-ignore: decorator
@inline
function fold(acc: v128): f32 {
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
}

/**
 * The end of dotRow for one (row w, token q) pair, given its lane accumulators after the
 * groups of four (macc: the m_w * s_x terms): the folds, then blocks b..nb-1 one at a time.
 */
// @ts-ignore: decorator
@inline
function finish(type: i32, acc: v128, macc: v128, w: usize, q: usize, n: i32, b: i32, m4: v128, bits: v128, x: v128, m8: v128, S0: v128, S1: v128): f32 {
  const nb = n >> 5;
  const shift = actShift(type);
  const dx = q + (<usize>n << (shift - 5));
  const sx = dx + (<usize>nb << 2);
  let sum = fold(acc);
  for (let i = b; i < nb; i++) {
    const wb = w + <usize>i * blockBytes(type);
    let isum = hsumI32(blockDot(type, wb, q + (<usize>i << shift), m4, bits, x, m8, S0, S1));
    if (type == Q5_0) isum -= 16 * load<i32>(sx + (<usize>i << 2));
    sum += <f32>isum * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>i << 2)));
  }
  if (hasMin(type)) {
    let ms = fold(macc);
    for (let i = b; i < nb; i++) {
      ms += halfToFloat(load<u16>(w + <usize>i * blockBytes(type), 2)) * load<f32>(sx + (<usize>i << 2));
    }
    sum += ms;
  }
  return sum;
}

/** The loop constants of codeBytes: x is IQ4_NL's table or 16s. */
// @ts-ignore: decorator
@inline
function tableOr16(type: i32): v128 {
  return type == IQ4_NL
    ? i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)
    : i8x16.splat(16);
}

/** One row (at w) against one token (activations at q); yp: its output slot (see the fences). */
// @ts-ignore: decorator
@inline
export function dotRow(type: i32, w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 5;
  const bb = blockBytes(type);
  const shift = actShift(type);
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  // Loop constants live in locals: inside the loop body V8 would rebuild them each block.
  const m4 = i8x16.splat(15);
  const bits = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const x = tableOr16(type);
  const m8 = i16x8.splat(0xff);
  const S0 = i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const S1 = i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  let acc = f32x4.splat(0);
  let macc = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << (shift - 5));
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 4 * bb, qb += 4 << shift, dxp += 16, sxp += 16) {
    // The lane stores into this row's output slot are ordering fences (see q4_0.ts).
    const s0 = blockDot(type, wb, qb, m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(type, wb + bb, qb + (<usize>1 << shift), m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(type, wb + 2 * bb, qb + (<usize>2 << shift), m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(type, wb + 3 * bb, qb + (<usize>3 << shift), m4, bits, x, m8, S0, S1);
    acc = addGroup(type, acc, transposeSum(s0, s1, s2, s3), blockScales4(type, wb, magic, mask), v128.load(dxp), v128.load(sxp));
    if (hasMin(type)) macc = f32x4.add(macc, f32x4.mul(blockScales4(type, wb + 2, magic, mask), v128.load(sxp)));
  }
  return finish(type, acc, macc, w, q, n, b, m4, bits, x, m8, S0, S1);
}

/**
 * One block (code vectors c0..c3) against the same block of four tokens (at qb + t qs): the
 * integer block sums [t0, t1, t2, t3]. The store into `fence` is an ordering fence (q4_0.ts).
 */
// @ts-ignore: decorator
@inline
function quadDot(type: i32, c0: v128, c1: v128, c2: v128, c3: v128, qb: usize, qs: usize, fence: usize): v128 {
  const s01 = pairSums(decodedDot(type, c0, c1, c2, c3, qb), decodedDot(type, c0, c1, c2, c3, qb + qs));
  v128.store32_lane(fence, s01, 0);
  const s23 = pairSums(decodedDot(type, c0, c1, c2, c3, qb + 2 * qs), decodedDot(type, c0, c1, c2, c3, qb + 3 * qs));
  return pairSums(s01, s23);
}

/** One block, decoded once, against four tokens. */
// @ts-ignore: decorator
@inline
function blockQuadDot(type: i32, wb: usize, qb: usize, qs: usize, fence: usize, m4: v128, bits: v128, x: v128, m8: v128, S0: v128, S1: v128): v128 {
  const v = loadQs(type, wb);
  const h = loadQh(type, wb);
  const lo = codeBytes(type, v, h, 0, m4, bits, x, S0, S1);
  const hi = codeBytes(type, v, h, 1, m4, bits, x, S0, S1);
  return quadDot(type, widened(type, lo, hi, 0, m8), widened(type, lo, hi, 1, m8), widened(type, lo, hi, 2, m8), widened(type, lo, hi, 3, m8), qb, qs, fence);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block is decoded once for the four tokens; the group's [tokens] per block are transposed to
 * [blocks] per token for dotRow's lane accumulators.
 */
// @ts-ignore: decorator
@inline
export function dot1x4(type: i32, w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 5;
  const bb = blockBytes(type);
  const shift = actShift(type);
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m4 = i8x16.splat(15);
  const bits = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const x = tableOr16(type);
  const m8 = i16x8.splat(0xff);
  const S0 = i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const S1 = i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let macc0 = f32x4.splat(0);
  let macc1 = f32x4.splat(0);
  let macc2 = f32x4.splat(0);
  let macc3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << (shift - 5));
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 4 * bb, qb += 4 << shift, dxp += 16, sxp += 16) {
    // tk: block b+k's sums for tokens 0..3; the stores after them are fences
    const t0 = blockQuadDot(type, wb, qb, qs, yp, m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, t0, 0);
    const t1 = blockQuadDot(type, wb + bb, qb + (<usize>1 << shift), qs, yp, m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, t1, 0);
    const t2 = blockQuadDot(type, wb + 2 * bb, qb + (<usize>2 << shift), qs, yp, m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, t2, 0);
    const t3 = blockQuadDot(type, wb + 3 * bb, qb + (<usize>3 << shift), qs, yp, m4, bits, x, m8, S0, S1);
    v128.store32_lane(yp, t3, 0);
    const dw = blockScales4(type, wb, magic, mask);
    acc0 = addGroup(type, acc0, column(t0, t1, t2, t3, 0), dw, v128.load(dxp), v128.load(sxp));
    acc1 = addGroup(type, acc1, column(t0, t1, t2, t3, 1), dw, v128.load(dxp + qs), v128.load(sxp + qs));
    acc2 = addGroup(type, acc2, column(t0, t1, t2, t3, 2), dw, v128.load(dxp + qs2), v128.load(sxp + qs2));
    acc3 = addGroup(type, acc3, column(t0, t1, t2, t3, 3), dw, v128.load(dxp + qs3), v128.load(sxp + qs3));
    if (hasMin(type)) {
      const mw = blockScales4(type, wb + 2, magic, mask);
      macc0 = f32x4.add(macc0, f32x4.mul(mw, v128.load(sxp)));
      macc1 = f32x4.add(macc1, f32x4.mul(mw, v128.load(sxp + qs)));
      macc2 = f32x4.add(macc2, f32x4.mul(mw, v128.load(sxp + qs2)));
      macc3 = f32x4.add(macc3, f32x4.mul(mw, v128.load(sxp + qs3)));
    }
  }
  store<f32>(yp, finish(type, acc0, macc0, w, q, n, b, m4, bits, x, m8, S0, S1));
  store<f32>(yp + ys, finish(type, acc1, macc1, w, q + qs, n, b, m4, bits, x, m8, S0, S1));
  store<f32>(yp + 2 * ys, finish(type, acc2, macc2, w, q + qs2, n, b, m4, bits, x, m8, S0, S1));
  store<f32>(yp + 3 * ys, finish(type, acc3, macc3, w, q + qs3, n, b, m4, bits, x, m8, S0, S1));
}

/**
 * Quantize rows [r0, r1) of x (rows of n f32, contiguous) to Q8_1 activation rows at q, in the
 * layout this build's Q4_1 / Q5_1 kernels read (row stride act_q8_0_i16_bytes(n) in both):
 *
 *   | codes: i16[n] in Q8_0 order (relaxed build: i8[n]) | d: f32[n/32] | s: f32[n/32] |
 *
 * ggml's quantize_row_q8_1 (x86 AVX2 path): codes and d as Q8_0's; s = f16(d' * sum of the
 * block's codes), d' = amax / 127 before its f16 rounding; d and s stored widened to f32.
 */
export function quantize_q8_1(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  const stride = <usize>act_q8_0_i16_bytes(n);
  for (let r = r0; r < r1; r++) {
    quantizeRowQ8_1(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
  }
}

function quantizeRowQ8_1(x: usize, q: usize, n: i32): void {
  const shift = actShift(Q5_1);
  const nb = n >> 5;
  const dOut = q + (<usize>n << (shift - 5));
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 7);
    const qb = q + (<usize>b << shift);
    const amax = maxAbs(xb, 32);
    const d: f32 = amax / <f32>127.0;
    const sum = hsumI32(codesQ8_0(xb, amax, qb));
    if (!ASC_FEATURE_RELAXED_SIMD) {
      // i8 codes at qb widened in place to Q8_0 order: evens, odds of 0..15, then of 16..31
      const c0 = v128.load(qb);
      const c1 = v128.load(qb, 16);
      v128.store(qb, i16x8.shr_s(i16x8.shl(c0, 8), 8));
      v128.store(qb, i16x8.shr_s(c0, 8), 16);
      v128.store(qb, i16x8.shr_s(i16x8.shl(c1, 8), 8), 32);
      v128.store(qb, i16x8.shr_s(c1, 8), 48);
    }
    store<f32>(dOut + (<usize>b << 2), halfToFloat(floatToHalf(d)));
    store<f32>(sOut + (<usize>b << 2), halfToFloat(floatToHalf(d * <f32>sum)));
  }
}
