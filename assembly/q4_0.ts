/*
 * Q4_0 weights x Q8_0 activations.
 *
 * Q4_0 block (18 bytes, 32 weights):   | d: f16 | qs: u8[16] |
 *   weight j      = d * ((qs[j] & 0x0f) - 8)      for j in 0..15
 *   weight j + 16 = d * ((qs[j] >> 4)   - 8)
 *
 *   y[t][r] = sum over blocks b of  d_w(r,b) * d_x(t,b) * (sum_j c_j * q_j  -  8 * sum_j q_j)
 *   (c_j = the raw nibble 0..15, q_j = the activation's Q8_0 code; the block sums come with the
 *   activations, so the -8 costs nothing per weight.)
 *
 * Speed: read as eight 16-bit lanes, the 16 code bytes give all 32 nibbles already widened with
 * one mask or shift each (lane k = byte 2k | byte 2k+1 << 8):
 *     lane & 15 -> weight 2k     (lane >> 4) & 15 -> weight 2k+16
 *     (lane >> 8) & 15 -> weight 2k+1     lane >> 12 -> weight 2k+17
 * so the activations are stored widened to i16 in that order (quantize.ts, "Q4_0 order"), and
 * each block is 4 i32x4.dot_i16x8_s. The relaxed-SIMD build instead keeps plain i8 activations
 * (quantize_q8_0) and multiplies bytes directly (relaxed_dot_i8x16_i7x16_s), or, where the
 * runtime passes relaxedDotAddOk's probe, i32x4.relaxed_dot_i8x16_i7x16_add_s (16 products
 * into i32 lanes, one vpdpbusd with AVX-VNNI; Node 20's returns twice the sum). Four blocks share
 * one f16->f32 conversion of their scales and one float multiply-add.
 *
 * Summation order (dotRow, one row and one token): exact integer block sums; block b's product
 * with its two scales goes into float lane b % 4; the lanes fold as (0 + 2) + (1 + 3); the
 * blocks past the last group of four are added one at a time.
 *
 * Tiles (driven by tiles.ts): dot1x4, one weight row against four tokens for prompt processing,
 * decodes each block's nibbles once and uses them four times. It keeps dotRow's order for every
 * (row, token) pair, so it gives the same bits, and prompt processing agrees with decoding one
 * token at a time (dotRow).
 *
 * The relaxed build walks groups of four blocks with the blocks in the lanes ("Relaxed build"
 * below: activations transposed per group by quantize_q4_0, weights by 8 shuffles per group), so
 * the integer block sums need no horizontal adds; same sums, same order, same bits.
 */
