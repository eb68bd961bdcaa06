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
 * F16 sums in llama.cpp's order (src/kernels/reference/matmul.ts, dotF16 / f16Lanes: the
 * AVX-512 tinyBLAS and ggml_vec_dot_f16 orders, checked to the bit against llama.cpp's
 * mul_mat). A product of two halves is exact in f32, so mul+add equals llama.cpp's FMA (and
 * relaxed_madd, fused or not, gives the same bits):
 *   16 lanes when nTok >= 2, n % 16 == 0 and ldy (the matrix's row count) % 4 == 0: four f32x4
 *     accumulators per output over 16-column steps, then (a0+a2)+(a1+a3) and hsumF32;
 *   64 lanes otherwise (one token, MoE experts, odd shapes): sixteen f32x4 accumulators over
 *     64-column steps, halved pairwise (a[v] + a[v+8], a[v] + a[v+4], ...), then the leftover
 *     columns added in f64 and rounded once.
 * So an F16 result depends on how many tokens share the call, as llama.cpp's does.
 *
 * F32 is register-blocked, four weight rows against two tokens, and every dot product sums the
 * same way: one f32x4 accumulator over 4-column steps, a horizontal sum, then the scalar tail.
 */
import { halfToFloat, halves4, hsumF32, HALF_TO_SINGLE, HALVES_MASK, vconst, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { fma4, fusedMaddOk } from "./fma";
import { dotVecF32, reduce16x4 } from "./norm";

/** Weights w[j..j+3] as f32x4. */
// @ts-ignore: decorator
@inline
function load4<W>(w: usize, j: i32): v128 {
  if (sizeof<W>() == 2) {
    return halves4(i32x4.extend_low_i16x8_s(v128.load64_zero(w + (<usize>j << 1))), vconst(V_HALF_TO_SINGLE), vconst(V_SCALES4_MASK));
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

/** a + w * x for f32x4 (w * x exact here: halves times halves). */
// @ts-ignore: decorator
@inline
function madd(w: v128, x: v128, a: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(w, x, a);
  } else {
    return f32x4.add(a, f32x4.mul(w, x));
  }
}

/** Halves w[j..j+7] as two f32x4 (low, high). */
// @ts-ignore: decorator
@inline
function half8lo(h: v128, magic: v128, mask: v128): v128 {
  return halves4(i32x4.extend_low_i16x8_s(h), magic, mask);
}
// @ts-ignore: decorator
@inline
function half8hi(h: v128, magic: v128, mask: v128): v128 {
  return halves4(i32x4.extend_high_i16x8_s(h), magic, mask);
}

/** 64-lane order (ggml_vec_dot_f16): one row against one token. */
function dotF16x64(w: usize, x: usize, n: i32): f32 {
  const magic = vconst(V_HALF_TO_SINGLE), mask = vconst(V_SCALES4_MASK);
  const body = n & ~63;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  let a8 = f32x4.splat(0), a9 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
  let a12 = f32x4.splat(0), a13 = f32x4.splat(0), a14 = f32x4.splat(0), a15 = f32x4.splat(0);
  for (let j = 0; j < body; j += 64) {
    const wj = w + (<usize>j << 1);
    const xj = x + (<usize>j << 2);
    let h = v128.load(wj);
    a0 = madd(half8lo(h, magic, mask), v128.load(xj), a0);
    a1 = madd(half8hi(h, magic, mask), v128.load(xj, 16), a1);
    h = v128.load(wj, 16);
    a2 = madd(half8lo(h, magic, mask), v128.load(xj, 32), a2);
    a3 = madd(half8hi(h, magic, mask), v128.load(xj, 48), a3);
    h = v128.load(wj, 32);
    a4 = madd(half8lo(h, magic, mask), v128.load(xj, 64), a4);
    a5 = madd(half8hi(h, magic, mask), v128.load(xj, 80), a5);
    h = v128.load(wj, 48);
    a6 = madd(half8lo(h, magic, mask), v128.load(xj, 96), a6);
    a7 = madd(half8hi(h, magic, mask), v128.load(xj, 112), a7);
    h = v128.load(wj, 64);
    a8 = madd(half8lo(h, magic, mask), v128.load(xj, 128), a8);
    a9 = madd(half8hi(h, magic, mask), v128.load(xj, 144), a9);
    h = v128.load(wj, 80);
    a10 = madd(half8lo(h, magic, mask), v128.load(xj, 160), a10);
    a11 = madd(half8hi(h, magic, mask), v128.load(xj, 176), a11);
    h = v128.load(wj, 96);
    a12 = madd(half8lo(h, magic, mask), v128.load(xj, 192), a12);
    a13 = madd(half8hi(h, magic, mask), v128.load(xj, 208), a13);
    h = v128.load(wj, 112);
    a14 = madd(half8lo(h, magic, mask), v128.load(xj, 224), a14);
    a15 = madd(half8hi(h, magic, mask), v128.load(xj, 240), a15);
  }
  // 64 -> 32 -> 16 -> 8 -> 4 lanes, then hsumF32 (4 -> 2 -> 1).
  a0 = f32x4.add(a0, a8); a1 = f32x4.add(a1, a9); a2 = f32x4.add(a2, a10); a3 = f32x4.add(a3, a11);
  a4 = f32x4.add(a4, a12); a5 = f32x4.add(a5, a13); a6 = f32x4.add(a6, a14); a7 = f32x4.add(a7, a15);
  a0 = f32x4.add(a0, a4); a1 = f32x4.add(a1, a5); a2 = f32x4.add(a2, a6); a3 = f32x4.add(a3, a7);
  let sum = <f64>hsumF32(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)));
  for (let j = body; j < n; j++) sum += <f64>(halfToFloat(load<u16>(w + (<usize>j << 1))) * load<f32>(x + (<usize>j << 2)));
  return <f32>sum;
}

/** 16-lane order (tinyBLAS): one row against tokens t and t+1 (n % 16 == 0). */
// @ts-ignore: decorator
@inline
function dotF16x16Pair(w: usize, x0: usize, x1: usize, n: i32, y0: usize, y1: usize): void {
  const magic = vconst(V_HALF_TO_SINGLE), mask = vconst(V_SCALES4_MASK);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  for (let j = 0; j < n; j += 16) {
    const wj = w + (<usize>j << 1);
    const o = <usize>j << 2;
    let h = v128.load(wj);
    let m = half8lo(h, magic, mask);
    a0 = madd(m, v128.load(x0 + o), a0);
    b0 = madd(m, v128.load(x1 + o), b0);
    m = half8hi(h, magic, mask);
    a1 = madd(m, v128.load(x0 + o, 16), a1);
    b1 = madd(m, v128.load(x1 + o, 16), b1);
    h = v128.load(wj, 16);
    m = half8lo(h, magic, mask);
    a2 = madd(m, v128.load(x0 + o, 32), a2);
    b2 = madd(m, v128.load(x1 + o, 32), b2);
    m = half8hi(h, magic, mask);
    a3 = madd(m, v128.load(x0 + o, 48), a3);
    b3 = madd(m, v128.load(x1 + o, 48), b3);
  }
  store<f32>(y0, hsumF32(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3))));
  store<f32>(y1, hsumF32(f32x4.add(f32x4.add(b0, b2), f32x4.add(b1, b3))));
}

