/*
 * Q4_K matrices of a multiple of 4 rows, stored in groups of four rows (the loader repacks them:
 * src/kernels/layout.ts, groupRowsQ4_K, is the twin of group_q4_K below), read with each row's
 * float order of the plain layout (k_quants.ts): same bits, faster.
 *
 * Layout. Rows 4g..4g+3 form group g (4 * rowBytes bytes, where one row would be). Super-block b
 * of the group takes 576 bytes at 576 b:
 *     bytes 0..7                   the four rows' d (f16), row k at 2k
 *     bytes 8..15                  their dmin (f16), row k at 8 + 2k
 *     bytes 16 + 16 w + 4 k + j    row k's scale byte 4 w + j    (w = 0..2, j = 0..3)
 *     bytes 64 + 16 i + 4 k + j    row k's code byte 4 i + j     (i = 0..31, j = 0..3)
 * so in each vector, i32 lane k is row k's: the packed scales decode for four rows at once
 * (sc0..3, sc4..7, m0..3, m4..7 of row k in lane k), and code vector V_i (code bytes 4i..4i+3:
 * chunk c = i / 8, positions l = 4 (i % 8) + 0..3 of sub-block 2c in the low nibbles, of 2c+1 in
 * the high ones) against one token's four activation codes at those positions, broadcast to every
 * lane, leaves row k's partial sums in lane k. One stream of memory, one activation load and one
 * scale decode for four rows, and no horizontal sums.
 *
 * Sums. Per sub-block j and row: the code x activation products summed exactly (relaxed: i8
 * dot products in i16 pairs, 16 products per lane <= 16 * 15 * 127 = 30480; plain: i16 dot
 * products in i32; the relaxed prompt tile, where relaxedDotAddOk, i32x4.relaxed_dot_i8x16_i7x16_add_s
 * straight into i32 lanes, the nibbles 0..15 as the i7 operand), times sc_j, summed over j: S;
 * the mins term M = sum_j m_j (bsum_2j+bsum_2j+1).
 * Both are the integers dotRowK45 forms in another order, so they are equal.
 *
 * Order. Per row (lane) and super-block, exactly dotRowK45's float steps:
 *     sum += (d_x * d) * f32(S) - (d_x * dmin) * f32(M)
 * so every output has the plain layout's bits (test/kernels/k-quants-tiles.test.ts).
 */
import { vconst, V_I16_255, V_I16_15, V_I8_0X30, V_I8_15, V_I8_63 } from "./common";
import { walkGroups } from "./groups";
import { halvesExact4 } from "./k_quants";
import { column, relaxedDotAddOk } from "./q4_0";
import { act_q8_K_i16_bytes } from "./quantize";

/** Bytes of one super-block of a group (four rows of 144). */
const GROUP_BLOCK: usize = 576;

/*
 * Where a token's Q4_K activations lie (act_q8_K_i16 rows, quantize.ts). Relaxed build: plain
 * Q8_K, i8 codes at q + 256 b, d at q + n + 4 b, sums of 16 at q + n + 4 nb + 64 b. Plain
 * build: i16 codes at q + 512 b in k_quants.ts's order (per 64-value chunk c, 128 bytes at
 * 128 c; in it, per 16 positions h of both sub-blocks, 64 bytes at 64 h: sub-block 2c's even
 * positions, its odd ones, then 2c+1's even and odd, 8 codes each), d at q + 2n + 4 b, sums of 32
 * at q + 2n + 4 nb + 32 b.
 */

/**
 * Relaxed build: one code vector's low (high = false) or high nibbles against the four i8
 * activation codes at p, broadcast: i16 lane 2k + h = row k's codes 2h, 2h + 1 of the four.
 */
// @ts-ignore: decorator
@inline
function dotR(p: usize, v: v128, m: v128, high: bool): v128 {
  const c = high ? v128.and(i16x8.shr_u(v, 4), m) : v128.and(v, m);
  return i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p), c);
}

/**
 * Relaxed build: s + the products of four code vectors at w (positions 4i..4i+3, i = 0..3, of a
 * chunk; low nibbles: sub-block A, high: B) with the activations at x + 4 i (x: A's or B's).
 * One chain of adds: the terms are consumed as they are made (a tree of them had V8 load every
 * operand first and spill half).
 */
