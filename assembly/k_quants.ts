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
 *
 * Float order (per row and token, f32): sum += (d_x*d) * f32(S) - (d_x*dmin) * f32(M) per Q4_K /
 * Q5_K super-block (S = sum_j sc_j (q_j . x_j), M = the mins term), sum += (d_x*d) * f32(S - 32 B)
 * per Q6_K one; test/kernels/k-quants-tiles.test.ts writes it out and holds every path to it.
 * Prompt processing walks each Q4_K / Q5_K row against tokens in fours (dot1x4K45): 16 code bytes are
 * decoded once, multiplied by their sub-block scales in i16, and used for four tokens; the
 * integer sums and each token's float steps are the one-token path's, so the bits are too.
 * Q6_K rows likewise (dot1x4Q6K): 16 codes decoded once, then per token either the codes widened
 * and scaled in i16 (plain SIMD) or an i8 dot product followed by an i16 one with the scale
 * (relaxed); the -32 offset is sum_s sc_s bsum_s per token, as in dotRowQ6K.
 *
 * Activations: Q6_K reads plain Q8_K rows (i8 codes, d, sums of 16). Q4_K / Q5_K read codes
 * widened to i16 (quantize.ts) in the plain SIMD build, and plain Q8_K rows in the relaxed one,
 * where each 16 code bytes give two vectors of nibbles (0..31 with the fifth bit: the i7 operand)
 * for i16x8.relaxed_dot_i8x16_i7x16_s; both builds give the same integer sums, so the same bits.
 */
import { halfToFloat, highHalves4, highHalvesExact4, hsumI32, vconst, HALF_TO_SINGLE, SCALES4_MASK, V_HALF_EXP, V_HALF_EXP1, V_I8_0X30, V_REBIAS1, V_SIGN, V_SIGN_EXP, V_I8_15, V_I8_16, V_REBIAS, V_SCALES4_MASK, V_SPLAT16 } from "./common";
import { act_q8_K_bytes, act_q8_K_i16_bytes } from "./quantize";
import { pairSums, transposeSum } from "./q4_0";
import { matmul_q4_K_r4 } from "./q4_k_r4";
import { matmul_q6_K_r4 } from "./q6_k_r4";




/**
 * Q4_K / Q5_K scales and mins of one super-block, decoded with 32-bit ops (12 packed bytes at s),
 * as one vector of bytes: sc0..3 | sc4..7 | m0..3 | m4..7.
 */
// @ts-ignore: decorator
@inline
function scalesMinsK4(s: usize): v128 {
  const a = load<u32>(s);
  const b = load<u32>(s, 4);
  const c = load<u32>(s, 8);
  let v = i32x4.splat(<i32>(a & 0x3f3f3f3f));
  v = i32x4.replace_lane(v, 1, <i32>((c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030)));
  v = i32x4.replace_lane(v, 2, <i32>(b & 0x3f3f3f3f));
  return i32x4.replace_lane(v, 3, <i32>(((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030)));
}

/**
 * One super-block of Q4_K (hasHigh false) or Q5_K (qh = address of its 32 high-bit bytes)
 * against i16-widened Q8_K codes at x (quantize.ts), decoding one token: the nibbles in i16 lanes
 * as Q4_0 does, code x activation products (|q x| <= 31 * 127) summed per sub-block in i16 (four
 * per lane, <= 15748), then one i32x4.dot_i16x8_s with the sub-block's scale both widens and
 * scales; one accumulator. (1.15x over eight sub-block accumulators of i32x4.dot_i16x8_s
 * gathered by transposes; the lane stores are ordering fences, see q4_0.ts.)
 */
// @ts-ignore: decorator
@inline
function superDotK45(qs: usize, qh: usize, hasHigh: bool, x: usize, sm: v128, sums: usize, yp: usize): v128 {
  const sc = i16x8.extend_low_i8x16_u(sm);
  const hq0 = hasHigh ? v128.load(qh) : i32x4.splat(0);
  const hq1 = hasHigh ? v128.load(qh, 16) : i32x4.splat(0);
  let acc = i32x4.splat(0);
  {
    const v0 = v128.load(qs, 0);
    const hq40 = i16x8.shl(hq0, 4);
    const v1 = v128.load(qs, 16);
    const hq41 = i16x8.shl(hq1, 4);
    let sA = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 0, 0), v128.load(x, 0)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 0, 1), v128.load(x, 16)));
    v128.store32_lane(yp, sA, 0); // ordering fence
    let sB = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 0, 2), v128.load(x, 32)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 0, 3), v128.load(x, 48)));
    v128.store32_lane(yp, sB, 0); // ordering fence
    sA = i16x8.add(sA, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 0, 0), v128.load(x, 64)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 0, 1), v128.load(x, 80))));
    sB = i16x8.add(sB, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 0, 2), v128.load(x, 96)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 0, 3), v128.load(x, 112))));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(sA, i16x8.shuffle(sc, sc, 0,0,0,0,0,0,0,0)),
      i32x4.dot_i16x8_s(sB, i16x8.shuffle(sc, sc, 1,1,1,1,1,1,1,1))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 32);
    const hq40 = i16x8.shl(hq0, 4);
    const v1 = v128.load(qs, 48);
    const hq41 = i16x8.shl(hq1, 4);
    let sA = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 1, 0), v128.load(x, 128)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 1, 1), v128.load(x, 144)));
    v128.store32_lane(yp, sA, 0); // ordering fence
    let sB = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 1, 2), v128.load(x, 160)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 1, 3), v128.load(x, 176)));
    v128.store32_lane(yp, sB, 0); // ordering fence
    sA = i16x8.add(sA, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 1, 0), v128.load(x, 192)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 1, 1), v128.load(x, 208))));
    sB = i16x8.add(sB, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 1, 2), v128.load(x, 224)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 1, 3), v128.load(x, 240))));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(sA, i16x8.shuffle(sc, sc, 2,2,2,2,2,2,2,2)),
      i32x4.dot_i16x8_s(sB, i16x8.shuffle(sc, sc, 3,3,3,3,3,3,3,3))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 64);
    const hq40 = i16x8.shl(hq0, 4);
    const v1 = v128.load(qs, 80);
    const hq41 = i16x8.shl(hq1, 4);
    let sA = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 2, 0), v128.load(x, 256)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 2, 1), v128.load(x, 272)));
    v128.store32_lane(yp, sA, 0); // ordering fence
    let sB = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 2, 2), v128.load(x, 288)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 2, 3), v128.load(x, 304)));
    v128.store32_lane(yp, sB, 0); // ordering fence
    sA = i16x8.add(sA, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 2, 0), v128.load(x, 320)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 2, 1), v128.load(x, 336))));
    sB = i16x8.add(sB, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 2, 2), v128.load(x, 352)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 2, 3), v128.load(x, 368))));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(sA, i16x8.shuffle(sc, sc, 4,4,4,4,4,4,4,4)),
      i32x4.dot_i16x8_s(sB, i16x8.shuffle(sc, sc, 5,5,5,5,5,5,5,5))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 96);
    const hq40 = i16x8.shl(hq0, 4);
    const v1 = v128.load(qs, 112);
    const hq41 = i16x8.shl(hq1, 4);
    let sA = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 3, 0), v128.load(x, 384)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 3, 1), v128.load(x, 400)));
    v128.store32_lane(yp, sA, 0); // ordering fence
    let sB = i16x8.add(
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 3, 2), v128.load(x, 416)),
      i16x8.mul(codesK45(v0, hq0, hq40, hasHigh, 3, 3), v128.load(x, 432)));
    v128.store32_lane(yp, sB, 0); // ordering fence
    sA = i16x8.add(sA, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 3, 0), v128.load(x, 448)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 3, 1), v128.load(x, 464))));
    sB = i16x8.add(sB, i16x8.add(
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 3, 2), v128.load(x, 480)),
      i16x8.mul(codesK45(v1, hq1, hq41, hasHigh, 3, 3), v128.load(x, 496))));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(sA, i16x8.shuffle(sc, sc, 6,6,6,6,6,6,6,6)),
      i32x4.dot_i16x8_s(sB, i16x8.shuffle(sc, sc, 7,7,7,7,7,7,7,7))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  const mn = i16x8.extend_high_i8x16_u(sm);
  const mins = i32x4.add(
    i32x4.mul(v128.load(sums), i32x4.extend_low_i16x8_u(mn)),
    i32x4.mul(v128.load(sums, 16), i32x4.extend_high_i16x8_u(mn)),
  );
  return pairSums(acc, mins); // [scaled sums 0+1, 2+3, mins 0+1, 2+3], exact
}

