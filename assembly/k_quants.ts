/*
 * k-quant weights (Q4_K, Q5_K, Q6_K) x Q8_K activations. A super-block holds 256 weights.
 *
 * Q4_K (144 bytes): | d f16 | dmin f16 | scales u8[12] | qs u8[128] |
 *   8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m packed in `scales`:
 *     j < 4: sc = s[j] & 63,  m = s[j+4] & 63
 *     j >= 4: sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4,  m = (s[j+4] >> 4) | (s[j] >> 6) << 4
 *   64-value chunk c (0..3) reads qs[32c..32c+31]: low nibbles are sub-block 2c, high 2c+1.
 *   weight = d*sc*q - dmin*m
 * Q5_K (176 bytes): | d f16 | dmin f16 | scales u8[12] | qh u8[32] | qs u8[128] |
 *   as Q4_K, plus a 5th bit: sub-block 2c takes bit 2c of qh[l], sub-block 2c+1 bit 2c+1.
 * Q6_K (210 bytes): | ql u8[128] | qh u8[64] | scales i8[16] | d f16 |
 *   two 128-value halves h; in half h, for l in 0..31:
 *     v[l]    = (ql[l] & 15)    | ((qh[l] >> 0) & 3) << 4       v[l+32] = (ql[l+32] & 15) | ((qh[l] >> 2) & 3) << 4
 *     v[l+64] = (ql[l] >> 4)    | ((qh[l] >> 4) & 3) << 4       v[l+96] = (ql[l+32] >> 4) | ((qh[l] >> 6) & 3) << 4
 *   (ql, qh advance by 64, 32 per half); weight = d * scales[v/16] * (v - 32).
 *
 * Dot with a Q8_K row (d_x, q_x, bsum = sums of 16 q_x), per super-block:
 *   Q4_K/Q5_K: d_x*d * sum_j sc_j * (q_j . x_j)  -  d_x*dmin * sum_j m_j * (bsum_2j + bsum_2j+1)
 *   Q6_K:      d_x*d * (sum_s sc_s * (v_s . x_s)  -  32 * sum_s sc_s * bsum_s)      (s: 16 sub-blocks)
 * Inner products are exact integers; codes are 0..63 so relaxed SIMD applies directly.
 */
import { halfToFloat, hsumI32, dotI8U7 } from "./common";
import { act_q8_K_bytes } from "./quantize";

// @ts-ignore: decorator
@inline
function scaleK4(s: usize, j: i32): i32 {
  return j < 4
    ? <i32>load<u8>(s + <usize>j) & 63
    : (<i32>load<u8>(s + <usize>j + 4) & 15) | ((<i32>load<u8>(s + <usize>j - 4) >> 6) << 4);
}

// @ts-ignore: decorator
@inline
function minK4(s: usize, j: i32): i32 {
  return j < 4
    ? <i32>load<u8>(s + <usize>j + 4) & 63
    : (<i32>load<u8>(s + <usize>j + 4) >> 4) | ((<i32>load<u8>(s + <usize>j) >> 6) << 4);
}

/** Sub-block (32 values) integer dot of codes lo/hi-vector pair with activations at qx. */
// @ts-ignore: decorator
@inline
function dot32(qx: usize, c0: v128, c1: v128): v128 {
  return dotI8U7(v128.load(qx, 16), c1, dotI8U7(v128.load(qx), c0, i32x4.splat(0)));
}

function dotRowQ4K(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bs = dxs + (<usize>nb << 2);
  const low = i8x16.splat(0x0f);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 144;
    const qb = q + (<usize>b << 8);
    const sc = wb + 4;
    const qs = wb + 16;
    let acc = i32x4.splat(0);
    let mins = 0;
    for (let c = 0; c < 4; c++) {
      const v0 = v128.load(qs + (<usize>c << 5));
      const v1 = v128.load(qs + (<usize>c << 5), 16);
      const ja = c << 1;
      const ia = dot32(qb + (<usize>c << 6), v128.and(v0, low), v128.and(v1, low));
      const ib = dot32(qb + (<usize>c << 6) + 32, i8x16.shr_u(v0, 4), i8x16.shr_u(v1, 4));
      acc = i32x4.add(acc, i32x4.mul(ia, i32x4.splat(scaleK4(sc, ja))));
      acc = i32x4.add(acc, i32x4.mul(ib, i32x4.splat(scaleK4(sc, ja + 1))));
      const bsb = bs + (<usize>(b * 16 + ja * 2) << 2);
      mins += minK4(sc, ja) * (load<i32>(bsb) + load<i32>(bsb, 4));
      mins += minK4(sc, ja + 1) * (load<i32>(bsb, 8) + load<i32>(bsb, 12));
    }
    const dx = load<f32>(dxs + (<usize>b << 2));
    sum += dx * halfToFloat(load<u16>(wb)) * <f32>hsumI32(acc) - dx * halfToFloat(load<u16>(wb, 2)) * <f32>mins;
  }
  return sum;
}