// @ts-ignore: decorator
@inline
function quadR(s: v128, w: usize, x: usize, m: v128, high: bool): v128 {
  s = i16x8.add(s, dotR(x, v128.load(w), m, high));
  s = i16x8.add(s, dotR(x + 4, v128.load(w, 16), m, high));
  s = i16x8.add(s, dotR(x + 8, v128.load(w, 32), m, high));
  return i16x8.add(s, dotR(x + 12, v128.load(w, 48), m, high));
}

/**
 * Relaxed build with the i8 dot-add: s + the products of code vectors w and w + 32 (positions 4i..
 * and 4i + 8.. of the chunk) with the activations at x and x + 8, as i32 sums.
 */
// @ts-ignore: decorator
@inline
function halfA(s: v128, w: usize, x: usize, m: v128, high: bool): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x, 8), nibbles(v128.load(w, 32), m, high),
    i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x), nibbles(v128.load(w), m, high), s));
}

/**
 * Relaxed build: chunk c of the group's super-block (its code vectors at w, its activations
 * at x): row k's sc_2c (q . x) + sc_2c+1 (q . x) in lane k. scA, scB: the two scales, each
 * row's in both i16 lanes of its pair. fp: fence slot (see superGroup).
 */
// @ts-ignore: decorator
@inline
function chunkR(w: usize, x: usize, m: v128, scA: v128, scB: v128, fp: usize, add: bool): v128 {
  const zero = i32x4.splat(0);
  if (add) {
    // i32 sums (relaxedDotAddOk): A and B two chains of four dot-adds each (even and odd code
    // vectors), each chain started once (a chain's start costs a zeroed register)
    let a = i32x4.splat(0), a2 = i32x4.splat(0), b = i32x4.splat(0), b2 = i32x4.splat(0);
    a = halfA(a, w, x, m, false);
    a2 = halfA(a2, w + 16, x + 4, m, false);
    b = halfA(b, w, x + 32, m, true);
    b2 = halfA(b2, w + 16, x + 36, m, true);
    v128.store32_lane(fp, a, 0); // ordering fences
    v128.store32_lane(fp, b, 0);
    a = halfA(a, w + 64, x + 16, m, false);
    a2 = halfA(a2, w + 80, x + 20, m, false);
    b = halfA(b, w + 64, x + 48, m, true);
    b2 = halfA(b2, w + 80, x + 52, m, true);
    return i32x4.add(i32x4.mul(i32x4.add(a, a2), scA), i32x4.mul(i32x4.add(b, b2), scB));
  }
  let sA = quadR(zero, w, x, m, false);
  let sB = quadR(zero, w, x + 32, m, true);
  v128.store32_lane(fp, sA, 0); // ordering fences
  v128.store32_lane(fp, sB, 0);
  sA = quadR(sA, w + 64, x + 16, m, false);
  sB = quadR(sB, w + 64, x + 48, m, true);
  return i32x4.add(i32x4.dot_i16x8_s(sA, scA), i32x4.dot_i16x8_s(sB, scB));
}

/**
 * Plain build: code vector v (positions 16 h + 4 m + 0..3 of a chunk; i16 activations of the
 * chunk at x) into the chunk's sums: sub-block A (low nibbles) if high is false, else B.
 * i16 lane 2k of v holds row k's code bytes at positions 4m, 4m+1, lane 2k+1 those at 4m+2,
 * 4m+3: masked, the low nibbles are A's codes (4m, 4m+2), against the even-position activation
 * pair at x + 64 h + 4 m; >> 8, (4m+1, 4m+3) against the odd ones 16 bytes on; the high
 * nibbles (>> 4, >> 12) likewise with B's, 32 bytes on.
 */
// @ts-ignore: decorator
@inline
function dotP(x: usize, v: v128, m: v128, high: bool): v128 {
  const e = high ? v128.and(i16x8.shr_u(v, 4), m) : v128.and(v, m);
  const o = high ? i16x8.shr_u(v, 12) : v128.and(i16x8.shr_u(v, 8), m);
  const xo: usize = high ? 32 : 0;
  return i32x4.add(i32x4.dot_i16x8_s(e, v128.load32_splat(x + xo)), i32x4.dot_i16x8_s(o, v128.load32_splat(x + xo + 16)));
}