// @ts-ignore: decorator
@inline
function dotRowK45(w: usize, q: usize, n: i32, blockBytes: usize, hasHigh: bool, yp: usize): f32 {
  const nb = n >> 8;
  // codes, then d, then sums: of 32 (i16 codes) or of 16 (relaxed: i8 codes)
  const dxs = q + (ASC_FEATURE_RELAXED_SIMD ? <usize>n : <usize>n << 1);
  const sums = dxs + (<usize>nb << 2);
  let sum: f32 = 0;
  let b = 0;
  // Two super-blocks per step: their integer sums, scales and float products in one vector,
  // lanes [b: scaled sums, mins | b+1: scaled sums, mins]; then sum += v_b, sum += v_b+1.
  for (; b + 1 < nb; b += 2) {
    const wb = w + <usize>b * blockBytes;
    const p0 = superK45(wb, b, q, sums, hasHigh, yp);
    const p1 = superK45(wb + blockBytes, b + 1, q, sums, hasHigh, yp);
    const am = f32x4.convert_i32x4_s(pairSums(p0, p1));
    const hv = v128.load32_lane(wb + blockBytes, v128.load32_zero(wb), 1); // d, dmin of b and b+1
    const dm = halvesExact4(i32x4.shl(i32x4.extend_low_i16x8_u(hv), 16)); // each half in the top of a lane
    const dx = v128.load64_zero(dxs + (<usize>b << 2));
    const v = f32x4.mul(f32x4.mul(i32x4.shuffle(dx, dx, 0, 0, 1, 1), dm), am);
    const t = f32x4.sub(v, f32x4.shuffle(v, v, 1, 0, 3, 2));
    sum += f32x4.extract_lane(t, 0);
    sum += f32x4.extract_lane(t, 2);
  }
  if (b < nb) {
    const wb = w + <usize>b * blockBytes;
    const p = superK45(wb, b, q, sums, hasHigh, yp);
    const t = i32x4.add(p, i32x4.shuffle(p, p, 1, 0, 3, 2));
    const dx = load<f32>(dxs + (<usize>b << 2));
    const dd = dx * halfToFloat(load<u16>(wb));
    const dmin = dx * halfToFloat(load<u16>(wb, 2));
    sum += dd * <f32>i32x4.extract_lane(t, 0) - dmin * <f32>i32x4.extract_lane(t, 2);
  }
  return sum;
}

/** superDotK45 (plain SIMD) or superDotK45R (relaxed) of super-block b (at wb) of a row. */
// @ts-ignore: decorator
@inline
function superK45(wb: usize, b: i32, q: usize, sums: usize, hasHigh: bool, yp: usize): v128 {
  const qh: usize = hasHigh ? wb + 16 : 0;
  const qs = wb + (hasHigh ? 48 : 16);
  if (ASC_FEATURE_RELAXED_SIMD) return superDotK45R(qs, qh, hasHigh, q + (<usize>b << 8), scalesMinsK4(wb + 4), sums + (<usize>b << 6), yp);
  return superDotK45(qs, qh, hasHigh, q + (<usize>b << 9), scalesMinsK4(wb + 4), sums + (<usize>b << 5), yp);
}

/**
 * Four halves, each in the high 16 bits of an i32 lane, to singles exactly as halfToFloat does,
 * without a branch for subnormal halves: they are the rule in k-quant super-block scales (Q6_K's
 * d always, Q4_K's d in a third of real groups of four rows), and a branch taken at random cost
 * more than both forms. Normal halves are rebiased in the integers; exponent 0 (subnormal,
 * zero) rebiased one further reads +-2^-14 (1 + m/1024), and subtracting its own +-2^-14 leaves
 * +-m 2^-24, with the sign or'ed back for -0 (common.ts, highHalvesExact4): no float op sees a
 * subnormal single (common.ts, halfToFloat). Inf and NaN (exponent 31, only in broken files)
 * go out of line.
 */
