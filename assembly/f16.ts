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

/*
 * Every dot product, whichever path computes it, sums the same way: one f32x4 accumulator over
 * 4-column steps, a horizontal sum, then the scalar tail. So a token's result does not depend on
 * how many tokens share the call (a prompt evaluated at once or token by token, a KV cache reused
 * or not, gives bit-identical logits).
 */
function dotRowF16(w: usize, x: usize, n: i32): f32 {
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(0x7fff);
  const n4 = n & ~3;
  let a = f32x4.splat(0);
  for (let j = 0; j < n4; j += 4) {
    const m = halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w + (<usize>j << 1))), magic, mask);
    a = f32x4.add(a, f32x4.mul(m, v128.load(x + (<usize>j << 2))));
  }
  return hsumF32(a) + tailF16(w, x, n4, n);
}

function dotRowF32(w: usize, x: usize, n: i32): f32 {
  const n4 = n & ~3;
  let a = f32x4.splat(0);
  for (let j = 0; j < n4; j += 4) {
    const o = <usize>j << 2;
    a = f32x4.add(a, f32x4.mul(v128.load(w + o), v128.load(x + o)));
  }
  return hsumF32(a) + tailF32(w, x, n4, n);
}

/** Scalar tail of one F16 dot product: columns [j0, n). */
@inline function tailF16(w: usize, x: usize, j0: i32, n: i32): f32 {
  let s: f32 = 0;
  for (let j = j0; j < n; j++) s += halfToFloat(load<u16>(w + (<usize>j << 1))) * load<f32>(x + (<usize>j << 2));
  return s;
}

/**
 * x: nTok rows of n f32 (already rounded to f16 precision), contiguous.
 * Blocked like matmul_f32 (four rows against two tokens): each row's halves are widened once
 * per block and used for both tokens, which halves the conversion work of prompt processing.
 */
export function matmul_f16(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n << 1;
  const xBytes = <usize>n << 2;
  const yStride = <usize>ldy << 2;
  const n4 = n & ~3;
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(0x7fff);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    let t = 0;
    for (; t + 2 <= nTok; t += 2) {
      const x0 = x + <usize>t * xBytes;
      const x1 = x0 + xBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const o = <usize>j << 2;
        const h = <usize>j << 1;
        const v0 = v128.load(x0 + o);
        const v1 = v128.load(x1 + o);
        let m = halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w0 + h)), magic, mask);
        a00 = f32x4.add(a00, f32x4.mul(m, v0));
        a01 = f32x4.add(a01, f32x4.mul(m, v1));
        m = halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w1 + h)), magic, mask);
        a10 = f32x4.add(a10, f32x4.mul(m, v0));
        a11 = f32x4.add(a11, f32x4.mul(m, v1));
        m = halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w2 + h)), magic, mask);
        a20 = f32x4.add(a20, f32x4.mul(m, v0));
        a21 = f32x4.add(a21, f32x4.mul(m, v1));
        m = halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w3 + h)), magic, mask);
        a30 = f32x4.add(a30, f32x4.mul(m, v0));
        a31 = f32x4.add(a31, f32x4.mul(m, v1));
      }
      const y0 = y + <usize>t * yStride + (<usize>r << 2);
      const y1 = y0 + yStride;
      store<f32>(y0, hsumF32(a00) + tailF16(w0, x0, n4, n));
      store<f32>(y0, hsumF32(a10) + tailF16(w1, x0, n4, n), 4);
      store<f32>(y0, hsumF32(a20) + tailF16(w2, x0, n4, n), 8);
      store<f32>(y0, hsumF32(a30) + tailF16(w3, x0, n4, n), 12);
      store<f32>(y1, hsumF32(a01) + tailF16(w0, x1, n4, n));
      store<f32>(y1, hsumF32(a11) + tailF16(w1, x1, n4, n), 4);
      store<f32>(y1, hsumF32(a21) + tailF16(w2, x1, n4, n), 8);
      store<f32>(y1, hsumF32(a31) + tailF16(w3, x1, n4, n), 12);
    }
    for (; t < nTok; t++) {
      // Decode (one token): four rows at once, four independent accumulators.
      const xt = x + <usize>t * xBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const v = v128.load(xt + (<usize>j << 2));
        const h = <usize>j << 1;
        a0 = f32x4.add(a0, f32x4.mul(halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w0 + h)), magic, mask), v));
        a1 = f32x4.add(a1, f32x4.mul(halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w1 + h)), magic, mask), v));
        a2 = f32x4.add(a2, f32x4.mul(halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w2 + h)), magic, mask), v));
        a3 = f32x4.add(a3, f32x4.mul(halves4(i32x4.extend_low_i16x8_u(v128.load64_zero(w3 + h)), magic, mask), v));
      }
      const yt = y + <usize>t * yStride + (<usize>r << 2);
      store<f32>(yt, hsumF32(a0) + tailF16(w0, xt, n4, n));
      store<f32>(yt, hsumF32(a1) + tailF16(w1, xt, n4, n), 4);
      store<f32>(yt, hsumF32(a2) + tailF16(w2, xt, n4, n), 8);
      store<f32>(yt, hsumF32(a3) + tailF16(w3, xt, n4, n), 12);
    }
  }
  for (; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + <usize>t * yStride + (<usize>r << 2), dotRowF16(w + <usize>r * rowBytes, x + <usize>t * xBytes, n));
    }
  }
}

