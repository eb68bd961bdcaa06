/*
 * Q4_0 matrices of a multiple of 8 rows, stored in groups of four rows (the loader repacks them:
 * src/kernels/layout.ts), in llama.cpp's float order for such matrices.
 *
 * Layout. Rows 4g..4g+3 form group g (4 * rowBytes bytes, where one row would be). Block b of the
 * group takes 72 bytes at 72 b:
 *     bytes 0..7                 the four rows' f16 scales, row k at 2k
 *     bytes 8 + 16 i + 4 k + j   row k's code byte 4 i + j   (i, j = 0..3)
 * so vector V_i = bytes 8 + 16 i .. 23 + 16 i holds in its i32 lane k code bytes 4i..4i+3 of row k.
 * One stream of memory serves four rows, every scale conversion is four rows', and a product of
 * V_i's nibbles with one token's four matching activation codes, broadcast to every lane, leaves
 * row k's partial sum in lane k: no horizontal sums.
 *
 * Order. llama.cpp repacks such matrices too (CPU_REPACK, q4_0_8x8 on AVX2 / AVX-512) and sums
 * each (row, token) pair block by block, in order, one fma per block:
 *     acc = fma(S_b, f32(d_w(b) * d_x(b)), acc)      S_b the exact integer sum of block b
 * (src/kernels/reference/matmul.ts, dotQ4_0). Here the four rows of a group are the four lanes
 * of such a chain; fma4 (fma.ts) rounds each step once, as vfmadd does. Same bits as llama.cpp.
 *
 * Activations are the Q4_0 ones of either build (q4_0.ts): Q8_0 codes as i16 in "Q4_0 order"
 * (plain), or i8 with full groups of four blocks transposed (relaxed); codeAt() finds four
 * consecutive codes of a block in either.
 */
import { halves4, vconst, V_HALF_TO_SINGLE, V_I16_15, V_I8_15, V_SCALES4_MASK } from "./common";
import { walkGroups } from "./groups";
import { fma4, fusedMaddOk } from "./fma";
import { act_q4_0_bytes, column, relaxedDotAddOk } from "./q4_0";

/** log2 of the activation bytes per block: i16 codes (64 bytes), or i8 (32) in the relaxed build. */
const ACT_SHIFT: usize = ASC_FEATURE_RELAXED_SIMD ? 5 : 6;

/*
 * Where a token's codes for block b lie. Plain build: i16 "Q4_0 order", 64 bytes at q + 64 b
 * (see plainPart). Relaxed build: in a full group of four blocks, vector (i, h) at 32 i + 16 h
 * holds codes 16h+4i..16h+4i+3 of block b in lane b % 4 (q4_0.ts, quantize_q4_0), so codes
 * 4i.. start at q + 32 (b & ~3) + 4 (b % 4) + 32 i ("step" 32); after the last full group a
 * block is 32 natural codes at q + 32 b, codes 4i.. at + 4 i (step 4). Codes 16+4i.. are 16
 * bytes further either way.
 */

/**
 * One token's part of a block from code vector V_i (already split into nibble vectors): the
 * partial sums s (and t, plain build) of sum_j c_j x_j, lane k = row k. Relaxed: lo / hi are
 * V_i's low and high nibbles, against codes 4i.. at p and 16+4i.. at p + 16 (p = base + step i);
 * `add` as in q4_0.ts. The i16 form accumulates in i16 lanes: 8 products of at most 127 * 15,
 * two per lane, <= 30480. Plain: V_i's i16 lane 2k is row k's bytes 4i, 4i+1, lane 2k+1 bytes
 * 4i+2, 4i+3. Nibble vector n0 (masked) is codes (4i, 4i+2), against the activation pair at
 * p = qb + 4i; n1 (>> 4) (16+4i, 18+4i) at p + 16; n2 (>> 8) (4i+1, 4i+3) at p + 32; n3 (>> 12)
 * (17+4i, 19+4i) at p + 48: the "Q4_0 order" i16 activations hold exactly those pairs there.
 */
// @ts-ignore: decorator
@inline
function relaxedPart(s: v128, lo: v128, hi: v128, p: usize, add: bool): v128 {
  if (add) {
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(p, 16), hi, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(p), lo, s));
  }
  return i16x8.add(s, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(p, 16), hi)));
}

// @ts-ignore: decorator
@inline
function plainPart(s: v128, n0: v128, n1: v128, n2: v128, n3: v128, p: usize): v128 {
  const a = i32x4.add(i32x4.dot_i16x8_s(n0, v128.load32_splat(p)), i32x4.dot_i16x8_s(n1, v128.load32_splat(p, 16)));
  const b = i32x4.add(i32x4.dot_i16x8_s(n2, v128.load32_splat(p, 32)), i32x4.dot_i16x8_s(n3, v128.load32_splat(p, 48)));
  return i32x4.add(s, i32x4.add(a, b));
}

