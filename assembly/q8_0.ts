/*
 * Q8_0 weights x Q8_0 activations.
 *
 * Q8_0 block (34 bytes, 32 weights):   | d: f16 | qs: i8[32] |      weight j = d * qs[j]
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * sum_j qw_j * qx_j
 *
 * Speed: read as 16-bit lanes, 16 code bytes widen to i16 with three shifts
 * ((lane << 8) >> 8 = even byte, lane >> 8 = odd byte, arithmetic), so the activations are stored
 * widened to i16, evens then odds per 16 (quantize.ts, "Q8_0 order").
 *
 * Summation order: llama.cpp's (see dotRow). dotRow is one (row, token) pair; dot1x4 (one row,
 * four tokens, for prompt processing) decodes each block once for four tokens and gives dotRow's
 * bits.
 */
import { halfToFloat } from "./common";
import { fma4, fusedMaddOk } from "./fma";

/** Code vector k (0..3) of a block whose 32 code bytes are v0, v1, widened to i16 in Q8_0 order. */
// @ts-ignore: decorator
@inline
function codes(v0: v128, v1: v128, k: i32): v128 {
  const v = k < 2 ? v0 : v1;
  return k & 1 ? i16x8.shr_s(v, 8) : i16x8.shr_s(i16x8.shl(v, 8), 8);
}

/**
 * Block b's integer sums in ggml's eight lanes for one (row, token): lane i of sumsLo holds codes
 * 4i..4i+3 times their activations (i < 4: the even codes of c0 and odd of c1 pair up in
 * dot_i16x8_s), sumsHi the same for lanes 4..7 (codes 16..31).
 */
// @ts-ignore: decorator
@inline
function sumsLo(c0: v128, c1: v128, qb: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(c0, v128.load(qb)), i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
}

// @ts-ignore: decorator
@inline
function sumsHi(c2: v128, c3: v128, qb: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(c2, v128.load(qb, 32)), i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/** hsum_float_8 of lanes 0..3 (lo) and 4..7 (hi): ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)). */
// @ts-ignore: decorator
@inline
function hsum8(lo: v128, hi: v128): f32 {
  const v = f32x4.add(lo, hi);
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 2)) + (f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 3));
}

/**
 * One row (at w) against one token (activations at q), in ggml's x86 order for Q8_0
 * (ggml_vec_dot_q8_0_q8_0 with AVX2 / AVX-512, and tinyBLAS's Q0 kernels for two or more tokens;
 * src/kernels/reference/matmul.ts, dotQ8_0): eight f32 lanes, lane i += d_b * S_b,i fused
 * (d_b = dW_b * dX_b rounded, S_b,i the integer sum of codes 4i..4i+3), then hsum_float_8.
 * yp: the row's output slot (unused; kept for the callers' signature).
 */
// @ts-ignore: decorator
@inline
export function dotRow(w: usize, q: usize, n: i32, yp: usize): f32 {
  const fused = fusedMaddOk();
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  let lo = f32x4.splat(0);
  let hi = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 6);
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 18);
    const d = f32x4.splat(halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
    lo = fma4(d, f32x4.convert_i32x4_s(sumsLo(codes(v0, v1, 0), codes(v0, v1, 1), qb)), lo, fused);
    hi = fma4(d, f32x4.convert_i32x4_s(sumsHi(codes(v0, v1, 2), codes(v0, v1, 3), qb)), hi, fused);
  }
  return hsum8(lo, hi);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block is decoded once for the four tokens; every token takes dotRow's steps, so its bits.
 */
// @ts-ignore: decorator
@inline
export function dot1x4(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const fused = fusedMaddOk();
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  let lo0 = f32x4.splat(0), hi0 = lo0, lo1 = lo0, hi1 = lo0, lo2 = lo0, hi2 = lo0, lo3 = lo0, hi3 = lo0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 6);
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 18);
    const c0 = codes(v0, v1, 0), c1 = codes(v0, v1, 1), c2 = codes(v0, v1, 2), c3 = codes(v0, v1, 3);
    const dw = halfToFloat(load<u16>(wb));
    const xs = dx + (<usize>b << 2);
    let d = f32x4.splat(dw * load<f32>(xs));
    lo0 = fma4(d, f32x4.convert_i32x4_s(sumsLo(c0, c1, qb)), lo0, fused);
    hi0 = fma4(d, f32x4.convert_i32x4_s(sumsHi(c2, c3, qb)), hi0, fused);
    d = f32x4.splat(dw * load<f32>(xs + qs));
    lo1 = fma4(d, f32x4.convert_i32x4_s(sumsLo(c0, c1, qb + qs)), lo1, fused);
    hi1 = fma4(d, f32x4.convert_i32x4_s(sumsHi(c2, c3, qb + qs)), hi1, fused);
    d = f32x4.splat(dw * load<f32>(xs + 2 * qs));
    lo2 = fma4(d, f32x4.convert_i32x4_s(sumsLo(c0, c1, qb + 2 * qs)), lo2, fused);
    hi2 = fma4(d, f32x4.convert_i32x4_s(sumsHi(c2, c3, qb + 2 * qs)), hi2, fused);
    d = f32x4.splat(dw * load<f32>(xs + 3 * qs));
    lo3 = fma4(d, f32x4.convert_i32x4_s(sumsLo(c0, c1, qb + 3 * qs)), lo3, fused);
    hi3 = fma4(d, f32x4.convert_i32x4_s(sumsHi(c2, c3, qb + 3 * qs)), hi3, fused);
  }
  store<f32>(yp, hsum8(lo0, hi0));
  store<f32>(yp + ys, hsum8(lo1, hi1));
  store<f32>(yp + 2 * ys, hsum8(lo2, hi2));
  store<f32>(yp + 3 * ys, hsum8(lo3, hi3));
}