/** Plain build: quadR's sum of four code vectors (x: the activations of their positions). */
// @ts-ignore: decorator
@inline
function quadP(s: v128, w: usize, x: usize, m: v128, high: bool): v128 {
  s = i32x4.add(s, dotP(x, v128.load(w), m, high));
  s = i32x4.add(s, dotP(x + 4, v128.load(w, 16), m, high));
  s = i32x4.add(s, dotP(x + 8, v128.load(w, 32), m, high));
  return i32x4.add(s, dotP(x + 12, v128.load(w, 48), m, high));
}

/** Plain build: chunkR's sum (scA, scB: the scales as i32 lanes; x: the chunk's i16 activations). */
// @ts-ignore: decorator
@inline
function chunkP(w: usize, x: usize, m: v128, scA: v128, scB: v128, fp: usize): v128 {
  const zero = i32x4.splat(0);
  let sA = quadP(zero, w, x, m, false);
  let sB = quadP(zero, w, x, m, true);
  v128.store32_lane(fp, sA, 0); // ordering fences
  v128.store32_lane(fp, sB, 0);
  sA = quadP(sA, w + 64, x + 64, m, false);
  sB = quadP(sB, w + 64, x + 64, m, true);
  return i32x4.add(i32x4.mul(sA, scA), i32x4.mul(sB, scB));
}

/**
 * Scale of sub-block 2h + o (o = 0, 1; sc: the four bytes sc_2h'.. of each row for the half
 * h' = h >> 1) in the form chunkR (each row's in both i16 lanes of its pair) or chunkP (i32
 * lanes) takes. lo, hi: sc's even and odd bytes as i16 lanes.
 */
// @ts-ignore: decorator
@inline
function scaleOf(sc: v128, lo: v128, hi: v128, j: i32, add: bool = false): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && !add) {
    const v = j & 1 ? hi : lo;
    return j & 2 ? i16x8.shuffle(v, v, 1, 1, 3, 3, 5, 5, 7, 7) : i16x8.shuffle(v, v, 0, 0, 2, 2, 4, 4, 6, 6);
  }
  return j == 3 ? i32x4.shr_u(sc, 24) : i32x4.shr_u(i32x4.shl(sc, 24 - 8 * j), 24);
}

/**
 * The mins term of the four rows (mn03, mn47: m0..3, m4..7 of row k in lane k), one token's
 * sums at s: sum_j m_j BS_j with BS_j the sum of sub-block j's 32 codes, in i16 pairs: (m0, m2)
 * against (BS0, BS2), (m1, m3) against (BS1, BS3), ..; |BS| <= 32 * 127.
 */
// @ts-ignore: decorator
@inline
function minsGroup(mn03: v128, mn47: v128, s: usize): v128 {
  let p0: v128, p1: v128; // BS0..BS3, BS4..BS7
  if (ASC_FEATURE_RELAXED_SIMD) {
    // sums of 16: BS_j = s_2j + s_2j+1
    const v0 = v128.load(s), v1 = v128.load(s, 16), v2 = v128.load(s, 32), v3 = v128.load(s, 48);
    p0 = i32x4.add(i32x4.shuffle(v0, v1, 0, 2, 4, 6), i32x4.shuffle(v0, v1, 1, 3, 5, 7));
    p1 = i32x4.add(i32x4.shuffle(v2, v3, 0, 2, 4, 6), i32x4.shuffle(v2, v3, 1, 3, 5, 7));
  } else {
    p0 = v128.load(s);
    p1 = v128.load(s, 16);
  }
  const bs = i16x8.narrow_i32x4_s(p0, p1);
  const pairs = i16x8.shuffle(bs, bs, 0, 2, 1, 3, 4, 6, 5, 7);
  const mask = vconst(V_I16_255);
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(v128.and(mn03, mask), i32x4.shuffle(pairs, pairs, 0, 0, 0, 0)),
      i32x4.dot_i16x8_s(i16x8.shr_u(mn03, 8), i32x4.shuffle(pairs, pairs, 1, 1, 1, 1))),
    i32x4.add(
      i32x4.dot_i16x8_s(v128.and(mn47, mask), i32x4.shuffle(pairs, pairs, 2, 2, 2, 2)),
      i32x4.dot_i16x8_s(i16x8.shr_u(mn47, 8), i32x4.shuffle(pairs, pairs, 3, 3, 3, 3))));
}

/**
 * Super-block of the group at wb against one token (codes at x, sums at s, d at dxp): the four
 * rows' (d_x d) f32(S) - (d_x dmin) f32(M). fp: a float of the caller's output it may scribble
 * on (the lane stores are ordering fences, see q4_0_r4.ts).
 */
