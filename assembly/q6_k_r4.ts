/*
 * Q6_K matrices of a multiple of 4 rows, stored in groups of four rows (the loader repacks them:
 * src/kernels/layout.ts, groupRowsQ6_K, is the twin of group_q6_K below), read with each row's
 * float order of the plain layout (k_quants.ts, dotRowQ6K): same bits, faster.
 *
 * Layout. Rows 4g..4g+3 form group g (4 * rowBytes bytes, where one row would be). Super-block b
 * of the group takes 840 bytes at 840 b. Vector i (i = 0..51) holds row k's bytes 4 i..4 i + 3 of
 * ggml's super-block (ql: i = 0..31, qh: i = 32..47, scales: i = 48..51) in i32 lane k:
 *     bytes 0..63                  the scale vectors (i = 48..51)
 *     bytes 64 + 192 u ..          quarter u = 2 h + q (sub-blocks 8 h + 2 k + q, k = 0..3): its
 *                                  ql vectors for k = 0, 2 (ql bytes 64 h + 16 q + 0..15), for
 *                                  k = 1, 3 (32 bytes on), then its qh vectors (32 h + 16 q + ..)
 *     bytes 832 + 2 k              row k's d (f16)
 * (vectorAt). The quarters lie in the order the kernels read them: read out of order (ggml's
 * order, 512 bytes between a code's ql and qh vectors), matrices larger than the cache ran 15-35%
 * slower than the plain layout. A code vector (the codes at positions l..l+3 of one sub-block,
 * four per row, built from one ql and one qh vector as k_quants.ts's codeQ6K does) against one
 * token's four activations at those positions, broadcast to every lane, leaves row k's products
 * in lane k. One stream of memory, one activation load for four rows, the sub-block scales of four
 * rows in one vector, and no horizontal sums.
 *
 * Sums. Per row (lane) and super-block, the integers dotRowQ6K forms, in another order:
 *     S = sum_s sc_s (v_s . x_s) - 32 sum_s sc_s bsum_s
 * Relaxed build: i8 dot products of codes (0..63, the i7 operand) and activations in i16 pairs,
 * two of them per i16 lane (4 products, |.| <= 4 * 63 * 128 = 32256), then an i16 dot with the
 * row's scale in both lanes of its pair; or, where the runtime's i32x4.relaxed_dot_i8x16_i7x16_add_s
 * is right (q4_0.ts relaxedDotAddOk), the 64 products of a sub-block summed straight into i32
 * lanes and multiplied by the scale. Plain build: codes and activations widened to i16, i16 dot
 * products (rows 0, 1 and rows 2, 3 each in pairs of lanes), folded to one lane per row per
 * sub-block, times the scale. The offset term: the scales in i16 pairs against the activations'
 * sums of 16 (|bsum| <= 16 * 128), as k_quants.ts's offsQ6K.
 *
 * Order. Per row (lane) and super-block, exactly dotRowQ6K's float steps:
 *     sum += (d_x * d) * f32(S)
 * so every output has the plain layout's bits (test/kernels/k-quants-tiles.test.ts); d, usually
 * a subnormal half, is converted without a float op on a subnormal single (halvesExact4).
 */
import { vconst, V_I8_0X30, V_I8_15, V_LANE_BYTE } from "./common";
import { codeQ6K, halvesExact4 } from "./k_quants";
import { column, relaxedDotAddOk } from "./q4_0";
import { act_q8_K_bytes } from "./quantize";

/** Bytes of one super-block of a group (four rows of 210). */
const GROUP_BLOCK: usize = 840;
/** Where a group super-block's scale vectors, code quarters and d start. */
const SC: usize = 0;
const QUARTERS: usize = 64;
const D: usize = 832;

/**
 * Where vector i (0..51: row k's bytes 4 i..4 i + 3 of ggml's super-block in lane k) lies in a
 * group super-block: the scales first, then per quarter (h, q) (sub-blocks 8 h + 2 k + q) its ql
 * vectors for k = 0, 2, for k = 1, 3 and its qh vectors, in the order the kernels read them.
 */
