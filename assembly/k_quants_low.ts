/*
 * Low-bit k-quant weights (Q2_K, Q3_K, IQ4_XS) x Q8_K activations. A super-block holds 256 weights.
 *
 * Q2_K (84 bytes): | scales u8[16] | qs u8[64] | d f16 | dmin f16 |
 *   16 sub-blocks of 16; scales[j] = sc_j | m_j << 4 (4 bits each).
 *   value 128h + 32s + l (h 0..1, s 0..3, l 0..31) = bits 2s..2s+1 of qs[32h + l];
 *   its sub-block is j = 8h + 2s + (l >= 16).      weight = d*sc_j*q - dmin*m_j,  q in 0..3
 * Q3_K (110 bytes): | hmask u8[32] | qs u8[64] | scales u8[12] | d f16 |
 *   value 128h + 32s + l: low bits as Q2_K (qs), high bit = bit 4h+s of hmask[l];
 *   q = low | high << 2, weight = d * sc_j * (q - 4)  (a clear high bit means -4, as ggml has it).
 *   scale j (0..15), 6 bits: low 4 in nibble j >= 8 of scales[j % 8], high 2 in bits 2(j/4)..
 *   of scales[8 + j % 4]; sc_j = that - 32. With the 12 bytes as u32 a0 a1 a2 (ggml's aux):
 *     sc 0..3 = a0 & 0f | (a2 & 03) << 4        sc 4..7   = a1 & 0f | (a2 >> 2 & 03) << 4
 *     sc 8..11 = a0 >> 4 & 0f | (a2 >> 4 & 03) << 4   sc 12..15 = a1 >> 4 & 0f | (a2 >> 6 & 03) << 4
 * IQ4_XS (136 bytes): | d f16 | scales_h u16 | scales_l u8[4] | qs u8[128] |
 *   8 sub-blocks of 32: sub-block s reads qs[16s..16s+15], low nibbles values 0..15, high 16..31;
 *   ls_s = (scales_l >> 4s & 15) | (scales_h >> 2s & 3) << 4;  weight = d * (ls_s - 32) * KV[nibble]
 *   with KV = ggml's kvalues_iq4nl (16 levels, -127..113).
 *
 * Dot with a Q8_K row (d_x, codes x, bsum_j = sum of the 16 codes of sub-block j), per
 * super-block, in ggml's float order (ggml_vec_dot_*_q8_K: exact integer sums, sub-block scales
 * applied in integers, then one float expression per super-block):
 *   Q2_K:    (d_x*d) * sum_j sc_j (q.x)_j  -  (d_x*dmin) * sum_j m_j bsum_j
 *   Q3_K:    (d_x*d) * (sum_j sc_j (q.x)_j  -  4 * sum_j sc_j bsum_j)
 *   IQ4_XS:  (d*d_x) * sum_s (ls_s - 32) (KV[q].x)_s
 * The super-blocks are added in order into one float. (llama.cpp's AVX2 build spreads the same
 * terms over eight FMA lanes and adds the lanes at the end; the generic C build adds Q3_K in eight
 * lanes and IQ4_XS per sub-block: all agree to float rounding, integers exactly.)
 *
 * Activations (quantize_q8_K_eo): Q8_K codes widened to i16, each 16 values stored evens then
 * odds (values 16g + 0, 2, .., 14 | 16g + 1, 3, .., 15), then the f32 scales, then i32 sums of 16:
 *   +---------------------+ q
 *   | qs  i16[n]          |
 *   | d   f32[n/256]      | q + 2n
 *   | sum i32[n/16]       | q + 2n + n/64
 *   +---------------------+
 * Read as eight 16-bit lanes, 16 weight bytes give the even values' codes in the low bytes and
 * the odd values' in the high bytes: one shift and one mask each (Q2_K, Q3_K), or a table lookup
 * and a sign-extending shift pair (IQ4_XS), and each 16 values are two i32x4.dot_i16x8_s. The
 * sub-block sums are gathered four at a time by a transpose and weighted by their scales in one
 * multiply.
 */
import { halfToFloat, hsumI32 } from "./common";
import { transposeSum } from "./q4_0";

/** Bytes of one Q8_K activation row for these kernels (i16 codes, evens|odds per 16), rounded up to 16. */
export function act_q8_K_eo_bytes(n: i32): i32 {
  return ((n << 1) + (n >> 6) + (n >> 2) + 15) & ~15;
}

