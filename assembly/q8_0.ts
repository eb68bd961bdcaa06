/*
 * Q8_0 weights x Q8_0 activations.
 *
 * Q8_0 block (34 bytes, 32 weights):   | d: f16 | qs: i8[32] |      weight j = d * qs[j]
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * sum_j qw_j * qx_j
 *
 * Order: llama.cpp's, to the bit (ggml_vec_dot_q8_0_q8_0 on AVX2 for one token; tinyBLAS's Q8_0
 * kernel, the same steps, for prompts). Eight f32 lanes, lane i taking codes 4i..4i+3 of every
 * block: acc_i = fma(f32(d_w * d_x), S_b,i, acc_i), block after block, then hsum_float_8
 * (src/kernels/reference/matmul.ts, dotQ8_0, is the twin). Here lanes 0..3 and 4..7 are two
 * f32x4 chains, and fma4 (fma.ts) rounds each step once, as vfmadd does. Followed exactly, the
 * next layer's activation rounding sees llama.cpp's values: an ulp off, one code can flip and
 * move a model's logits by 1e-2 (test/model/shape-coverage.test.ts).
 *
 * Speed: read as 16-bit lanes, 16 code bytes widen to i16 with three shifts
 * ((lane << 8) >> 8 = even byte, lane >> 8 = odd byte, arithmetic), so the activations are stored
 * widened to i16, evens then odds per 16 (quantize.ts, "Q8_0 order"). That order hands over
 * llama.cpp's lanes for free: a dot of the even codes pairs codes 4i and 4i+2 in lane i, the odd
 * ones 4i+1 and 4i+3. Four blocks share one scale conversion.
 *
 * dotRow is one (row, token) pair; dot1x4 (one row, four tokens, for prompt processing) decodes
 * each block once for four tokens and gives dotRow's bits.
 */