// @ts-ignore: decorator
@inline
function vectorAt(i: usize): usize {
  if (i >= 48) return SC + 16 * (i - 48);
  if (i >= 32) return QUARTERS + 192 * ((i - 32) >> 2) + 128 + 16 * (i & 3); // qh bytes 32 h + 16 q + 4 ii
  return QUARTERS + 192 * (((i >> 4) << 1) + ((i >> 2) & 1)) + 64 * ((i >> 3) & 1) + 16 * (i & 3);
}

/*
 * Where a token's activations lie (plain Q8_K rows, quantize.ts, both builds): i8 codes at
 * q + 256 b, d at q + n + 4 b, the i32 sums of 16 codes at q + n + 4 nb + 64 b.
 */

/**
 * Code vector i (0..3) of the sub-block (h, k, q) (half h, quarter k of the half, positions
 * 16 q..16 q + 15 of the quarter): positions 16 q + 4 i..+3, row r's in lane r (codeQ6K: ql
 * bytes 64 h + 32 (k & 1) + l, low nibbles for k < 2; qh bytes 32 h + l, bits 2k, 2k + 1).
 */
// @ts-ignore: decorator
@inline
function codeAt(wb: usize, h: usize, k: i32, q: usize, i: usize, m15: v128, m30: v128): v128 {
  const quarter = wb + QUARTERS + 192 * ((h << 1) + q);
  const v = v128.load(quarter + (<usize>(k & 1) << 6) + (i << 4));
  const hb = v128.load(quarter + 128 + (i << 4));
  return codeQ6K(v, v, hb, k, m15, m30);
}

/** Scale of sub-block 4 w + j of each row as i32 lanes (sw: the scale vector w; j constant). */
// @ts-ignore: decorator
@inline
function scale32(sw: v128, j: i32): v128 {
  return j == 3 ? i32x4.shr_s(sw, 24) : i32x4.shr_s(i32x4.shl(sw, 24 - 8 * j), 24);
}

/**
 * Scale of sub-block 4 w + j of each row in both i16 lanes of its pair (relaxed build): one byte
 * shuffle puts byte j of lane r in every byte of lane r (VCONST's mask), >> 8 sign-extends.
 */
// @ts-ignore: decorator
@inline
function scalePair(sw: v128, j: i32): v128 {
  return i16x8.shr_s(i8x16.relaxed_swizzle(sw, vconst(V_LANE_BYTE + 16 * j)), 8);
}

/**
 * The scale of sub-block 4 w + j (sw: scale vector w) in the form tokSub takes: each row's in
 * both i16 lanes of its pair (relaxed build, i16 dots), else as i32 lanes.
 */
// @ts-ignore: decorator
@inline
function scaleOf(sw: v128, j: i32, add: bool): v128 {
  return ASC_FEATURE_RELAXED_SIMD && !add ? scalePair(sw, j) : scale32(sw, j);
}

/**
 * Row r's integer sc_s (v_s . x_s) in lane r for one sub-block s of the group: its code vectors
 * c0..c3 (positions 0..3, .., 12..15) against one token's 16 codes at xs; sc: the scale of s
 * (scaleOf). add: the i8 dot-add form (relaxed build).
 */
// @ts-ignore: decorator
@inline
function tokSub(c0: v128, c1: v128, c2: v128, c3: v128, xs: usize, sc: v128, add: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (add) {
      let s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs), c0, i32x4.splat(0));
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 4), c1, s);
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 8), c2, s);
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 12), c3, s);
      return i32x4.mul(s, sc);
    }
    // i16 lane 2r: row r's products at positions 0, 1 of the four; 2r + 1: at 2, 3
    const t0 = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs), c0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 4), c1));
    const t1 = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 8), c2), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 12), c3));
    return i32x4.add(i32x4.dot_i16x8_s(t0, sc), i32x4.dot_i16x8_s(t1, sc));
  }
  // lo: row 0 (positions 0, 1), row 0 (2, 3), row 1 (0, 1), row 1 (2, 3); hi: rows 2, 3
  let lo = dotWide(i32x4.splat(0), c0, false, v128.load32_splat(xs)), hi = dotWide(i32x4.splat(0), c0, true, v128.load32_splat(xs));
  const x1 = v128.load32_splat(xs, 4);
  lo = dotWide(lo, c1, false, x1), hi = dotWide(hi, c1, true, x1);
  const x2 = v128.load32_splat(xs, 8);
  lo = dotWide(lo, c2, false, x2), hi = dotWide(hi, c2, true, x2);
  const x3 = v128.load32_splat(xs, 12);
  lo = dotWide(lo, c3, false, x3), hi = dotWide(hi, c3, true, x3);
  const rows = i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
  return i32x4.mul(rows, sc);
}