// @ts-ignore: decorator
@inline
function superGroup(wb: usize, x: usize, s: usize, dxp: usize, fp: usize, add: bool): v128 {
  const wa = v128.load(wb, 16);
  // k_quants.ts's scalesMinsK4, lane k = row k
  const sc03 = v128.and(wa, vconst(V_I8_63));
  const sc47 = v128.or(v128.and(v128.load(wb, 48), vconst(V_I8_15)), v128.and(i16x8.shr_u(wa, 2), vconst(V_I8_0X30)));
  const m15 = vconst(V_I8_15);
  const mask = vconst(V_I16_255);
  const lo03 = v128.and(sc03, mask), hi03 = i16x8.shr_u(sc03, 8);
  const lo47 = v128.and(sc47, mask), hi47 = i16x8.shr_u(sc47, 8);
  let acc: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    const w = wb + 64;
    acc = chunkR(w, x, m15, scaleOf(sc03, lo03, hi03, 0, add), scaleOf(sc03, lo03, hi03, 1, add), fp, add);
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkR(w + 128, x + 64, m15, scaleOf(sc03, lo03, hi03, 2, add), scaleOf(sc03, lo03, hi03, 3, add), fp, add));
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkR(w + 256, x + 128, m15, scaleOf(sc47, lo47, hi47, 0, add), scaleOf(sc47, lo47, hi47, 1, add), fp, add));
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkR(w + 384, x + 192, m15, scaleOf(sc47, lo47, hi47, 2, add), scaleOf(sc47, lo47, hi47, 3, add), fp, add));
  } else {
    const w = wb + 64;
    const m = vconst(V_I16_15);
    acc = chunkP(w, x, m, scaleOf(sc03, lo03, hi03, 0), scaleOf(sc03, lo03, hi03, 1), fp);
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkP(w + 128, x + 128, m, scaleOf(sc03, lo03, hi03, 2), scaleOf(sc03, lo03, hi03, 3), fp));
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkP(w + 256, x + 256, m, scaleOf(sc47, lo47, hi47, 0), scaleOf(sc47, lo47, hi47, 1), fp));
    v128.store32_lane(fp, acc, 0); // ordering fence
    acc = i32x4.add(acc, chunkP(w + 384, x + 384, m, scaleOf(sc47, lo47, hi47, 2), scaleOf(sc47, lo47, hi47, 3), fp));
  }
  v128.store32_lane(fp, acc, 0); // ordering fence
  // the mins' bytes and masks read again here, after the fences, rather than held in registers
  // through the sums (V8 spilled them)
  const wbb = v128.load(wb, 32);
  const mn03 = v128.and(wbb, vconst(V_I8_63));
  const mn47 = v128.or(v128.and(i16x8.shr_u(v128.load(wb, 48), 4), vconst(V_I8_15)), v128.and(i16x8.shr_u(wbb, 2), vconst(V_I8_0X30)));
  const mins = minsGroup(mn03, mn47, s);
  // d and dmin, each half in the top of its row's lane
  const h = v128.load(wb);
  const zero = i32x4.splat(0);
  const d = halvesExact4(i16x8.shuffle(zero, h, 0, 8, 1, 9, 2, 10, 3, 11));
  const dmin = halvesExact4(i16x8.shuffle(zero, h, 4, 12, 5, 13, 6, 14, 7, 15));
  const dx = v128.load32_splat(dxp);
  return f32x4.sub(f32x4.mul(f32x4.mul(dx, d), f32x4.convert_i32x4_s(acc)), f32x4.mul(f32x4.mul(dx, dmin), f32x4.convert_i32x4_s(mins)));
}

/** The group at g against one token (activations at q): [y_r0, .., y_r3]. add: relaxedDotAddOk. */
// @ts-ignore: decorator
@inline
function dotGroupK4(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize, add: bool): v128 {
  const nb = n >> 8;
  const dxs = q + (ASC_FEATURE_RELAXED_SIMD ? <usize>n : <usize>n << 1);
  const sums = dxs + (<usize>nb << 2);
  for (let b = b0; b < b1; b++) {
    const x = q + (ASC_FEATURE_RELAXED_SIMD ? <usize>b << 8 : <usize>b << 9);
    const s = sums + (ASC_FEATURE_RELAXED_SIMD ? <usize>b << 6 : <usize>b << 5);
    acc = f32x4.add(acc, superGroup(g + <usize>b * GROUP_BLOCK, x, s, dxs + (<usize>b << 2), fp, add));
  }
  return acc;
}

