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
 * super-block, as llama.cpp's x86 build computes it (ggml_vec_dot_*_q8_K, AVX2 path): the integer
 * sums are split over eight lanes, lane m taking the values v with (v mod 32) / 4 == m, sub-block
 * scales applied in integers:
 *   Q2_K:    S_m = sum sc_j q x          P_m = m_2m bsum_2m + m_2m+1 bsum_2m+1
 *            acc_m = fma(-(d_x*dmin), P_m, acc_m);  acc_m = fma(d_x*d, S_m, acc_m)
 *   Q3_K:    S_m = sum sc_j (q - 4) x   acc_m = fma(d_x*d, S_m, acc_m)
 *   IQ4_XS:  S_m = sum (ls_s - 32) KV[q] x   acc_m = fma(d*d_x, S_m, acc_m)
 * over the super-blocks in order, each fma rounded once (exactly: f64 product and sum, with
 * musl's fmaf where the f64 sum lands halfway between two floats); the row's result
 * is ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7)) (ggml's hsum_float_8).
 * So each product has the bits of llama.cpp's x86 (AVX2/AVX-512) build, and a rounding tie of a
 * later Q8_K quantization goes the same way in both. (Its ARM and generic C builds add in other
 * orders; those agree to float rounding.)
 *
 * Activations (quantize_q8_K_eo): Q8_K codes widened to i16, each 16 values stored evens then
 * odds (values 16g + 0, 2, .., 14 | 16g + 1, 3, .., 15), then the f32 scales, then i32 sums of 16
 * (Q2_K's bsum):
 *   +---------------------+ q
 *   | qs  i16[n]          |
 *   | d   f32[n/256]      | q + 2n
 *   | sum i32[n/16]       | q + 2n + n/64
 *   +---------------------+
 * Read as eight 16-bit lanes, 16 weight bytes give the even values' codes in the low bytes and
 * the odd values' in the high bytes: one shift and one mask each (Q2_K, Q3_K), or a table lookup
 * and a sign-extending shift pair (IQ4_XS), and each 16 values are two i32x4.dot_i16x8_s whose
 * lanes are exactly the AVX2 lanes above (lane i: values 4i..4i+3 of the 16).
 */
import { halfToFloat, hsumF32, hsumI32 } from "./common";
import { pairSums } from "./q4_0";
import { fmaf } from "./fma";

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

/*
 * The eight float accumulators live as four f64x2 (lanes 0-1, 2-3, 4-5, 6-7) holding float32
 * values. One fma step over them: r = d * S + acc in f64 (exact product, at most one rounding),
 * then rounded to f32. That is fmaf's result unless r lies exactly halfway between two floats
 * (low 29 bits 0x10000000: an exact tie, which rounding to even settles correctly, or a sum the
 * f64 addition rounded onto the tie); then the step's eight lanes go through fmaf one by one.
 * On random rows a step meets a tie once in about 80 (Q2_K, small lane sums) to 1600 (IQ4_XS),
 * nearly always an exact one.
 */

/** S lanes 0-1 (k = 0) or 2-3 (k = 1) of i32x4 s as f64x2 (exact: |S| < 2^24, as f32 on x86). */
// @ts-ignore: decorator
@inline
function pairF64(s: v128, k: i32): v128 {
  return f64x2.convert_low_i32x4_s(k == 0 ? s : i32x4.shuffle(s, s, 2, 3, 2, 3));
}

/** d * s + a in f64 (dd = d splat as f64). */
// @ts-ignore: decorator
@inline
function madd2(dd: v128, s: v128, a: v128): v128 {
  return f64x2.add(f64x2.mul(dd, s), a);
}

/** r rounded to float32, kept as f64. */
// @ts-ignore: decorator
@inline
function round2(r: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(r));
}

/** Which of the four f64 sums r0, r1 lie exactly halfway between two floats (as i32 lanes). */
// @ts-ignore: decorator
@inline
function halfway4(r0: v128, r1: v128, low29: v128, half: v128): v128 {
  return i32x4.eq(v128.and(i32x4.shuffle(r0, r1, 0, 2, 4, 6), low29), half);
}

/** fmaf on both lanes: d * s + a, s and a f64x2 holding floats. */
// @ts-ignore: decorator
@inline
function fmaExact2(d: f32, s: v128, a: v128): v128 {
  const r0 = fmaf(d, <f32>f64x2.extract_lane(s, 0), <f32>f64x2.extract_lane(a, 0));
  const r1 = fmaf(d, <f32>f64x2.extract_lane(s, 1), <f32>f64x2.extract_lane(a, 1));
  return f64x2.replace_lane(f64x2.splat(<f64>r0), 1, <f64>r1);
}

/** ggml's hsum_float_8 of the accumulators (f64x2 a0..a3 holding floats): ((0+4)+(2+6))+((1+5)+(3+7)). */
// @ts-ignore: decorator
@inline
function hsum8(a0: v128, a1: v128, a2: v128, a3: v128): f32 {
  const lo = i32x4.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5);
  const hi = i32x4.shuffle(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3), 0, 1, 4, 5);
  return hsumF32(f32x4.add(hi, lo));
}