import { halfToFloat, highHalves4, hsumI32, HALF_TO_SINGLE, SCALES4_MASK, vconst, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { act_q8_0_i16_bytes, codesQ8_0, quantize_q8_0_i16 } from "./quantize";
import { floatToHalf, maxAbs } from "./common";

/** log2 of the activation bytes per block: i16 codes (64 bytes), or i8 (32) in the relaxed build. */
const ACT_SHIFT: usize = ASC_FEATURE_RELAXED_SIMD ? 5 : 6;

/** Activation row stride for Q4_0 weights: the same in both builds (see quantize_q8_0). */
export function act_q4_0_bytes(n: i32): i32 {
  return act_q8_0_i16_bytes(n);
}

/**
 * Nibble vector k (0..3) of a block's 16 code bytes v, read as i16 lanes: the weights that
 * multiply activation vector k (see above). Relaxed build: k = 0 the low nibbles, 1 the high.
 */
// @ts-ignore: decorator
@inline
function nibbles(v: v128, k: i32, m: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return k == 0 ? v128.and(v, m) : v128.and(i16x8.shr_u(v, 4), m);
  return k == 0 ? v128.and(v, m) : k == 3 ? i16x8.shr_u(v, 12) : v128.and(i16x8.shr_u(v, <i32>(4 * k)), m);
}

/**
 * The integer sum of one block for one (row, token), as four i32 lanes: decoded weights c0..c3
 * (nibbles 0..3) times the token's activation vectors at qb. The relaxed build uses c0, c1 and
 * two vectors of i8 codes: the nibbles (0..15) are the "i7" operand of a byte-pair multiply-add,
 * two of which fit an i16 lane (4 * 15 * 127 < 32768). With `add` (where relaxedDotAddOk), one
 * i32x4.relaxed_dot_i8x16_i7x16_add_s per 16 bytes instead: 16 products summed straight into
 * i32 lanes (one vpdpbusd where the CPU has AVX-VNNI). Integer sums either way: the same bits.
 */
// @ts-ignore: decorator
@inline
function decodedDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize, add: bool = false): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (add) {
      return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qb, 16), c1,
        i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qb), c0, i32x4.splat(0)));
    }
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb), c0), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qb, 16), c1)));
  }
  let s = i32x4.dot_i16x8_s(c0, v128.load(qb));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c1, v128.load(qb, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(c2, v128.load(qb, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(c3, v128.load(qb, 48)));
}

/**
 * Whether this runtime's i32x4.relaxed_dot_i8x16_i7x16_add_s is right, tested once per instance
 * on inputs of known answer (Node 20's experimental relaxed SIMD returns twice the sum; Node 22+,
 * Chromium, Deno, Bun are right). Always false in the plain build. The inputs derive from
 * memory.size() so that the optimizer cannot fold the probe away at build time.
 */
let dotAddState: i32 = -1;

/**
 * Never use i32x4.relaxed_dot_i8x16_i7x16_add_s in this instance, whatever the probe says. The
 * loader calls it where relaxed SIMD is experimental (Node 20), whose add form returns twice the
 * sum but not reliably: late in a long test run (hundreds of instances) the probe passed in fresh
 * instances and a model's logits went wrong; keeping the i16 form fixed it. (Likely the compiler
 * tiers disagree: the probe's code had been optimized by then, the kernels' new paths not.)
 */
export function forbid_relaxed_dot_add(): void {
  dotAddState = 0;
}
export function relaxedDotAddOk(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  if (dotAddState < 0) {
    const x = <i32>memory.size();
    const a0 = -50 - (x & 63); // -113..-50
    const a1 = 37 + (x & 31); // 37..68
    const b0 = 90 + (x & 31); // 90..121 (the i7 operand stays in 0..127)
    const b1 = x & 127;
    const a = i8x16.replace_lane(i8x16.splat(<i8>a0), 5, <i8>a1);
    const b = i8x16.replace_lane(i8x16.splat(<i8>b0), 6, <i8>b1);
    const acc = i32x4.replace_lane(i32x4.splat(x), 3, -x - 12345);
    const r = i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, acc);
    const e0 = 4 * a0 * b0 + x;
    const e1 = a0 * b0 + a1 * b0 + a0 * b1 + a0 * b0 + x; // lane 1: bytes 4..7 (5 is a1, 6 is b1)
    const e3 = 4 * a0 * b0 - x - 12345;
    const ok = i32x4.extract_lane(r, 0) == e0 && i32x4.extract_lane(r, 1) == e1 &&
      i32x4.extract_lane(r, 2) == e0 && i32x4.extract_lane(r, 3) == e3;
    dotAddState = ok ? 1 : 0;
  }
  return dotAddState == 1;
}

/** One block of one row (at wb) against one token (codes at qb). */
// @ts-ignore: decorator
@inline
function blockDot(wb: usize, qb: usize, m: v128, add: bool = false): v128 {
  const v = v128.load(wb, 2);
  return decodedDot(nibbles(v, 0, m), nibbles(v, 1, m), nibbles(v, 2, m), nibbles(v, 3, m), qb, add);
}

/** The f16 scales of the four blocks from wb on, as f32x4 (scales4 with constant offsets). */
// @ts-ignore: decorator
@inline
function blockScales4(wb: usize, magic: v128, mask: v128): v128 {
  let h = v128.load16_lane(wb, i32x4.splat(0), 1);
  h = v128.load16_lane(wb, h, 3, 18);
  h = v128.load16_lane(wb, h, 5, 36);
  h = v128.load16_lane(wb, h, 7, 54);
  return highHalves4(h, magic, mask);
}