/** Plain build: s + rows 0, 1 (high = false) or 2, 3 of code vector c, widened, against four activations (x: broadcast), widened. */
// @ts-ignore: decorator
@inline
function dotWide(s: v128, c: v128, high: bool, x: v128): v128 {
  const cw = high ? i16x8.extend_high_i8x16_u(c) : i16x8.extend_low_i8x16_u(c);
  return i32x4.add(s, i32x4.dot_i16x8_s(cw, i16x8.extend_low_i8x16_s(x)));
}

/**
 * tokSub for sub-block s = 8 h + 2 k + q of the group's super-block at wb against one token's
 * codes at x (its super-block's); sw: the scale vector s >> 2; m15, m30: codeQ6K's masks. Each
 * code vector is built just before its product: the lane stores to fp (ordering fences) keep V8
 * from loading the four first and spilling.
 */
// @ts-ignore: decorator
@inline
function subGroup(wb: usize, x: usize, h: usize, k: i32, q: usize, sw: v128, m15: v128, m30: v128, fp: usize, add: bool): v128 {
  const xs = x + (h << 7) + (<usize>k << 5) + (q << 4);
  const j = ((k & 1) << 1) + <i32>q;
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (add) {
      let s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs), codeAt(wb, h, k, q, 0, m15, m30), i32x4.splat(0));
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 4), codeAt(wb, h, k, q, 1, m15, m30), s);
      v128.store32_lane(fp, s, 0); // ordering fence
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 8), codeAt(wb, h, k, q, 2, m15, m30), s);
      s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 12), codeAt(wb, h, k, q, 3, m15, m30), s);
      return i32x4.mul(s, scale32(sw, j));
    }
    const t0 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs), codeAt(wb, h, k, q, 0, m15, m30)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 4), codeAt(wb, h, k, q, 1, m15, m30)));
    v128.store32_lane(fp, t0, 0); // ordering fence
    const t1 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 8), codeAt(wb, h, k, q, 2, m15, m30)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 12), codeAt(wb, h, k, q, 3, m15, m30)));
    const p = scalePair(sw, j);
    return i32x4.add(i32x4.dot_i16x8_s(t0, p), i32x4.dot_i16x8_s(t1, p));
  }
  let lo = i32x4.splat(0), hi = i32x4.splat(0);
  for (let i: usize = 0; i < 4; i++) {
    // the activations loaded once per half: one load for both, V8 ran this ~10% slower
    const c = codeAt(wb, h, k, q, i, m15, m30);
    lo = dotWide(lo, c, false, v128.load32_splat(xs + 4 * i));
    hi = dotWide(hi, c, true, v128.load32_splat(xs + 4 * i));
    v128.store32_lane(fp, hi, 0); // ordering fence
  }
  const rows = i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
  return i32x4.mul(rows, scale32(sw, j));
}

/**
 * sum_s sc_s bsum_s of the four rows (lane r: row r's) for one token's 16 sums at p: the scales
 * in i16 pairs (sc_4w, sc_4w+2 from the even bytes of scale vector w, sc_4w+1, sc_4w+3 from the
 * odd ones) against the sums in the same pairs, broadcast.
 */