/** Quantize rows [r0, r1) of x (rows of n f32) to Q8_K codes in the layout above. */
export function quantize_q8_K_eo(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  const stride = <usize>act_q8_K_eo_bytes(n);
  for (let r = r0; r < r1; r++) {
    quantizeRowQ8_Keo(x + <usize>r * <usize>n * 4, q + <usize>r * stride, n);
  }
}

/** ggml quantize_row_q8_K_ref: m = the x of largest |x|, s = -127/m, q = min(127, round(s x)), d = 1/s. */
function quantizeRowQ8_Keo(x: usize, q: usize, n: i32): void {
  const nb = n >> 8;
  const dOut = q + (<usize>n << 1);
  const sOut = dOut + (<usize>nb << 2);
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 10);
    const qb = q + (<usize>b << 9);
    let amax: f32 = 0;
    let m: f32 = 0;
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(xb + (<usize>j << 2));
      const a = abs<f32>(v);
      if (a > amax) {
        amax = a;
        m = v;
      }
    }
    const iscale: f32 = amax == 0 ? 0 : <f32>-127.0 / m;
    const mul = f32x4.splat(iscale);
    const lim = i32x4.splat(127);
    for (let j = 0; j < 256; j += 16) {
      const p = xb + (<usize>j << 2);
      const i0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), mul))), lim);
      const i1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), mul))), lim);
      const i2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), mul))), lim);
      const i3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), mul))), lim);
      store<i32>(sOut + (<usize>(b * 16 + (j >> 4)) << 2), hsumI32(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3))));
      const c0 = i16x8.narrow_i32x4_s(i0, i1);
      const c1 = i16x8.narrow_i32x4_s(i2, i3);
      const g = qb + (<usize>j << 1);
      v128.store(g, i16x8.shuffle(c0, c1, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(g, i16x8.shuffle(c0, c1, 1, 3, 5, 7, 9, 11, 13, 15), 16);
    }
    store<f32>(dOut + (<usize>b << 2), amax == 0 ? 0 : <f32>1.0 / iscale);
  }
}

/** Integer dot of one 16-value group: even codes e and odd codes o (i16) with its activations at x. */
// @ts-ignore: decorator
@inline
function groupDot(e: v128, o: v128, x: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(e, v128.load(x)), i32x4.dot_i16x8_s(o, v128.load(x, 16)));
}

/** The 2-bit codes at shift s of the even bytes of v (i16 lanes). */
// @ts-ignore: decorator
@inline
function even2(v: v128, s: i32, m3: v128): v128 {
  return s == 0 ? v128.and(v, m3) : v128.and(i16x8.shr_u(v, 2 * s), m3);
}

/** The 2-bit codes at shift s of the odd bytes of v. */
// @ts-ignore: decorator
@inline
function odd2(v: v128, s: i32, m3: v128): v128 {
  return s == 3 ? i16x8.shr_u(v, 14) : v128.and(i16x8.shr_u(v, 8 + 2 * s), m3);
}

/**
 * Sub-blocks 8h + 2s and 8h + 2s + 1 of a Q2_K half (code bytes v0 = l 0..15, v1 = l 16..31)
 * against their activations at xh (the half's first code): two i32x4 partial sums.
 */
// @ts-ignore: decorator
@inline
function q2Pair0(v0: v128, xh: usize, s: i32, m3: v128): v128 {
  return groupDot(even2(v0, s, m3), odd2(v0, s, m3), xh + (<usize>s << 6));
}
// @ts-ignore: decorator
@inline
function q2Pair1(v1: v128, xh: usize, s: i32, m3: v128): v128 {
  return groupDot(even2(v1, s, m3), odd2(v1, s, m3), xh + (<usize>s << 6) + 32);
}

/** One half (128 values) of a Q2_K super-block: sum_j sc_j (q.x)_j over its 8 sub-blocks, as i32x4. */
// @ts-ignore: decorator
@inline
function halfQ2K(wb: usize, xh: usize, h: i32, scLo: v128, scHi: v128, m3: v128, yp: usize): v128 {
  const v0 = v128.load(wb + 16 + (<usize>h << 5));
  const v1 = v128.load(wb + 32 + (<usize>h << 5));
  const a0 = q2Pair0(v0, xh, 0, m3);
  const a1 = q2Pair1(v1, xh, 0, m3);
  v128.store32_lane(yp, a1, 0); // ordering fence (see q4_0.ts)
  const a2 = q2Pair0(v0, xh, 1, m3);
  const a3 = q2Pair1(v1, xh, 1, m3);
  const lo = i32x4.mul(transposeSum(a0, a1, a2, a3), scLo);
  v128.store32_lane(yp, lo, 0);
  const b0 = q2Pair0(v0, xh, 2, m3);
  const b1 = q2Pair1(v1, xh, 2, m3);
  v128.store32_lane(yp, b1, 0);
  const b2 = q2Pair0(v0, xh, 3, m3);
  const b3 = q2Pair1(v1, xh, 3, m3);
  return i32x4.add(lo, i32x4.mul(transposeSum(b0, b1, b2, b3), scHi));
}