/** dotGroupK4 with `add` constant (see tileGroupK4A). */
function dotGroupK4A(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupK4(g, q, n, b0, b1, acc, fp, true); }
function dotGroupK4I(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupK4(g, q, n, b0, b1, acc, fp, false); }

/**
 * Scale of sub-block 4 h + j (j = 0..3, a variable; sc: sc_4h..sc_4h+3 of row k in lane k) as
 * the tile's passes take it: each row's in both i16 lanes of its pair (relaxed, i16 sums), or
 * i32 lanes (plain; relaxed with the i8 dot-add).
 */
// @ts-ignore: decorator
@inline
function scaleAt(sc: v128, j: i32, add: bool): v128 {
  const s = i32x4.shr_u(i32x4.shl(sc, 24 - 8 * j), 24);
  return ASC_FEATURE_RELAXED_SIMD && !add ? v128.or(s, i32x4.shl(s, 16)) : s;
}

/**
 * Relaxed tile: one token's s + the products of nibble vectors c0..c3 with its activations at
 * x + 4 i: i16 pair sums, or with `add` (relaxedDotAddOk) i32 sums, four products per lane per
 * i32x4.relaxed_dot_i8x16_i7x16_add_s (the nibbles, 0..15, are the i7 operand).
 */
// @ts-ignore: decorator
@inline
function tok4R(s: v128, c0: v128, c1: v128, c2: v128, c3: v128, x: usize, add: bool): v128 {
  if (add) {
    // two chains: the running sum passes through memory (quad4R), a chain of four dot-adds on
    // it left the tile waiting on their latency
    const a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x, 8), c2, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x), c0, s));
    const b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x, 12), c3, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x, 4), c1, i32x4.splat(0)));
    return i32x4.add(a, b);
  }
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x), c0));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x, 4), c1));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x, 8), c2));
  return i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x, 12), c3));
}

/** Relaxed tile: four code vectors at w (their low or high nibbles) into the four tokens' sums at yp + t ys. */
// @ts-ignore: decorator
@inline
function quad4R(w: usize, x: usize, qs: usize, m: v128, high: bool, yp: usize, ys: usize, first: bool, add: bool): void {
  const c0 = nibbles(v128.load(w), m, high);
  const c1 = nibbles(v128.load(w, 16), m, high);
  const c2 = nibbles(v128.load(w, 32), m, high);
  const c3 = nibbles(v128.load(w, 48), m, high);
  const zero = i32x4.splat(0);
  // each token's sum goes through memory (its output slot): a store per token orders the loads,
  // and the nibbles, in registers, serve the four tokens
  v128.store(yp, tok4R(first ? zero : v128.load(yp), c0, c1, c2, c3, x, add));
  v128.store(yp + ys, tok4R(first ? zero : v128.load(yp + ys), c0, c1, c2, c3, x + qs, add));
  v128.store(yp + 2 * ys, tok4R(first ? zero : v128.load(yp + 2 * ys), c0, c1, c2, c3, x + 2 * qs, add));
  v128.store(yp + 3 * ys, tok4R(first ? zero : v128.load(yp + 3 * ys), c0, c1, c2, c3, x + 3 * qs, add));
}

/** Low (high = false) or high nibbles of the code bytes v as bytes (m: 15 in every byte or i16 lane). */
// @ts-ignore: decorator
@inline
function nibbles(v: v128, m: v128, high: bool): v128 {
  return v128.and(high ? i16x8.shr_u(v, 4) : v, m);
}

/**
 * Relaxed tile: one sub-block (the low or high nibbles of the chunk's eight code vectors at w;
 * activations at x + t qs) for four tokens: the i16 sums at yp + t ys.
 */
// @ts-ignore: decorator
@inline
function passR(w: usize, x: usize, qs: usize, m: v128, high: bool, yp: usize, ys: usize, add: bool): void {
  quad4R(w, x, qs, m, high, yp, ys, true, add);
  quad4R(w + 64, x + 16, qs, m, high, yp, ys, false, add);
}

