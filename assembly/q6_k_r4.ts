/*
 * Q6_K matrices of a multiple of 4 rows, stored in groups of four rows (the loader repacks them:
 * src/kernels/layout.ts, groupRowsQ6_K, is the twin of group_q6_K below), read with each row's
 * float order of the plain layout (k_quants.ts, dotRowQ6K): same bits, faster.
 *
 * Layout. Rows 4g..4g+3 form group g (4 * rowBytes bytes, where one row would be). Super-block b
 * of the group takes 840 bytes at 840 b:
 *     bytes 16 w + 4 k + j         row k's scale byte 4 w + j               (w, j = 0..3)
 *     bytes 64 + 48 s ..           sub-block s's 16 codes (s = 0..15, positions 16 s + l), as
 *                                  three vectors P0..P2: byte 4 k + j of P_i holds row k's code
 *                                  4 i + j (0..63, codeQ6K: ql nibble | qh bits << 4) in its low
 *                                  six bits, and bits 2i, 2i + 1 of row k's code 12 + j on top
 *     bytes 832 + 2 k              row k's d (f16)
 * so in each vector i32 lane k is row k's. Code vector i (the codes at positions 4 i..4 i + 3
 * of sub-block s, four per row) is P_i & 63, or for i = 3 the three top bit pairs (code3): 11
 * ops per sub-block where building them from ggml's ql and qh takes 17, which the decode kernel
 * is bound by (1.2x relaxed, 1.35x plain over the ql/qh form of this layout). Sub-blocks lie in
 * the order the kernels read them (the activations of s are at 16 s): read out of order (ggml's,
 * 512 bytes between a code's ql and qh), matrices larger than the cache ran 15-35% slower than
 * the plain layout. A code vector against one token's four activations at its positions,
 * broadcast to every lane, leaves row k's products in lane k: one stream of memory, one
 * activation load for four rows, the scales of four rows in one vector, no horizontal sums.
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
import { vconst, V_I8_0X30, V_I8_12, V_I8_15, V_I8_3, V_I8_63, V_LANE_BYTE } from "./common";
import { walkGroups } from "./groups";
import { codeQ6K, halvesExact4 } from "./k_quants";
import { relaxedDotAddOk } from "./q4_0";
import { act_q8_K_bytes } from "./quantize";

/** Bytes of one super-block of a group (four rows of 210). */
const GROUP_BLOCK: usize = 840;
/** Where a group super-block's scale vectors, packed codes and d start. */
const SC: usize = 0;
const CODES: usize = 64;
const D: usize = 832;

/*
 * Where a token's activations lie (plain Q8_K rows, quantize.ts, both builds): i8 codes at
 * q + 256 b, d at q + n + 4 b, the i32 sums of 16 codes at q + n + 4 nb + 64 b.
 */

/**
 * The codes of sub-block s (positions 16 s + 4 i + 0..3, row r's in lane r: code vector i) from
 * its three packed vectors at p (CODES + 48 s): vector i < 3 holds code vector i in the low six
 * bits of each byte; the top two bits of vector 0, 1, 2 are bits 0-1, 2-3, 4-5 of code vector 3.
 * i16 shifts: a byte's neighbour's bits that move in are masked off.
 */
// @ts-ignore: decorator
@inline
function code3(p0: v128, p1: v128, p2: v128, m3: v128, m12: v128, m48: v128): v128 {
  return v128.or(
    v128.or(v128.and(i16x8.shr_u(p0, 6), m3), v128.and(i16x8.shr_u(p1, 4), m12)),
    v128.and(i16x8.shr_u(p2, 2), m48));
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
 * tokSub for sub-block s (constant) of the group's super-block at wb against one token's codes
 * at x (its super-block's); m63..m48: the code masks (code3). Each pair of products ends in a
 * lane store to fp (an ordering fence): V8 otherwise loads everything first and spills.
 */
// @ts-ignore: decorator
@inline
function subGroup(wb: usize, x: usize, s: usize, m63: v128, m3: v128, m12: v128, m48: v128, fp: usize, add: bool): v128 {
  const p = wb + CODES + 48 * s;
  const xs = x + 16 * s;
  const j = <i32>(s & 3);
  const sw = v128.load(wb + SC + 16 * (s >> 2));
  const p0 = v128.load(p), p1 = v128.load(p, 16);
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (add) {
      let a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs), v128.and(p0, m63), i32x4.splat(0));
      a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 4), v128.and(p1, m63), a);
      v128.store32_lane(fp, a, 0); // ordering fence
      const p2 = v128.load(p, 32);
      a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 8), v128.and(p2, m63), a);
      a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xs, 12), code3(p0, p1, p2, m3, m12, m48), a);
      return i32x4.mul(a, scale32(sw, j));
    }
    const t0 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs), v128.and(p0, m63)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 4), v128.and(p1, m63)));
    v128.store32_lane(fp, t0, 0); // ordering fence
    const p2 = v128.load(p, 32);
    const t1 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 8), v128.and(p2, m63)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(xs, 12), code3(p0, p1, p2, m3, m12, m48)));
    const sc = scalePair(sw, j);
    return i32x4.add(i32x4.dot_i16x8_s(t0, sc), i32x4.dot_i16x8_s(t1, sc));
  }
  const p2 = v128.load(p, 32);
  return tokSub(v128.and(p0, m63), v128.and(p1, m63), v128.and(p2, m63), code3(p0, p1, p2, m3, m12, m48), xs, scale32(sw, j), false);
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
 * Sub-blocks s0..s0 + 3 of the group's super-block at wb against one token (codes at x) added to
 * acc: row r's sc_s (v_s . x_s) in lane r. fp: a float of the caller's output it may scribble on
 * (the lane stores are ordering fences, see q4_0_r4.ts).
 */