/** Lane sums of four i32x4: [sum a, sum b, sum c, sum d]. */
// @ts-ignore: decorator
@inline
export function transposeSum(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/** Pairwise lane sums: [a0 + a1, a2 + a3, b0 + b1, b2 + b3]. Twice over four vectors = transposeSum. */
// @ts-ignore: decorator
@inline
export function pairSums(a: v128, b: v128): v128 {
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7));
}

/** Lane k of each of a, b, c, d, as one vector: row k of the 4x4 transpose. */
// @ts-ignore: decorator
@inline
export function column(a: v128, b: v128, c: v128, d: v128, k: i32): v128 {
  const ab = k < 2 ? i32x4.shuffle(a, b, 0, 4, 1, 5) : i32x4.shuffle(a, b, 2, 6, 3, 7);
  const cd = k < 2 ? i32x4.shuffle(c, d, 0, 4, 1, 5) : i32x4.shuffle(c, d, 2, 6, 3, 7);
  return k & 1 ? i32x4.shuffle(ab, cd, 2, 3, 6, 7) : i32x4.shuffle(ab, cd, 0, 1, 4, 5);
}

/**
 * One group of four blocks for one (row, token): acc + their products, block k in lane k.
 * isum: the four integer block sums; dw, dx: the weight and activation scales; sx: the
 * activations' code sums.
 */
// @ts-ignore: decorator
@inline
function addGroup(acc: v128, isum: v128, dw: v128, dx: v128, sx: v128): v128 {
  const s = i32x4.sub(isum, i32x4.shl(sx, 3));
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(dw, dx)));
}

/**
 * The end of dotRow for one (row w, token q) pair, given its lane accumulators after the
 * groups of four: the fold, then blocks b..nb-1 one at a time.
 */
// @ts-ignore: decorator
@inline
function finish(acc: v128, w: usize, q: usize, n: i32, b: i32, m: v128, add: bool = false): f32 {
  const nb = n >> 5;
  const dx = q + (<usize>n << (ACT_SHIFT - 5));
  const sx = dx + (<usize>nb << 2);
  const a = f32x4.add(acc, f32x4.shuffle(acc, acc, 2, 3, 0, 1));
  let sum = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1);
  for (; b < nb; b++) {
    const wb = w + <usize>b * 18;
    const isum = hsumI32(blockDot(wb, q + (<usize>b << ACT_SHIFT), m, add)) - 8 * load<i32>(sx + (<usize>b << 2));
    sum += <f32>isum * (halfToFloat(load<u16>(wb)) * load<f32>(dx + (<usize>b << 2)));
  }
  return sum;
}

/** One row (at w) against one token (activations at q); yp: its output slot (see the fences). */
// @ts-ignore: decorator
@inline
export function dotRow(w: usize, q: usize, n: i32, yp: usize, add: bool = false): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) return dotRowGroups(w, q, n, yp, add);
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  // Loop constants live in locals: inside the loop body V8 would rebuild them each block.
  const m = ASC_FEATURE_RELAXED_SIMD ? i8x16.splat(15) : i16x8.splat(15);
  let acc = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << (ACT_SHIFT - 5));
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 72, qb += 4 << ACT_SHIFT, dxp += 16, sxp += 16) {
    // The lane stores into this row's output slot are ordering fences: V8 computes values
    // where they are first needed, so without them it issues all the group's loads first and
    // spills half of them (7.3 vs 6.4 GB/s). (One fence per two blocks spills too.)
    const s0 = blockDot(wb, qb, m, add);
    v128.store32_lane(yp, s0, 0);
    const s1 = blockDot(wb + 18, qb + (1 << ACT_SHIFT), m, add);
    v128.store32_lane(yp, s1, 0);
    const s2 = blockDot(wb + 36, qb + (2 << ACT_SHIFT), m, add);
    v128.store32_lane(yp, s2, 0);
    const s3 = blockDot(wb + 54, qb + (3 << ACT_SHIFT), m, add);
    acc = addGroup(acc, transposeSum(s0, s1, s2, s3), blockScales4(wb, magic, mask), v128.load(dxp), v128.load(sxp));
  }
  return finish(acc, w, q, n, b, m, add);
}

