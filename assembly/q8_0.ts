/*
 * Q8_0 weights x Q8_0 activations.
 *
 * Q8_0 block (34 bytes, 32 weights):   | d: f16 | qs: i8[32] |      weight j = d * qs[j]
 * Activation row: see quantize.ts.
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * sum_j qw_j * qx_j
 *
 * The relaxed-SIMD build moves each weight's sign onto the activation (|w| is 0..127, an "i7"):
 * sum w*x = sum |w| * (sign(w) x). ggml's quantizer never emits -128, whose |w| would not fit.
 */
import { halfToFloat, hsumF32, dotI8, dotI8U7 } from "./common";
import { act_q8_0_bytes } from "./quantize";

// @ts-ignore: decorator
@inline
function dotSigned(x: v128, w: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const s = i8x16.shr_s(w, 7);
    return dotI8U7(i8x16.sub(v128.xor(x, s), s), i8x16.abs(w), acc);
  } else {
    return dotI8(x, w, acc);
  }
}

// @ts-ignore: decorator
@inline
function dotRow(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 5;
  const dx = q + <usize>n;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let b = 0;
  for (; b + 1 < nb; b += 2) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 5);
    let i0 = dotSigned(v128.load(qb), v128.load(wb, 2), i32x4.splat(0));
    i0 = dotSigned(v128.load(qb, 16), v128.load(wb, 18), i0);
    let i1 = dotSigned(v128.load(qb, 32), v128.load(wb, 36), i32x4.splat(0));
    i1 = dotSigned(v128.load(qb, 48), v128.load(wb, 52), i1);
    const d0 = halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2));
    const d1 = halfToFloat(load<u16>(wb, 34)) * load<f32>(dx + (<usize>b << 2), 4);
    acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(i0), f32x4.splat(d0)));
    acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(i1), f32x4.splat(d1)));
  }
  let tail: f32 = 0;
  for (; b < nb; b++) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 5);
    let s = 0;
    for (let j = 0; j < 32; j++) s += <i32>load<i8>(wb + 2 + <usize>j) * <i32>load<i8>(qb + <usize>j);
    tail += <f32>s * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return hsumF32(f32x4.add(acc0, acc1)) + tail;
}

export function matmul_q8_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 5) * 34;
  const qStride = <usize>act_q8_0_bytes(n);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRow(wr, q + <usize>t * qStride, n));
    }
  }
}