/** One Q2_K super-block (at wb) against its activations (codes qb, sums of 16 at bs, scale dx). */
// @ts-ignore: decorator
@inline
function superDotQ2K(wb: usize, qb: usize, bs: usize, dx: f32, m3: v128, yp: usize): f32 {
  const sm = v128.load(wb);
  const sc = i16x8.extend_low_i8x16_u(v128.and(sm, i8x16.splat(15)));
  const sc1 = i16x8.extend_high_i8x16_u(v128.and(sm, i8x16.splat(15)));
  const mn = i8x16.shr_u(sm, 4);
  const mn0 = i16x8.extend_low_i8x16_u(mn);
  const mn1 = i16x8.extend_high_i8x16_u(mn);
  let mins = i32x4.mul(v128.load(bs), i32x4.extend_low_i16x8_u(mn0));
  mins = i32x4.add(mins, i32x4.mul(v128.load(bs, 16), i32x4.extend_high_i16x8_u(mn0)));
  mins = i32x4.add(mins, i32x4.mul(v128.load(bs, 32), i32x4.extend_low_i16x8_u(mn1)));
  mins = i32x4.add(mins, i32x4.mul(v128.load(bs, 48), i32x4.extend_high_i16x8_u(mn1)));
  const dots = i32x4.add(
    halfQ2K(wb, qb, 0, i32x4.extend_low_i16x8_u(sc), i32x4.extend_high_i16x8_u(sc), m3, yp),
    halfQ2K(wb, qb + 256, 1, i32x4.extend_low_i16x8_u(sc1), i32x4.extend_high_i16x8_u(sc1), m3, yp),
  );
  const dall = dx * halfToFloat(load<u16>(wb, 80));
  const dmin = dx * halfToFloat(load<u16>(wb, 82));
  return dall * <f32>hsumI32(dots) - dmin * <f32>hsumI32(mins);
}

/**
 * Q3_K codes (low | high << 2) of sub-block pair s of half h, both bytes of each i16 lane at once:
 * bits 2s.. of the code bytes v, bit 4h+s of the hmask bytes hm moved to bit 2.
 */
// @ts-ignore: decorator
@inline
function codes3(v: v128, hm: v128, h: i32, s: i32, m3: v128, m4: v128): v128 {
  const b = 4 * h + s;
  const low = s == 0 ? v128.and(v, m3) : v128.and(i16x8.shr_u(v, 2 * s), m3);
  const high = b == 2 ? v128.and(hm, m4) : b < 2 ? v128.and(i16x8.shl(hm, 2 - b), m4) : v128.and(i16x8.shr_u(hm, b - 2), m4);
  return v128.or(low, high);
}

/** Sub-block pair s of a Q3_K half: code bytes v (l 0..15 or 16..31) with hmask bytes hm, activations at x. */
// @ts-ignore: decorator
@inline
function q3Group(v: v128, hm: v128, x: usize, h: i32, s: i32, m3: v128, m4: v128, m8: v128): v128 {
  const c = codes3(v, hm, h, s, m3, m4);
  return groupDot(v128.and(c, m8), i16x8.shr_u(c, 8), x);
}

