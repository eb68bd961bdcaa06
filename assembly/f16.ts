/*
 * F16 weights x f16-rounded f32 activations, and F32 weights x f32 activations.
 *
 * F16 row: u16[n] little-endian halves. ggml converts an F16 matmul's input to f16 first, so the
 * caller passes x already rounded to half precision (round_f16 in common.ts) but stored as f32.
 *   y[t][r] = sum_j half(w[r][j]) * x[t][j]
 * Halves widen to f32 in SIMD: shift the sign-extended half into place, rescale by 2^112 (exact
 * also for subnormals; the multiply keeps the sign). Weights are finite (no Inf/NaN path here).
 * F32 row: f32[n].
 *
 * One kernel serves both, generic over the weight element W (u16 = half, f32): only loading
 * four weights differs. It is register-blocked, four weight rows against two tokens, so each
 * loaded (and, for F16, widened) weight vector feeds two tokens and each activation vector four
 * rows; prompt processing and training are bound by this, not by memory.
 *
 * Every dot product, whichever path computes it, sums the same way: one f32x4 accumulator over
 * 4-column steps, a horizontal sum, then the scalar tail. So a token's result does not depend on
 * how many tokens share the call (a prompt evaluated at once or token by token, a KV cache reused
 * or not, gives bit-identical logits).
 */
import { halfToFloat, halves4, hsumF32, HALF_TO_SINGLE, HALVES_MASK } from "./common";

/** Weights w[j..j+3] as f32x4. */
// @ts-ignore: decorator
@inline
function load4<W>(w: usize, j: i32): v128 {
  if (sizeof<W>() == 2) {
    return halves4(i32x4.extend_low_i16x8_s(v128.load64_zero(w + (<usize>j << 1))), f32x4.splat(HALF_TO_SINGLE), i32x4.splat(HALVES_MASK));
  }
  return v128.load(w + (<usize>j << 2));
}

/** Scalar tail of one dot product: columns [j0, n). */
// @ts-ignore: decorator
@inline
function tail<W>(w: usize, x: usize, j0: i32, n: i32): f32 {
  let s: f32 = 0;
  for (let j = j0; j < n; j++) {
    const wj: f32 = sizeof<W>() == 2 ? halfToFloat(load<u16>(w + (<usize>j << 1))) : load<f32>(w + (<usize>j << 2));
    s += wj * load<f32>(x + (<usize>j << 2));
  }
  return s;
}

function dotRow<W>(w: usize, x: usize, n: i32): f32 {
  const n4 = n & ~3;
  let a = f32x4.splat(0);
  for (let j = 0; j < n4; j += 4) a = f32x4.add(a, f32x4.mul(load4<W>(w, j), v128.load(x + (<usize>j << 2))));
  return hsumF32(a) + tail<W>(w, x, n4, n);
}

/** y[t * ldy + r] = w[r] . x[t] for rows [r0, r1), tokens [0, nTok); x rows of n f32, contiguous. */
function matmul<W>(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n * sizeof<W>();
  const xBytes = <usize>n << 2;
  const yStride = <usize>ldy << 2;
  const n4 = n & ~3;
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
        const v0 = v128.load(x0 + o);
        const v1 = v128.load(x1 + o);
        let m = load4<W>(w0, j);
        a00 = f32x4.add(a00, f32x4.mul(m, v0));
        a01 = f32x4.add(a01, f32x4.mul(m, v1));
        m = load4<W>(w1, j);
        a10 = f32x4.add(a10, f32x4.mul(m, v0));
        a11 = f32x4.add(a11, f32x4.mul(m, v1));
        m = load4<W>(w2, j);
        a20 = f32x4.add(a20, f32x4.mul(m, v0));
        a21 = f32x4.add(a21, f32x4.mul(m, v1));
        m = load4<W>(w3, j);
        a30 = f32x4.add(a30, f32x4.mul(m, v0));
        a31 = f32x4.add(a31, f32x4.mul(m, v1));
      }
      const y0 = y + <usize>t * yStride + (<usize>r << 2);
      const y1 = y0 + yStride;
      store<f32>(y0, hsumF32(a00) + tail<W>(w0, x0, n4, n));
      store<f32>(y0, hsumF32(a10) + tail<W>(w1, x0, n4, n), 4);
      store<f32>(y0, hsumF32(a20) + tail<W>(w2, x0, n4, n), 8);
      store<f32>(y0, hsumF32(a30) + tail<W>(w3, x0, n4, n), 12);
      store<f32>(y1, hsumF32(a01) + tail<W>(w0, x1, n4, n));
      store<f32>(y1, hsumF32(a11) + tail<W>(w1, x1, n4, n), 4);
      store<f32>(y1, hsumF32(a21) + tail<W>(w2, x1, n4, n), 8);
      store<f32>(y1, hsumF32(a31) + tail<W>(w3, x1, n4, n), 12);
    }
    for (; t < nTok; t++) {
      // Decode (one token): four rows at once, four independent accumulators.
      const xt = x + <usize>t * xBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const v = v128.load(xt + (<usize>j << 2));
        a0 = f32x4.add(a0, f32x4.mul(load4<W>(w0, j), v));
        a1 = f32x4.add(a1, f32x4.mul(load4<W>(w1, j), v));
        a2 = f32x4.add(a2, f32x4.mul(load4<W>(w2, j), v));
        a3 = f32x4.add(a3, f32x4.mul(load4<W>(w3, j), v));
      }
      const yt = y + <usize>t * yStride + (<usize>r << 2);
      store<f32>(yt, hsumF32(a0) + tail<W>(w0, xt, n4, n));
      store<f32>(yt, hsumF32(a1) + tail<W>(w1, xt, n4, n), 4);
      store<f32>(yt, hsumF32(a2) + tail<W>(w2, xt, n4, n), 8);
      store<f32>(yt, hsumF32(a3) + tail<W>(w3, xt, n4, n), 12);
    }
  }
  for (; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + <usize>t * yStride + (<usize>r << 2), dotRow<W>(w + <usize>r * rowBytes, x + <usize>t * xBytes, n));
    }
  }
}

/** x: nTok rows of n f32, already rounded to f16 precision. */
export function matmul_f16(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmul<u16>(w, x, y, n, r0, r1, nTok, ldy);
}

export function matmul_f32(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmul<f32>(w, x, y, n, r0, r1, nTok, ldy);
}