/** Integer dot of one 16-value group: even codes e and odd codes o (i16) with its activations at x. Lane i: values 4i..4i+3. */
// @ts-ignore: decorator
@inline
function groupDot(e: v128, o: v128, x: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(e, v128.load(x)), i32x4.dot_i16x8_s(o, v128.load(x, 16)));
}

/** Lane k (a constant) of v in every lane. */
// @ts-ignore: decorator
@inline
function splatLane(v: v128, k: i32): v128 {
  return k == 0 ? i32x4.shuffle(v, v, 0, 0, 0, 0) : k == 1 ? i32x4.shuffle(v, v, 1, 1, 1, 1)
    : k == 2 ? i32x4.shuffle(v, v, 2, 2, 2, 2) : i32x4.shuffle(v, v, 3, 3, 3, 3);
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

/** The even (odd = false) or odd bytes of v as eight i16, sign- or zero-extended. */
// @ts-ignore: decorator
@inline
function evenOdd16(v: v128, odd: bool, signed: bool): v128 {
  const b = odd
    ? i8x16.shuffle(v, v, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15)
    : i8x16.shuffle(v, v, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
  return signed ? i16x8.extend_low_i8x16_s(b) : i16x8.extend_low_i8x16_u(b);
}

/** Q3_K's 16 signed scales sc_j of the super-block at wb as i8 lanes (the u32 unpacking drawn above). */
// @ts-ignore: decorator
@inline
function scalesQ3K(wb: usize): v128 {
  const a0 = load<u32>(wb, 96);
  const a1 = load<u32>(wb, 100);
  const a2 = load<u32>(wb, 104);
  let raw = i32x4.splat(<i32>((a0 & 0x0f0f0f0f) | ((a2 & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 1, <i32>((a1 & 0x0f0f0f0f) | (((a2 >> 2) & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 2, <i32>(((a0 >> 4) & 0x0f0f0f0f) | (((a2 >> 4) & 0x03030303) << 4)));
  raw = i32x4.replace_lane(raw, 3, <i32>(((a1 >> 4) & 0x0f0f0f0f) | (((a2 >> 6) & 0x03030303) << 4)));
  return i8x16.sub(raw, i8x16.splat(32));
}

/**
 * Q2_K sub-block scales (4 bits) of the super-block at wb, as i32 lanes: the even sub-blocks
 * 0, 2, .., 14 (k = 0, 1 for the two halves) or the odd ones (k = 2, 3).
 */
// @ts-ignore: decorator
@inline
function scalesQ2K(sc16e: v128, sc16o: v128, k: i32): v128 {
  return k == 0 ? i32x4.extend_low_i16x8_u(sc16e) : k == 1 ? i32x4.extend_high_i16x8_u(sc16e)
    : k == 2 ? i32x4.extend_low_i16x8_u(sc16o) : i32x4.extend_high_i16x8_u(sc16o);
}

/**
 * acc + sum over s of sc_s * (q.x) for the four 16-value groups that one vector v of 16 Q2_K code
 * bytes holds (shift 2s: values 32s + l; activations from x + 64 s), lane i = values 4i..4i+3.
 */
// @ts-ignore: decorator
@inline
function q2Half(acc: v128, v: v128, x: usize, sc: v128, m3: v128, yp: usize): v128 {
  let a = i32x4.add(acc, i32x4.mul(groupDot(even2(v, 0, m3), odd2(v, 0, m3), x), splatLane(sc, 0)));
  v128.store32_lane(yp, a, 0); // ordering fences (see q4_0.ts)
  a = i32x4.add(a, i32x4.mul(groupDot(even2(v, 1, m3), odd2(v, 1, m3), x + 64), splatLane(sc, 1)));
  v128.store32_lane(yp, a, 0);
  a = i32x4.add(a, i32x4.mul(groupDot(even2(v, 2, m3), odd2(v, 2, m3), x + 128), splatLane(sc, 2)));
  v128.store32_lane(yp, a, 0);
  return i32x4.add(a, i32x4.mul(groupDot(even2(v, 3, m3), odd2(v, 3, m3), x + 192), splatLane(sc, 3)));
}

/**
 * y for one row (at w) and one token (activations at q) of Q2_K weights. The lane stores into
 * the output slot yp are ordering fences (see q4_0.ts).
 */
// @ts-ignore: decorator
@inline
function dotRowQ2K(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const bss = dxs + (<usize>nb << 2);
  const m3 = i16x8.splat(3);
  const m15 = i8x16.splat(15);
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let a2 = f64x2.splat(0);
  let a3 = f64x2.splat(0);
  const low29 = i32x4.splat(0x1fffffff); // loop constants in locals (see q4_0.ts)
  const half = i32x4.splat(0x10000000);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 84;
    const qb = q + (<usize>b << 9);
    const bs = bss + (<usize>b << 6);
    const sm = v128.load(wb);
    const sc = v128.and(sm, m15);
    const sce = evenOdd16(sc, false, false); // scales of even / odd sub-blocks as i16
    const sco = evenOdd16(sc, true, false);
    const mn = v128.and(i16x8.shr_u(sm, 4), m15); // V8 emulates i8x16.shr_u with a mask rebuilt per use
    const mn0 = i16x8.extend_low_i8x16_u(mn);
    const mn1 = i16x8.extend_high_i8x16_u(mn);
    // P_m = m_2m bsum_2m + m_2m+1 bsum_2m+1
    const pLo = pairSums(i32x4.mul(v128.load(bs), i32x4.extend_low_i16x8_u(mn0)), i32x4.mul(v128.load(bs, 16), i32x4.extend_high_i16x8_u(mn0)));
    const pHi = pairSums(i32x4.mul(v128.load(bs, 32), i32x4.extend_low_i16x8_u(mn1)), i32x4.mul(v128.load(bs, 48), i32x4.extend_high_i16x8_u(mn1)));
    const dx = load<f32>(dxs + (<usize>b << 2));
    const dmin = -dx * halfToFloat(load<u16>(wb, 82));
    const d = dx * halfToFloat(load<u16>(wb, 80));
    // acc = fma(-(dx*dmin), P, acc) first, as ggml does: P is then dead during the groups
    {
      const dd = f64x2.splat(<f64>dmin);
      const s0 = pairF64(pLo, 0);
      const s1 = pairF64(pLo, 1);
      const s2 = pairF64(pHi, 0);
      const s3 = pairF64(pHi, 1);
      const r0 = madd2(dd, s0, a0);
      const r1 = madd2(dd, s1, a1);
      const r2 = madd2(dd, s2, a2);
      const r3 = madd2(dd, s3, a3);
      if (v128.any_true(v128.or(halfway4(r0, r1, low29, half), halfway4(r2, r3, low29, half)))) {
        a0 = fmaExact2(dmin, s0, a0);
        a1 = fmaExact2(dmin, s1, a1);
        a2 = fmaExact2(dmin, s2, a2);
        a3 = fmaExact2(dmin, s3, a3);
      } else {
        a0 = round2(r0);
        a1 = round2(r1);
        a2 = round2(r2);
        a3 = round2(r3);
      }
    }
    v128.store32_lane(yp, a3, 0); // ordering fence (see q4_0.ts)
    // sub-blocks 8h + 2s (code bytes l = 0..15) feed lanes 0..3, 8h + 2s + 1 (l = 16..31) lanes 4..7
    let sLo = q2Half(i32x4.splat(0), v128.load(wb, 16), qb, scalesQ2K(sce, sco, 0), m3, yp);
    let sHi = q2Half(i32x4.splat(0), v128.load(wb, 32), qb + 32, scalesQ2K(sce, sco, 2), m3, yp);
    sLo = q2Half(sLo, v128.load(wb, 48), qb + 256, scalesQ2K(sce, sco, 1), m3, yp);
    sHi = q2Half(sHi, v128.load(wb, 64), qb + 288, scalesQ2K(sce, sco, 3), m3, yp);
    {
      const dd = f64x2.splat(<f64>d);
      const s0 = pairF64(sLo, 0);
      const s1 = pairF64(sLo, 1);
      const s2 = pairF64(sHi, 0);
      const s3 = pairF64(sHi, 1);
      const r0 = madd2(dd, s0, a0);
      const r1 = madd2(dd, s1, a1);
      const r2 = madd2(dd, s2, a2);
      const r3 = madd2(dd, s3, a3);
      if (v128.any_true(v128.or(halfway4(r0, r1, low29, half), halfway4(r2, r3, low29, half)))) {
        a0 = fmaExact2(d, s0, a0);
        a1 = fmaExact2(d, s1, a1);
        a2 = fmaExact2(d, s2, a2);
        a3 = fmaExact2(d, s3, a3);
      } else {
        a0 = round2(r0);
        a1 = round2(r1);
        a2 = round2(r2);
        a3 = round2(r3);
      }
    }
  }
  return hsum8(a0, a1, a2, a3);
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

/**
 * Group s of a Q3_K half: code bytes v (l 0..15 or 16..31) with hmask bytes hm, activations at
 * x: ((q - 4).x), the offset taken per value as ggml's AVX2 code does, so it sits in its lane.
 */
// @ts-ignore: decorator
@inline
function q3Group(v: v128, hm: v128, x: usize, h: i32, s: i32, m3: v128, m4: v128, m8: v128, four: v128): v128 {
  const c = codes3(v, hm, h, s, m3, m4);
  return groupDot(i16x8.sub(v128.and(c, m8), four), i16x8.sub(i16x8.shr_u(c, 8), four), x);
}

/** acc + sum over s of sc_s ((q - 4).x) for the four groups of one vector v of Q3_K code bytes in half h (a constant). */
// @ts-ignore: decorator
@inline
function q3Half(acc: v128, v: v128, hm: v128, x: usize, h: i32, sc: v128, m3: v128, m4: v128, m8: v128, four: v128, yp: usize): v128 {
  let a = i32x4.add(acc, i32x4.mul(q3Group(v, hm, x, h, 0, m3, m4, m8, four), splatLane(sc, 0)));
  v128.store32_lane(yp, a, 0); // ordering fences (see q4_0.ts)
  a = i32x4.add(a, i32x4.mul(q3Group(v, hm, x + 64, h, 1, m3, m4, m8, four), splatLane(sc, 1)));
  v128.store32_lane(yp, a, 0);
  a = i32x4.add(a, i32x4.mul(q3Group(v, hm, x + 128, h, 2, m3, m4, m8, four), splatLane(sc, 2)));
  v128.store32_lane(yp, a, 0);
  return i32x4.add(a, i32x4.mul(q3Group(v, hm, x + 192, h, 3, m3, m4, m8, four), splatLane(sc, 3)));
}

/** y for one row and one token of Q3_K weights. */
// @ts-ignore: decorator
@inline
function dotRowQ3K(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const m3 = i16x8.splat(0x0303);
  const m4 = i16x8.splat(0x0404);
  const m8 = i16x8.splat(0x00ff);
  const four = i16x8.splat(4);
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let a2 = f64x2.splat(0);
  let a3 = f64x2.splat(0);
  const low29 = i32x4.splat(0x1fffffff); // loop constants in locals (see q4_0.ts)
  const half = i32x4.splat(0x10000000);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 110;
    const qb = q + (<usize>b << 9);
    const sc8 = scalesQ3K(wb);
    const sce = evenOdd16(sc8, false, true); // even / odd sub-blocks' scales as i16
    const sco = evenOdd16(sc8, true, true);
    const hm0 = v128.load(wb);
    const hm1 = v128.load(wb, 16);
    let sLo = q3Half(i32x4.splat(0), v128.load(wb, 32), hm0, qb, 0, i32x4.extend_low_i16x8_s(sce), m3, m4, m8, four, yp);
    let sHi = q3Half(i32x4.splat(0), v128.load(wb, 48), hm1, qb + 32, 0, i32x4.extend_low_i16x8_s(sco), m3, m4, m8, four, yp);
    sLo = q3Half(sLo, v128.load(wb, 64), hm0, qb + 256, 1, i32x4.extend_high_i16x8_s(sce), m3, m4, m8, four, yp);
    sHi = q3Half(sHi, v128.load(wb, 80), hm1, qb + 288, 1, i32x4.extend_high_i16x8_s(sco), m3, m4, m8, four, yp);
    const d = load<f32>(dxs + (<usize>b << 2)) * halfToFloat(load<u16>(wb, 108));
    {
      const dd = f64x2.splat(<f64>d);
      const s0 = pairF64(sLo, 0);
      const s1 = pairF64(sLo, 1);
      const s2 = pairF64(sHi, 0);
      const s3 = pairF64(sHi, 1);
      const r0 = madd2(dd, s0, a0);
      const r1 = madd2(dd, s1, a1);
      const r2 = madd2(dd, s2, a2);
      const r3 = madd2(dd, s3, a3);
      if (v128.any_true(v128.or(halfway4(r0, r1, low29, half), halfway4(r2, r3, low29, half)))) {
        a0 = fmaExact2(d, s0, a0);
        a1 = fmaExact2(d, s1, a1);
        a2 = fmaExact2(d, s2, a2);
        a3 = fmaExact2(d, s3, a3);
      } else {
        a0 = round2(r0);
        a1 = round2(r1);
        a2 = round2(r2);
        a3 = round2(r3);
      }
    }
  }
  return hsum8(a0, a1, a2, a3);
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

/**
 * acc + ls_s * (KV[q].x) for the low (high = false) or high nibbles of IQ4_XS sub-block s (a
 * constant; code bytes at wb + 8 + 16 s, activations from xb + 64 s); ls: the scales of
 * sub-blocks 4(s/4) .. +3 as i32 lanes.
 */
// @ts-ignore: decorator
@inline
function iq4Sub(acc: v128, wb: usize, xb: usize, s: i32, ls: v128, table: v128, m15: v128, high: bool): v128 {
  const v = v128.load(wb + 8 + (<usize>s << 4));
  const idx = high ? v128.and(i16x8.shr_u(v, 4), m15) : v128.and(v, m15);
  return i32x4.add(acc, i32x4.mul(levelsDot(lookup(table, idx), xb + (<usize>s << 6) + (high ? 32 : 0)), splatLane(ls, s & 3)));
}

/**
 * ls_s - 32 of IQ4_XS sub-blocks 4k .. 4k+3 as i32 lanes: lane j of (L * 2^(12-4j)) >> 12 is
 * L >> 4j (L = 16 bits of scales_l), and of ((H << 4) * 2^(6-2j)) >> 6 is (H << 4) >> 2j.
 */
// @ts-ignore: decorator
@inline
function scalesIQ4XS(wb: usize, k: i32): v128 {
  const l = (<i32>load<u32>(wb, 4) >>> (16 * k)) & 0xffff;
  const hh = (<i32>load<u16>(wb, 2) >> (8 * k)) & 0xff;
  const low = v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat(l), i32x4(4096, 256, 16, 1)), 12), i32x4.splat(15));
  const high = v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat(hh << 4), i32x4(64, 16, 4, 1)), 6), i32x4.splat(0x30));
  return i32x4.sub(v128.or(low, high), i32x4.splat(32));
}

/** y for one row and one token of IQ4_XS weights. */
// @ts-ignore: decorator
@inline
function dotRowIQ4XS(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const table = iq4Levels();
  const m15 = i8x16.splat(15);
  const mulL = i32x4(4096, 256, 16, 1);
  const mulH = i32x4(64, 16, 4, 1);
  const m30 = i32x4.splat(0x30);
  const m0f = i32x4.splat(15);
  const thirtyTwo = i32x4.splat(32);
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let a2 = f64x2.splat(0);
  let a3 = f64x2.splat(0);
  const low29 = i32x4.splat(0x1fffffff); // loop constants in locals (see q4_0.ts)
  const half = i32x4.splat(0x10000000);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 136;
    const qb = q + (<usize>b << 9);
    // ls_s for s = 0..3 and 4..7: lane k of (L * 2^(12-4k)) >> 12 is L >> 4k (L < 2^16), and of
    // ((H << 4) * 2^(6-2k)) >> 6 is (H << 4) >> 2k.
    const l = <i32>load<u32>(wb, 4);
    const hh = <i32>load<u16>(wb, 2);
    const ls0 = i32x4.sub(v128.or(
      v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat(l & 0xffff), mulL), 12), m0f),
      v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((hh & 0xff) << 4), mulH), 6), m30),
    ), thirtyTwo);
    const ls1 = i32x4.sub(v128.or(
      v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((l >>> 16) & 0xffff), mulL), 12), m0f),
      v128.and(i32x4.shr_u(i32x4.mul(i32x4.splat((hh >> 8) << 4), mulH), 6), m30),
    ), thirtyTwo);
    // sub-block s: low nibbles (values 32s + 0..15) feed lanes 0..3, high nibbles lanes 4..7
    let sLo = iq4Sub(i32x4.splat(0), wb, qb, 0, ls0, table, m15, false);
    let sHi = iq4Sub(i32x4.splat(0), wb, qb, 0, ls0, table, m15, true);
    v128.store32_lane(yp, sHi, 0); // ordering fences (see q4_0.ts)
    sLo = iq4Sub(sLo, wb, qb, 1, ls0, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 1, ls0, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 2, ls0, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 2, ls0, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 3, ls0, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 3, ls0, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 4, ls1, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 4, ls1, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 5, ls1, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 5, ls1, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 6, ls1, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 6, ls1, table, m15, true);
    v128.store32_lane(yp, sHi, 0);
    sLo = iq4Sub(sLo, wb, qb, 7, ls1, table, m15, false);
    sHi = iq4Sub(sHi, wb, qb, 7, ls1, table, m15, true);
    const d = halfToFloat(load<u16>(wb)) * load<f32>(dxs + (<usize>b << 2));
    {
      const dd = f64x2.splat(<f64>d);
      const s0 = pairF64(sLo, 0);
      const s1 = pairF64(sLo, 1);
      const s2 = pairF64(sHi, 0);
      const s3 = pairF64(sHi, 1);
      const r0 = madd2(dd, s0, a0);
      const r1 = madd2(dd, s1, a1);
      const r2 = madd2(dd, s2, a2);
      const r3 = madd2(dd, s3, a3);
      if (v128.any_true(v128.or(halfway4(r0, r1, low29, half), halfway4(r2, r3, low29, half)))) {
        a0 = fmaExact2(d, s0, a0);
        a1 = fmaExact2(d, s1, a1);
        a2 = fmaExact2(d, s2, a2);
        a3 = fmaExact2(d, s3, a3);
      } else {
        a0 = round2(r0);
        a1 = round2(r1);
        a2 = round2(r2);
        a3 = round2(r3);
      }
    }
  }
  return hsum8(a0, a1, a2, a3);
}