// @ts-ignore: decorator
@inline
function quadGroup(acc: v128, wb: usize, x: usize, s0: usize, m63: v128, m3: v128, m12: v128, m48: v128, fp: usize, add: bool): v128 {
  acc = i32x4.add(acc, subGroup(wb, x, s0, m63, m3, m12, m48, fp, add));
  v128.store32_lane(fp, acc, 0); // ordering fence
  acc = i32x4.add(acc, subGroup(wb, x, s0 + 1, m63, m3, m12, m48, fp, add));
  v128.store32_lane(fp, acc, 0);
  acc = i32x4.add(acc, subGroup(wb, x, s0 + 2, m63, m3, m12, m48, fp, add));
  v128.store32_lane(fp, acc, 0);
  return i32x4.add(acc, subGroup(wb, x, s0 + 3, m63, m3, m12, m48, fp, add));
}

/** The group at g against one token (activations at q): [y_r0, .., y_r3]. */
// @ts-ignore: decorator
@inline
function dotGroupQ6(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize, add: bool): v128 {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const sums = dxs + (<usize>nb << 2);
  for (let b = b0; b < b1; b++) {
    const wb = g + <usize>b * GROUP_BLOCK;
    const x = q + (<usize>b << 8);
    const m63 = vconst(V_I8_63), m3 = vconst(V_I8_3), m12 = vconst(V_I8_12), m48 = vconst(V_I8_0X30);
    let s = quadGroup(i32x4.splat(0), wb, x, 0, m63, m3, m12, m48, fp, add);
    v128.store32_lane(fp, s, 0); // ordering fence
    s = quadGroup(s, wb, x, 4, m63, m3, m12, m48, fp, add);
    v128.store32_lane(fp, s, 0);
    s = quadGroup(s, wb, x, 8, m63, m3, m12, m48, fp, add);
    v128.store32_lane(fp, s, 0);
    s = quadGroup(s, wb, x, 12, m63, m3, m12, m48, fp, add);
    v128.store32_lane(fp, s, 0);
    const isum = i32x4.sub(s, i32x4.shl(offsGroup(wb, sums + (<usize>b << 6)), 5));
    const dx = v128.load32_splat(dxs + (<usize>b << 2));
    acc = f32x4.add(acc, f32x4.mul(f32x4.mul(dx, groupScales(wb)), f32x4.convert_i32x4_s(isum)));
  }
  return acc;
}

/** dotGroupQ6 with `add` constant: each variant its own function, so V8 keeps its registers. */
function dotGroupQ6A(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupQ6(g, q, n, b0, b1, acc, fp, true); }
function dotGroupQ6I(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupQ6(g, q, n, b0, b1, acc, fp, false); }

/**
 * Sub-block s of the group's super-block at wb against four tokens (codes at x + t qs): each
 * code vector built once for the four tokens, their sums added to the tokens' accumulators at
 * yp + t ys (through memory: the stores order V8's loads, and the codes stay in registers).
 */
// @ts-ignore: decorator
@inline
function subTile(wb: usize, x: usize, qs: usize, s: usize, yp: usize, ys: usize, add: bool): void {
  const p = wb + CODES + 48 * s;
  const p0 = v128.load(p), p1 = v128.load(p, 16), p2 = v128.load(p, 32);
  const m63 = vconst(V_I8_63);
  const c0 = v128.and(p0, m63), c1 = v128.and(p1, m63), c2 = v128.and(p2, m63);
  const c3 = code3(p0, p1, p2, vconst(V_I8_3), vconst(V_I8_12), vconst(V_I8_0X30));
  const xs = x + 16 * s;
  const sc = scaleOf(v128.load(wb + SC + 16 * (s >> 2)), <i32>(s & 3), add);
  v128.store(yp, i32x4.add(v128.load(yp), tokSub(c0, c1, c2, c3, xs, sc, add)));
  v128.store(yp + ys, i32x4.add(v128.load(yp + ys), tokSub(c0, c1, c2, c3, xs + qs, sc, add)));
  v128.store(yp + 2 * ys, i32x4.add(v128.load(yp + 2 * ys), tokSub(c0, c1, c2, c3, xs + 2 * qs, sc, add)));
  v128.store(yp + 3 * ys, i32x4.add(v128.load(yp + 3 * ys), tokSub(c0, c1, c2, c3, xs + 3 * qs, sc, add)));
}