/** Plain tile: one token's s + the products of two code vectors' nibbles (e, o each) with its activation pairs at x (dotP). */
// @ts-ignore: decorator
@inline
function tok2P(s: v128, e0: v128, o0: v128, e1: v128, o1: v128, x: usize): v128 {
  s = i32x4.add(s, i32x4.add(i32x4.dot_i16x8_s(e0, v128.load32_splat(x)), i32x4.dot_i16x8_s(o0, v128.load32_splat(x, 16))));
  return i32x4.add(s, i32x4.add(i32x4.dot_i16x8_s(e1, v128.load32_splat(x, 4)), i32x4.dot_i16x8_s(o1, v128.load32_splat(x, 20))));
}

/** Plain tile: two code vectors at w into the four tokens' sums at yp + t ys (x: the pairs of the first). */
// @ts-ignore: decorator
@inline
function pair4P(w: usize, x: usize, qs: usize, m: v128, high: bool, yp: usize, ys: usize, first: bool): void {
  const v0 = v128.load(w), v1 = v128.load(w, 16);
  const e0 = nibbles(v0, m, high), e1 = nibbles(v1, m, high);
  const o0 = high ? i16x8.shr_u(v0, 12) : v128.and(i16x8.shr_u(v0, 8), m);
  const o1 = high ? i16x8.shr_u(v1, 12) : v128.and(i16x8.shr_u(v1, 8), m);
  const zero = i32x4.splat(0);
  v128.store(yp, tok2P(first ? zero : v128.load(yp), e0, o0, e1, o1, x));
  v128.store(yp + ys, tok2P(first ? zero : v128.load(yp + ys), e0, o0, e1, o1, x + qs));
  v128.store(yp + 2 * ys, tok2P(first ? zero : v128.load(yp + 2 * ys), e0, o0, e1, o1, x + 2 * qs));
  v128.store(yp + 3 * ys, tok2P(first ? zero : v128.load(yp + 3 * ys), e0, o0, e1, o1, x + 3 * qs));
}

/** Plain tile: passR's sums (i32) of sub-block A (high false) or B of the chunk (x: its i16 activations). */
// @ts-ignore: decorator
@inline
function passP(w: usize, x: usize, qs: usize, m: v128, high: bool, yp: usize, ys: usize): void {
  const p = x + (high ? 32 : 0);
  pair4P(w, p, qs, m, high, yp, ys, true);
  pair4P(w + 32, p + 8, qs, m, high, yp, ys, false);
  pair4P(w + 64, p + 64, qs, m, high, yp, ys, false);
  pair4P(w + 96, p + 72, qs, m, high, yp, ys, false);
}

/**
 * The group at g against four tokens (activations at q + t qs), for prompt processing:
 * [y_r0..y_r3] of token t stored at yp + t ys. Each code vector is loaded and split into
 * nibbles once for the four tokens; one pass per sub-block j (low nibbles of chunk j / 2 for
 * even j, high for odd), its sums folded with its scale at the end. Each token's integer sums
 * and float steps are superGroup's, so are its bits. fp: fence slot (see superGroup).
 */