/** A token's finished integer sums [r0..r3] from its accumulator (relaxed i16 form: widened). */
// @ts-ignore: decorator
@inline
function finishSums(s: v128, add: bool): v128 {
  return ASC_FEATURE_RELAXED_SIMD && !add ? i32x4.extadd_pairwise_i16x8_s(s) : s;
}

/**
 * One chain step for one token: acc + S * (d_w * d_x), S = isum - 8 sx, lanes = rows. sx and d_x
 * are read splatted (sxp, dxp: their addresses): one broadcast load each, where a scalar load
 * and a splat are two or three instructions.
 */
// @ts-ignore: decorator
@inline
function chainStep(acc: v128, isum: v128, sxp: usize, dw: v128, dxp: usize, fused: bool): v128 {
  const s = f32x4.convert_i32x4_s(i32x4.sub(isum, i32x4.shl(v128.load32_splat(sxp), 3)));
  return fma4(s, f32x4.mul(dw, v128.load32_splat(dxp)), acc, fused);
}

/**
 * Block b (weights at wb; one token's codes at qb, step st: see codesAt) of the group: the
 * integer sums [r0..r3] of sum_j c_j x_j. m: the nibble mask (i8 lanes in the relaxed build, i16
 * in the plain one). V_i is split into nibbles here. fp: the caller's scribble slot (fences).
 */
// @ts-ignore: decorator
@inline
function blockSums(wb: usize, qb: usize, st: usize, m: v128, add: bool, fp: usize): v128 {
  let s = i32x4.splat(0);
  const v0 = v128.load(wb, 8), v1 = v128.load(wb, 24), v2 = v128.load(wb, 40), v3 = v128.load(wb, 56);
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (add) {
      // Two chains of dot-adds, not one of eight: each waits for the last (vpdpbusd's latency).
      let t = i32x4.splat(0);
      s = relaxedPart(s, v128.and(v0, m), v128.and(i16x8.shr_u(v0, 4), m), qb, add);
      t = relaxedPart(t, v128.and(v1, m), v128.and(i16x8.shr_u(v1, 4), m), qb + st, add);
      s = relaxedPart(s, v128.and(v2, m), v128.and(i16x8.shr_u(v2, 4), m), qb + 2 * st, add);
      t = relaxedPart(t, v128.and(v3, m), v128.and(i16x8.shr_u(v3, 4), m), qb + 3 * st, add);
      return i32x4.add(s, t);
    }
    s = relaxedPart(s, v128.and(v0, m), v128.and(i16x8.shr_u(v0, 4), m), qb, add);
    s = relaxedPart(s, v128.and(v1, m), v128.and(i16x8.shr_u(v1, 4), m), qb + st, add);
    // ordering fence: V8 11 (Node 20) otherwise loads all four vectors and eight broadcasts
    // first and spills the chain's accumulator every block (1.22x without the spills)
    v128.store32_lane(fp, s, 0);
    s = relaxedPart(s, v128.and(v2, m), v128.and(i16x8.shr_u(v2, 4), m), qb + 2 * st, add);
    s = relaxedPart(s, v128.and(v3, m), v128.and(i16x8.shr_u(v3, 4), m), qb + 3 * st, add);
    return finishSums(s, add);
  }
  s = plainPart(s, v128.and(v0, m), v128.and(i16x8.shr_u(v0, 4), m), v128.and(i16x8.shr_u(v0, 8), m), i16x8.shr_u(v0, 12), qb);
  s = plainPart(s, v128.and(v1, m), v128.and(i16x8.shr_u(v1, 4), m), v128.and(i16x8.shr_u(v1, 8), m), i16x8.shr_u(v1, 12), qb + 4);
  s = plainPart(s, v128.and(v2, m), v128.and(i16x8.shr_u(v2, 4), m), v128.and(i16x8.shr_u(v2, 8), m), i16x8.shr_u(v2, 12), qb + 8);
  return plainPart(s, v128.and(v3, m), v128.and(i16x8.shr_u(v3, 4), m), v128.and(i16x8.shr_u(v3, 8), m), i16x8.shr_u(v3, 12), qb + 12);
}

/**
 * The nibble mask blockSums takes. High nibbles are (v >> 4) & m with an i16 shift, not
 * i8x16.shr_u: V8 has no x64 byte shift and emulates one with a mask it rebuilds at every use
 * (three more instructions per vector; 7-8% of the decode kernel).
 */