// @ts-ignore: decorator
@inline
export function halvesExact4(h: v128): v128 {
  const top = vconst(V_HALF_EXP);
  const e = v128.and(h, top);
  if (v128.any_true(i32x4.eq(e, top))) return halvesSlow4(h);
  const b = v128.and(i32x4.shr_s(h, 3), vconst(V_SCALES4_MASK));
  const normal = i32x4.add(b, vconst(V_REBIAS));
  const x = i32x4.add(b, vconst(V_REBIAS1));
  const small = v128.or(f32x4.sub(x, v128.and(x, vconst(V_SIGN_EXP))), v128.and(b, vconst(V_SIGN)));
  const sub = i32x4.eq(e, i32x4.splat(0));
  return ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_laneselect(small, normal, sub) : v128.bitselect(small, normal, sub);
}

/** halvesExact4's general case, out of line. */
function halvesSlow4(h: v128): v128 {
  const f = highHalvesExact4(h);
  const top = i32x4.splat(0x7c000000);
  const special = i32x4.eq(v128.and(h, top), top);
  const bits = v128.or(v128.and(i32x4.shr_s(h, 3), i32x4.splat(0x807fe000)), i32x4.splat(0x7f800000));
  return v128.bitselect(bits, f, special);
}

/**
 * sc * (codes . x) of one Q6_K sub-block (16 codes qc, 0..63; its 16 i8 activations at x; scale
 * splat in scv), as four lanes. Plain SIMD: codes and activations widened, products summed in
 * i16 (two per lane, |.| <= 2 * 63 * 127), one i32x4.dot_i16x8_s with the scale; relaxed: one i8
 * dot product (pairs) and the same dot with the scale.
 */
// @ts-ignore: decorator
@inline
function subQ6K(qc: v128, x: usize, scv: v128): v128 {
  const v = v128.load(x);
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v, qc), scv);
  const p = i16x8.add(
    i16x8.mul(i16x8.extend_low_i8x16_u(qc), i16x8.extend_low_i8x16_s(v)),
    i16x8.mul(i16x8.extend_high_i8x16_u(qc), i16x8.extend_high_i8x16_s(v)));
  return i32x4.dot_i16x8_s(p, scv);
}

/**
 * i16 lane k (a constant) of sc in every lane, for the scale of a Q6_K sub-block. Relaxed build:
 * one byte shuffle with its mask read from memory (common.ts VCONST); V8 makes two shuffles
 * (pshuflw, punpcklqdq) of i16x8.shuffle, which the plain build keeps.
 */
// @ts-ignore: decorator
@inline
function splat16(sc: v128, k: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(sc, vconst(V_SPLAT16 + 16 * k));
  if (k == 0) return i16x8.shuffle(sc, sc, 0, 0, 0, 0, 0, 0, 0, 0);
  if (k == 1) return i16x8.shuffle(sc, sc, 1, 1, 1, 1, 1, 1, 1, 1);
  if (k == 2) return i16x8.shuffle(sc, sc, 2, 2, 2, 2, 2, 2, 2, 2);
  if (k == 3) return i16x8.shuffle(sc, sc, 3, 3, 3, 3, 3, 3, 3, 3);
  if (k == 4) return i16x8.shuffle(sc, sc, 4, 4, 4, 4, 4, 4, 4, 4);
  if (k == 5) return i16x8.shuffle(sc, sc, 5, 5, 5, 5, 5, 5, 5, 5);
  if (k == 6) return i16x8.shuffle(sc, sc, 6, 6, 6, 6, 6, 6, 6, 6);
  return i16x8.shuffle(sc, sc, 7, 7, 7, 7, 7, 7, 7, 7);
}

function dotRowQ6K(w: usize, q: usize, n: i32, yp: usize): f32 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bs = dxs + (<usize>nb << 2);
  const low = vconst(V_I8_15);
  const m30 = vconst(V_I8_0X30);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 210;
    const qb = q + (<usize>b << 8);
    // All 16 sub-block scales at once: as i16 for picking per group, as i32 for the offsets.
    const sc = v128.load(wb, 192);
    const sc0 = i16x8.extend_low_i8x16_s(sc);
    const sc1 = i16x8.extend_high_i8x16_s(sc);
    const bsb = bs + (<usize>b << 6);
    // sum_s sc_s * bsum_s, for the -32 offset of the codes
    const offs = offsQ6K(bsb, sc0, sc1);
    let acc = i32x4.splat(0);
    {
      const a = v128.load(wb, 0);
      const c = v128.load(wb, 32);
      const hb = v128.load(wb, 128);
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 0, low, m30), qb + 0, splat16(sc0, 0)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 1, low, m30), qb + 32, splat16(sc0, 2)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 2, low, m30), qb + 64, splat16(sc0, 4)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 3, low, m30), qb + 96, splat16(sc0, 6)));
    }
    {
      const a = v128.load(wb, 16);
      const c = v128.load(wb, 48);
      const hb = v128.load(wb, 144);
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 0, low, m30), qb + 16, splat16(sc0, 1)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 1, low, m30), qb + 48, splat16(sc0, 3)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 2, low, m30), qb + 80, splat16(sc0, 5)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 3, low, m30), qb + 112, splat16(sc0, 7)));
    }
    {
      const a = v128.load(wb, 64);
      const c = v128.load(wb, 96);
      const hb = v128.load(wb, 160);
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 0, low, m30), qb + 128, splat16(sc1, 0)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 1, low, m30), qb + 160, splat16(sc1, 2)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 2, low, m30), qb + 192, splat16(sc1, 4)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 3, low, m30), qb + 224, splat16(sc1, 6)));
    }
    {
      const a = v128.load(wb, 80);
      const c = v128.load(wb, 112);
      const hb = v128.load(wb, 176);
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 0, low, m30), qb + 144, splat16(sc1, 1)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 1, low, m30), qb + 176, splat16(sc1, 3)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 2, low, m30), qb + 208, splat16(sc1, 5)));
      v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
      acc = i32x4.add(acc, subQ6K(codeQ6K(a, c, hb, 3, low, m30), qb + 240, splat16(sc1, 7)));
    }
    sum += load<f32>(dxs + (<usize>b << 2)) * halfToFloat(load<u16>(wb, 208)) * <f32>hsumI32(i32x4.sub(acc, i32x4.shl(offs, 5)));
  }
  return sum;
}