// @ts-ignore: decorator
@inline
function tileGroupK4(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize, add: bool): void {
  const nb = n >> 8;
  const dxs = q + (ASC_FEATURE_RELAXED_SIMD ? <usize>n : <usize>n << 1);
  const sums = dxs + (<usize>nb << 2);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const zero = i32x4.splat(0);
  // the sums so far: the slots then hold each sub-block's integer sums (passR, passP)
  let f0 = v128.load(yp), f1 = v128.load(yp + ys), f2 = v128.load(yp + 2 * ys), f3 = v128.load(yp + 3 * ys);
  for (let b = b0; b < b1; b++) {
    const wb = g + <usize>b * GROUP_BLOCK;
    const x = q + (ASC_FEATURE_RELAXED_SIMD ? <usize>b << 8 : <usize>b << 9);
    const m = vconst(ASC_FEATURE_RELAXED_SIMD ? V_I8_15 : V_I16_15);
    let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    const wa = v128.load(wb, 16);
    const sc03 = v128.and(wa, vconst(V_I8_63));
    const sc47 = v128.or(v128.and(v128.load(wb, 48), vconst(V_I8_15)), v128.and(i16x8.shr_u(wa, 2), vconst(V_I8_0X30)));
    for (let c = 0; c < 4; c++) {
      // chunk c: sub-block 2c in the low nibbles, 2c + 1 in the high ones
      const sc = c < 2 ? sc03 : sc47;
      const w = wb + 64 + (<usize>c << 7);
      if (ASC_FEATURE_RELAXED_SIMD) {
        const xc = x + (<usize>c << 6);
        passR(w, xc, qs, m, false, yp, ys, add);
        const sA = scaleAt(sc, (c & 1) << 1, add);
        a0 = i32x4.add(a0, scaled(v128.load(yp), sA, add));
        a1 = i32x4.add(a1, scaled(v128.load(yp + ys), sA, add));
        a2 = i32x4.add(a2, scaled(v128.load(yp + 2 * ys), sA, add));
        a3 = i32x4.add(a3, scaled(v128.load(yp + 3 * ys), sA, add));
        passR(w, xc + 32, qs, m, true, yp, ys, add);
        const sB = scaleAt(sc, ((c & 1) << 1) + 1, add);
        a0 = i32x4.add(a0, scaled(v128.load(yp), sB, add));
        a1 = i32x4.add(a1, scaled(v128.load(yp + ys), sB, add));
        a2 = i32x4.add(a2, scaled(v128.load(yp + 2 * ys), sB, add));
        a3 = i32x4.add(a3, scaled(v128.load(yp + 3 * ys), sB, add));
      } else {
        const xc = x + (<usize>c << 7);
        passP(w, xc, qs, m, false, yp, ys);
        a0 = i32x4.add(a0, i32x4.mul(v128.load(yp), scaleAt(sc, (c & 1) << 1, false)));
        a1 = i32x4.add(a1, i32x4.mul(v128.load(yp + ys), scaleAt(sc, (c & 1) << 1, false)));
        a2 = i32x4.add(a2, i32x4.mul(v128.load(yp + 2 * ys), scaleAt(sc, (c & 1) << 1, false)));
        a3 = i32x4.add(a3, i32x4.mul(v128.load(yp + 3 * ys), scaleAt(sc, (c & 1) << 1, false)));
        passP(w, xc, qs, m, true, yp, ys);
        a0 = i32x4.add(a0, i32x4.mul(v128.load(yp), scaleAt(sc, ((c & 1) << 1) + 1, false)));
        a1 = i32x4.add(a1, i32x4.mul(v128.load(yp + ys), scaleAt(sc, ((c & 1) << 1) + 1, false)));
        a2 = i32x4.add(a2, i32x4.mul(v128.load(yp + 2 * ys), scaleAt(sc, ((c & 1) << 1) + 1, false)));
        a3 = i32x4.add(a3, i32x4.mul(v128.load(yp + 3 * ys), scaleAt(sc, ((c & 1) << 1) + 1, false)));
      }
    }
    const m15 = vconst(V_I8_15);
    const m30 = vconst(V_I8_0X30);
    const wbb = v128.load(wb, 32);
    const mn03 = v128.and(wbb, vconst(V_I8_63));
    const mn47 = v128.or(v128.and(i16x8.shr_u(v128.load(wb, 48), 4), m15), v128.and(i16x8.shr_u(wbb, 2), m30));
    const s = sums + (ASC_FEATURE_RELAXED_SIMD ? <usize>b << 6 : <usize>b << 5);
    const hv = v128.load(wb);
    const d = halvesExact4(i16x8.shuffle(zero, hv, 0, 8, 1, 9, 2, 10, 3, 11));
    const dmin = halvesExact4(i16x8.shuffle(zero, hv, 4, 12, 5, 13, 6, 14, 7, 15));
    const dp = dxs + (<usize>b << 2);
    f0 = f32x4.add(f0, floatStep(a0, minsGroup(mn03, mn47, s), d, dmin, dp));
    f1 = f32x4.add(f1, floatStep(a1, minsGroup(mn03, mn47, s + qs), d, dmin, dp + qs));
    f2 = f32x4.add(f2, floatStep(a2, minsGroup(mn03, mn47, s + qs2), d, dmin, dp + qs2));
    f3 = f32x4.add(f3, floatStep(a3, minsGroup(mn03, mn47, s + qs3), d, dmin, dp + qs3));
  }
  v128.store(yp, f0);
  v128.store(yp + ys, f1);
  v128.store(yp + 2 * ys, f2);
  v128.store(yp + 3 * ys, f3);
}