/**
 * Super-blocks [b0, b1) of the group at g against four tokens (activations at q + t qs), for
 * prompt processing: [y_r0..y_r3] of token t continued at yp + t ys. Per super-block the four tokens' integer sums
 * gather in their output slots (subTile), then each token takes dotGroupQ6's float step, so
 * each output has its bits.
 */
// @ts-ignore: decorator
@inline
function tileGroupQ6(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize, add: bool): void {
  const nb = n >> 8;
  const dxs = q + <usize>n;
  const sums = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const zero = i32x4.splat(0);
  // the sums so far: the slots then hold each super-block's integer sums (subTile)
  let f0 = v128.load(yp), f1 = v128.load(yp + ys), f2 = v128.load(yp + 2 * ys), f3 = v128.load(yp + 3 * ys);
  for (let b = b0; b < b1; b++) {
    const wb = g + <usize>b * GROUP_BLOCK;
    const x = q + (<usize>b << 8);
    v128.store(yp, zero);
    v128.store(yp + ys, zero);
    v128.store(yp + 2 * ys, zero);
    v128.store(yp + 3 * ys, zero);
    for (let sb: usize = 0; sb < 16; sb++) subTile(wb, x, qs, sb, yp, ys, add);
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
function tileGroupQ6A(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { tileGroupQ6(g, q, qs, n, b0, b1, yp, ys, true); }
function tileGroupQ6I(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { tileGroupQ6(g, q, qs, n, b0, b1, yp, ys, false); }

/**
 * A grouped Q6_K matrix's product (walkGroups in groups.ts), with the i8 dot-add where the
 * runtime has it right.
 */
export function matmul_q6_K_r4(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const qs = <usize>act_q8_K_bytes(n);
  if (ASC_FEATURE_RELAXED_SIMD && relaxedDotAddOk()) walkGroups(w, q, y, n, r0, r1, nTok, ldy, 256, 210, qs, tileGroupQ6A, dotGroupQ6A);
  else walkGroups(w, q, y, n, r0, r1, nTok, ldy, 256, 210, qs, tileGroupQ6I, dotGroupQ6I);
}

/**
 * Lays rows [0, rows) of a Q6_K matrix at w (ggml's layout, rows a multiple of 4) out in groups
 * of four rows, in place (src/kernels/layout.ts, groupRowsQ6_K, is the twin). tmp: 4 rows' bytes
 * of scratch. Each group is copied to tmp, then per super-block and row its scale words and d
 * are written to their lanes, and its codes, 16 per sub-block as codeQ6K makes them, packed
 * (code3): word i < 3 of the sub-block's codes with bits 2i, 2i + 1 of word 3 on top.
 */
export function group_q6_K(w: usize, rows: i32, cols: i32, tmp: usize): void {
  const nb = cols >> 8;
  const rowBytes = <usize>nb * 210;
  const m15 = vconst(V_I8_15), m30 = vconst(V_I8_0X30);
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rowBytes;
    memory.copy(tmp, g, 4 * rowBytes);
    for (let b = 0; b < nb; b++) {
      const dst = g + <usize>b * GROUP_BLOCK;
      for (let k: usize = 0; k < 4; k++) {
        const src = tmp + k * rowBytes + <usize>b * 210;
        for (let v: usize = 0; v < 4; v++) store<u32>(dst + SC + 16 * v + 4 * k, load<u32>(src + 192 + 4 * v));
        store<u16>(dst + D + 2 * k, load<u16>(src, 208));
        for (let sb: usize = 0; sb < 16; sb++) {
          // sub-block sb = 8 h + 2 kk + q: codeQ6K's column kk of ql bytes 64 h + 32 (kk & 1) + 16 q, qh bytes 32 h + 16 q
          const h = sb >> 3, kk = <i32>((sb >> 1) & 3), q = sb & 1;
          const a = v128.load(src + 64 * h + 32 * <usize>(kk & 1) + 16 * q);
          const hb = v128.load(src + 128 + 32 * h + 16 * q);
          let c: v128;
          if (kk == 0) c = codeQ6K(a, a, hb, 0, m15, m30);
          else if (kk == 1) c = codeQ6K(a, a, hb, 1, m15, m30);
          else if (kk == 2) c = codeQ6K(a, a, hb, 2, m15, m30);
          else c = codeQ6K(a, a, hb, 3, m15, m30);
          const top = <u32>i32x4.extract_lane(c, 3);
          const o = dst + CODES + 48 * sb + 4 * k;
          store<u32>(o, <u32>i32x4.extract_lane(c, 0) | ((top & 0x03030303) << 6));
          store<u32>(o, <u32>i32x4.extract_lane(c, 1) | (((top >> 2) & 0x03030303) << 6), 16);
          store<u32>(o, <u32>i32x4.extract_lane(c, 2) | (((top >> 4) & 0x03030303) << 6), 32);
        }
      }
    }
  }
}