/** 16-lane order, one row against one token. */
function dotF16x16(w: usize, x: usize, n: i32): f32 {
  const magic = vconst(V_HALF_TO_SINGLE), mask = vconst(V_SCALES4_MASK);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let j = 0; j < n; j += 16) {
    const wj = w + (<usize>j << 1);
    const xj = x + (<usize>j << 2);
    let h = v128.load(wj);
    a0 = madd(half8lo(h, magic, mask), v128.load(xj), a0);
    a1 = madd(half8hi(h, magic, mask), v128.load(xj, 16), a1);
    h = v128.load(wj, 16);
    a2 = madd(half8lo(h, magic, mask), v128.load(xj, 32), a2);
    a3 = madd(half8hi(h, magic, mask), v128.load(xj, 48), a3);
  }
  return hsumF32(f32x4.add(f32x4.add(a0, a2), f32x4.add(a1, a3)));
}

/** x: nTok rows of n f32, already rounded to f16 precision. */
export function matmul_f16(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>n << 1;
  const xBytes = <usize>n << 2;
  const yStride = <usize>ldy << 2;
  if (nTok >= 2 && (n & 15) == 0 && (ldy & 3) == 0) {
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rowBytes;
      const yr = y + (<usize>r << 2);
      let t = 0;
      for (; t + 2 <= nTok; t += 2) {
        const x0 = x + <usize>t * xBytes;
        dotF16x16Pair(wr, x0, x0 + xBytes, n, yr + <usize>t * yStride, yr + <usize>(t + 1) * yStride);
      }
      if (t < nTok) store<f32>(yr + <usize>t * yStride, dotF16x16(wr, x + <usize>t * xBytes, n));
    }
    return;
  }
  for (let t = 0; t < nTok; t++) {
    const xt = x + <usize>t * xBytes;
    const yt = y + <usize>t * yStride;
    for (let r = r0; r < r1; r++) store<f32>(yt + (<usize>r << 2), dotF16x64(w + <usize>r * rowBytes, xt, n));
  }
}