import { halfToFloat, highHalves4, hsumI32, HALF_TO_SINGLE, SCALES4_MASK, vconst, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { column, pairSums, transposeSum } from "./q4_0";
import { fma4, fusedMaddOk } from "./fma";
import { act_q8_0_i16_bytes } from "./quantize";
import { relaxedDotAddOk } from "./q4_0";

/** Code vector k (0..3) of a block whose 32 code bytes are v0, v1, widened to i16 in Q8_0 order. */
// @ts-ignore: decorator
@inline
function codes(v0: v128, v1: v128, k: i32): v128 {
  const v = k < 2 ? v0 : v1;
  return k & 1 ? i16x8.shr_s(v, 8) : i16x8.shr_s(i16x8.shl(v, 8), 8);
}

/**
 * One block's integer sums for one (row, token) in llama.cpp's eight lanes, as two i32x4:
 * lane i of `lo` is sum_{j=4i..4i+3} qw_j qx_j, lane i of `hi` the same for j = 16+4i...
 * The widened codes make that free: c0 (even codes of the first 16) against the matching
 * activations pairs codes 4i and 4i+2 in lane i, c1 (odd ones) codes 4i+1 and 4i+3.
 */
// @ts-ignore: decorator
@inline
function laneSumsLo(c0: v128, c1: v128, qb: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(c0, v128.load(qb)), i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
}

// @ts-ignore: decorator
@inline
function laneSumsHi(c2: v128, c3: v128, qb: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(c2, v128.load(qb, 32)), i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/** The f16 scales of the four blocks from wb on, as f32x4 (scales4 with constant offsets). */
// @ts-ignore: decorator
@inline
function blockScales4(wb: usize, magic: v128, mask: v128): v128 {
  let h = v128.load16_lane(wb, i32x4.splat(0), 1);
  h = v128.load16_lane(wb, h, 3, 34);
  h = v128.load16_lane(wb, h, 5, 68);
  h = v128.load16_lane(wb, h, 7, 102);
  return highHalves4(h, magic, mask);
}

/** Lane k of v in every lane. */
// @ts-ignore: decorator
@inline
function splatLane(v: v128, k: i32): v128 {
  return k == 0 ? i32x4.shuffle(v, v, 0, 0, 0, 0) : k == 1 ? i32x4.shuffle(v, v, 1, 1, 1, 1) : k == 2 ? i32x4.shuffle(v, v, 2, 2, 2, 2) : i32x4.shuffle(v, v, 3, 3, 3, 3);
}

/** One block (at wb, codes at qb) into llama.cpp's lanes 0..3: fma(d, S_lo, acc). */
// @ts-ignore: decorator
@inline
function stepLo(acc: v128, d: v128, wb: usize, qb: usize): v128 {
  const v = v128.load(wb, 2);
  return fma4(d, f32x4.convert_i32x4_s(laneSumsLo(codes(v, v, 0), codes(v, v, 1), qb)), acc, true);
}

/** The same block into lanes 4..7. */
// @ts-ignore: decorator
@inline
function stepHi(acc: v128, d: v128, wb: usize, qb: usize): v128 {
  const v = v128.load(wb, 18);
  return fma4(d, f32x4.convert_i32x4_s(laneSumsHi(codes(v, v, 2), codes(v, v, 3), qb)), acc, true);
}

/** hsum_float_8 of the lanes lo (0..3) and hi (4..7): ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). */
// @ts-ignore: decorator
@inline
function hsum8(lo: v128, hi: v128): f32 {
  const s = f32x4.add(lo, hi);
  const t = f32x4.add(s, f32x4.shuffle(s, s, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

/*
 * The i8 path (relaxed build where q8_0DotAddOk): activations as plain i8 codes (quantize_q8_0:
 * codes at q + 32 b, d_x at q + n + 4 b) and one i32x4.relaxed_dot_i8x16_i7x16_add_s per 16
 * bytes, whose i32 lane i is the sum of codes 4i..4i+3: llama.cpp's lanes as they come. Its
 * second operand must be 0..127, and Q8_0 weights are signed, so it multiplies |w| by x with
 * w's sign (x * sign(w), never out of i8: x is -127..127), llama.cpp's own AVX2 trick
 * (_mm256_sign_epi8). A weight code of -128 (no quantizer writes one, but a file may hold it) has
 * |w| = 0x80: right only where the runtime reads that byte as 128 (x86's vpdpbusd, pmaddubsw),
 * which the probe checks; elsewhere this path is off and the i16 one runs.
 */

let q8DotAddState: i32 = -1;

/** Whether Q8_0 runs on the i8 path: relaxedDotAddOk, a fused madd, and 0x80 read as +128 in the i7 operand (probed once). */
export function q8_0DotAddOk(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD || !relaxedDotAddOk() || !fusedMaddOk()) return false;
  if (q8DotAddState < 0) {
    const x = <i32>memory.size();
    const a = -1 - (x & 63); // -64..-1: inputs the optimizer cannot fold
    const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat(<i8>a), i8x16.splat(-128), i32x4.splat(x));
    const e = 4 * 128 * a + x;
    q8DotAddState = i32x4.extract_lane(r, 0) == e && i32x4.extract_lane(r, 3) == e ? 1 : 0;
  }
  return q8DotAddState == 1;
}

/** The i8 path: lane i = sum_{j=4i..4i+3} w_j x_j of 16 weight codes w and 16 activation codes x, plus acc. */
// @ts-ignore: decorator
@inline
function signedDot(x: v128, w: v128, acc: v128): v128 {
  return signedDotOf(x, i8x16.lt_s(w, i8x16.splat(0)), i8x16.abs(w), acc);
}

/** signedDot given w's sign mask `neg` (0xff where w < 0) and |w| `a`. */
// @ts-ignore: decorator
@inline
function signedDotOf(x: v128, neg: v128, a: v128, acc: v128): v128 {
  if (!ASC_FEATURE_RELAXED_SIMD) return unreachable();
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.sub(v128.xor(x, neg), neg), a, acc);
}

/**
 * One row (at w) against one token (activations at q); yp: its output slot (see the fences).
 * acc = fma(d_b, S_b, acc) per block b in the eight lanes, d_b = f32(d_w(b) * d_x(b)).
 */
// @ts-ignore: decorator
@inline
export function dotRow(w: usize, q: usize, n: i32, yp: usize): f32 {
  return fusedMaddOk() ? dotRowFused(w, q, n, yp) : dotRowBlocks4(w, q, n, yp);
}

/** dotRow with a fused madd; a function of its own: beside other loops V8 allocates its registers worse (2.5x slower). */
function dotRowFused(w: usize, q: usize, n: i32, yp: usize): f32 {
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const nb = n >> 5;
  let lo = f32x4.splat(0);
  let hi = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << 1);
  for (; b + 3 < nb; b += 4, wb += 136, qb += 256, dxp += 16) {
    const d = f32x4.mul(blockScales4(wb, magic, mask), v128.load(dxp));
    // Unrolled by hand: V8 keeps a loop over k, choosing the lane with branches.
    lo = stepLo(lo, splatLane(d, 0), wb, qb);
    hi = stepHi(hi, splatLane(d, 0), wb, qb);
    // Ordering fences (V8 would otherwise hoist the group's loads and spill them).
    v128.store32_lane(yp, hi, 0);
    lo = stepLo(lo, splatLane(d, 1), wb + 34, qb + 64);
    hi = stepHi(hi, splatLane(d, 1), wb + 34, qb + 64);
    v128.store32_lane(yp, hi, 0);
    lo = stepLo(lo, splatLane(d, 2), wb + 68, qb + 128);
    hi = stepHi(hi, splatLane(d, 2), wb + 68, qb + 128);
    v128.store32_lane(yp, hi, 0);
    lo = stepLo(lo, splatLane(d, 3), wb + 102, qb + 192);
    hi = stepHi(hi, splatLane(d, 3), wb + 102, qb + 192);
  }
  for (; b < nb; b++, wb += 34, qb += 64, dxp += 4) {
    const dk = f32x4.splat(halfToFloat(load<u16>(wb)) * load<f32>(dxp));
    lo = stepLo(lo, dk, wb, qb);
    hi = stepHi(hi, dk, wb, qb);
  }
  return hsum8(lo, hi);
}

/**
 * dotRowFused on the i8 path (q: quantize_q8_0's i8 codes, 32 bytes a block, d_x at q + n), its
 * own function for the same reason; the block offsets written out, as memory-operand offsets.
 */
export function dotRowI8(w: usize, q: usize, n: i32, yp: usize): f32 {
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const nb = n >> 5;
  const zero = i32x4.splat(0);
  let lo = f32x4.splat(0);
  let hi = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + <usize>n;
  for (; b + 3 < nb; b += 4, wb += 136, qb += 128, dxp += 16) {
    const d = f32x4.mul(blockScales4(wb, magic, mask), v128.load(dxp));
    lo = fma4(splatLane(d, 0), f32x4.convert_i32x4_s(signedDot(v128.load(qb), v128.load(wb, 2), zero)), lo, true);
    hi = fma4(splatLane(d, 0), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 16), v128.load(wb, 18), zero)), hi, true);
    v128.store32_lane(yp, hi, 0);
    lo = fma4(splatLane(d, 1), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 32), v128.load(wb, 36), zero)), lo, true);
    hi = fma4(splatLane(d, 1), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 48), v128.load(wb, 52), zero)), hi, true);
    v128.store32_lane(yp, hi, 0);
    lo = fma4(splatLane(d, 2), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 64), v128.load(wb, 70), zero)), lo, true);
    hi = fma4(splatLane(d, 2), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 80), v128.load(wb, 86), zero)), hi, true);
    v128.store32_lane(yp, hi, 0);
    lo = fma4(splatLane(d, 3), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 96), v128.load(wb, 104), zero)), lo, true);
    hi = fma4(splatLane(d, 3), f32x4.convert_i32x4_s(signedDot(v128.load(qb, 112), v128.load(wb, 120), zero)), hi, true);
  }
  for (; b < nb; b++, wb += 34, qb += 32, dxp += 4) {
    const dk = f32x4.splat(halfToFloat(load<u16>(wb)) * load<f32>(dxp));
    lo = fma4(dk, f32x4.convert_i32x4_s(signedDot(v128.load(qb), v128.load(wb, 2), zero)), lo, true);
    hi = fma4(dk, f32x4.convert_i32x4_s(signedDot(v128.load(qb, 16), v128.load(wb, 18), zero)), hi, true);
  }
  return hsum8(lo, hi);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block is decoded once for the four tokens; each token keeps dotRow's eight lanes and steps.
 */