// @ts-ignore: decorator
@inline
function offsGroup(wb: usize, p: usize): v128 {
  const b0 = i16x8.narrow_i32x4_s(v128.load(p), v128.load(p, 16)); // bsum 0..7
  const b1 = i16x8.narrow_i32x4_s(v128.load(p, 32), v128.load(p, 48)); // bsum 8..15
  const p0 = i16x8.shuffle(b0, b0, 0, 2, 1, 3, 4, 6, 5, 7); // (0, 2) (1, 3) (4, 6) (5, 7)
  const p1 = i16x8.shuffle(b1, b1, 0, 2, 1, 3, 4, 6, 5, 7);
  let acc = i32x4.splat(0);
  for (let w: usize = 0; w < 4; w++) {
    const sw = v128.load(wb + SC + 16 * w);
    const even = i16x8.shr_s(i16x8.shl(sw, 8), 8);
    const odd = i16x8.shr_s(sw, 8);
    const pw = w < 2 ? p0 : p1;
    const e = (w & 1) == 0 ? i32x4.shuffle(pw, pw, 0, 0, 0, 0) : i32x4.shuffle(pw, pw, 2, 2, 2, 2);
    const o = (w & 1) == 0 ? i32x4.shuffle(pw, pw, 1, 1, 1, 1) : i32x4.shuffle(pw, pw, 3, 3, 3, 3);
    acc = i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(even, e), i32x4.dot_i16x8_s(odd, o)));
  }
  return acc;
}

/** The four rows' d (f16 at wb + D) as singles, exactly (halvesExact4). */
// @ts-ignore: decorator
@inline
function groupScales(wb: usize): v128 {
  return halvesExact4(i16x8.shuffle(i32x4.splat(0), v128.load64_zero(wb + D), 0, 8, 1, 9, 2, 10, 3, 11));
}

/**
 * Half h of the group's super-block at wb against one token (codes at x): sum of sc_s (v_s . x_s)
 * over its 8 sub-blocks, row r in lane r. fp: a float of the caller's output it may scribble on
 * (the lane stores are ordering fences, see q4_0_r4.ts).
 */
// @ts-ignore: decorator
@inline
function halfGroup(acc: v128, wb: usize, x: usize, h: usize, m15: v128, m30: v128, fp: usize, add: bool): v128 {
  const s0 = v128.load(wb + SC + (h << 5)); // sub-blocks 8h..8h+3
  const s1 = v128.load(wb + SC + (h << 5) + 16); // 8h+4..8h+7
  acc = i32x4.add(acc, subGroup(wb, x, h, 0, 0, s0, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0); // ordering fence
  acc = i32x4.add(acc, subGroup(wb, x, h, 0, 1, s0, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, h, 1, 0, s0, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, h, 1, 1, s0, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, h, 2, 0, s1, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, h, 2, 1, s1, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, h, 3, 0, s1, m15, m30, fp, add));
  v128.store32_lane(fp, acc, 0);
  return i32x4.add(acc, subGroup(wb, x, h, 3, 1, s1, m15, m30, fp, add));
}

/** The group at g against one token (activations at q): [y_r0, .., y_r3]. */
// @ts-ignore: decorator
@inline
function dotGroupQ6(g: usize, q: usize, n: i32, fp: usize, add: bool): v128 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const sums = dxs + (<usize>nb << 2);
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = g + <usize>b * GROUP_BLOCK;
    const x = q + (<usize>b << 8);
    const m15 = vconst(V_I8_15), m30 = vconst(V_I8_0X30);
    let s = halfGroup(i32x4.splat(0), wb, x, 0, m15, m30, fp, add);
    v128.store32_lane(fp, s, 0); // ordering fence
    s = halfGroup(s, wb, x, 1, m15, m30, fp, add);
    v128.store32_lane(fp, s, 0); // ordering fence
    const isum = i32x4.sub(s, i32x4.shl(offsGroup(wb, sums + (<usize>b << 6)), 5));
    const dx = v128.load32_splat(dxs + (<usize>b << 2));
    acc = f32x4.add(acc, f32x4.mul(f32x4.mul(dx, groupScales(wb)), f32x4.convert_i32x4_s(isum)));
  }
  return acc;
}

/** dotGroupQ6 with `add` constant: each variant its own function, so V8 keeps its registers. */
function dotGroupQ6A(g: usize, q: usize, n: i32, fp: usize): v128 { return dotGroupQ6(g, q, n, fp, true); }
function dotGroupQ6I(g: usize, q: usize, n: i32, fp: usize): v128 { return dotGroupQ6(g, q, n, fp, false); }

/**
 * Sub-block s = 8 h + 2 k + q of the group's super-block at wb against four tokens (codes at
 * x + t qs; sw: the scale vector s >> 2): each code vector built once for the four tokens, their
 * sums added to the tokens' accumulators at yp + t ys (through memory: the stores order V8's
 * loads, and the codes stay in registers).
 */