/**
 * One block (decoded weights c0..c3) against the same block of four tokens (codes at qb + t qs):
 * the integer block sums [t0, t1, t2, t3]. The store into `fence` is an ordering fence as in
 * dotRow: V8 computes values where they are first needed, so without it the four tokens' loads
 * would all come first, more registers than there are.
 */
// @ts-ignore: decorator
@inline
function quadDot(c0: v128, c1: v128, c2: v128, c3: v128, qb: usize, qs: usize, fence: usize, add: bool = false): v128 {
  const s01 = pairSums(decodedDot(c0, c1, c2, c3, qb, add), decodedDot(c0, c1, c2, c3, qb + qs, add));
  v128.store32_lane(fence, s01, 0);
  const s23 = pairSums(decodedDot(c0, c1, c2, c3, qb + 2 * qs, add), decodedDot(c0, c1, c2, c3, qb + 3 * qs, add));
  return pairSums(s01, s23);
}

/**
 * One row (at w) against four tokens (activations at q + t qs): outputs at yp + t ys. Each
 * block's nibbles are decoded once for the four tokens. The group's sums come out as [tokens]
 * per block; transposed to [blocks] per token, they go into that token's lane accumulators
 * exactly as in dotRow.
 */
// @ts-ignore: decorator
@inline
export function dot1x4(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize, add: bool = false): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    dot1x4Groups(w, q, qs, n, yp, ys, add);
    return;
  }
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = ASC_FEATURE_RELAXED_SIMD ? i8x16.splat(15) : i16x8.splat(15);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qb = q;
  let dxp = q + (<usize>n << (ACT_SHIFT - 5));
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 72, qb += 4 << ACT_SHIFT, dxp += 16, sxp += 16) {
    // tk: block b+k's sums for tokens 0..3; the stores after them are fences (see quadDot)
    let v = v128.load(wb, 2);
    const t0 = quadDot(nibbles(v, 0, m), nibbles(v, 1, m), nibbles(v, 2, m), nibbles(v, 3, m), qb, qs, yp, add);
    v128.store32_lane(yp, t0, 0);
    v = v128.load(wb, 20);
    const t1 = quadDot(nibbles(v, 0, m), nibbles(v, 1, m), nibbles(v, 2, m), nibbles(v, 3, m), qb + (1 << ACT_SHIFT), qs, yp, add);
    v128.store32_lane(yp, t1, 0);
    v = v128.load(wb, 38);
    const t2 = quadDot(nibbles(v, 0, m), nibbles(v, 1, m), nibbles(v, 2, m), nibbles(v, 3, m), qb + (2 << ACT_SHIFT), qs, yp, add);
    v128.store32_lane(yp, t2, 0);
    v = v128.load(wb, 56);
    const t3 = quadDot(nibbles(v, 0, m), nibbles(v, 1, m), nibbles(v, 2, m), nibbles(v, 3, m), qb + (3 << ACT_SHIFT), qs, yp, add);
    v128.store32_lane(yp, t3, 0);
    const dw = blockScales4(wb, magic, mask);
    acc0 = addGroup(acc0, column(t0, t1, t2, t3, 0), dw, v128.load(dxp), v128.load(sxp));
    acc1 = addGroup(acc1, column(t0, t1, t2, t3, 1), dw, v128.load(dxp + qs), v128.load(sxp + qs));
    acc2 = addGroup(acc2, column(t0, t1, t2, t3, 2), dw, v128.load(dxp + qs2), v128.load(sxp + qs2));
    acc3 = addGroup(acc3, column(t0, t1, t2, t3, 3), dw, v128.load(dxp + qs3), v128.load(sxp + qs3));
  }
  store<f32>(yp, finish(acc0, w, q, n, b, m, add));
  store<f32>(yp + ys, finish(acc1, w, q + qs, n, b, m, add));
  store<f32>(yp + 2 * ys, finish(acc2, w, q + qs2, n, b, m, add));
  store<f32>(yp + 3 * ys, finish(acc3, w, q + qs3, n, b, m, add));
}