// @ts-ignore: decorator
@inline
export function dot1x4(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  if (fusedMaddOk()) dot1x4Fused(w, q, qs, n, yp, ys);
  else dot1x4Blocks4(w, q, qs, n, yp, ys);
}

/** dot1x4 with a fused madd, in a function of its own (as dotRowFused). */
function dot1x4Fused(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  dot1x4In(w, q, qs, n, yp, ys, false);
}

/** dot1x4Fused on the i8 path: |w| and w's sign found once per 16 codes for the four tokens. */
export function dot1x4I8(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  dot1x4In(w, q, qs, n, yp, ys, true);
}

/**
 * One token's lanes 0..3 (hi: 4..7) of a block from the half's code vectors as prepared once for
 * the four tokens (i8: w's sign mask and |w|; else its even and odd codes widened), codes at qb.
 */
// @ts-ignore: decorator
@inline
function halfSums(p0: v128, p1: v128, qb: usize, hi: bool, i8: bool, zero: v128): v128 {
  if (i8) return signedDotOf(hi ? v128.load(qb, 16) : v128.load(qb), p0, p1, zero);
  return hi ? laneSumsHi(p0, p1, qb) : laneSumsLo(p0, p1, qb);
}

/** dot1x4Fused's body (i8: as dotRowIn). */
// @ts-ignore: decorator
@inline
function dot1x4In(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize, i8: bool): void {
  const nb = n >> 5;
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  const ab: usize = i8 ? 32 : 64;
  const zero = i32x4.splat(0);
  let lo0 = f32x4.splat(0), hi0 = f32x4.splat(0);
  let lo1 = f32x4.splat(0), hi1 = f32x4.splat(0);
  let lo2 = f32x4.splat(0), hi2 = f32x4.splat(0);
  let lo3 = f32x4.splat(0), hi3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (i8 ? <usize>n : <usize>n << 1);
  for (; b < nb; b++, wb += 34, qb += ab, dxp += 4) {
    // The four tokens' d_x of this block, times d_w: f32(d_w * d_x) per token.
    let dx = v128.load32_zero(dxp);
    dx = v128.load32_lane(dxp + qs, dx, 1);
    dx = v128.load32_lane(dxp + qs2, dx, 2);
    dx = v128.load32_lane(dxp + qs3, dx, 3);
    const d = f32x4.mul(f32x4.splat(halfToFloat(load<u16>(wb))), dx);
    // Lanes 0..3 of the four tokens, then lanes 4..7: half the block's codes live at a time,
    // with a fence after each token (as dotRow's, against hoisted loads and spills).
    let v = v128.load(wb, 2);
    let p0 = i8 ? i8x16.lt_s(v, i8x16.splat(0)) : codes(v, v, 0);
    let p1 = i8 ? i8x16.abs(v) : codes(v, v, 1);
    lo0 = fma4(splatLane(d, 0), f32x4.convert_i32x4_s(halfSums(p0, p1, qb, false, i8, zero)), lo0, true);
    v128.store32_lane(yp, lo0, 0);
    lo1 = fma4(splatLane(d, 1), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs, false, i8, zero)), lo1, true);
    v128.store32_lane(yp, lo1, 0);
    lo2 = fma4(splatLane(d, 2), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs2, false, i8, zero)), lo2, true);
    v128.store32_lane(yp, lo2, 0);
    lo3 = fma4(splatLane(d, 3), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs3, false, i8, zero)), lo3, true);
    v128.store32_lane(yp, lo3, 0);
    v = v128.load(wb, 18);
    p0 = i8 ? i8x16.lt_s(v, i8x16.splat(0)) : codes(v, v, 2);
    p1 = i8 ? i8x16.abs(v) : codes(v, v, 3);
    hi0 = fma4(splatLane(d, 0), f32x4.convert_i32x4_s(halfSums(p0, p1, qb, true, i8, zero)), hi0, true);
    v128.store32_lane(yp, hi0, 0);
    hi1 = fma4(splatLane(d, 1), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs, true, i8, zero)), hi1, true);
    v128.store32_lane(yp, hi1, 0);
    hi2 = fma4(splatLane(d, 2), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs2, true, i8, zero)), hi2, true);
    v128.store32_lane(yp, hi2, 0);
    hi3 = fma4(splatLane(d, 3), f32x4.convert_i32x4_s(halfSums(p0, p1, qb + qs3, true, i8, zero)), hi3, true);
  }
  store<f32>(yp, hsum8(lo0, hi0));
  store<f32>(yp + ys, hsum8(lo1, hi1));
  store<f32>(yp + 2 * ys, hsum8(lo2, hi2));
  store<f32>(yp + 3 * ys, hsum8(lo3, hi3));
}