/**
 * Code vector k (0..3) of 16 Q4_K / Q5_K code bytes v in chunk c, as i16 lanes: k = 0, 1 the
 * even and odd values of sub-block A (low nibbles), k = 2, 3 those of sub-block B (high).
 */
// @ts-ignore: decorator
@inline
function codesK45(v: v128, hq: v128, hq4: v128, hasHigh: bool, c: i32, k: i32): v128 {
  const m = i16x8.splat(15);
  let r = k == 0 ? v128.and(v, m) : k == 1 ? v128.and(i16x8.shr_u(v, 8), m) : k == 2 ? v128.and(i16x8.shr_u(v, 4), m) : i16x8.shr_u(v, 12);
  if (hasHigh) {
    const bit = k == 0 ? i16x8.shr_u(hq4, 2 * c) : k == 1 ? i16x8.shr_u(hq, 4 + 2 * c) : k == 2 ? i16x8.shr_u(hq4, 2 * c + 1) : i16x8.shr_u(hq, 5 + 2 * c);
    r = v128.or(r, v128.and(bit, i16x8.splat(16)));
  }
  return r;
}

/** Integer dot of four i16 code vectors with one token's 32 i16 activations at x. */
// @ts-ignore: decorator
@inline
function dot4(c0: v128, c1: v128, c2: v128, c3: v128, x: usize): v128 {
  let s = i32x4.dot_i16x8_s(c0, v128.load(x));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c1, v128.load(x, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c2, v128.load(x, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(c3, v128.load(x, 48)));
}

/**
 * One Q4_K / Q5_K row (at w) against four tokens (i16 Q8_K activations at q + t qs; outputs at
 * yp + t ys), for prompt processing. Each 16 code bytes are decoded once and multiplied by their
 * sub-block scale in i16 (|sc q| <= 63 * 31), so a token's sum_j sc_j (q_j . x_j) collects in
 * one accumulator; the integer sums are dotRowK45's, and each token's float steps are its steps
 * in the same order (lane t of a vector), so the outputs have dotRowK45's bits.
 */
// @ts-ignore: decorator
@inline
function dot1x4K45(w: usize, q: usize, qs: usize, n: i32, blockBytes: usize, hasHigh: bool, yp: usize, ys: usize): void {
  const nb = n >> 8;
  const dxs = q + (<usize>n << 1);
  const sums = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let total = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * blockBytes;
    const sm = scalesMinsK4(wb + 4);
    const sc = i16x8.extend_low_i8x16_u(sm);
    const qsb = wb + (hasHigh ? 48 : 16);
    const hq0 = hasHigh ? v128.load(wb, 16) : i32x4.splat(0);
    const hq1 = hasHigh ? v128.load(wb, 32) : i32x4.splat(0);
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    const x = q + (<usize>b << 9);
    const scA0 = i16x8.shuffle(sc, sc, 0,0,0,0,0,0,0,0);
    const scB0 = i16x8.shuffle(sc, sc, 1,1,1,1,1,1,1,1);
    const scA1 = i16x8.shuffle(sc, sc, 2,2,2,2,2,2,2,2);
    const scB1 = i16x8.shuffle(sc, sc, 3,3,3,3,3,3,3,3);
    const scA2 = i16x8.shuffle(sc, sc, 4,4,4,4,4,4,4,4);
    const scB2 = i16x8.shuffle(sc, sc, 5,5,5,5,5,5,5,5);
    const scA3 = i16x8.shuffle(sc, sc, 6,6,6,6,6,6,6,6);
    const scB3 = i16x8.shuffle(sc, sc, 7,7,7,7,7,7,7,7);
    {
      const v = v128.load(qsb, 0);
      const hq = hq0;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 0), scA0);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 1), scA0);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 2), scB0);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 3), scB0);
      const xh = x + 0;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 16);
      const hq = hq1;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 0), scA0);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 1), scA0);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 2), scB0);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 0, 3), scB0);
      const xh = x + 64;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 32);
      const hq = hq0;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 0), scA1);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 1), scA1);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 2), scB1);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 3), scB1);
      const xh = x + 128;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 48);
      const hq = hq1;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 0), scA1);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 1), scA1);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 2), scB1);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 1, 3), scB1);
      const xh = x + 192;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 64);
      const hq = hq0;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 0), scA2);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 1), scA2);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 2), scB2);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 3), scB2);
      const xh = x + 256;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 80);
      const hq = hq1;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 0), scA2);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 1), scA2);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 2), scB2);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 2, 3), scB2);
      const xh = x + 320;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 96);
      const hq = hq0;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 0), scA3);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 1), scA3);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 2), scB3);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 3), scB3);
      const xh = x + 384;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v = v128.load(qsb, 112);
      const hq = hq1;
      const hq4 = i16x8.shl(hq, 4);
      const c0 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 0), scA3);
      const c1 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 1), scA3);
      const c2 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 2), scB3);
      const c3 = i16x8.mul(codesK45(v, hq, hq4, hasHigh, 3, 3), scB3);
      const xh = x + 448;
      a0 = i32x4.add(a0, dot4(c0, c1, c2, c3, xh));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, dot4(c0, c1, c2, c3, xh + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, dot4(c0, c1, c2, c3, xh + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, dot4(c0, c1, c2, c3, xh + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    const mn = i16x8.extend_high_i8x16_u(sm);
    const mLo = i32x4.extend_low_i16x8_u(mn);
    const mHi = i32x4.extend_high_i16x8_u(mn);
    const sb = sums + (<usize>b << 5);
    const mins = transposeSum(
      i32x4.add(i32x4.mul(v128.load(sb), mLo), i32x4.mul(v128.load(sb, 16), mHi)),
      i32x4.add(i32x4.mul(v128.load(sb + qs), mLo), i32x4.mul(v128.load(sb + qs, 16), mHi)),
      i32x4.add(i32x4.mul(v128.load(sb + qs2), mLo), i32x4.mul(v128.load(sb + qs2, 16), mHi)),
      i32x4.add(i32x4.mul(v128.load(sb + qs3), mLo), i32x4.mul(v128.load(sb + qs3, 16), mHi)),
    );
    const dp = dxs + (<usize>b << 2);
    let dx = v128.load32_lane(dp, i32x4.splat(0), 0);
    dx = v128.load32_lane(dp + qs, dx, 1);
    dx = v128.load32_lane(dp + qs2, dx, 2);
    dx = v128.load32_lane(dp + qs3, dx, 3);
    const dd = f32x4.mul(dx, f32x4.splat(halfToFloat(load<u16>(wb))));
    const dmin = f32x4.mul(dx, f32x4.splat(halfToFloat(load<u16>(wb, 2))));
    total = f32x4.add(total, f32x4.sub(
      f32x4.mul(dd, f32x4.convert_i32x4_s(transposeSum(a0, a1, a2, a3))),
      f32x4.mul(dmin, f32x4.convert_i32x4_s(mins)),
    ));
  }
  v128.store32_lane(yp, total, 0);
  v128.store32_lane(yp + ys, total, 1);
  v128.store32_lane(yp + 2 * ys, total, 2);
  v128.store32_lane(yp + 3 * ys, total, 3);
}

/**
 * Relaxed-SIMD build: Q4_K / Q5_K read plain i8 Q8_K activations (quantize_q8_K_i16 writes them
 * there: codes, d at q + n, sums of 16 at q + n + n/64, rows act_q8_K_i16_bytes apart). Code
 * vector of sub-block 2c (high = false: low nibbles) or 2c+1 (high nibbles) from 16 code bytes v,
 * with the fifth bits (bit 2c or 2c+1 of each qh byte) moved to bit 4 by i16 shifts (the 0x10
 * mask keeps each byte's own bit).
 */
// @ts-ignore: decorator
@inline
function nibblesR(v: v128, qh: v128, hasHigh: bool, c: i32, high: bool, m15: v128, b16: v128): v128 {
  let r = high ? v128.and(i16x8.shr_u(v, 4), m15) : v128.and(v, m15);
  if (hasHigh) {
    const s = 4 - 2 * c - (high ? 1 : 0); // bit (2c or 2c+1) -> bit 4
    const t = s > 0 ? i16x8.shl(qh, s) : s < 0 ? i16x8.shr_u(qh, -s) : qh;
    r = v128.or(r, v128.and(t, b16));
  }
  return r;
}

/**
 * Mins m0..m3 (high = false) or m4..m7 of the i16 lanes mn, each twice: [m0, m0, m1, m1, ..],
 * minsR's operand. An interleave of mn with itself (one punpck): a byte shuffle with zeros would
 * take a pshufb whose mask V8 rebuilds at each use.
 */
// @ts-ignore: decorator
@inline
function minPairs(mn: v128, high: bool): v128 {
  return high ? i16x8.shuffle(mn, mn, 4, 4, 5, 5, 6, 6, 7, 7) : i16x8.shuffle(mn, mn, 0, 0, 1, 1, 2, 2, 3, 3);
}

/** sum_j m_j (bsum_2j + bsum_2j+1) of one token (16 i32 sums at p), as four lanes: pairs of sums narrowed to i16, one dot with the mins. */
// @ts-ignore: decorator
@inline
function minsR(p: usize, md0: v128, md1: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.narrow_i32x4_s(v128.load(p), v128.load(p, 16)), md0),
    i32x4.dot_i16x8_s(i16x8.narrow_i32x4_s(v128.load(p, 32), v128.load(p, 48)), md1));
}