/*
 * Relaxed build: groups of four blocks with the blocks in the lanes.
 *
 * The relaxed build's Q4_0 activations (quantize_q4_0) keep each full group of four blocks
 * transposed: 128 bytes per group, vector (i, h) at 32 i + 16 h holding in its i32 lane k the
 * codes 16 h + 4 i .. 16 h + 4 i + 3 of block k of the group. The kernel transposes the four
 * blocks' 16 code bytes the same way (column(), 8 shuffles per group and row), so that every
 * byte-pair product lands in its own block's lane: eight multiply-adds give the four integer
 * block sums [b0, b1, b2, b3] of one (row, token) directly, which is what addGroup takes; no
 * horizontal sums and, in dot1x4, no transposes per token. Blocks past the last full group keep
 * the natural layout (32 codes at q + 32 b) and go through finish(). Same integer sums, same
 * float order: the same bits as before.
 */

/** The 8 decoded nibble vectors of one group of four blocks (at wb), blocks in lanes. */
// @ts-ignore: decorator
@inline
function groupNibbles(m: v128, k: i32, u: v128): v128 {
  return k & 1 ? v128.and(i16x8.shr_u(u, 4), m) : v128.and(u, m);
}

/**
 * The group's integer block sums [b0..b3] for one token (group codes at qg): lo_i / hi_i are the
 * low / high nibbles of transposed vector i.
 */
// @ts-ignore: decorator
@inline
function groupDot(l0: v128, h0: v128, l1: v128, h1: v128, l2: v128, h2: v128, l3: v128, h3: v128, qg: usize, add: bool): v128 {
  if (add) {
    // Two chains of four: the multiply-adds' latency, not their count, bounds one token's group.
    const z = i32x4.splat(0);
    let s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg), l0, z);
    let t = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 64), l2, z);
    s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 16), h0, s);
    t = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 80), h2, t);
    s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 32), l1, s);
    t = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 96), l3, t);
    s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 48), h1, s);
    t = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(qg, 112), h3, t);
    return i32x4.add(s, t);
  }
  // i16 lanes: 8 pair sums of at most 2 * 127 * 15 each, <= 30480 in all: no overflow.
  let s = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg), l0);
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 16), h0));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 32), l1));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 48), h1));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 64), l2));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 80), h2));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 96), l3));
  s = i16x8.add(s, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(qg, 112), h3));
  return i32x4.extadd_pairwise_i16x8_s(s);
}

/** dotRow of the relaxed build (see above). */
// @ts-ignore: decorator
@inline
function dotRowGroups(w: usize, q: usize, n: i32, yp: usize, add: bool): f32 {
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = i8x16.splat(15);
  let acc = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qg = q;
  let dxp = q + <usize>n;
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 72, qg += 128, dxp += 16, sxp += 16) {
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 20);
    const v2 = v128.load(wb, 38);
    const v3 = v128.load(wb, 56);
    const u0 = column(v0, v1, v2, v3, 0);
    const u1 = column(v0, v1, v2, v3, 1);
    const u2 = column(v0, v1, v2, v3, 2);
    const u3 = column(v0, v1, v2, v3, 3);
    const isum = groupDot(groupNibbles(m, 0, u0), groupNibbles(m, 1, u0), groupNibbles(m, 0, u1), groupNibbles(m, 1, u1),
      groupNibbles(m, 0, u2), groupNibbles(m, 1, u2), groupNibbles(m, 0, u3), groupNibbles(m, 1, u3), qg, add);
    acc = addGroup(acc, isum, blockScales4(wb, magic, mask), v128.load(dxp), v128.load(sxp));
  }
  return finish(acc, w, q, n, b, m, add);
}