/*
 * Without a fused multiply-add (the plain build; relaxed_madd unfused, as in Bun's JSC or on a CPU
 * without FMA3) llama.cpp's steps would need fma4's f64 path for every eight lanes of every block:
 * 5x slower. There the products keep this order instead, a few ulps from llama.cpp's: four blocks'
 * integer sums transposed into four lanes, one conversion and multiply-add per four blocks.
 */

/** The integer sum of one block for one (row, token), as four i32 lanes: codes c0..c3 times the token's activation vectors at qb. */
// @ts-ignore: decorator
@inline
function decodedDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize): v128 {
  let s = i32x4.dot_i16x8_s(c0, v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c2, v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/** One block of one row (at wb) against one token (codes at qb). */
// @ts-ignore: decorator
@inline
function blockDot(wb: usize, qb: usize): v128 {
  const v0 = v128.load(wb, 2);
  const v1 = v128.load(wb, 18);
  return decodedDot(codes(v0, v1, 0), codes(v0, v1, 1), codes(v0, v1, 2), codes(v0, v1, 3), qb);
}

/** One group of four blocks for one (row, token): acc + their products, block k in lane k. */
// @ts-ignore: decorator
@inline
function addGroup(acc: v128, isum: v128, dw: v128, dx: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(dw, dx)));
}