/**
 * superDotK45 for the relaxed build (x: 256 i8 codes, bs: 16 sums): per sub-block two i8 dot
 * products (pairs, |.| <= 2 * 31 * 127) added in i16, then one i32x4.dot_i16x8_s with the scale.
 */
// @ts-ignore: decorator
@inline
function superDotK45R(qs: usize, qh: usize, hasHigh: bool, x: usize, sm: v128, bs: usize, yp: usize): v128 {
  const sc = i16x8.extend_low_i8x16_u(sm);
  const m15 = vconst(V_I8_15);
  const b16 = vconst(V_I8_16);
  const hq0 = hasHigh ? v128.load(qh) : i32x4.splat(0);
  const hq1 = hasHigh ? v128.load(qh, 16) : i32x4.splat(0);
  let acc = i32x4.splat(0);
  {
    const v0 = v128.load(qs, 0);
    const v1 = v128.load(qs, 16);
    const rA = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 0), nibblesR(v0, hq0, hasHigh, 0, false, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 16), nibblesR(v1, hq1, hasHigh, 0, false, m15, b16)));
    const rB = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 32), nibblesR(v0, hq0, hasHigh, 0, true, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 48), nibblesR(v1, hq1, hasHigh, 0, true, m15, b16)));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(rA, i16x8.shuffle(sc, sc, 0,0,0,0,0,0,0,0)),
      i32x4.dot_i16x8_s(rB, i16x8.shuffle(sc, sc, 1,1,1,1,1,1,1,1))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 32);
    const v1 = v128.load(qs, 48);
    const rA = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 64), nibblesR(v0, hq0, hasHigh, 1, false, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 80), nibblesR(v1, hq1, hasHigh, 1, false, m15, b16)));
    const rB = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 96), nibblesR(v0, hq0, hasHigh, 1, true, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 112), nibblesR(v1, hq1, hasHigh, 1, true, m15, b16)));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(rA, i16x8.shuffle(sc, sc, 2,2,2,2,2,2,2,2)),
      i32x4.dot_i16x8_s(rB, i16x8.shuffle(sc, sc, 3,3,3,3,3,3,3,3))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 64);
    const v1 = v128.load(qs, 80);
    const rA = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 128), nibblesR(v0, hq0, hasHigh, 2, false, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 144), nibblesR(v1, hq1, hasHigh, 2, false, m15, b16)));
    const rB = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 160), nibblesR(v0, hq0, hasHigh, 2, true, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 176), nibblesR(v1, hq1, hasHigh, 2, true, m15, b16)));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(rA, i16x8.shuffle(sc, sc, 4,4,4,4,4,4,4,4)),
      i32x4.dot_i16x8_s(rB, i16x8.shuffle(sc, sc, 5,5,5,5,5,5,5,5))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  {
    const v0 = v128.load(qs, 96);
    const v1 = v128.load(qs, 112);
    const rA = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 192), nibblesR(v0, hq0, hasHigh, 3, false, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 208), nibblesR(v1, hq1, hasHigh, 3, false, m15, b16)));
    const rB = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 224), nibblesR(v0, hq0, hasHigh, 3, true, m15, b16)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 240), nibblesR(v1, hq1, hasHigh, 3, true, m15, b16)));
    acc = i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(rA, i16x8.shuffle(sc, sc, 6,6,6,6,6,6,6,6)),
      i32x4.dot_i16x8_s(rB, i16x8.shuffle(sc, sc, 7,7,7,7,7,7,7,7))));
    v128.store32_lane(yp, acc, 0); // ordering fence (see q4_0.ts)
  }
  const mn = i16x8.extend_high_i8x16_u(sm);
  const mins = minsR(bs, minPairs(mn, false), minPairs(mn, true));
  return pairSums(acc, mins); // [scaled sums 0+1, 2+3, mins 0+1, 2+3], exact
}