// @ts-ignore: decorator
@inline
function subTile(wb: usize, x: usize, qs: usize, h: usize, k: i32, q: usize, sw: v128, yp: usize, ys: usize, add: bool): void {
  const m15 = vconst(V_I8_15), m30 = vconst(V_I8_0X30);
  const c0 = codeAt(wb, h, k, q, 0, m15, m30), c1 = codeAt(wb, h, k, q, 1, m15, m30);
  const c2 = codeAt(wb, h, k, q, 2, m15, m30), c3 = codeAt(wb, h, k, q, 3, m15, m30);
  const xs = x + (h << 7) + (<usize>k << 5) + (q << 4);
  const sc = scaleOf(sw, ((k & 1) << 1) + <i32>q, add);
  v128.store(yp, i32x4.add(v128.load(yp), tokSub(c0, c1, c2, c3, xs, sc, add)));
  v128.store(yp + ys, i32x4.add(v128.load(yp + ys), tokSub(c0, c1, c2, c3, xs + qs, sc, add)));
  v128.store(yp + 2 * ys, i32x4.add(v128.load(yp + 2 * ys), tokSub(c0, c1, c2, c3, xs + 2 * qs, sc, add)));
  v128.store(yp + 3 * ys, i32x4.add(v128.load(yp + 3 * ys), tokSub(c0, c1, c2, c3, xs + 3 * qs, sc, add)));
}

/**
 * The group at g against four tokens (activations at q + t qs), for prompt processing:
 * [y_r0..y_r3] of token t stored at yp + t ys. Per super-block the four tokens' integer sums
 * gather in their output slots (subTile), then each token takes dotGroupQ6's float step, so
 * each output has its bits.
 */
// @ts-ignore: decorator
@inline
function tileGroupQ6(g: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize, add: bool): void {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const sums = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const zero = i32x4.splat(0);
  let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = g + <usize>b * GROUP_BLOCK;
    const x = q + (<usize>b << 8);
    v128.store(yp, zero);
    v128.store(yp + ys, zero);
    v128.store(yp + 2 * ys, zero);
    v128.store(yp + 3 * ys, zero);
    for (let hq: usize = 0; hq < 4; hq++) {
      // half h, positions 16 q.. of each quarter: sub-blocks 8h + 2k + q, k = 0..3
      const h = hq >> 1, qq = hq & 1;
      const s0 = v128.load(wb + SC + (h << 5));
      const s1 = v128.load(wb + SC + (h << 5) + 16);
      subTile(wb, x, qs, h, 0, qq, s0, yp, ys, add);
      subTile(wb, x, qs, h, 1, qq, s0, yp, ys, add);
      subTile(wb, x, qs, h, 2, qq, s1, yp, ys, add);
      subTile(wb, x, qs, h, 3, qq, s1, yp, ys, add);
    }
    const d = groupScales(wb);
    const s = sums + (<usize>b << 6);
    const dp = dxs + (<usize>b << 2);
    f0 = f32x4.add(f0, floatStep(v128.load(yp), offsGroup(wb, s), d, dp));
    f1 = f32x4.add(f1, floatStep(v128.load(yp + ys), offsGroup(wb, s + qs), d, dp + qs));
    f2 = f32x4.add(f2, floatStep(v128.load(yp + 2 * ys), offsGroup(wb, s + qs2), d, dp + qs2));
    f3 = f32x4.add(f3, floatStep(v128.load(yp + 3 * ys), offsGroup(wb, s + qs3), d, dp + qs3));
  }
  v128.store(yp, f0);
  v128.store(yp + ys, f1);
  v128.store(yp + 2 * ys, f2);
  v128.store(yp + 3 * ys, f3);
}

/** (d_x d) f32(S - 32 B) per row, d_x read at dxp (dotGroupQ6's float step). */
// @ts-ignore: decorator
@inline
function floatStep(S: v128, B: v128, d: v128, dxp: usize): v128 {
  return f32x4.mul(f32x4.mul(v128.load32_splat(dxp), d), f32x4.convert_i32x4_s(i32x4.sub(S, i32x4.shl(B, 5))));
}

