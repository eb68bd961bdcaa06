/*
 * F16 weights x f16-rounded f32 activations, and F32 weights x f32 activations.
 *
 * F16 row: u16[n] little-endian halves. ggml converts an F16 matmul's input to f16 first, so the
 * caller passes x already rounded to half precision (round_f16 in common.ts) but stored as f32.
 *   y[t][r] = sum_j half(w[r][j]) * x[t][j]
 * Halves widen to f32 in SIMD: shift the 15 exponent+mantissa bits into place, rescale by 2^112
 * (exact also for subnormals), put the sign back. Weights are finite (no Inf/NaN path here).
 * F32 row: f32[n]. Any n: SIMD over 8 (F16) or 16 (F32) columns, then a scalar tail.
 */
import { halfToFloat, halves4, hsumF32, HALF_TO_SINGLE } from "./common";

function dotRowF16(w: usize, x: usize, n: i32): f32 {
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(0x7fff);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const h = v128.load(w + (<usize>j << 1));
    const lo = halves4(i32x4.extend_low_i16x8_u(h), magic, mask);
    const hi = halves4(i32x4.extend_high_i16x8_u(h), magic, mask);
    const xp = x + (<usize>j << 2);
    a0 = f32x4.add(a0, f32x4.mul(lo, v128.load(xp)));
    a1 = f32x4.add(a1, f32x4.mul(hi, v128.load(xp, 16)));
  }
  let s = hsumF32(f32x4.add(a0, a1));
  for (; j < n; j++) s += halfToFloat(load<u16>(w + (<usize>j << 1))) * load<f32>(x + (<usize>j << 2));
  return s;
}

function dotRowF32(w: usize, x: usize, n: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const wp = w + (<usize>j << 2);
    const xp = x + (<usize>j << 2);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(wp), v128.load(xp)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(wp, 16), v128.load(xp, 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(wp, 32), v128.load(xp, 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(wp, 48), v128.load(xp, 48)));
  }
  let s = hsumF32(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; j < n; j++) s += load<f32>(w + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
  return s;
}

/** x: nTok rows of n f32 (already rounded to f16 precision), contiguous. */
export function matmul_f16(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n << 1;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRowF16(w + <usize>r * rowBytes, x + ((<usize>t * <usize>n) << 2), n));
    }
  }
}

export function matmul_f32(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n << 2;
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRowF32(w + <usize>r * rowBytes, x + ((<usize>t * <usize>n) << 2), n));
    }
  }
}