export function matmul_f32(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmul<f32>(w, x, y, n, r0, r1, nTok, ldy);
}

/**
 * tinyBLAS's F32 dot product with AVX-512 (llama.cpp's F32 product for two or more tokens when
 * n % 16 == 0 and the matrix's rows % 4 == 0): one 16-lane accumulator (four f32x4), x*y + acc
 * fused, then _mm512_reduce_add_ps.
 */
// @ts-ignore: decorator
@inline
function dotTinyF32(a: usize, b: usize, n: i32, fused: bool): f32 {
  const z = f32x4.splat(0);
  let c0 = z, c1 = z, c2 = z, c3 = z;
  for (let i = 0; i < n; i += 16) {
    const pa = a + (<usize>i << 2), pb = b + (<usize>i << 2);
    c0 = fma4(v128.load(pa), v128.load(pb), c0, fused);
    c1 = fma4(v128.load(pa, 16), v128.load(pb, 16), c1, fused);
    c2 = fma4(v128.load(pa, 32), v128.load(pb, 32), c2, fused);
    c3 = fma4(v128.load(pa, 48), v128.load(pb, 48), c3, fused);
  }
  return reduce16x4(c0, c1, c2, c3);
}

// @ts-ignore: decorator
@inline
function matmulF32Llama(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32, fused: bool): void {
  const rowBytes = <usize>n << 2;
  const yStride = <usize>ldy << 2;
  const tiny = nTok >= 2 && (n & 15) == 0 && (ldy & 3) == 0;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * rowBytes;
      store<f32>(y + <usize>t * yStride + (<usize>r << 2), tiny ? dotTinyF32(wr, xt, n, fused) : dotVecF32(wr, xt, n, fused));
    }
  }
}

/**
 * F32 weights in llama.cpp's order: tinyBLAS's where it takes the product, else ggml_vec_dot_f32's
 * (src/kernels/reference/attention.ts, dotF32Tiny / dotF32). One (row, token) at a time, so
 * slower than matmul_f32: the model asks for it only where an F16 product follows (the MoE
 * router of an F16 model).
 */
export function matmul_f32_llama(w: usize, x: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD && fusedMaddOk()) matmulF32Llama(w, x, y, n, r0, r1, nTok, ldy, true);
  else matmulF32Llama(w, x, y, n, r0, r1, nTok, ldy, false);
}