/** Scalar tail of one dot product: columns [j0, n). */
@inline function tailF32(w: usize, x: usize, j0: i32, n: i32): f32 {
  let s: f32 = 0;
  for (let j = j0; j < n; j++) s += load<f32>(w + (<usize>j << 2)) * load<f32>(x + (<usize>j << 2));
  return s;
}

/**
 * F32 matrix x matrix, register-blocked: four weight rows against two tokens at a time, so each
 * loaded vector feeds several multiply-adds (six loads per eight products instead of two per
 * one). Prompt processing and training (where nTok is large) are bound by this, not by memory.
 * Rows and tokens left over at the edges fall back to single dot products.
 */
export function matmul_f32(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n << 2;
  const n4 = n & ~3;
  const yStride = <usize>ldy << 2;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    let t = 0;
    for (; t + 2 <= nTok; t += 2) {
      const x0 = x + <usize>t * rowBytes;
      const x1 = x0 + rowBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const o = <usize>j << 2;
        const v0 = v128.load(x0 + o);
        const v1 = v128.load(x1 + o);
        let m = v128.load(w0 + o);
        a00 = f32x4.add(a00, f32x4.mul(m, v0));
        a01 = f32x4.add(a01, f32x4.mul(m, v1));
        m = v128.load(w1 + o);
        a10 = f32x4.add(a10, f32x4.mul(m, v0));
        a11 = f32x4.add(a11, f32x4.mul(m, v1));
        m = v128.load(w2 + o);
        a20 = f32x4.add(a20, f32x4.mul(m, v0));
        a21 = f32x4.add(a21, f32x4.mul(m, v1));
        m = v128.load(w3 + o);
        a30 = f32x4.add(a30, f32x4.mul(m, v0));
        a31 = f32x4.add(a31, f32x4.mul(m, v1));
      }
      const y0 = y + <usize>t * yStride + (<usize>r << 2);
      const y1 = y0 + yStride;
      store<f32>(y0, hsumF32(a00) + tailF32(w0, x0, n4, n));
      store<f32>(y0, hsumF32(a10) + tailF32(w1, x0, n4, n), 4);
      store<f32>(y0, hsumF32(a20) + tailF32(w2, x0, n4, n), 8);
      store<f32>(y0, hsumF32(a30) + tailF32(w3, x0, n4, n), 12);
      store<f32>(y1, hsumF32(a01) + tailF32(w0, x1, n4, n));
      store<f32>(y1, hsumF32(a11) + tailF32(w1, x1, n4, n), 4);
      store<f32>(y1, hsumF32(a21) + tailF32(w2, x1, n4, n), 8);
      store<f32>(y1, hsumF32(a31) + tailF32(w3, x1, n4, n), 12);
    }
    for (; t < nTok; t++) {
      // Decode (one token): four rows at once, four independent accumulators.
      const xt = x + <usize>t * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const o = <usize>j << 2;
        const v = v128.load(xt + o);
        a0 = f32x4.add(a0, f32x4.mul(v128.load(w0 + o), v));
        a1 = f32x4.add(a1, f32x4.mul(v128.load(w1 + o), v));
        a2 = f32x4.add(a2, f32x4.mul(v128.load(w2 + o), v));
        a3 = f32x4.add(a3, f32x4.mul(v128.load(w3 + o), v));
      }
      const yt = y + <usize>t * yStride + (<usize>r << 2);
      store<f32>(yt, hsumF32(a0) + tailF32(w0, xt, n4, n));
      store<f32>(yt, hsumF32(a1) + tailF32(w1, xt, n4, n), 4);
      store<f32>(yt, hsumF32(a2) + tailF32(w2, xt, n4, n), 8);
      store<f32>(yt, hsumF32(a3) + tailF32(w3, xt, n4, n), 12);
    }
  }
  for (; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + <usize>t * yStride + (<usize>r << 2), dotRowF32(w + <usize>r * rowBytes, x + <usize>t * rowBytes, n));
    }
  }
}