/** dot1x4K45 for the relaxed build (activations as superDotK45R's). */
// @ts-ignore: decorator
@inline
function dot1x4K45R(w: usize, q: usize, qs: usize, n: i32, blockBytes: usize, hasHigh: bool, yp: usize, ys: usize): void {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bsums = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const m15 = vconst(V_I8_15);
  const b16 = vconst(V_I8_16);
  let total = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * blockBytes;
    const sm = scalesMinsK4(wb + 4);
    const sc = i16x8.extend_low_i8x16_u(sm);
    const qsb = wb + (hasHigh ? 48 : 16);
    const hq0 = hasHigh ? v128.load(wb, 16) : i32x4.splat(0);
    const hq1 = hasHigh ? v128.load(wb, 32) : i32x4.splat(0);
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    const x = q + (<usize>b << 8);
    {
      const v0 = v128.load(qsb, 0);
      const v1 = v128.load(qsb, 16);
      const lo0 = nibblesR(v0, hq0, hasHigh, 0, false, m15, b16);
      const lo1 = nibblesR(v1, hq1, hasHigh, 0, false, m15, b16);
      const hi0 = nibblesR(v0, hq0, hasHigh, 0, true, m15, b16);
      const hi1 = nibblesR(v1, hq1, hasHigh, 0, true, m15, b16);
      const scA = i16x8.shuffle(sc, sc, 0,0,0,0,0,0,0,0);
      const scB = i16x8.shuffle(sc, sc, 1,1,1,1,1,1,1,1);
      const xc = x + 0;
      a0 = i32x4.add(a0, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v0 = v128.load(qsb, 32);
      const v1 = v128.load(qsb, 48);
      const lo0 = nibblesR(v0, hq0, hasHigh, 1, false, m15, b16);
      const lo1 = nibblesR(v1, hq1, hasHigh, 1, false, m15, b16);
      const hi0 = nibblesR(v0, hq0, hasHigh, 1, true, m15, b16);
      const hi1 = nibblesR(v1, hq1, hasHigh, 1, true, m15, b16);
      const scA = i16x8.shuffle(sc, sc, 2,2,2,2,2,2,2,2);
      const scB = i16x8.shuffle(sc, sc, 3,3,3,3,3,3,3,3);
      const xc = x + 64;
      a0 = i32x4.add(a0, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v0 = v128.load(qsb, 64);
      const v1 = v128.load(qsb, 80);
      const lo0 = nibblesR(v0, hq0, hasHigh, 2, false, m15, b16);
      const lo1 = nibblesR(v1, hq1, hasHigh, 2, false, m15, b16);
      const hi0 = nibblesR(v0, hq0, hasHigh, 2, true, m15, b16);
      const hi1 = nibblesR(v1, hq1, hasHigh, 2, true, m15, b16);
      const scA = i16x8.shuffle(sc, sc, 4,4,4,4,4,4,4,4);
      const scB = i16x8.shuffle(sc, sc, 5,5,5,5,5,5,5,5);
      const xc = x + 128;
      a0 = i32x4.add(a0, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    {
      const v0 = v128.load(qsb, 96);
      const v1 = v128.load(qsb, 112);
      const lo0 = nibblesR(v0, hq0, hasHigh, 3, false, m15, b16);
      const lo1 = nibblesR(v1, hq1, hasHigh, 3, false, m15, b16);
      const hi0 = nibblesR(v0, hq0, hasHigh, 3, true, m15, b16);
      const hi1 = nibblesR(v1, hq1, hasHigh, 3, true, m15, b16);
      const scA = i16x8.shuffle(sc, sc, 6,6,6,6,6,6,6,6);
      const scB = i16x8.shuffle(sc, sc, 7,7,7,7,7,7,7,7);
      const xc = x + 192;
      a0 = i32x4.add(a0, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc));
      v128.store32_lane(yp, a0, 0); // ordering fences (see q4_0.ts)
      a1 = i32x4.add(a1, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs));
      v128.store32_lane(yp, a1, 0);
      a2 = i32x4.add(a2, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs2));
      v128.store32_lane(yp, a2, 0);
      a3 = i32x4.add(a3, tokK45R(lo0, lo1, hi0, hi1, scA, scB, xc + qs3));
      v128.store32_lane(yp, a3, 0);
    }
    const mn = i16x8.extend_high_i8x16_u(sm);
    const md0 = minPairs(mn, false);
    const md1 = minPairs(mn, true);
    const bp = bsums + (<usize>b << 6);
    const mins = transposeSum(minsR(bp, md0, md1), minsR(bp + qs, md0, md1), minsR(bp + qs2, md0, md1), minsR(bp + qs3, md0, md1));
    const dp = dxs + (<usize>b << 2);
    let dx = v128.load32_lane(dp, i32x4.splat(0), 0);
    dx = v128.load32_lane(dp + qs, dx, 1);
    dx = v128.load32_lane(dp + qs2, dx, 2);
    dx = v128.load32_lane(dp + qs3, dx, 3);
    const dd = f32x4.mul(dx, f32x4.splat(halfToFloat(load<u16>(wb))));
    const dmin = f32x4.mul(dx, f32x4.splat(halfToFloat(load<u16>(wb, 2))));
    total = f32x4.add(total, f32x4.sub(
      f32x4.mul(dd, f32x4.convert_i32x4_s(transposeSum(a0, a1, a2, a3))),
      f32x4.mul(dmin, f32x4.convert_i32x4_s(mins)),
    ));
  }
  v128.store32_lane(yp, total, 0);
  v128.store32_lane(yp + ys, total, 1);
  v128.store32_lane(yp + 2 * ys, total, 2);
  v128.store32_lane(yp + 3 * ys, total, 3);
}