/** dot1x4 of the relaxed build: each group's nibbles decoded once for the four tokens. */
// @ts-ignore: decorator
@inline
function dot1x4Groups(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize, add: bool): void {
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = i8x16.splat(15);
  const qs2 = qs + qs;
  const qs3 = qs2 + qs;
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qg = q;
  let dxp = q + <usize>n;
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 72, qg += 128, dxp += 16, sxp += 16) {
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 20);
    const v2 = v128.load(wb, 38);
    const v3 = v128.load(wb, 56);
    const u0 = column(v0, v1, v2, v3, 0);
    const u1 = column(v0, v1, v2, v3, 1);
    const u2 = column(v0, v1, v2, v3, 2);
    const u3 = column(v0, v1, v2, v3, 3);
    const l0 = groupNibbles(m, 0, u0), h0 = groupNibbles(m, 1, u0);
    const l1 = groupNibbles(m, 0, u1), h1 = groupNibbles(m, 1, u1);
    const l2 = groupNibbles(m, 0, u2), h2 = groupNibbles(m, 1, u2);
    const l3 = groupNibbles(m, 0, u3), h3 = groupNibbles(m, 1, u3);
    const dw = blockScales4(wb, magic, mask);
    acc0 = addGroup(acc0, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg, add), dw, v128.load(dxp), v128.load(sxp));
    v128.store32_lane(yp, acc0, 0);
    acc1 = addGroup(acc1, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + qs, add), dw, v128.load(dxp + qs), v128.load(sxp + qs));
    v128.store32_lane(yp, acc1, 0);
    acc2 = addGroup(acc2, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + qs2, add), dw, v128.load(dxp + qs2), v128.load(sxp + qs2));
    v128.store32_lane(yp, acc2, 0);
    acc3 = addGroup(acc3, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + qs3, add), dw, v128.load(dxp + qs3), v128.load(sxp + qs3));
  }
  store<f32>(yp, finish(acc0, w, q, n, b, m, add));
  store<f32>(yp + ys, finish(acc1, w, q + qs, n, b, m, add));
  store<f32>(yp + 2 * ys, finish(acc2, w, q + qs2, n, b, m, add));
  store<f32>(yp + 3 * ys, finish(acc3, w, q + qs3, n, b, m, add));
}

/**
 * One row (at w) against eight tokens (relaxed build): dot1x4Groups with each group's nibbles
 * decoded once for eight tokens. Outputs at yp + t ys; same bits as dotRow.
 */
// @ts-ignore: decorator
@inline
export function dot1x8(w: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize, add: bool = false): void {
  const nb = n >> 5;
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const m = i8x16.splat(15);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  let b = 0;
  let wb = w;
  let qg = q;
  let dxp = q + <usize>n;
  let sxp = dxp + (<usize>nb << 2);
  for (; b + 3 < nb; b += 4, wb += 72, qg += 128, dxp += 16, sxp += 16) {
    const v0 = v128.load(wb, 2);
    const v1 = v128.load(wb, 20);
    const v2 = v128.load(wb, 38);
    const v3 = v128.load(wb, 56);
    const u0 = column(v0, v1, v2, v3, 0);
    const u1 = column(v0, v1, v2, v3, 1);
    const u2 = column(v0, v1, v2, v3, 2);
    const u3 = column(v0, v1, v2, v3, 3);
    const l0 = groupNibbles(m, 0, u0), h0 = groupNibbles(m, 1, u0);
    const l1 = groupNibbles(m, 0, u1), h1 = groupNibbles(m, 1, u1);
    const l2 = groupNibbles(m, 0, u2), h2 = groupNibbles(m, 1, u2);
    const l3 = groupNibbles(m, 0, u3), h3 = groupNibbles(m, 1, u3);
    const dw = blockScales4(wb, magic, mask);
    a0 = addGroup(a0, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg, add), dw, v128.load(dxp), v128.load(sxp));
    v128.store32_lane(yp, a0, 0);
    a1 = addGroup(a1, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + qs, add), dw, v128.load(dxp + qs), v128.load(sxp + qs));
    v128.store32_lane(yp, a1, 0);
    a2 = addGroup(a2, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 2 * qs, add), dw, v128.load(dxp + 2 * qs), v128.load(sxp + 2 * qs));
    v128.store32_lane(yp, a2, 0);
    a3 = addGroup(a3, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 3 * qs, add), dw, v128.load(dxp + 3 * qs), v128.load(sxp + 3 * qs));
    v128.store32_lane(yp, a3, 0);
    a4 = addGroup(a4, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 4 * qs, add), dw, v128.load(dxp + 4 * qs), v128.load(sxp + 4 * qs));
    v128.store32_lane(yp, a4, 0);
    a5 = addGroup(a5, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 5 * qs, add), dw, v128.load(dxp + 5 * qs), v128.load(sxp + 5 * qs));
    v128.store32_lane(yp, a5, 0);
    a6 = addGroup(a6, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 6 * qs, add), dw, v128.load(dxp + 6 * qs), v128.load(sxp + 6 * qs));
    v128.store32_lane(yp, a6, 0);
    a7 = addGroup(a7, groupDot(l0, h0, l1, h1, l2, h2, l3, h3, qg + 7 * qs, add), dw, v128.load(dxp + 7 * qs), v128.load(sxp + 7 * qs));
  }
  store<f32>(yp, finish(a0, w, q, n, b, m, add));
  store<f32>(yp + ys, finish(a1, w, q + qs, n, b, m, add));
  store<f32>(yp + 2 * ys, finish(a2, w, q + 2 * qs, n, b, m, add));
  store<f32>(yp + 3 * ys, finish(a3, w, q + 3 * qs, n, b, m, add));
  store<f32>(yp + 4 * ys, finish(a4, w, q + 4 * qs, n, b, m, add));
  store<f32>(yp + 5 * ys, finish(a5, w, q + 5 * qs, n, b, m, add));
  store<f32>(yp + 6 * ys, finish(a6, w, q + 6 * qs, n, b, m, add));
  store<f32>(yp + 7 * ys, finish(a7, w, q + 7 * qs, n, b, m, add));
}

