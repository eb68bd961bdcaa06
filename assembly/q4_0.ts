/*
 * Q4_0 weights x Q8_0 activations.
 *
 * Q4_0 block (18 bytes, 32 weights):   | d: f16 | qs: u8[16] |
 *   weight j      = d * ((qs[j] & 0x0f) - 8)      for j in 0..15
 *   weight j + 16 = d * ((qs[j] >> 4)   - 8)
 * Activation row: see quantize.ts (qs i8[n], d f32[n/32], sum i32[n/32]).
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * sum_j qw_j * qx_j    (integer inner sum)
 *
 * Rows r0..r1 of the weight matrix (n columns, row stride n/32*18 bytes) against nTok activation
 * rows; y[t * ldy + r]. The relaxed-SIMD build multiplies the raw nibbles (0..15, "i7") and
 * removes the -8 offset with the block's activation sum: sum (q-8)*x = sum q*x - 8*sum x.
 */
import { halfToFloat, hsumF32, dotI8, dotI8U7 } from "./common";
import { act_q8_0_bytes } from "./quantize";

// @ts-ignore: decorator
@inline
function dotRow(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 5;
  const dx = q + <usize>n;
  const sx = dx + (<usize>nb << 2);
  const low = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let b = 0;
  // Two blocks per iteration: two independent accumulators hide the convert/mul latency.
  for (; b + 1 < nb; b += 2) {
    const wb = w + <usize>b * 18;
    const qb = q + (<usize>b << 5);
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 20);
    let i0 = i32x4.splat(0);
    let i1 = i32x4.splat(0);
    if (ASC_FEATURE_RELAXED_SIMD) {
      i0 = dotI8U7(v128.load(qb), v128.and(v0, low), i0);
      i0 = dotI8U7(v128.load(qb, 16), i8x16.shr_u(v0, 4), i0);
      i1 = dotI8U7(v128.load(qb, 32), v128.and(v1, low), i1);
      i1 = dotI8U7(v128.load(qb, 48), i8x16.shr_u(v1, 4), i1);
      const s = v128.load64_zero(sx + (<usize>b << 2));
      // 8 * block sums into lane 0 of each block's partial sums (lane 4 = a zero lane).
      const off = i32x4.shl(s, 3);
      const zero = i32x4.splat(0);
      i0 = i32x4.sub(i0, i32x4.shuffle(off, zero, 0, 4, 4, 4));
      i1 = i32x4.sub(i1, i32x4.shuffle(off, zero, 1, 4, 4, 4));
    } else {
      i0 = dotI8(v128.load(qb), i8x16.sub(v128.and(v0, low), eight), i0);
      i0 = dotI8(v128.load(qb, 16), i8x16.sub(i8x16.shr_u(v0, 4), eight), i0);
      i1 = dotI8(v128.load(qb, 32), i8x16.sub(v128.and(v1, low), eight), i1);
      i1 = dotI8(v128.load(qb, 48), i8x16.sub(i8x16.shr_u(v1, 4), eight), i1);
    }
    const d0 = halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2));
    const d1 = halfToFloat(load<u16>(wb, 18)) * load<f32>(dx + (<usize>b << 2), 4);
    acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(i0), f32x4.splat(d0)));
    acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(i1), f32x4.splat(d1)));
  }
  let tail: f32 = 0;
  for (; b < nb; b++) {
    const wb = w + <usize>b * 18;
    const qb = q + (<usize>b << 5);
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const c = <i32>load<u8>(wb + 2 + <usize>j);
      s += ((c & 15) - 8) * <i32>load<i8>(qb + <usize>j) + ((c >> 4) - 8) * <i32>load<i8>(qb + 16 + <usize>j);
    }
    tail += <f32>s * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return hsumF32(f32x4.add(acc0, acc1)) + tail;
}

export function matmul_q4_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 5) * 18;
  const qStride = <usize>act_q8_0_bytes(n);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRow(wr, q + <usize>t * qStride, n));
    }
  }
}