// @ts-ignore: decorator
@inline
function nibbleMask(): v128 {
  // read from memory (common.ts VCONST): newer V8 rebuilds a v128 constant at every use in a loop
  return vconst(ASC_FEATURE_RELAXED_SIMD ? V_I8_15 : V_I16_15);
}

/**
 * The group (at g) against one token (activations at q): [y_r0, .., y_r3]. One function per
 * (fused, add) variant (dotGroupFA ..), each with the flags constant; fp: a float of the caller's
 * output it may scribble on. The lane stores into fp are ordering fences: without them V8 lifts
 * all loads of the four blocks to the top of the loop and spills half of them (0.65x); with
 * runtime flags instead, the branch per part was the fence, at 8 instructions a block.
 */
// @ts-ignore: decorator
@inline
function dotGroupIn(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize, fused: bool, add: bool): v128 {
  const nb = n >> 5;
  const dxp = q + (<usize>n << (ACT_SHIFT - 5));
  const sxp = dxp + (<usize>nb << 2);
  // Loop constants live in locals: inside the loop body V8 would rebuild them each block.
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = nibbleMask();
  let b = b0;
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Full groups of four blocks: block b + k's codes at qg + 4k, step 32 (codesAt). b0 is a
    // multiple of 4 and b1 one too or nb (panels: groups.ts), so the rest lies after the last full group.
    for (; b + 3 < b1; b += 4) {
      const wb = g + <usize>b * 72;
      const qg = q + (<usize>b << 5);
      const o = <usize>b << 2;
      acc = chainStep(acc, blockSums(wb, qg, 32, m, add, fp), sxp + o, halves4(v128.load16x4_s(wb), magic, mask), dxp + o, fused);
      v128.store32_lane(fp, acc, 0); // ordering fence: without it V8 hoists every load of the four blocks and spills them
      acc = chainStep(acc, blockSums(wb + 72, qg + 4, 32, m, add, fp), sxp + o + 4, halves4(v128.load16x4_s(wb, 72), magic, mask), dxp + o + 4, fused);
      v128.store32_lane(fp, acc, 0); // ordering fence: without it V8 hoists every load of the four blocks and spills them
      acc = chainStep(acc, blockSums(wb + 144, qg + 8, 32, m, add, fp), sxp + o + 8, halves4(v128.load16x4_s(wb, 144), magic, mask), dxp + o + 8, fused);
      v128.store32_lane(fp, acc, 0); // ordering fence: without it V8 hoists every load of the four blocks and spills them
      acc = chainStep(acc, blockSums(wb + 216, qg + 12, 32, m, add, fp), sxp + o + 12, halves4(v128.load16x4_s(wb, 216), magic, mask), dxp + o + 12, fused);
      v128.store32_lane(fp, acc, 0); // ordering fence: without it V8 hoists every load of the four blocks and spills them
    }
  }
  for (; b < b1; b++) {
    const wb = g + <usize>b * 72;
    const o = <usize>b << 2;
    acc = chainStep(acc, blockSums(wb, q + (<usize>b << ACT_SHIFT), 4, m, add, fp), sxp + o, halves4(v128.load16x4_s(wb), magic, mask), dxp + o, fused);
    v128.store32_lane(fp, acc, 0); // ordering fence: without it V8 hoists every load of the four blocks and spills them
  }
  return acc;
}

function dotGroupFA(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupIn(g, q, n, b0, b1, acc, fp, true, true); }
function dotGroupF(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupIn(g, q, n, b0, b1, acc, fp, true, false); }
function dotGroupA(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupIn(g, q, n, b0, b1, acc, fp, false, true); }
function dotGroupE(g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize): v128 { return dotGroupIn(g, q, n, b0, b1, acc, fp, false, false); }

/**
 * Blocks [b0, b1) of the group against four tokens (activations at q + t qs), continuing the
 * chains stored at yp + t ys (four rows each) and storing them back. Each block's code vectors
 * are loaded and split into nibbles once for the four tokens. `grouped` (a constant after
 * inlining): the blocks lie in full groups of four in the relaxed build's activations (codes
 * 4i.. of block b at q + 32 (b & ~3) + 4 (b & 3) + 32 i) rather than natural (q + 32 b + 4 i);
 * the plain build's are always at q + 64 b (+ 4 i, plainPart).
 */