/** One half of a Q3_K super-block: sum_j sc_j (q.x)_j over its 8 sub-blocks (q = 0..7), as i32x4. */
// @ts-ignore: decorator
@inline
function halfQ3K(wb: usize, xh: usize, h: i32, hm0: v128, hm1: v128, scLo: v128, scHi: v128, yp: usize): v128 {
  const m3 = i16x8.splat(0x0303);
  const m4 = i16x8.splat(0x0404);
  const m8 = i16x8.splat(0x00ff);
  const v0 = v128.load(wb + 32 + (<usize>h << 5));
  const v1 = v128.load(wb + 48 + (<usize>h << 5));
  const a0 = q3Group(v0, hm0, xh, h, 0, m3, m4, m8);
  const a1 = q3Group(v1, hm1, xh + 32, h, 0, m3, m4, m8);
  v128.store32_lane(yp, a1, 0); // ordering fence (see q4_0.ts)
  const a2 = q3Group(v0, hm0, xh + 64, h, 1, m3, m4, m8);
  const a3 = q3Group(v1, hm1, xh + 96, h, 1, m3, m4, m8);
  const lo = i32x4.mul(transposeSum(a0, a1, a2, a3), scLo);
  v128.store32_lane(yp, lo, 0);
  const b0 = q3Group(v0, hm0, xh + 128, h, 2, m3, m4, m8);
  const b1 = q3Group(v1, hm1, xh + 160, h, 2, m3, m4, m8);
  v128.store32_lane(yp, b1, 0);
  const b2 = q3Group(v0, hm0, xh + 192, h, 3, m3, m4, m8);
  const b3 = q3Group(v1, hm1, xh + 224, h, 3, m3, m4, m8);
  return i32x4.add(lo, i32x4.mul(transposeSum(b0, b1, b2, b3), scHi));
}

/** One Q3_K super-block (at wb) against its activations (codes qb, sums of 16 at bs, scale dx). */
// @ts-ignore: decorator
@inline
function superDotQ3K(wb: usize, qb: usize, bs: usize, dx: f32, yp: usize): f32 {
  const a0 = load<u32>(wb, 96);
  const a1 = load<u32>(wb, 100);
  const a2 = load<u32>(wb, 104);
  let raw = i32x4.splat(<i32>((a0 & 0x0f0f0f0f) | ((a2 & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 1, <i32>((a1 & 0x0f0f0f0f) | (((a2 >> 2) & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 2, <i32>(((a0 >> 4) & 0x0f0f0f0f) | (((a2 >> 4) & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 3, <i32>(((a1 >> 4) & 0x0f0f0f0f) | (((a2 >> 6) & 0x03030303) << 4)));
  const sc8 = i8x16.sub(raw, i8x16.splat(32));
  const s0 = i16x8.extend_low_i8x16_s(sc8);
  const s1 = i16x8.extend_high_i8x16_s(sc8);
  const sc0 = i32x4.extend_low_i16x8_s(s0);
  const sc1 = i32x4.extend_high_i16x8_s(s0);
  const sc2 = i32x4.extend_low_i16x8_s(s1);
  const sc3 = i32x4.extend_high_i16x8_s(s1);
  // sum_j sc_j bsum_j, for the -4 offset of the codes
  let offs = i32x4.mul(v128.load(bs), sc0);
  offs = i32x4.add(offs, i32x4.mul(v128.load(bs, 16), sc1));
  offs = i32x4.add(offs, i32x4.mul(v128.load(bs, 32), sc2));
  offs = i32x4.add(offs, i32x4.mul(v128.load(bs, 48), sc3));
  const hm0 = v128.load(wb);
  const hm1 = v128.load(wb, 16);
  const dots = i32x4.add(halfQ3K(wb, qb, 0, hm0, hm1, sc0, sc1, yp), halfQ3K(wb, qb + 256, 1, hm0, hm1, sc2, sc3, yp));
  const d = dx * halfToFloat(load<u16>(wb, 108));
  return d * <f32>(hsumI32(dots) - 4 * hsumI32(offs));
}

/** ggml's kvalues_iq4nl, the 16 IQ4 levels. */
// @ts-ignore: decorator
@inline
function iq4Levels(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** Table lookup of 16 indices 0..15 (relaxed build: relaxed_swizzle, same result for in-range indices). */
// @ts-ignore: decorator
@inline
function lookup(table: v128, idx: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(table, idx);
  return i8x16.swizzle(table, idx);
}

/** Integer dot of one IQ4_XS group of 16 signed levels (bytes in value order) with its activations at x. */
// @ts-ignore: decorator
@inline
function levelsDot(lv: v128, x: usize): v128 {
  return groupDot(i16x8.shr_s(i16x8.shl(lv, 8), 8), i16x8.shr_s(lv, 8), x);
}

/** Sub-block s of an IQ4_XS super-block (code bytes at wb + 8 + 16 s): (KV[q].x)_s as i32x4. */
// @ts-ignore: decorator
@inline
function subIQ4(wb: usize, xb: usize, s: i32, table: v128, m15: v128): v128 {
  const v = v128.load(wb + 8 + (<usize>s << 4));
  const lo = lookup(table, v128.and(v, m15));
  const hi = lookup(table, v128.and(i16x8.shr_u(v, 4), m15));
  const x = xb + (<usize>s << 6);
  return i32x4.add(levelsDot(lo, x), levelsDot(hi, x + 32));
}

/** One IQ4_XS super-block (at wb) against its activations (codes qb, scale dx). */
// @ts-ignore: decorator
@inline
function superDotIQ4XS(wb: usize, qb: usize, dx: f32, table: v128, m15: v128, yp: usize): f32 {
  // ls_s for s = 0..3 and 4..7: lane k of (L * 2^(12-4k)) >> 12 is L >> 4k (L < 2^16), and of
  // ((H << 4) * 2^(6-2k)) >> 6 is (H << 4) >> 2k.
  const l = <i32>load<u32>(wb, 4);
  const hh = <i32>load<u16>(wb, 2);
  const mulL = i32x4(4096, 256, 16, 1);
  const mulH = i32x4(64, 16, 4, 1);
  const m30 = i32x4.splat(0x30);
  const m0f = i32x4.splat(15);
  const thirtyTwo = i32x4.splat(32);
  const ls0 = i32x4.sub(v128.or(
    v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat(l & 0xffff), mulL), 12), m0f),
    v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((hh & 0xff) << 4), mulH), 6), m30),
  ), thirtyTwo);
  const ls1 = i32x4.sub(v128.or(
    v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((l >>> 16) & 0xffff), mulL), 12), m0f),
    v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((hh >> 8) << 4), mulH), 6), m30),
  ), thirtyTwo);
  const g0 = subIQ4(wb, qb, 0, table, m15);
  v128.store32_lane(yp, g0, 0); // ordering fences (see q4_0.ts)
  const g1 = subIQ4(wb, qb, 1, table, m15);
  v128.store32_lane(yp, g1, 0);
  const g2 = subIQ4(wb, qb, 2, table, m15);
  v128.store32_lane(yp, g2, 0);
  const g3 = subIQ4(wb, qb, 3, table, m15);
  const lo = i32x4.mul(transposeSum(g0, g1, g2, g3), ls0);
  v128.store32_lane(yp, lo, 0);
  const g4 = subIQ4(wb, qb, 4, table, m15);
  v128.store32_lane(yp, g4, 0);
  const g5 = subIQ4(wb, qb, 5, table, m15);
  v128.store32_lane(yp, g5, 0);
  const g6 = subIQ4(wb, qb, 6, table, m15);
  v128.store32_lane(yp, g6, 0);
  const g7 = subIQ4(wb, qb, 7, table, m15);
  const isum = hsumI32(i32x4.add(lo, i32x4.mul(transposeSum(g4, g5, g6, g7), ls1)));
  return (halfToFloat(load<u16>(wb)) * dx) * <f32>isum;
}

