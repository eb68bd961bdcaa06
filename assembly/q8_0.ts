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
import { fmaExact2, halfway4, hsum8 as hsum8F64, madd2, pairF64, round2 } from "./k_quants_low";

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
 * dotRow where relaxed_madd is not a fused multiply-add (fma.ts): the eight f32 lanes held as
 * four f64x2 and each step taken in f64 with a check for the rare double-rounding tie, as
 * k_quants_low.ts does (same bits as fmaf), converting the integer sums to f64 directly.
 */
function dotRowF64(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  const low29 = i32x4.splat(0x1fffffff);
  const half = i32x4.splat(0x10000000);
  const z = f64x2.splat(0);
  let a00 = z, a01 = z, a02 = z, a03 = z;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 6);
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 18);
    const c0 = codes(v0, v1, 0), c1 = codes(v0, v1, 1), c2 = codes(v0, v1, 2), c3 = codes(v0, v1, 3);
    {
      const d0: f32 = halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2));
      const dd0 = f64x2.splat(<f64>d0);
      const lo0 = sumsLo(c0, c1, qb), hi0 = sumsHi(c2, c3, qb);
      const s00 = pairF64(lo0, 0), s01 = pairF64(lo0, 1), s02 = pairF64(hi0, 0), s03 = pairF64(hi0, 1);
      const r00 = madd2(dd0, s00, a00), r01 = madd2(dd0, s01, a01), r02 = madd2(dd0, s02, a02), r03 = madd2(dd0, s03, a03);
      if (v128.any_true(v128.or(halfway4(r00, r01, low29, half), halfway4(r02, r03, low29, half)))) {
        a00 = fmaExact2(d0, s00, a00); a01 = fmaExact2(d0, s01, a01); a02 = fmaExact2(d0, s02, a02); a03 = fmaExact2(d0, s03, a03);
      } else {
        a00 = round2(r00); a01 = round2(r01); a02 = round2(r02); a03 = round2(r03);
      }
    }
  }
  return hsum8F64(a00, a01, a02, a03);
}

/** dot1x4 where relaxed_madd is not fused (see dotRowF64). */
function dot1x4F64(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  const low29 = i32x4.splat(0x1fffffff);
  const half = i32x4.splat(0x10000000);
  const z = f64x2.splat(0);
  let a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
  let a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 34;
    const qb = q + (<usize>b << 6);
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 18);
    const c0 = codes(v0, v1, 0), c1 = codes(v0, v1, 1), c2 = codes(v0, v1, 2), c3 = codes(v0, v1, 3);
    const dw = halfToFloat(load<u16>(wb));
    const xs = dx + (<usize>b << 2);
    {
      const d0: f32 = dw * load<f32>(xs);
      const dd0 = f64x2.splat(<f64>d0);
      const lo0 = sumsLo(c0, c1, qb), hi0 = sumsHi(c2, c3, qb);
      const s00 = pairF64(lo0, 0), s01 = pairF64(lo0, 1), s02 = pairF64(hi0, 0), s03 = pairF64(hi0, 1);
      const r00 = madd2(dd0, s00, a00), r01 = madd2(dd0, s01, a01), r02 = madd2(dd0, s02, a02), r03 = madd2(dd0, s03, a03);
      if (v128.any_true(v128.or(halfway4(r00, r01, low29, half), halfway4(r02, r03, low29, half)))) {
        a00 = fmaExact2(d0, s00, a00); a01 = fmaExact2(d0, s01, a01); a02 = fmaExact2(d0, s02, a02); a03 = fmaExact2(d0, s03, a03);
      } else {
        a00 = round2(r00); a01 = round2(r01); a02 = round2(r02); a03 = round2(r03);
      }
    }
    {
      const d1: f32 = dw * load<f32>(xs + qs);
      const dd1 = f64x2.splat(<f64>d1);
      const lo1 = sumsLo(c0, c1, qb + qs), hi1 = sumsHi(c2, c3, qb + qs);
      const s10 = pairF64(lo1, 0), s11 = pairF64(lo1, 1), s12 = pairF64(hi1, 0), s13 = pairF64(hi1, 1);
      const r10 = madd2(dd1, s10, a10), r11 = madd2(dd1, s11, a11), r12 = madd2(dd1, s12, a12), r13 = madd2(dd1, s13, a13);
      if (v128.any_true(v128.or(halfway4(r10, r11, low29, half), halfway4(r12, r13, low29, half)))) {
        a10 = fmaExact2(d1, s10, a10); a11 = fmaExact2(d1, s11, a11); a12 = fmaExact2(d1, s12, a12); a13 = fmaExact2(d1, s13, a13);
      } else {
        a10 = round2(r10); a11 = round2(r11); a12 = round2(r12); a13 = round2(r13);
      }
    }
    {
      const d2: f32 = dw * load<f32>(xs + 2 * qs);
      const dd2 = f64x2.splat(<f64>d2);
      const lo2 = sumsLo(c0, c1, qb + 2 * qs), hi2 = sumsHi(c2, c3, qb + 2 * qs);
      const s20 = pairF64(lo2, 0), s21 = pairF64(lo2, 1), s22 = pairF64(hi2, 0), s23 = pairF64(hi2, 1);
      const r20 = madd2(dd2, s20, a20), r21 = madd2(dd2, s21, a21), r22 = madd2(dd2, s22, a22), r23 = madd2(dd2, s23, a23);
      if (v128.any_true(v128.or(halfway4(r20, r21, low29, half), halfway4(r22, r23, low29, half)))) {
        a20 = fmaExact2(d2, s20, a20); a21 = fmaExact2(d2, s21, a21); a22 = fmaExact2(d2, s22, a22); a23 = fmaExact2(d2, s23, a23);
      } else {
        a20 = round2(r20); a21 = round2(r21); a22 = round2(r22); a23 = round2(r23);
      }
    }
    {
      const d3: f32 = dw * load<f32>(xs + 3 * qs);
      const dd3 = f64x2.splat(<f64>d3);
      const lo3 = sumsLo(c0, c1, qb + 3 * qs), hi3 = sumsHi(c2, c3, qb + 3 * qs);
      const s30 = pairF64(lo3, 0), s31 = pairF64(lo3, 1), s32 = pairF64(hi3, 0), s33 = pairF64(hi3, 1);
      const r30 = madd2(dd3, s30, a30), r31 = madd2(dd3, s31, a31), r32 = madd2(dd3, s32, a32), r33 = madd2(dd3, s33, a33);
      if (v128.any_true(v128.or(halfway4(r30, r31, low29, half), halfway4(r32, r33, low29, half)))) {
        a30 = fmaExact2(d3, s30, a30); a31 = fmaExact2(d3, s31, a31); a32 = fmaExact2(d3, s32, a32); a33 = fmaExact2(d3, s33, a33);
      } else {
        a30 = round2(r30); a31 = round2(r31); a32 = round2(r32); a33 = round2(r33);
      }
    }
  }
  store<f32>(yp, hsum8F64(a00, a01, a02, a03));
  store<f32>(yp + ys, hsum8F64(a10, a11, a12, a13));
  store<f32>(yp + 2 * ys, hsum8F64(a20, a21, a22, a23));
  store<f32>(yp + 3 * ys, hsum8F64(a30, a31, a32, a33));
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
  if (!fused) return dotRowF64(w, q, n);
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
  if (!fused) {
    dot1x4F64(w, q, qs, n, yp, ys);
    return;
  }
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