/**
 * Quantize rows [r0, r1) of x (rows of n f32) to the activations Q4_0 weights read: in the plain
 * build Q8_0 codes widened to i16 in "Q4_0 order" (quantize.ts); in the relaxed build i8 codes
 * with each full group of four blocks transposed (see above), d and sums as quantize_q8_0.
 */
export function quantize_q4_0(x: usize, q: usize, n: i32, r0: i32, r1: i32): void {
  if (!ASC_FEATURE_RELAXED_SIMD) {
    quantize_q8_0_i16(x, q, n, r0, r1, 4);
    return;
  }
  const stride = <usize>act_q4_0_bytes(n);
  const nb = n >> 5;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * <usize>n * 4;
    const qr = q + <usize>r * stride;
    const dOut = qr + <usize>n;
    const sOut = dOut + (<usize>nb << 2);
    for (let b = 0; b < nb; b++) {
      const xb = xr + (<usize>b << 7);
      const amax = maxAbs(xb, 32);
      const sum = codesQ8_0(xb, amax, qr + (<usize>b << 5));
      store<f32>(dOut + (<usize>b << 2), halfToFloat(floatToHalf(amax / <f32>127.0)));
      store<i32>(sOut + (<usize>b << 2), hsumI32(sum));
    }
    for (let g: usize = qr, end = qr + (<usize>(nb & ~3) << 5); g < end; g += 128) {
      const a0 = v128.load(g), a1 = v128.load(g, 32), a2 = v128.load(g, 64), a3 = v128.load(g, 96);
      const b0 = v128.load(g, 16), b1 = v128.load(g, 48), b2 = v128.load(g, 80), b3 = v128.load(g, 112);
      v128.store(g, column(a0, a1, a2, a3, 0));
      v128.store(g, column(b0, b1, b2, b3, 0), 16);
      v128.store(g, column(a0, a1, a2, a3, 1), 32);
      v128.store(g, column(b0, b1, b2, b3, 1), 48);
      v128.store(g, column(a0, a1, a2, a3, 2), 64);
      v128.store(g, column(b0, b1, b2, b3, 2), 80);
      v128.store(g, column(a0, a1, a2, a3, 3), 96);
      v128.store(g, column(b0, b1, b2, b3, 3), 112);
    }
  }
}