function dotRowQ5K(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bs = dxs + (<usize>nb << 2);
  const low = i8x16.splat(0x0f);
  const one = i8x16.splat(1);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 176;
    const qb = q + (<usize>b << 8);
    const sc = wb + 4;
    const h0 = v128.load(wb, 16);
    const h1 = v128.load(wb, 32);
    const qs = wb + 48;
    let acc = i32x4.splat(0);
    let mins = 0;
    for (let c = 0; c < 4; c++) {
      const v0 = v128.load(qs + (<usize>c << 5));
      const v1 = v128.load(qs + (<usize>c << 5), 16);
      const ja = c << 1;
      // Fifth bit: (qh >> bit) & 1, moved to bit 4.
      const a0 = v128.or(v128.and(v0, low), i8x16.shl(v128.and(i8x16.shr_u(h0, ja), one), 4));
      const a1 = v128.or(v128.and(v1, low), i8x16.shl(v128.and(i8x16.shr_u(h1, ja), one), 4));
      const b0 = v128.or(i8x16.shr_u(v0, 4), i8x16.shl(v128.and(i8x16.shr_u(h0, ja + 1), one), 4));
      const b1 = v128.or(i8x16.shr_u(v1, 4), i8x16.shl(v128.and(i8x16.shr_u(h1, ja + 1), one), 4));
      const ia = dot32(qb + (<usize>c << 6), a0, a1);
      const ib = dot32(qb + (<usize>c << 6) + 32, b0, b1);
      acc = i32x4.add(acc, i32x4.mul(ia, i32x4.splat(scaleK4(sc, ja))));
      acc = i32x4.add(acc, i32x4.mul(ib, i32x4.splat(scaleK4(sc, ja + 1))));
      const bsb = bs + (<usize>(b * 16 + ja * 2) << 2);
      mins += minK4(sc, ja) * (load<i32>(bsb) + load<i32>(bsb, 4));
      mins += minK4(sc, ja + 1) * (load<i32>(bsb, 8) + load<i32>(bsb, 12));
    }
    const dx = load<f32>(dxs + (<usize>b << 2));
    sum += dx * halfToFloat(load<u16>(wb)) * <f32>hsumI32(acc) - dx * halfToFloat(load<u16>(wb, 2)) * <f32>mins;
  }
  return sum;
}

function dotRowQ6K(w: usize, q: usize, n: i32): f32 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bs = dxs + (<usize>nb << 2);
  const low = i8x16.splat(0x0f);
  const three = i8x16.splat(3);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 210;
    const qb = q + (<usize>b << 8);
    const scs = wb + 192;
    let acc = i32x4.splat(0);
    let offs = 0;
    for (let h = 0; h < 2; h++) {
      const ql = wb + (<usize>h << 6);
      const qh = wb + 128 + (<usize>h << 5);
      const sch = scs + (<usize>h << 3);
      const xh = qb + (<usize>h << 7);
      for (let l = 0; l < 2; l++) {
        const a = v128.load(ql + (<usize>l << 4));
        const c = v128.load(ql + (<usize>l << 4), 32);
        const hb = v128.load(qh + (<usize>l << 4));
        const q1 = v128.or(v128.and(a, low), i8x16.shl(v128.and(hb, three), 4));
        const q2 = v128.or(v128.and(c, low), i8x16.shl(v128.and(i8x16.shr_u(hb, 2), three), 4));
        const q3 = v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(hb, 4), three), 4));
        const q4 = v128.or(i8x16.shr_u(c, 4), i8x16.shl(i8x16.shr_u(hb, 6), 4));
        const xo = xh + (<usize>l << 4);
        const s1 = <i32>load<i8>(sch + <usize>l);
        const s2 = <i32>load<i8>(sch + <usize>l, 2);
        const s3 = <i32>load<i8>(sch + <usize>l, 4);
        const s4 = <i32>load<i8>(sch + <usize>l, 6);
        acc = i32x4.add(acc, i32x4.mul(dotI8U7(v128.load(xo), q1, i32x4.splat(0)), i32x4.splat(s1)));
        acc = i32x4.add(acc, i32x4.mul(dotI8U7(v128.load(xo, 32), q2, i32x4.splat(0)), i32x4.splat(s2)));
        acc = i32x4.add(acc, i32x4.mul(dotI8U7(v128.load(xo, 64), q3, i32x4.splat(0)), i32x4.splat(s3)));
        acc = i32x4.add(acc, i32x4.mul(dotI8U7(v128.load(xo, 96), q4, i32x4.splat(0)), i32x4.splat(s4)));
        // bsum index of sub-block (h, l, k) is 8h + 2k + l, the same as its scale index.
        const bsb = bs + (<usize>(b * 16 + h * 8 + l) << 2);
        offs += s1 * load<i32>(bsb) + s2 * load<i32>(bsb, 8) + s3 * load<i32>(bsb, 16) + s4 * load<i32>(bsb, 24);
      }
    }
    sum += load<f32>(dxs + (<usize>b << 2)) * halfToFloat(load<u16>(wb, 208)) * <f32>(hsumI32(acc) - 32 * offs);
  }
  return sum;
}

export function matmul_q4_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 8) * 144;
  const qStride = <usize>act_q8_K_bytes(n);
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRowQ4K(w + <usize>r * rowBytes, q + <usize>t * qStride, n));
    }
  }
}

export function matmul_q5_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 8) * 176;
  const qStride = <usize>act_q8_K_bytes(n);
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRowQ5K(w + <usize>r * rowBytes, q + <usize>t * qStride, n));
    }
  }
}

export function matmul_q6_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 8) * 210;
  const qStride = <usize>act_q8_K_bytes(n);
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      store<f32>(y + ((<usize>t * <usize>ldy + <usize>r) << 2), dotRowQ6K(w + <usize>r * rowBytes, q + <usize>t * qStride, n));
    }
  }
}
