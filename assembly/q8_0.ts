/*
 * Q8_0 weights x Q8_0 activations.
 *
 * Q8_0 block (34 bytes, 32 weights):   | d: f16 | qs: i8[32] |      weight j = d * qs[j]
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * sum_j qw_j * qx_j
 *
 * Speed: read as 16-bit lanes, 16 code bytes widen to i16 with three shifts
 * ((lane << 8) >> 8 = even byte, lane >> 8 = odd byte, arithmetic), so the activations are stored
 * widened to i16, evens then odds per 16 (quantize.ts, "Q8_0 order"); four blocks share one scale
 * conversion and float multiply-add.
 *
 * Summation order and tiles as in q4_0.ts: dotRow is one (row, token) pair; dot1x4 (one row,
 * four tokens, for prompt processing) decodes each block once for four tokens and gives dotRow's
 * bits.
 */
import { halfToFloat, highHalves4, hsumI32, HALF_TO_SINGLE, SCALES4_MASK, vconst, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { act_q8_0_i16_bytes } from "./quantize";
import { column, pairSums, transposeSum } from "./q4_0";

/** Code vector k (0..3) of a block whose 32 code bytes are v0, v1, widened to i16 in Q8_0 order. */
// @ts-ignore: decorator
@inline
function codes(v0: v128, v1: v128, k: i32): v128 {
  const v = k < 2 ? v0 : v1;
  return k & 1 ? i16x8.shr_s(v, 8) : i16x8.shr_s(i16x8.shl(v, 8), 8);
}

/** The integer sum of one block for one (row, token), as four i32 lanes: codes c0..c3 times the token's activation vectors at qb. */
// @ts-ignore: decorator
@inline
function decodedDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize): v128 {
  let s = i32x4.dot_i16x8_s(c0, v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c2, v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/** One block of one row (at wb) against one token (codes at qb). */
// @ts-ignore: decorator
@inline
function blockDot(wb: usize, qb: usize): v128 {
  const v0 = v128.load(wb, 2);
  const v1 = v128.load(wb, 18);
  return decodedDot(codes(v0, v1, 0), codes(v0, v1, 1), codes(v0, v1, 2), codes(v0, v1, 3), qb);
}

/** The f16 scales of the four blocks from wb on, as f32x4 (scales4 with constant offsets). */
// @ts-ignore: decorator
@inline
function blockScales4(wb: usize, magic: v128, mask: v128): v128 {
  let h = v128.load16_lane(wb, i32x4.splat(0), 1);
  h = v128.load16_lane(wb, h, 3, 34);
  h = v128.load16_lane(wb, h, 5, 68);
  h = v128.load16_lane(wb, h, 7, 102);
  return highHalves4(h, magic, mask);
}

/** One group of four blocks for one (row, token): acc + their products, block k in lane k. */
// @ts-ignore: decorator
@inline
function addGroup(acc: v128, isum: v128, dw: v128, dx: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(dw, dx)));
}

/**
 * The end of dotRow for one (row w, token q) pair, given its lane accumulators after the
 * groups of four: the fold, then blocks b..nb-1 one at a time.
 */
// @ts-ignore: decorator
@inline
function finish(acc: v128, w: usize, q: usize, n: i32, b: i32): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
  for (; b < nb; b++) {
    const wb = w + <usize>b * 34;
    sum += <f32>hsumI32(blockDot(wb, q + (<usize>b << 6))) * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return sum;
}

/** One row (at w) against one token (activations at q); yp: its output slot (see the fences). */
// @ts-ignore: decorator
@inline
export function dotRow(w: usize, q: usize, n: i32, yp: usize): f32 {
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const nb = n >> 5;
  let acc = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << 1);
  for (; b + 3 < nb; b += 4, wb += 136, qb += 256, dxp += 16) {
    // The lane stores into this row's output slot are ordering fences: without them V8 hoists
    // all the group's loads above the arithmetic and spills half of them (7.3 vs 6.4 GB/s).
    const s0 = blockDot(wb, qb);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(wb + 34, qb + 64);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(wb + 68, qb + 128);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(wb + 102, qb + 192);
    acc = addGroup(acc, transposeSum(s0, s1, s2, s3), blockScales4(wb, magic, mask), v128.load(dxp));
  }
  return finish(acc, w, q, n, b);
}

/**
 * One block (codes c0..c3) against the same block of four tokens (at qb + t qs): the integer
 * block sums [t0, t1, t2, t3]. The store into `fence` is an ordering fence (q4_0.ts, quadDot).
 */
// @ts-ignore: decorator
@inline
function quadDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize, qs: usize, fence: usize): v128 {
  const s01 = pairSums(decodedDot(c0, c1, c2, c3, qb), decodedDot(c0, c1, c2, c3, qb + qs));
  v128.store32_lane(fence, s01, 0);
  const s23 = pairSums(decodedDot(c0, c1, c2, c3, qb + 2 * qs), decodedDot(c0, c1, c2, c3, qb + 3 * qs));
  return pairSums(s01, s23);
}

/** One block's four code vectors, decoded once, against four tokens. */
// @ts-ignore: decorator
@inline
function blockQuadDot(wb: usize, qb: usize, qs: usize, fence: usize): v128 {
  const v0 = v128.load(wb, 2);
  const v1 = v128.load(wb, 18);
  return quadDot(codes(v0, v1, 0), codes(v0, v1, 1), codes(v0, v1, 2), codes(v0, v1, 3), qb, qs, fence);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block is decoded once for the four tokens; the group's [tokens] per block are transposed to
 * [blocks] per token for dotRow's lane accumulators.
 */
// @ts-ignore: decorator
@inline
export function dot1x4(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << 1);
  for (; b + 3 < nb; b += 4, wb += 136, qb += 256, dxp += 16) {
    // tk: block b+k's sums for tokens 0..3; the stores after them are fences
    const t0 = blockQuadDot(wb, qb, qs, yp);
    v128.store32_lane(yp, t0, 0);
    const t1 = blockQuadDot(wb + 34, qb + 64, qs, yp);
    v128.store32_lane(yp, t1, 0);
    const t2 = blockQuadDot(wb + 68, qb + 128, qs, yp);
    v128.store32_lane(yp, t2, 0);
    const t3 = blockQuadDot(wb + 102, qb + 192, qs, yp);
    v128.store32_lane(yp, t3, 0);
    const dw = blockScales4(wb, magic, mask);
    acc0 = addGroup(acc0, column(t0, t1, t2, t3, 0), dw, v128.load(dxp));
    acc1 = addGroup(acc1, column(t0, t1, t2, t3, 1), dw, v128.load(dxp + qs));
    acc2 = addGroup(acc2, column(t0, t1, t2, t3, 2), dw, v128.load(dxp + qs2));
    acc3 = addGroup(acc3, column(t0, t1, t2, t3, 3), dw, v128.load(dxp + qs3));
  }
  store<f32>(yp, finish(acc0, w, q, n, b));
  store<f32>(yp + ys, finish(acc1, w, q + qs, n, b));
  store<f32>(yp + 2 * ys, finish(acc2, w, q + qs2, n, b));
  store<f32>(yp + 3 * ys, finish(acc3, w, q + qs3, n, b));
}