const Q2_K: i32 = 10;
const Q3_K: i32 = 11;
const IQ4_XS: i32 = 23;

/** One row (at w) against one token (activations at q); type is a constant. */
// @ts-ignore: decorator
@inline
function dotRow(type: i32, w: usize, q: usize, n: i32, yp: usize): f32 {
  return type == Q2_K ? dotRowQ2K(w, q, n, yp) : type == Q3_K ? dotRowQ3K(w, q, n, yp) : dotRowIQ4XS(w, q, n, yp);
}

/*
 * Prompt processing: one row against four tokens (dot1x4). Each 16-value group is decoded once,
 * multiplied by its sub-block scale as i16 (|sc * q| <= 4064), and dotted with the four tokens'
 * codes; each token then takes the same fma steps as dotRow, so the bits are dotRow's. A
 * super-block's groups form two streams of eight, lanes 0..3 ("lo": Q2_K/Q3_K code bytes
 * l = 0..15, IQ4_XS low nibbles) and lanes 4..7 ("hi"); group k of either sits at code offset
 * 64k (+32 for hi) in every type, and its scale is lane k of one i16 vector per stream.
 */

/** The code bytes of group k of a stream, both values of each i16 lane (see evensOf/oddsOf). */
// @ts-ignore: decorator
@inline
function pairCodes(type: i32, wb: usize, k: i32, hi: bool, hm: v128, m3: v128, m1: v128, table: v128, m15: v128): v128 {
  if (type == IQ4_XS) {
    const v = v128.load(wb + 8 + (<usize>k << 4));
    return lookup(table, hi ? v128.and(i16x8.shr_u(v, 4), m15) : v128.and(v, m15));
  }
  const h = k >> 2;
  const s = k & 3;
  const v = v128.load(wb + (type == Q2_K ? 16 : 32) + (hi ? 16 : 0) + (<usize>h << 5));
  const low = v128.and(i16x8.shr_u(v, 2 * s), m3);
  if (type == Q2_K) return low;
  return v128.or(low, i16x8.shl(v128.and(i16x8.shr_u(hm, k), m1), 2)); // Q3_K: hmask bit 4h + s = k
}