/** One token's sum over one chunk (codes lo0|lo1 of sub-block 2c, hi0|hi1 of 2c+1; its 64 i8 codes at x). */
// @ts-ignore: decorator
@inline
function tokK45R(lo0: v128, lo1: v128, hi0: v128, hi1: v128, scA: v128, scB: v128, x: usize): v128 {
  const rA = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), lo0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 16), lo1));
  const rB = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 32), hi0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 48), hi1));
  return i32x4.add(i32x4.dot_i16x8_s(rA, scA), i32x4.dot_i16x8_s(rB, scB));
}

/** Rows r0..r1-1 of a Q4_K / Q5_K matmul: tokens in fours with dot1x4K45, the rest with dotRowK45. */
// @ts-ignore: decorator
@inline
function matmulK45(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32, blockBytes: usize, hasHigh: bool): void {
  const rowBytes = <usize>(n >> 8) * blockBytes;
  const qStride = <usize>act_q8_K_i16_bytes(n);
  const yStride = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t < quads; t += 4) {
      const qt = q + <usize>t * qStride;
      const yp = yr + <usize>t * yStride;
      if (ASC_FEATURE_RELAXED_SIMD) dot1x4K45R(wr, qt, qStride, n, blockBytes, hasHigh, yp, yStride);
      else dot1x4K45(wr, qt, qStride, n, blockBytes, hasHigh, yp, yStride);
    }
    for (; t < nTok; t++) {
      const yp = yr + <usize>t * yStride;
      store<f32>(yp, dotRowK45(wr, q + <usize>t * qStride, n, blockBytes, hasHigh, yp));
    }
  }
}

/** Q4_K; matrices of a multiple of 4 rows (ldy is the row count) are stored in groups of four rows (q4_k_r4.ts). */
export function matmul_q4_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  if (ldy % 4 == 0) matmul_q4_K_r4(w, q, y, n, r0, r1, nTok, ldy);
  else matmulK45(w, q, y, n, r0, r1, nTok, ldy, 144, false);
}

export function matmul_q5_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulK45(w, q, y, n, r0, r1, nTok, ldy, 176, true);
}


/**
 * One Q6_K row (at w) against four tokens (Q8_K activations at q + t qs; outputs at yp + t ys),
 * for prompt processing: each 16 codes decoded once for the four tokens, scaled by their
 * sub-block scale in integers, one accumulator per token; the integer sums and each token's
 * float steps are dotRowQ6K's, so the outputs have its bits.
 */
