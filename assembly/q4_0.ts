/*
 * Q4_0 weights x Q8_0 activations.
 *
 * Q4_0 block (18 bytes, 32 weights):   | d: f16 | qs: u8[16] |
 *   weight j      = d * ((qs[j] & 0x0f) - 8)      for j in 0..15
 *   weight j + 16 = d * ((qs[j] >> 4)   - 8)
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * (sum_j c_j * q_j  -  8 * sum_j q_j)
 *   (c_j = the raw nibble 0..15, q_j = the activation's Q8_0 code; the block sums come with the
 *   activations, so the -8 costs nothing per weight.)
 *
 * Speed: read as eight 16-bit lanes, the 16 code bytes give all 32 nibbles already widened with
 * one mask or shift each (lane k = byte 2k | byte 2k+1 << 8):
 *     lane & 15 -> weight 2k     (lane >> 4) & 15 -> weight 2k+16
 *     (lane >> 8) & 15 -> weight 2k+1     lane >> 12 -> weight 2k+17
 * so the activations are stored widened to i16 in that order (quantize.ts, "Q4_0 order"), and
 * each block is 4 i32x4.dot_i16x8_s. The relaxed-SIMD build instead keeps plain i8 activations
 * (quantize_q8_0) and multiplies bytes directly (relaxed_dot_i8x16_i7x16_s). Four blocks share one f16->f32 conversion of their scales
 * and one float multiply-add.
 */
import { halfToFloat, hsumI32, scales4, HALF_TO_SINGLE, SCALES4_MASK } from "./common";
import { act_q8_0_i16_bytes } from "./quantize";

/** log2 of the activation bytes per block: i16 codes (64 bytes), or i8 (32) in the relaxed build. */
const ACT_SHIFT: usize = ASC_FEATURE_RELAXED_SIMD ? 5 : 6;

/** Activation row stride for Q4_0 weights: the same in both builds (see quantize_q8_0). */
export function act_q4_0_bytes(n: i32): i32 {
  return act_q8_0_i16_bytes(n);
}

// @ts-ignore: decorator
@inline
function blockDot(wb: usize, qb: usize, m: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Relaxed build: plain i8 codes; the nibbles (0..15) are the "i7" operand of a
    // byte-pair multiply-add, two of which fit an i16 lane (4 * 15 * 127 < 32768).
    const b = v128.load(wb, 2);
    const p = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb), v128.and(b, m)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb, 16), i8x16.shr_u(b, 4)),
    );
    return i32x4.extadd_pairwise_i16x8_s(p);
  }
  const v = v128.load(wb, 2);
  let s = i32x4.dot_i16x8_s(v128.and(v, m), v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), m), v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), m), v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), v128.load(qb, 48)));
}

/** Lane sums of four i32x4: [sum a, sum b, sum c, sum d]. */
// @ts-ignore: decorator
@inline
export function transposeSum(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

// @ts-ignore: decorator
@inline
function dotRow(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << (ACT_SHIFT - 5));
  const sx = dx + (<usize>nb << 2);
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(SCALES4_MASK);
  // Loop constants live in locals: inside the loop body V8 would rebuild them each block.
  const m = ASC_FEATURE_RELAXED_SIMD ? i8x16.splat(15) : i16x8.splat(15);
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 3 < nb; b += 4) {
    const wb = w + <usize>b * 18;
    const qb = q + (<usize>b << ACT_SHIFT);
    // The lane stores into this row's output slot are ordering fences: without them V8 hoists
    // all the group's loads above the arithmetic and spills half of them (7.3 vs 6.4 GB/s).
    const s0 = blockDot(wb, qb, m);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(wb + 18, qb + (1 << ACT_SHIFT), m);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(wb + 36, qb + (2 << ACT_SHIFT), m);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(wb + 54, qb + (3 << ACT_SHIFT), m);
    const s = transposeSum(s0, s1, s2, s3);
    const isum = i32x4.sub(s, i32x4.shl(v128.load(sx + (<usize>b << 2)), 3));
    const d = f32x4.mul(scales4(wb, 18, magic, mask), v128.load(dx + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), d));
  }
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
  for (; b < nb; b++) {
    const wb = w + <usize>b * 18;
    const isum = hsumI32(blockDot(wb, q + (<usize>b << ACT_SHIFT), m)) - 8 * load<i32>(sx + (<usize>b << 2));
    sum += <f32>isum * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return sum;
}


export function matmul_q4_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 5) * 18;
  const qStride = <usize>act_q4_0_bytes(n);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t++) {
      const yp = y + ((<usize>t * <usize>ldy + <usize>r) << 2);
      store<f32>(yp, dotRow(wr, q + <usize>t * qStride, n, yp));
    }
  }
}