// @ts-ignore: decorator
@inline
function tile4(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, grouped: bool, yp: usize, ys: usize, fused: bool, add: bool): void {
  const nb = n >> 5;
  const dxp = q + (<usize>n << (ACT_SHIFT - 5));
  const sxp = dxp + (<usize>nb << 2);
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = nibbleMask();
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const st: usize = ASC_FEATURE_RELAXED_SIMD && grouped ? 32 : 4;
  let a0 = v128.load(yp);
  let a1 = v128.load(yp + ys);
  let a2 = v128.load(yp + 2 * ys);
  let a3 = v128.load(yp + 3 * ys);
  for (let b = b0; b < b1; b++) {
    const wb = g + <usize>b * 72;
    const qb = !ASC_FEATURE_RELAXED_SIMD ? q + (<usize>b << ACT_SHIFT)
      : grouped ? q + (<usize>(b & ~3) << 5) + (<usize>(b & 3) << 2) : q + (<usize>b << 5);
    let s0 = i32x4.splat(0);
    let s1 = i32x4.splat(0);
    let s2 = i32x4.splat(0);
    let s3 = i32x4.splat(0);
    if (ASC_FEATURE_RELAXED_SIMD && add) {
      // unrolled by hand: the loop's stack check and address arithmetic were a third of its instructions
      let v = v128.load(wb, 8);
      let lo = v128.and(v, m);
      let hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = relaxedPart(s0, lo, hi, qb, add);
      s1 = relaxedPart(s1, lo, hi, qb + qs, add);
      s2 = relaxedPart(s2, lo, hi, qb + qs2, add);
      s3 = relaxedPart(s3, lo, hi, qb + qs3, add);
      v128.store32_lane(yp, s3, 0); // ordering fence (scribbles on the output, rewritten at the end)
      v = v128.load(wb, 24);
      lo = v128.and(v, m);
      hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = relaxedPart(s0, lo, hi, qb + st, add);
      s1 = relaxedPart(s1, lo, hi, qb + st + qs, add);
      s2 = relaxedPart(s2, lo, hi, qb + st + qs2, add);
      s3 = relaxedPart(s3, lo, hi, qb + st + qs3, add);
      v128.store32_lane(yp, s3, 0); // ordering fence (scribbles on the output, rewritten at the end)
      v = v128.load(wb, 40);
      lo = v128.and(v, m);
      hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = relaxedPart(s0, lo, hi, qb + 2 * st, add);
      s1 = relaxedPart(s1, lo, hi, qb + 2 * st + qs, add);
      s2 = relaxedPart(s2, lo, hi, qb + 2 * st + qs2, add);
      s3 = relaxedPart(s3, lo, hi, qb + 2 * st + qs3, add);
      v128.store32_lane(yp, s3, 0); // ordering fence (scribbles on the output, rewritten at the end)
      v = v128.load(wb, 56);
      lo = v128.and(v, m);
      hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = relaxedPart(s0, lo, hi, qb + 3 * st, add);
      s1 = relaxedPart(s1, lo, hi, qb + 3 * st + qs, add);
      s2 = relaxedPart(s2, lo, hi, qb + 3 * st + qs2, add);
      s3 = relaxedPart(s3, lo, hi, qb + 3 * st + qs3, add);
    } else
    for (let i: usize = 0; i < 4; i++) {
      const v = v128.load(wb + 8 + 16 * i);
      const p = qb + st * i;
      if (ASC_FEATURE_RELAXED_SIMD) {
        const lo = v128.and(v, m);
        const hi = v128.and(i16x8.shr_u(v, 4), m);
        s0 = relaxedPart(s0, lo, hi, p, add);
        s1 = relaxedPart(s1, lo, hi, p + qs, add);
        s2 = relaxedPart(s2, lo, hi, p + qs2, add);
        s3 = relaxedPart(s3, lo, hi, p + qs3, add);
      } else {
        const n0 = v128.and(v, m);
        const n1 = v128.and(i16x8.shr_u(v, 4), m);
        const n2 = v128.and(i16x8.shr_u(v, 8), m);
        const n3 = i16x8.shr_u(v, 12);
        s0 = plainPart(s0, n0, n1, n2, n3, p);
        s1 = plainPart(s1, n0, n1, n2, n3, p + qs);
        s2 = plainPart(s2, n0, n1, n2, n3, p + qs2);
        s3 = plainPart(s3, n0, n1, n2, n3, p + qs3);
      }
    }
    const dw = halves4(v128.load16x4_s(wb), magic, mask);
    const o = <usize>b << 2;
    a0 = chainStep(a0, finishSums(s0, add), sxp + o, dw, dxp + o, fused);
    a1 = chainStep(a1, finishSums(s1, add), sxp + o + qs, dw, dxp + o + qs, fused);
    a2 = chainStep(a2, finishSums(s2, add), sxp + o + qs2, dw, dxp + o + qs2, fused);
    a3 = chainStep(a3, finishSums(s3, add), sxp + o + qs3, dw, dxp + o + qs3, fused);
  }
  v128.store(yp, a0);
  v128.store(yp + ys, a1);
  v128.store(yp + 2 * ys, a2);
  v128.store(yp + 3 * ys, a3);
}