const Q2_K: i32 = 10;
const Q3_K: i32 = 11;
const IQ4_XS: i32 = 23;

/** One row (at w) against one token (activations at q); type is a constant. */
// @ts-ignore: decorator
@inline
function dotRow(type: i32, w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const bs = dxs + (<usize>nb << 2);
  const m3 = i16x8.splat(3);
  const table = iq4Levels();
  const m15 = i8x16.splat(15);
  const blockBytes: usize = type == Q2_K ? 84 : type == Q3_K ? 110 : 136;
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * blockBytes;
    const qb = q + (<usize>b << 9);
    const dx = load<f32>(dxs + (<usize>b << 2));
    if (type == Q2_K) sum += superDotQ2K(wb, qb, bs + (<usize>b << 6), dx, m3, yp);
    else if (type == Q3_K) sum += superDotQ3K(wb, qb, bs + (<usize>b << 6), dx, yp);
    else sum += superDotIQ4XS(wb, qb, dx, table, m15, yp);
  }
  return sum;
}

/** y[t][r] for rows r0..r1-1 and tokens 0..nTok-1 (output rows ldy floats apart). */
// @ts-ignore: decorator
@inline
function matmulLow(type: i32, w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 8) * (type == Q2_K ? 84 : type == Q3_K ? 110 : 136);
  const qStride = <usize>act_q8_K_eo_bytes(n);
  for (let r = r0; r < r1; r++) {
    for (let t = 0; t < nTok; t++) {
      const yp = y + ((<usize>t * <usize>ldy + <usize>r) << 2);
      store<f32>(yp, dotRow(type, w + <usize>r * rowBytes, q + <usize>t * qStride, n, yp));
    }
  }
}

export function matmul_q2_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulLow(Q2_K, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_q3_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulLow(Q3_K, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_iq4_xs(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulLow(IQ4_XS, w, q, y, n, r0, r1, nTok, ldy);
}