// @ts-ignore: decorator
@inline
function dot1x4Q6K(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const bs = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const low = vconst(V_I8_15);
  const m30 = vconst(V_I8_0X30);
  let total = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = w + <usize>b * 210;
    const sc = v128.load(wb, 192);
    const sc0 = i16x8.extend_low_i8x16_s(sc);
    const sc1 = i16x8.extend_high_i8x16_s(sc);
    // sum_s sc_s * bsum_s per token, for the -32 offset of the codes
    const bsb = bs + (<usize>b << 6);
    const offs = transposeSum(
      offsQ6K(bsb, sc0, sc1),
      offsQ6K(bsb + qs, sc0, sc1),
      offsQ6K(bsb + qs2, sc0, sc1),
      offsQ6K(bsb + qs3, sc0, sc1),
    );
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    const qb = q + (<usize>b << 8);
    for (let g = 0; g < 4; g++) {
      // g = 2h + l: half h, 16-byte column l
      const h = g >> 1;
      const l = g & 1;
      const ql = wb + (<usize>h << 6) + (<usize>l << 4);
      const a = v128.load(ql);
      const c = v128.load(ql, 32);
      const hb = v128.load(wb + 128 + (<usize>h << 5) + (<usize>l << 4));
      const xo = qb + (<usize>h << 7) + (<usize>l << 4);
      const sp = wb + 192 + (<usize>h << 3) + <usize>l; // scale of sub-block 8h + 2k + l at sp + 2k
      {
        const qc = codeQ6K(a, c, hb, 0, low, m30);
        const scv = i16x8.splat(load<i8>(sp, 0));
        const lo = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_low_i8x16_u(qc), scv);
        const hi = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_high_i8x16_u(qc), scv);
        const x = xo + 0;
        a0 = i32x4.add(a0, tokQ6K(qc, lo, hi, scv, x));
        a1 = i32x4.add(a1, tokQ6K(qc, lo, hi, scv, x + qs));
        a2 = i32x4.add(a2, tokQ6K(qc, lo, hi, scv, x + qs2));
        a3 = i32x4.add(a3, tokQ6K(qc, lo, hi, scv, x + qs3));
      }
      {
        const qc = codeQ6K(a, c, hb, 1, low, m30);
        const scv = i16x8.splat(load<i8>(sp, 2));
        const lo = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_low_i8x16_u(qc), scv);
        const hi = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_high_i8x16_u(qc), scv);
        const x = xo + 32;
        a0 = i32x4.add(a0, tokQ6K(qc, lo, hi, scv, x));
        a1 = i32x4.add(a1, tokQ6K(qc, lo, hi, scv, x + qs));
        a2 = i32x4.add(a2, tokQ6K(qc, lo, hi, scv, x + qs2));
        a3 = i32x4.add(a3, tokQ6K(qc, lo, hi, scv, x + qs3));
      }
      {
        const qc = codeQ6K(a, c, hb, 2, low, m30);
        const scv = i16x8.splat(load<i8>(sp, 4));
        const lo = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_low_i8x16_u(qc), scv);
        const hi = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_high_i8x16_u(qc), scv);
        const x = xo + 64;
        a0 = i32x4.add(a0, tokQ6K(qc, lo, hi, scv, x));
        a1 = i32x4.add(a1, tokQ6K(qc, lo, hi, scv, x + qs));
        a2 = i32x4.add(a2, tokQ6K(qc, lo, hi, scv, x + qs2));
        a3 = i32x4.add(a3, tokQ6K(qc, lo, hi, scv, x + qs3));
      }
      {
        const qc = codeQ6K(a, c, hb, 3, low, m30);
        const scv = i16x8.splat(load<i8>(sp, 6));
        const lo = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_low_i8x16_u(qc), scv);
        const hi = ASC_FEATURE_RELAXED_SIMD ? qc : i16x8.mul(i16x8.extend_high_i8x16_u(qc), scv);
        const x = xo + 96;
        a0 = i32x4.add(a0, tokQ6K(qc, lo, hi, scv, x));
        a1 = i32x4.add(a1, tokQ6K(qc, lo, hi, scv, x + qs));
        a2 = i32x4.add(a2, tokQ6K(qc, lo, hi, scv, x + qs2));
        a3 = i32x4.add(a3, tokQ6K(qc, lo, hi, scv, x + qs3));
      }
    }
    const isum = i32x4.sub(transposeSum(a0, a1, a2, a3), i32x4.shl(offs, 5));
    const dp = dxs + (<usize>b << 2);
    let dx = v128.load32_lane(dp, i32x4.splat(0), 0);
    dx = v128.load32_lane(dp + qs, dx, 1);
    dx = v128.load32_lane(dp + qs2, dx, 2);
    dx = v128.load32_lane(dp + qs3, dx, 3);
    total = f32x4.add(total, f32x4.mul(f32x4.mul(dx, f32x4.splat(halfToFloat(load<u16>(wb, 208)))), f32x4.convert_i32x4_s(isum)));
  }
  v128.store32_lane(yp, total, 0);
  v128.store32_lane(yp + ys, total, 1);
  v128.store32_lane(yp + 2 * ys, total, 2);
  v128.store32_lane(yp + 3 * ys, total, 3);
}

/**
 * Codes k (0..3) of a Q6_K 16-byte column: ql bytes a (low nibbles of k = 0, 2), c (k = 1, 3),
 * qh bytes hb (bits 2k, 2k+1). Shifts are i16 (one instruction; i8 shifts are emulated), the
 * masks 0x0f and 0x30 (m30) keep each byte's own bits: (hb >> 2k & 3) << 4 = (hb << 4 - 2k) & 0x30.
 */
// @ts-ignore: decorator
@inline
export function codeQ6K(a: v128, c: v128, hb: v128, k: i32, low: v128, m30: v128): v128 {
  if (k == 0) return v128.or(v128.and(a, low), v128.and(i16x8.shl(hb, 4), m30));
  if (k == 1) return v128.or(v128.and(c, low), v128.and(i16x8.shl(hb, 2), m30));
  if (k == 2) return v128.or(v128.and(i16x8.shr_u(a, 4), low), v128.and(hb, m30));
  return v128.or(v128.and(i16x8.shr_u(c, 4), low), v128.and(i16x8.shr_u(hb, 2), m30));
}

/**
 * One token's sc * (codes . x) for 16 Q6_K codes and its 16 i8 activations at x, as four lanes.
 * Plain SIMD: lo, hi are the codes widened and scaled (|sc q| <= 128 * 63), two i16 dot products
 * with the widened activations. Relaxed: one i8 dot product of codes qc (pairs, |.| <= 2*63*128)
 * and one i16 dot product with the scale scv, which multiplies and widens.
 */
// @ts-ignore: decorator
@inline
function tokQ6K(qc: v128, lo: v128, hi: v128, scv: v128, x: usize): v128 {
  const v = v128.load(x);
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v, qc), scv);
  return i32x4.add(i32x4.dot_i16x8_s(lo, i16x8.extend_low_i8x16_s(v)), i32x4.dot_i16x8_s(hi, i16x8.extend_high_i8x16_s(v)));
}

/**
 * sum_s sc_s * bsum_s of one token's 16 Q8_K sums at p (|bsum| <= 16 * 127: narrowed to i16 exactly),
 * as four lanes, with the scales as i16 (sc0: sub-blocks 0..7, sc1: 8..15): two i16 dot products.
 */
// @ts-ignore: decorator
@inline
function offsQ6K(p: usize, sc0: v128, sc1: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.narrow_i32x4_s(v128.load(p), v128.load(p, 16)), sc0),
    i32x4.dot_i16x8_s(i16x8.narrow_i32x4_s(v128.load(p, 32), v128.load(p, 48)), sc1));
}

/** Q6_K; matrices of a multiple of 4 rows (ldy is the row count) are stored in groups of four rows (q6_k_r4.ts). */
export function matmul_q6_K(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  if (ldy % 4 == 0) {
    matmul_q6_K_r4(w, q, y, n, r0, r1, nTok, ldy);
    return;
  }
  const rowBytes = <usize>(n >> 8) * 210;
  const qStride = <usize>act_q8_K_bytes(n);
  const yStride = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t < quads; t += 4) dot1x4Q6K(wr, q + <usize>t * qStride, qStride, n, yr + <usize>t * yStride, yStride);
    for (; t < nTok; t++) {
      const yp = yr + <usize>t * yStride;
      store<f32>(yp, dotRowQ6K(wr, q + <usize>t * qStride, n, yp));
    }
  }
}