/** The even values' weights (i16) of a pair of code bytes t: Q2_K q, Q3_K q - 4, IQ4_XS KV[q]. */
// @ts-ignore: decorator
@inline
function evensOf(type: i32, t: v128, m8: v128, four: v128): v128 {
  if (type == IQ4_XS) return i16x8.shr_s(i16x8.shl(t, 8), 8);
  const e = v128.and(t, m8);
  return type == Q3_K ? i16x8.sub(e, four) : e;
}

/** The odd values' weights of t. */
// @ts-ignore: decorator
@inline
function oddsOf(type: i32, t: v128, four: v128): v128 {
  if (type == IQ4_XS) return i16x8.shr_s(t, 8);
  const o = i16x8.shr_u(t, 8);
  return type == Q3_K ? i16x8.sub(o, four) : o;
}

/** One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. */
// @ts-ignore: decorator
@inline
function dot1x4(type: i32, w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const bss = dxs + (<usize>nb << 2);
  const blockBytes: usize = type == Q2_K ? 84 : type == Q3_K ? 110 : 136;
  const m3 = i16x8.splat(0x0303);
  const m1 = i16x8.splat(0x0101);
  const m8 = i16x8.splat(0x00ff);
  const m15 = i8x16.splat(15);
  const four = i16x8.splat(4);
  const table = iq4Levels();
  const laneIdx = i16x8.splat(0x0100);
  const laneStep = i16x8.splat(0x0202);
  const low29w = i32x4.splat(0x1fffffff);
  const halfw = i32x4.splat(0x10000000);
  const zero = f64x2.splat(0);
  // Token t's accumulator pairs (t, 0), (t, 1) of the stream being summed (c) and of the other (o):
  // they trade places after each stream, so c holds lanes 0-3 for "lo" and 4-7 for "hi".
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  let o00 = zero, o01 = zero, o10 = zero, o11 = zero, o20 = zero, o21 = zero, o30 = zero, o31 = zero;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * blockBytes;
    const qb = q + (<usize>b << 9);
    const dxp = dxs + (<usize>b << 2);
    // the two streams' scales as i16 lanes 0..7, and the super-block scale of the weights
    let scLo: v128, scHi: v128;
    let dw: f32;
    let dminW: f32 = 0; // Q2_K
    let mins0 = i16x8.splat(0), mins1 = i16x8.splat(0); // Q2_K's m_j, j = 0..7 and 8..15
    if (type == Q2_K) {
      const sc = v128.and(v128.load(wb), m15);
      scLo = evenOdd16(sc, false, false);
      scHi = evenOdd16(sc, true, false);
      dw = halfToFloat(load<u16>(wb, 80));
      const mn = v128.and(i16x8.shr_u(v128.load(wb), 4), m15);
      mins0 = i16x8.extend_low_i8x16_u(mn);
      mins1 = i16x8.extend_high_i8x16_u(mn);
      dminW = halfToFloat(load<u16>(wb, 82));
    } else if (type == Q3_K) {
      const sc8 = scalesQ3K(wb);
      scLo = evenOdd16(sc8, false, true);
      scHi = evenOdd16(sc8, true, true);
      dw = halfToFloat(load<u16>(wb, 108));
    } else {
      const ls = i16x8.narrow_i32x4_s(scalesIQ4XS(wb, 0), scalesIQ4XS(wb, 1));
      scLo = ls;
      scHi = ls;
      dw = halfToFloat(load<u16>(wb));
    }
    const hm0 = v128.load(wb);
    const hm1 = v128.load(wb, 16);
    for (let part = 0; part < 2; part++) {
      const hi = part == 1;
      const scv = hi ? scHi : scLo;
      let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
      let idx = laneIdx;
      for (let k = 0; k < 8; k++, idx = i16x8.add(idx, laneStep)) {
        const t = pairCodes(type, wb, k, hi, hi ? hm1 : hm0, m3, m1, table, m15);
        const sc = i8x16.swizzle(scv, idx); // lane k in every lane
        const e = i16x8.mul(evensOf(type, t, m8, four), sc);
        const o = i16x8.mul(oddsOf(type, t, four), sc);
        const x = qb + (<usize>k << 6) + (hi ? 32 : 0);
        s0 = i32x4.add(s0, groupDot(e, o, x));
        s1 = i32x4.add(s1, groupDot(e, o, x + qs));
        v128.store32_lane(yp, s1, 0); // ordering fences (see q4_0.ts)
        s2 = i32x4.add(s2, groupDot(e, o, x + 2 * qs));
        s3 = i32x4.add(s3, groupDot(e, o, x + 3 * qs));
      }
      // acc = fma(dx*d, S, acc) on this stream's lanes, token by token (d = d*dx for IQ4_XS: same product)
      const d0 = load<f32>(dxp) * dw, d1 = load<f32>(dxp + qs) * dw;
      const d2 = load<f32>(dxp + 2 * qs) * dw, d3 = load<f32>(dxp + 3 * qs) * dw;
      const dd0 = f64x2.splat(<f64>d0), dd1 = f64x2.splat(<f64>d1), dd2 = f64x2.splat(<f64>d2), dd3 = f64x2.splat(<f64>d3);
      if (type == Q2_K) {
        // acc = fma(-(dx*dmin), P, acc) first (ggml's order), P_m = m_2m bsum_2m + m_2m+1 bsum_2m+1
        const mv = hi ? mins1 : mins0;
        const mA = i32x4.extend_low_i16x8_u(mv), mB = i32x4.extend_high_i16x8_u(mv);
        const bs = bss + (<usize>b << 6) + (hi ? 32 : 0);
        const pm0 = pairSums(i32x4.mul(v128.load(bs), mA), i32x4.mul(v128.load(bs, 16), mB));
        const pm1 = pairSums(i32x4.mul(v128.load(bs + qs), mA), i32x4.mul(v128.load(bs + qs, 16), mB));
        const pm2 = pairSums(i32x4.mul(v128.load(bs + 2 * qs), mA), i32x4.mul(v128.load(bs + 2 * qs, 16), mB));
        const pm3 = pairSums(i32x4.mul(v128.load(bs + 3 * qs), mA), i32x4.mul(v128.load(bs + 3 * qs, 16), mB));
        const dm0 = -load<f32>(dxp) * dminW, dm1 = -load<f32>(dxp + qs) * dminW;
        const dm2 = -load<f32>(dxp + 2 * qs) * dminW, dm3 = -load<f32>(dxp + 3 * qs) * dminW;
        const ddm0 = f64x2.splat(<f64>dm0), ddm1 = f64x2.splat(<f64>dm1), ddm2 = f64x2.splat(<f64>dm2), ddm3 = f64x2.splat(<f64>dm3);
        const q00 = pairF64(pm0, 0), q01 = pairF64(pm0, 1), q10 = pairF64(pm1, 0), q11 = pairF64(pm1, 1);
        const q20 = pairF64(pm2, 0), q21 = pairF64(pm2, 1), q30 = pairF64(pm3, 0), q31 = pairF64(pm3, 1);
        const u00 = madd2(ddm0, q00, c00), u01 = madd2(ddm0, q01, c01), u10 = madd2(ddm1, q10, c10), u11 = madd2(ddm1, q11, c11);
        const u20 = madd2(ddm2, q20, c20), u21 = madd2(ddm2, q21, c21), u30 = madd2(ddm3, q30, c30), u31 = madd2(ddm3, q31, c31);
        if (v128.any_true(v128.or(
          v128.or(halfway4(u00, u01, low29w, halfw), halfway4(u10, u11, low29w, halfw)),
          v128.or(halfway4(u20, u21, low29w, halfw), halfway4(u30, u31, low29w, halfw)),
        ))) {
          c00 = fmaExact2(dm0, q00, c00); c01 = fmaExact2(dm0, q01, c01); c10 = fmaExact2(dm1, q10, c10); c11 = fmaExact2(dm1, q11, c11);
          c20 = fmaExact2(dm2, q20, c20); c21 = fmaExact2(dm2, q21, c21); c30 = fmaExact2(dm3, q30, c30); c31 = fmaExact2(dm3, q31, c31);
        } else {
          c00 = round2(u00); c01 = round2(u01); c10 = round2(u10); c11 = round2(u11);
          c20 = round2(u20); c21 = round2(u21); c30 = round2(u30); c31 = round2(u31);
        }
      }
      const p00 = pairF64(s0, 0), p01 = pairF64(s0, 1), p10 = pairF64(s1, 0), p11 = pairF64(s1, 1);
      const p20 = pairF64(s2, 0), p21 = pairF64(s2, 1), p30 = pairF64(s3, 0), p31 = pairF64(s3, 1);
      const r00 = madd2(dd0, p00, c00), r01 = madd2(dd0, p01, c01), r10 = madd2(dd1, p10, c10), r11 = madd2(dd1, p11, c11);
      const r20 = madd2(dd2, p20, c20), r21 = madd2(dd2, p21, c21), r30 = madd2(dd3, p30, c30), r31 = madd2(dd3, p31, c31);
      if (v128.any_true(v128.or(
        v128.or(halfway4(r00, r01, low29w, halfw), halfway4(r10, r11, low29w, halfw)),
        v128.or(halfway4(r20, r21, low29w, halfw), halfway4(r30, r31, low29w, halfw)),
      ))) {
        c00 = fmaExact2(d0, p00, c00); c01 = fmaExact2(d0, p01, c01); c10 = fmaExact2(d1, p10, c10); c11 = fmaExact2(d1, p11, c11);
        c20 = fmaExact2(d2, p20, c20); c21 = fmaExact2(d2, p21, c21); c30 = fmaExact2(d3, p30, c30); c31 = fmaExact2(d3, p31, c31);
      } else {
        c00 = round2(r00); c01 = round2(r01); c10 = round2(r10); c11 = round2(r11);
        c20 = round2(r20); c21 = round2(r21); c30 = round2(r30); c31 = round2(r31);
      }
      let x0 = c00; c00 = o00; o00 = x0;
      x0 = c01; c01 = o01; o01 = x0;
      x0 = c10; c10 = o10; o10 = x0;
      x0 = c11; c11 = o11; o11 = x0;
      x0 = c20; c20 = o20; o20 = x0;
      x0 = c21; c21 = o21; o21 = x0;
      x0 = c30; c30 = o30; o30 = x0;
      x0 = c31; c31 = o31; o31 = x0;
    }
  }
  store<f32>(yp, hsum8(c00, c01, o00, o01));
  store<f32>(yp + ys, hsum8(c10, c11, o10, o11));
  store<f32>(yp + 2 * ys, hsum8(c20, c21, o20, o21));
  store<f32>(yp + 3 * ys, hsum8(c30, c31, o30, o31));
}

/**
 * y[t][r] for rows r0..r1-1 and tokens 0..nTok-1 (output rows ldy floats apart): each row read
 * once for all tokens, in fours with dot1x4, the rest with dotRow (as tiles.ts walks Q4_0).
 */
// @ts-ignore: decorator
@inline
function matmulLow(type: i32, w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const rowBytes = <usize>(n >> 8) * (type == Q2_K ? 84 : type == Q3_K ? 110 : 136);
  const qStride = <usize>act_q8_K_eo_bytes(n);
  const yStride = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t < quads; t += 4) dot1x4(type, wr, q + <usize>t * qStride, qStride, n, yr + <usize>t * yStride, yStride);
    for (; t < nTok; t++) {
      const yp = yr + <usize>t * yStride;
      store<f32>(yp, dotRow(type, wr, q + <usize>t * qStride, n, yp));
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