/**
 * Blocks [b0, b1) of the group (at g) against four tokens (at q + t qs), continuing [y_r0..y_r3]
 * of token t at yp + t ys: the blocks in full groups of four through the grouped activations'
 * tile, the rest through the natural ones'.
 */
// @ts-ignore: decorator
@inline
function dotGroup4(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize, fused: bool, add: bool): void {
  const full = ASC_FEATURE_RELAXED_SIMD ? (n >> 5) & ~3 : 0;
  if (b0 < min(b1, full)) tile4(g, q, qs, n, b0, min(b1, full), true, yp, ys, fused, add);
  if (max(b0, full) < b1) tile4(g, q, qs, n, max(b0, full), b1, false, yp, ys, fused, add);
}

/**
 * dotGroup4 with `fused` and `add` constant: V8 does not hoist the tests out of the loop, and
 * the tile only keeps its registers when each variant is its own function.
 */
function dotGroup4FA(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { dotGroup4(g, q, qs, n, b0, b1, yp, ys, true, true); }
function dotGroup4F(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { dotGroup4(g, q, qs, n, b0, b1, yp, ys, true, false); }
function dotGroup4A(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { dotGroup4(g, q, qs, n, b0, b1, yp, ys, false, true); }
function dotGroup4E(g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize): void { dotGroup4(g, q, qs, n, b0, b1, yp, ys, false, false); }

/**
 * A grouped Q4_0 matrix's product (rows = ldy, a multiple of 8; walkGroups in groups.ts), in
 * the variant of the runtime's fused madd and i8 dot-add.
 */
export function matmul_q4_0_r4(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const fused = fusedMaddOk();
  const add = ASC_FEATURE_RELAXED_SIMD && relaxedDotAddOk();
  const qs = <usize>act_q4_0_bytes(n);
  if (fused) {
    if (add) walkGroups(w, q, y, n, r0, r1, nTok, ldy, 32, 18, qs, dotGroup4FA, dotGroupFA);
    else walkGroups(w, q, y, n, r0, r1, nTok, ldy, 32, 18, qs, dotGroup4F, dotGroupF);
  } else if (add) walkGroups(w, q, y, n, r0, r1, nTok, ldy, 32, 18, qs, dotGroup4A, dotGroupA);
  else walkGroups(w, q, y, n, r0, r1, nTok, ldy, 32, 18, qs, dotGroup4E, dotGroupE);
}

/**
 * Lays rows [0, rows) of a Q4_0 matrix at w (ggml's layout, rows a multiple of 4) out in groups
 * of four rows, in place (src/kernels/layout.ts, groupRowsQ4_0, is the twin). tmp: 4 row's bytes
 * of scratch. Each group is copied to tmp, then block b's four scales and, transposed (column),
 * its four rows' code vectors are written back.
 */
export function group_q4_0(w: usize, rows: i32, cols: i32, tmp: usize): void {
  const nb = cols >> 5;
  const rowBytes = <usize>nb * 18;
  for (let r = 0; r < rows; r += 4) {
    const g = w + <usize>r * rowBytes;
    memory.copy(tmp, g, 4 * rowBytes);
    for (let b = 0; b < nb; b++) {
      const src = tmp + <usize>b * 18;
      const dst = g + <usize>b * 72;
      store<u16>(dst, load<u16>(src));
      store<u16>(dst, load<u16>(src + rowBytes), 2);
      store<u16>(dst, load<u16>(src + 2 * rowBytes), 4);
      store<u16>(dst, load<u16>(src + 3 * rowBytes), 6);
      const c0 = v128.load(src, 2);
      const c1 = v128.load(src + rowBytes, 2);
      const c2 = v128.load(src + 2 * rowBytes, 2);
      const c3 = v128.load(src + 3 * rowBytes, 2);
      v128.store(dst, column(c0, c1, c2, c3, 0), 8);
      v128.store(dst, column(c0, c1, c2, c3, 1), 24);
      v128.store(dst, column(c0, c1, c2, c3, 2), 40);
      v128.store(dst, column(c0, c1, c2, c3, 3), 56);
    }
  }
}