/** A token's sub-block sums s times the rows' scales sc: i16 pair sums (relaxed) or i32 sums (`add`). */
// @ts-ignore: decorator
@inline
function scaled(s: v128, sc: v128, add: bool): v128 {
  return add ? i32x4.mul(s, sc) : i32x4.dot_i16x8_s(s, sc);
}

/** tileGroupK4 with `add` constant: each variant its own function, so V8 keeps its registers. */
function tileGroupK4A(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { tileGroupK4(g, q, qs, n, b0, b1, yp, ys, true); }
function tileGroupK4I(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { tileGroupK4(g, q, qs, n, b0, b1, yp, ys, false); }

/** (d_x d) f32(S) - (d_x dmin) f32(M) per row, d_x read at dxp (superGroup's float steps). */
// @ts-ignore: decorator
@inline
function floatStep(S: v128, M: v128, d: v128, dmin: v128, dxp: usize): v128 {
  const dx = v128.load32_splat(dxp);
  return f32x4.sub(f32x4.mul(f32x4.mul(dx, d), f32x4.convert_i32x4_s(S)), f32x4.mul(f32x4.mul(dx, dmin), f32x4.convert_i32x4_s(M)));
}

/**
 * A grouped Q4_K matrix's product (walkGroups in groups.ts), with the i8 dot-add where the
 * runtime has it right.
 */
export function matmul_q4_K_r4(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const qs = <usize>act_q8_K_i16_bytes(n);
  if (ASC_FEATURE_RELAXED_SIMD && relaxedDotAddOk()) walkGroups(w, q, y, n, r0, r1, nTok, ldy, 256, 144, qs, tileGroupK4A, dotGroupK4A);
  else walkGroups(w, q, y, n, r0, r1, nTok, ldy, 256, 144, qs, tileGroupK4I, dotGroupK4I);
}

/**
 * Lays rows [0, rows) of a Q4_K matrix at w (ggml's layout, rows a multiple of 4) out in groups
 * of four rows, in place (src/kernels/layout.ts, groupRowsQ4_K, is the twin). tmp: 4 rows' bytes
 * of scratch. Each group is copied to tmp, then each super-block's scales and, transposed
 * (column), its four rows' packed scales and code vectors are written back.
 */
export function group_q4_K(w: usize, rows: i32, cols: i32, tmp: usize): void {
  const nb = cols >> 8;
  const rowBytes = <usize>nb * 144;
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rowBytes;
    memory.copy(tmp, g, 4 * rowBytes);
    for (let b = 0; b < nb; b++) {
      const s0 = tmp + <usize>b * 144;
      const s1 = s0 + rowBytes, s2 = s1 + rowBytes, s3 = s2 + rowBytes;
      const dst = g + <usize>b * GROUP_BLOCK;
      store<u16>(dst, load<u16>(s0));
      store<u16>(dst, load<u16>(s1), 2);
      store<u16>(dst, load<u16>(s2), 4);
      store<u16>(dst, load<u16>(s3), 6);
      store<u16>(dst, load<u16>(s0, 2), 8);
      store<u16>(dst, load<u16>(s1, 2), 10);
      store<u16>(dst, load<u16>(s2, 2), 12);
      store<u16>(dst, load<u16>(s3, 2), 14);
      // scale words 0..2 (bytes 4..15; the fourth lane, the first codes, is left out)
      const a0 = v128.load(s0, 4), a1 = v128.load(s1, 4), a2 = v128.load(s2, 4), a3 = v128.load(s3, 4);
      v128.store(dst, column(a0, a1, a2, a3, 0), 16);
      v128.store(dst, column(a0, a1, a2, a3, 1), 32);
      v128.store(dst, column(a0, a1, a2, a3, 2), 48);
      for (let u: usize = 0; u < 8; u++) {
        const c0 = v128.load(s0 + 16 + 16 * u), c1 = v128.load(s1 + 16 + 16 * u);
        const c2 = v128.load(s2 + 16 + 16 * u), c3 = v128.load(s3 + 16 + 16 * u);
        const o = dst + 64 + 64 * u;
        v128.store(o, column(c0, c1, c2, c3, 0));
        v128.store(o, column(c0, c1, c2, c3, 1), 16);
        v128.store(o, column(c0, c1, c2, c3, 2), 32);
        v128.store(o, column(c0, c1, c2, c3, 3), 48);
      }
    }
  }
}