/**
 * The end of dotRow for one (row w, token q) pair, given its lane accumulators after the
 * groups of four: the fold, then blocks b..nb-1 one at a time.
 */
// @ts-ignore: decorator
@inline
function finish(acc: v128, w: usize, q: usize, n: i32, b: i32): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << 1);
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
  for (; b < nb; b++) {
    const wb = w + <usize>b * 34;
    sum += <f32>hsumI32(blockDot(wb, q + (<usize>b << 6))) * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return sum;
}

/** dotRow in the four-block order. yp: the output slot (see the fences). */
function dotRowBlocks4(w: usize, q: usize, n: i32, yp: usize): f32 {
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const nb = n >> 5;
  let acc = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << 1);
  for (; b + 3 < nb; b += 4, wb += 136, qb += 256, dxp += 16) {
    // The lane stores into this row's output slot are ordering fences: without them V8 hoists
    // all the group's loads above the arithmetic and spills half of them (7.3 vs 6.4 GB/s).
    const s0 = blockDot(wb, qb);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(wb + 34, qb + 64);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(wb + 68, qb + 128);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(wb + 102, qb + 192);
    acc = addGroup(acc, transposeSum(s0, s1, s2, s3), blockScales4(wb, magic, mask), v128.load(dxp));
  }
  return finish(acc, w, q, n, b);
}

/**
 * One block (codes c0..c3) against the same block of four tokens (at qb + t qs): the integer
 * block sums [t0, t1, t2, t3]. The store into `fence` is an ordering fence (q4_0.ts, quadDot).
 */
// @ts-ignore: decorator
@inline
function quadDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize, qs: usize, fence: usize): v128 {
  const s01 = pairSums(decodedDot(c0, c1, c2, c3, qb), decodedDot(c0, c1, c2, c3, qb + qs));
  v128.store32_lane(fence, s01, 0);
  const s23 = pairSums(decodedDot(c0, c1, c2, c3, qb + 2 * qs), decodedDot(c0, c1, c2, c3, qb + 3 * qs));
  return pairSums(s01, s23);
}

/** One block's four code vectors, decoded once, against four tokens. */
// @ts-ignore: decorator
@inline
function blockQuadDot(wb: usize, qb: usize, qs: usize, fence: usize): v128 {
  const v0 = v128.load(wb, 2);
  const v1 = v128.load(wb, 18);
  return quadDot(codes(v0, v1, 0), codes(v0, v1, 1), codes(v0, v1, 2), codes(v0, v1, 3), qb, qs, fence);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block is decoded once for the four tokens; the group's [tokens] per block are transposed to
 * [blocks] per token for dotRow's lane accumulators.
 */
function dot1x4Blocks4(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize): void {
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << 1);
  for (; b + 3 < nb; b += 4, wb += 136, qb += 256, dxp += 16) {
    // tk: block b+k's sums for tokens 0..3; the stores after them are fences
    const t0 = blockQuadDot(wb, qb, qs, yp);
    v128.store32_lane(yp, t0, 0);
    const t1 = blockQuadDot(wb + 34, qb + 64, qs, yp);
    v128.store32_lane(yp, t1, 0);
    const t2 = blockQuadDot(wb + 68, qb + 128, qs, yp);
    v128.store32_lane(yp, t2, 0);
    const t3 = blockQuadDot(wb + 102, qb + 192, qs, yp);
    v128.store32_lane(yp, t3, 0);
    const dw = blockScales4(wb, magic, mask);
    acc0 = addGroup(acc0, column(t0, t1, t2, t3, 0), dw, v128.load(dxp));
    acc1 = addGroup(acc1, column(t0, t1, t2, t3, 1), dw, v128.load(dxp + qs));
    acc2 = addGroup(acc2, column(t0, t1, t2, t3, 2), dw, v128.load(dxp + qs2));
    acc3 = addGroup(acc3, column(t0, t1, t2, t3, 3), dw, v128.load(dxp + qs3));
  }
  store<f32>(yp, finish(acc0, w, q, n, b));
  store<f32>(yp + ys, finish(acc1, w, q + qs, n, b));
  store<f32>(yp + 2 * ys, finish(acc2, w, q + qs2, n, b));
  store<f32>(yp + 3 * ys, finish(acc3, w, q + qs3, n, b));
}
