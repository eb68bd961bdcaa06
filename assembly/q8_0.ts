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
 */
import { halfToFloat, hsumI32, scales4, HALF_TO_SINGLE, SCALES4_MASK } from "./common";
import { act_q8_0_i16_bytes } from "./quantize";
import { transposeSum } from "./q4_0";

// @ts-ignore: decorator
@inline
function blockDot(wb: usize, qb: usize): v128 {
  const v0 = v128.load(wb, 2);
  const v1 = v128.load(wb, 18);
  let s = i32x4.dot_i16x8_s(i16x8.shr_s(i16x8.shl(v0, 8), 8), v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_s(v0, 8), v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_s(i16x8.shl(v1, 8), 8), v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_s(v1, 8), v128.load(qb, 48)));
}

/** Row w (n/32 blocks) . activation row q; yp: this row's output slot (used as a fence). */
// @ts-ignore: decorator
@inline
export function dotRow(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(SCALES4_MASK);
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 3 < nb; b += 4) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 6);
    // The lane stores into this row's output slot are ordering fences: without them V8 hoists
    // all the group's loads above the arithmetic and spills half of them (7.3 vs 6.4 GB/s).
    const s0 = blockDot(wb, qb);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(wb + 34, qb + 64);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(wb + 68, qb + 128);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(wb + 102, qb + 192);
    const isum = transposeSum(s0, s1, s2, s3);
    const d = f32x4.mul(scales4(wb, 34, magic, mask), v128.load(dx + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), d));
  }
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
  for (; b < nb; b++) {
    const wb = w + <usize>b * 34;
    sum += <f32>hsumI32(blockDot(wb, q + (<usize>b << 6))) * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return sum;
}


export function matmul_q8_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 5) * 34;
  const qStride = <usize>act_q8_0_i16_bytes(n);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t++) {
      const yp = y + ((<usize>t * <usize>ldy + <usize>r) << 2);
      store<f32>(yp, dotRow(wr, q + <usize>t * qStride, n, yp));
    }
  }
}