/** tileGroupQ6 with `add` constant (see dotGroupQ6A). */
function tileGroupQ6A(g: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void { tileGroupQ6(g, q, qs, n, yp, ys, true); }
function tileGroupQ6I(g: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void { tileGroupQ6(g, q, qs, n, yp, ys, false); }

/**
 * y[t][r] for rows [r0, r1) and tokens 0..nTok-1 of a grouped Q6_K matrix (rows = ldy, a
 * multiple of 4): tokens in fours (tileGroupQ6), then one at a time. A thread's slice may start
 * or end inside a group: its rows there are computed with the whole group and only theirs stored.
 */
export function matmul_q6_K_r4(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const add = ASC_FEATURE_RELAXED_SIMD && relaxedDotAddOk();
  const rowBytes = <usize>(n >> 8) * 210;
  const qs = <usize>act_q8_K_bytes(n);
  const ys = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0 & ~3; r < r1; r += 4) {
    const g = w + <usize>r * rowBytes;
    const whole = r >= r0 && r + 4 <= r1;
    let t = 0;
    if (whole) {
      for (; t < quads; t += 4) {
        const yp = y + <usize>t * ys + (<usize>r << 2);
        if (add) tileGroupQ6A(g, q + <usize>t * qs, qs, n, yp, ys);
        else tileGroupQ6I(g, q + <usize>t * qs, qs, n, yp, ys);
      }
    }
    for (; t < nTok; t++) {
      const yp = y + <usize>t * ys + (<usize>r << 2);
      // a fence slot of this call's own: the first of its rows in the group
      const fp = yp + (<usize>(r >= r0 ? 0 : r0 - r) << 2);
      const qt = q + <usize>t * qs;
      const v = add ? dotGroupQ6A(g, qt, n, fp) : dotGroupQ6I(g, qt, n, fp);
      if (whole) v128.store(yp, v);
      else {
        if (r >= r0 && r < r1) v128.store32_lane(yp, v, 0);
        if (r + 1 >= r0 && r + 1 < r1) v128.store32_lane(yp + 4, v, 1);
        if (r + 2 >= r0 && r + 2 < r1) v128.store32_lane(yp + 8, v, 2);
        if (r + 3 >= r0 && r + 3 < r1) v128.store32_lane(yp + 12, v, 3);
      }
    }
  }
}

/**
 * Lays rows [0, rows) of a Q6_K matrix at w (ggml's layout, rows a multiple of 4) out in groups
 * of four rows, in place (src/kernels/layout.ts, groupRowsQ6_K, is the twin). tmp: 4 rows' bytes
 * of scratch. Each group is copied to tmp, then each super-block's 13 16-byte pieces of its four
 * rows are written back transposed in 4-byte words (column), and the four d after them.
 */
export function group_q6_K(w: usize, rows: i32, cols: i32, tmp: usize): void {
  const nb = cols >> 8;
  const rowBytes = <usize>nb * 210;
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rowBytes;
    memory.copy(tmp, g, 4 * rowBytes);
    for (let b = 0; b < nb; b++) {
      const s0 = tmp + <usize>b * 210;
      const s1 = s0 + rowBytes, s2 = s1 + rowBytes, s3 = s2 + rowBytes;
      const dst = g + <usize>b * GROUP_BLOCK;
      for (let u: usize = 0; u < 13; u++) {
        const c0 = v128.load(s0 + 16 * u), c1 = v128.load(s1 + 16 * u);
        const c2 = v128.load(s2 + 16 * u), c3 = v128.load(s3 + 16 * u);
        v128.store(dst + vectorAt(4 * u), column(c0, c1, c2, c3, 0));
        v128.store(dst + vectorAt(4 * u + 1), column(c0, c1, c2, c3, 1));
        v128.store(dst + vectorAt(4 * u + 2), column(c0, c1, c2, c3, 2));
        v128.store(dst + vectorAt(4 * u + 3), column(c0, c1, c2, c3, 3));
      }
      store<u16>(dst + D, load<u16>(s0, 208));
      store<u16>(dst + D, load<u16>(s1, 208), 2);
      store<u16>(dst + D, load<u16>(s2, 208), 4);
      store<u16>(dst + D, load<u16>(s3, 208), 6);
    }
  }
}
