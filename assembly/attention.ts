/*
 * Causal multi-head attention of nTok queries over a KV cache, grouped-query heads.
 *
 *   q, out: nTok rows of nHead*headDim f32.    K, V cache: one row per position of
 *   nKvHead*headDim values, of type kvType (ggml type ids, as llama.cpp's type_k / type_v):
 *     0 f32;  1 f16;  8 Q8_0 (block_q8_0: | d f16 | qs i8[32] |, 34 bytes per 32 values,
 *     blocks along each head, so headDim % 32 == 0).
 *   Query t sits at position pos0 + t and sees positions 0..pos0+t.
 *   Head h reads kv head h / (nHead / nKvHead).
 *
 *   score_j = (q_h . k_j) * scale;  p = softmax(score);  out_h = sum_j p_j v_j
 *
 * With an f32 cache, q_h . k_j sums in ggml_vec_dot_f32's order (dotVecF32), as llama.cpp's
 * KQ product does; the softmax runs over the row padded to blocks of 16 (norm.ts), as llama.cpp's
 * KQ rows are n_kv long with the later positions masked. out_h: with `llamaKqv`, as llama.cpp's
 * KQV product sums it (kqvF32: a dot product per dimension over the positions, tinyBLAS's 16
 * lanes for two or more queries, ggml_vec_dot_f32's for one); else p_j v_j position by position
 * (each product and sum rounded), which is cheaper. The model asks for llama.cpp's order where
 * the result goes into an F16 product (src/model/llama.ts): there one ulp can flip an f16
 * rounding, and the F16 kernels sum as llama.cpp does, so the whole step can give its bits.
 * Elsewhere the WASM products keep their own orders, and an exact P.V only moves which values
 * land near a rounding tie (with it, q8_0-mqa's logits moved by 2.8e-2).
 *
 * With an f16 cache llama.cpp rounds q and p to f16 before its two matrix products (the F16
 * matmul converts its input); we do the same so both engines see the same numbers.
 * With a Q8_0 cache llama.cpp (flash attention, the path that allows quantized V) quantizes q
 * to Q8_0 (K's vec_dot type) and takes integer block dot products, as a Q8_0 matmul does
 * (q8_0.ts); V rows are dequantized to f32 and weighted by p. (Its Hadamard rotations of q, k,
 * v and the output, for head sizes that are multiples of 64, are separate ops: hadamard.ts.)
 * Heads [h0, h1) only, so threads can split heads. scores: scratch of nKv f32 per thread,
 * qh: scratch of headDim f32 per thread (the Q8_0 query fits: 2*headDim + headDim/4 bytes).
 */
import { floatToHalf, halfToFloat, halves4, hsumF32, maxAbs, roundHalf4, vconst, HALF_TO_SINGLE, HALVES_MASK, V_HALF_TO_SINGLE, V_SCALES4_MASK } from "./common";
import { fma4, fmaf, fusedMaddOk } from "./fma";
import { dotVecF32, reduce16x4, softmaxRow, softmaxRowExact } from "./norm";
import { dotRow } from "./q8_0";
import { codesQ8_0, quantize_q8_0_i16 } from "./quantize";

const KV_F16: i32 = 1;
const KV_Q8_0: i32 = 8;

/** scores[j] = (q . k_j) * scale over an f32 cache (rows kRow bytes apart), in ggml_vec_dot_f32's order. */
function scoresF32Fused(q: usize, k: usize, kRow: usize, scores: usize, nKv: i32, headDim: i32, scale: f32): void {
  for (let j = 0; j < nKv; j++) store<f32>(scores + (<usize>j << 2), dotVecF32(q, k + <usize>j * kRow, headDim, true) * scale);
}

/** The same without a fused madd (fma4's exact f64 steps). */
function scoresF32Exact(q: usize, k: usize, kRow: usize, scores: usize, nKv: i32, headDim: i32, scale: f32): void {
  for (let j = 0; j < nKv; j++) store<f32>(scores + (<usize>j << 2), dotVecF32(q, k + <usize>j * kRow, headDim, false) * scale);
}

/** Sixteen f32x4 (four output dimensions each) summed lane-wise in _mm512_reduce_add_ps's order. */
// @ts-ignore: decorator
@inline
function tree16(
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, p6: v128, p7: v128,
  p8: v128, p9: v128, p10: v128, p11: v128, p12: v128, p13: v128, p14: v128, p15: v128,
): v128 {
  const b0 = f32x4.add(f32x4.add(p12, p4), f32x4.add(p8, p0));
  const b1 = f32x4.add(f32x4.add(p13, p5), f32x4.add(p9, p1));
  const b2 = f32x4.add(f32x4.add(p14, p6), f32x4.add(p10, p2));
  const b3 = f32x4.add(f32x4.add(p15, p7), f32x4.add(p11, p3));
  return f32x4.add(f32x4.add(b0, b2), f32x4.add(b1, b3));
}

/** sum over positions j = m, m + stride, ... < nKv of p_j * V_j[d..d+4), fused, in order. */
// @ts-ignore: decorator
@inline
function part(scores: usize, vp: usize, rowBytes: usize, nKv: i32, m: i32, stride: i32, fused: bool): v128 {
  let acc = f32x4.splat(0);
  for (let j = m; j < nKv; j += stride) {
    acc = fma4(f32x4.splat(load<f32>(scores + (<usize>j << 2))), v128.load(vp + <usize>j * rowBytes), acc, fused);
  }
  return acc;
}

/** A vec_dot lane: the four 16-lane accumulators' lane l, added as ggml's reduction adds them. */
// @ts-ignore: decorator
@inline
function lane64(scores: usize, vp: usize, rowBytes: usize, nKv: i32, l: i32, fused: bool): v128 {
  return f32x4.add(
    f32x4.add(part(scores, vp, rowBytes, nKv, l, 64, fused), part(scores, vp, rowBytes, nKv, l + 32, 64, fused)),
    f32x4.add(part(scores, vp, rowBytes, nKv, l + 16, 64, fused), part(scores, vp, rowBytes, nKv, l + 48, 64, fused)),
  );
}

/** part for one dimension (a head size that is not a multiple of 4). */
function partScalar(scores: usize, vp: usize, rowBytes: usize, nKv: i32, m: i32, stride: i32): f32 {
  let acc: f32 = 0;
  for (let j = m; j < nKv; j += stride) acc = fmaf(load<f32>(scores + (<usize>j << 2)), load<f32>(vp + <usize>j * rowBytes), acc);
  return acc;
}

/** lane64 for one dimension. */
function lane64Scalar(scores: usize, vp: usize, rowBytes: usize, nKv: i32, l: i32): f32 {
  return (partScalar(scores, vp, rowBytes, nKv, l, 64) + partScalar(scores, vp, rowBytes, nKv, l + 32, 64)) +
    (partScalar(scores, vp, rowBytes, nKv, l + 16, 64) + partScalar(scores, vp, rowBytes, nKv, l + 48, 64));
}

/**
 * out[d] = sum_j p_j V_j[d] over an f32 cache as llama.cpp's KQV mul_mat sums it (V transposed:
 * rows of n_kv values, the positions from nKv on masked to p = 0, which leaves every sum as it
 * is): tinyBLAS's one 16-lane accumulator for two or more queries (`tiny`), ggml_vec_dot_f32's
 * four for one. vp: V at the head's first dimension, rowBytes apart per position.
 */
// @ts-ignore: decorator
@inline
function kqvF32(scores: usize, vp: usize, rowBytes: usize, out: usize, nKv: i32, headDim: i32, tiny: bool, fused: bool): void {
  let d = 0;
  for (; d + 4 <= headDim; d += 4) {
    const v = vp + (<usize>d << 2);
    let r: v128;
    if (tiny) {
      r = tree16(
        part(scores, v, rowBytes, nKv, 0, 16, fused), part(scores, v, rowBytes, nKv, 1, 16, fused),
        part(scores, v, rowBytes, nKv, 2, 16, fused), part(scores, v, rowBytes, nKv, 3, 16, fused),
        part(scores, v, rowBytes, nKv, 4, 16, fused), part(scores, v, rowBytes, nKv, 5, 16, fused),
        part(scores, v, rowBytes, nKv, 6, 16, fused), part(scores, v, rowBytes, nKv, 7, 16, fused),
        part(scores, v, rowBytes, nKv, 8, 16, fused), part(scores, v, rowBytes, nKv, 9, 16, fused),
        part(scores, v, rowBytes, nKv, 10, 16, fused), part(scores, v, rowBytes, nKv, 11, 16, fused),
        part(scores, v, rowBytes, nKv, 12, 16, fused), part(scores, v, rowBytes, nKv, 13, 16, fused),
        part(scores, v, rowBytes, nKv, 14, 16, fused), part(scores, v, rowBytes, nKv, 15, 16, fused),
      );
    } else {
      r = tree16(
        lane64(scores, v, rowBytes, nKv, 0, fused), lane64(scores, v, rowBytes, nKv, 1, fused),
        lane64(scores, v, rowBytes, nKv, 2, fused), lane64(scores, v, rowBytes, nKv, 3, fused),
        lane64(scores, v, rowBytes, nKv, 4, fused), lane64(scores, v, rowBytes, nKv, 5, fused),
        lane64(scores, v, rowBytes, nKv, 6, fused), lane64(scores, v, rowBytes, nKv, 7, fused),
        lane64(scores, v, rowBytes, nKv, 8, fused), lane64(scores, v, rowBytes, nKv, 9, fused),
        lane64(scores, v, rowBytes, nKv, 10, fused), lane64(scores, v, rowBytes, nKv, 11, fused),
        lane64(scores, v, rowBytes, nKv, 12, fused), lane64(scores, v, rowBytes, nKv, 13, fused),
        lane64(scores, v, rowBytes, nKv, 14, fused), lane64(scores, v, rowBytes, nKv, 15, fused),
      );
    }
    v128.store(out + (<usize>d << 2), r);
  }
  // One dimension at a time (tiny is only taken for headDim % 4 == 0, so this is vec_dot's order).
  for (; d < headDim; d++) {
    const v = vp + (<usize>d << 2);
    let q0 = f32x4.splat(0), q1 = q0, q2 = q0, q3 = q0;
    for (let l = 0; l < 4; l++) {
      q0 = f32x4.replace_lane(q0, 0, lane64Scalar(scores, v, rowBytes, nKv, l));
      q0 = f32x4.shuffle(q0, q0, 1, 2, 3, 0);
    }
    for (let l = 0; l < 4; l++) {
      q1 = f32x4.replace_lane(q1, 0, lane64Scalar(scores, v, rowBytes, nKv, 4 + l));
      q1 = f32x4.shuffle(q1, q1, 1, 2, 3, 0);
    }
    for (let l = 0; l < 4; l++) {
      q2 = f32x4.replace_lane(q2, 0, lane64Scalar(scores, v, rowBytes, nKv, 8 + l));
      q2 = f32x4.shuffle(q2, q2, 1, 2, 3, 0);
    }
    for (let l = 0; l < 4; l++) {
      q3 = f32x4.replace_lane(q3, 0, lane64Scalar(scores, v, rowBytes, nKv, 12 + l));
      q3 = f32x4.shuffle(q3, q3, 1, 2, 3, 0);
    }
    store<f32>(out + (<usize>d << 2), reduce16x4(q0, q1, q2, q3));
  }
}

function kqvF32Fused(scores: usize, vp: usize, rowBytes: usize, out: usize, nKv: i32, headDim: i32, tiny: bool): void {
  kqvF32(scores, vp, rowBytes, out, nKv, headDim, tiny, true);
}

function kqvF32Exact(scores: usize, vp: usize, rowBytes: usize, out: usize, nKv: i32, headDim: i32, tiny: bool): void {
  kqvF32(scores, vp, rowBytes, out, nKv, headDim, tiny, false);
}

/**
 * The f16 cache's halves are read "raw": shifted into a single's bit positions and masked
 * (rawHalves4), which is the half's value times 2^-112, exactly. The 2^112 that halves4 would
 * multiply each of them by is put into the other factor once instead (the query, the weights p:
 * TO_RAW), so every product is the same number and rounds the same: the same bits with one
 * multiply fewer per four values. (A rounded query or weight times 2^112 stays finite: at most
 * 65504 * 2^112 < 2^128.)
 */
const TO_RAW: f32 = 5.192296858534828e33; // 2^112
/** Positions per block of weightedSumF16. */
const POS_BLOCK: i32 = 64;
const FROM_RAW: f32 = 1.925929944387236e-34; // 2^-112

// @ts-ignore: decorator
@inline
function rawHalves4(s: v128, mask: v128): v128 {
  return v128.and(i32x4.shl(s, 13), mask);
}

/** a (n f32, times 2^112) . h (n halves), in scores4F16's order for one position. */
// @ts-ignore: decorator
@inline
function dotF16(a: usize, h: usize, n: i32, mask: v128): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), rawHalves4(v128.load16x4_s(h + (<usize>j << 1)), mask)));
  }
  let s = hsumF32(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * FROM_RAW * halfToFloat(load<u16>(h + (<usize>j << 1)));
  return s;
}

/**
 * Scores of four positions (K rows at k, k + ks, ..; f16) against the query qh, times scale, to
 * out[0..3]: each position's dot product in dotF16's order (one 4-lane accumulator over the
 * head, then hsumF32), the four side by side so their additions overlap instead of waiting on
 * each other, and the query read once for four.
 */
// @ts-ignore: decorator
@inline
function scores4F16(qh: usize, k: usize, ks: usize, n: i32, scale: f32, out: usize, mask: v128): void {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  const k2 = ks + ks;
  const k3 = k2 + ks;
  for (let j = 0; j < n; j += 4) {
    const x = v128.load(qh + (<usize>j << 2));
    const kj = k + (<usize>j << 1);
    a = f32x4.add(a, f32x4.mul(x, rawHalves4(v128.load16x4_s(kj), mask)));
    b = f32x4.add(b, f32x4.mul(x, rawHalves4(v128.load16x4_s(kj + ks), mask)));
    c = f32x4.add(c, f32x4.mul(x, rawHalves4(v128.load16x4_s(kj + k2), mask)));
    d = f32x4.add(d, f32x4.mul(x, rawHalves4(v128.load16x4_s(kj + k3), mask)));
  }
  // hsumF32 of each, as a vector: (x0 + x2) + (x1 + x3) per position
  const abLo = i32x4.shuffle(a, b, 0, 4, 2, 6), abHi = i32x4.shuffle(a, b, 1, 5, 3, 7);
  const cdLo = i32x4.shuffle(c, d, 0, 4, 2, 6), cdHi = i32x4.shuffle(c, d, 1, 5, 3, 7);
  const s02 = f32x4.add(i32x4.shuffle(abLo, cdLo, 0, 1, 4, 5), i32x4.shuffle(abLo, cdLo, 2, 3, 6, 7));
  const s13 = f32x4.add(i32x4.shuffle(abHi, cdHi, 0, 1, 4, 5), i32x4.shuffle(abHi, cdHi, 2, 3, 6, 7));
  v128.store(out, f32x4.mul(f32x4.add(s02, s13), f32x4.splat(scale)));
}

/**
 * out[0..n) = sum_j p_j v_j over positions 0..nKv-1 (V rows of f16 at v, vs bytes apart; p_j
 * at p, already rounded to f16 precision), each lane in position order as a running
 * out + v * p: the outputs stay in registers, 16 at a time, instead of a load and store of
 * every output for every position.
 */
function weightedSumF16(v: usize, vs: usize, p: usize, nKv: i32, n: i32, out: usize, mask: v128): void {
  let d = 0;
  const n16 = n & ~15;
  if (n16 > 0) {
    // Positions in blocks of POS_BLOCK, each block's V rows read for all 16-output chunks while
    // they are in L1 (a row of the cache is a page or more away from the next): the outputs
    // stay in memory between blocks, every lane still summed in position order.
    memory.fill(out, 0, <usize>n16 << 2);
    for (let j0 = 0; j0 < nKv; j0 += POS_BLOCK) {
      const j1 = min(j0 + POS_BLOCK, nKv);
      for (d = 0; d < n16; d += 16) {
        const od = out + (<usize>d << 2);
        let o0 = v128.load(od), o1 = v128.load(od, 16), o2 = v128.load(od, 32), o3 = v128.load(od, 48);
        let vp = v + <usize>j0 * vs + (<usize>d << 1);
        for (let j = j0; j < j1; j++, vp += vs) {
          const pv = v128.load32_splat(p + (<usize>j << 2));
          const h0 = v128.load(vp);
          const h1 = v128.load(vp, 16);
          o0 = f32x4.add(o0, f32x4.mul(rawHalves4(i32x4.extend_low_i16x8_s(h0), mask), pv));
          o1 = f32x4.add(o1, f32x4.mul(rawHalves4(i32x4.extend_high_i16x8_s(h0), mask), pv));
          o2 = f32x4.add(o2, f32x4.mul(rawHalves4(i32x4.extend_low_i16x8_s(h1), mask), pv));
          o3 = f32x4.add(o3, f32x4.mul(rawHalves4(i32x4.extend_high_i16x8_s(h1), mask), pv));
        }
        v128.store(od, o0);
        v128.store(od, o1, 16);
        v128.store(od, o2, 32);
        v128.store(od, o3, 48);
      }
    }
    d = n16;
  }
  for (; d + 4 <= n; d += 4) {
    let o = f32x4.splat(0);
    let vp = v + (<usize>d << 1);
    for (let j = 0; j < nKv; j++, vp += vs) o = f32x4.add(o, f32x4.mul(rawHalves4(v128.load16x4_s(vp), mask), v128.load32_splat(p + (<usize>j << 2))));
    v128.store(out + (<usize>d << 2), o);
  }
  for (; d < n; d++) {
    let o: f32 = 0;
    let vp = v + (<usize>d << 1);
    for (let j = 0; j < nKv; j++, vp += vs) o = o + halfToFloat(load<u16>(vp)) * (load<f32>(p + (<usize>j << 2)) * FROM_RAW);
    store<f32>(out + (<usize>d << 2), o);
  }
}

export function attention(
  q: usize, k: usize, v: usize, out: usize, scores: usize, qh: usize,
  nHead: i32, nKvHead: i32, headDim: i32, pos0: i32, nTok: i32, kvType: i32, scale: f32,
  h0: i32, h1: i32, llamaKqv: i32,
): void {
  if (kvType == KV_Q8_0) {
    attentionQ8_0(q, k, v, out, scores, qh, nHead, nKvHead, headDim, pos0, nTok, scale, h0, h1);
    return;
  }
  const kvF16 = kvType == KV_F16;
  const group = nHead / nKvHead;
  const kvRow = <usize>(nKvHead * headDim);
  const elt: usize = kvF16 ? 2 : 4;
  const qRow = <usize>(nHead * headDim);
  const magic = vconst(V_HALF_TO_SINGLE);
  const mask = vconst(V_SCALES4_MASK);
  const fused = fusedMaddOk();
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvOff = <usize>((h / group) * headDim) * elt;
      const qp = q + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      const op = out + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      if (kvF16) {
        // q rounded to f16 as llama.cpp's F16 product rounds its input, times 2^112 (TO_RAW)
        let d = 0;
        for (; d + 4 <= headDim; d += 4) v128.store(qh + (<usize>d << 2), f32x4.mul(roundHalf4(v128.load(qp + (<usize>d << 2))), magic));
        for (; d < headDim; d++) store<f32>(qh + (<usize>d << 2), halfToFloat(floatToHalf(load<f32>(qp + (<usize>d << 2)))) * TO_RAW);
        let j = 0;
        if ((headDim & 3) == 0) {
          for (; j + 4 <= nKv; j += 4) {
            scores4F16(qh, k + <usize>j * kvRow * elt + kvOff, kvRow * elt, headDim, scale, scores + (<usize>j << 2), mask);
          }
        }
        for (; j < nKv; j++) {
          store<f32>(scores + (<usize>j << 2), dotF16(qh, k + <usize>j * kvRow * elt + kvOff, headDim, mask) * scale);
        }
      } else {
        if (ASC_FEATURE_RELAXED_SIMD && fused) scoresF32Fused(qp, k + kvOff, kvRow << 2, scores, nKv, headDim, scale);
        else scoresF32Exact(qp, k + kvOff, kvRow << 2, scores, nKv, headDim, scale);
      }
      softmaxRow(scores, scores, nKv, true);
      if (!kvF16 && llamaKqv != 0) {
        const tiny = nTok >= 2 && headDim % 4 == 0;
        if (ASC_FEATURE_RELAXED_SIMD && fused) kqvF32Fused(scores, v + kvOff, kvRow << 2, op, nKv, headDim, tiny);
        else kqvF32Exact(scores, v + kvOff, kvRow << 2, op, nKv, headDim, tiny);
        continue;
      }
      if (kvF16) {
        // p rounded to f16 as well (the KQV product's input), times 2^112 (TO_RAW)
        let j = 0;
        for (; j + 4 <= nKv; j += 4) v128.store(scores + (<usize>j << 2), f32x4.mul(roundHalf4(v128.load(scores + (<usize>j << 2))), magic));
        for (; j < nKv; j++) {
          const sp = scores + (<usize>j << 2);
          store<f32>(sp, halfToFloat(floatToHalf(load<f32>(sp))) * TO_RAW);
        }
        weightedSumF16(v + kvOff, kvRow * elt, scores, nKv, headDim, op, mask);
        continue;
      }
      memory.fill(op, 0, <usize>headDim << 2);
      for (let j = 0; j < nKv; j++) {
        const vp = v + <usize>j * kvRow * elt + kvOff;
        let p = load<f32>(scores + (<usize>j << 2));
        let d = 0;
        if (kvF16) {
          p = halfToFloat(floatToHalf(p));
          const pv = f32x4.splat(p);
          for (; d + 4 <= headDim; d += 4) {
            const o = op + (<usize>d << 2);
            v128.store(o, f32x4.add(v128.load(o), f32x4.mul(halves4(v128.load16x4_s(vp + (<usize>d << 1)), magic, mask), pv)));
          }
          for (; d < headDim; d++) {
            const o = op + (<usize>d << 2);
            store<f32>(o, load<f32>(o) + halfToFloat(load<u16>(vp + (<usize>d << 1))) * p);
          }
        } else {
          const pv = f32x4.splat(p);
          for (; d + 4 <= headDim; d += 4) {
            const o = op + (<usize>d << 2);
            v128.store(o, f32x4.add(v128.load(o), f32x4.mul(v128.load(vp + (<usize>d << 2)), pv)));
          }
          for (; d < headDim; d++) {
            const o = op + (<usize>d << 2);
            store<f32>(o, load<f32>(o) + load<f32>(vp + (<usize>d << 2)) * p);
          }
        }
      }
    }
  }
}

/** The Q8_0-cache case of attention(): integer K dot products, dequantized V. */
function attentionQ8_0(
  q: usize, k: usize, v: usize, out: usize, scores: usize, qh: usize,
  nHead: i32, nKvHead: i32, headDim: i32, pos0: i32, nTok: i32, scale: f32, h0: i32, h1: i32,
): void {
  const group = nHead / nKvHead;
  const nb = headDim >> 5;
  const rowBytes = <usize>(nKvHead * nb) * 34;
  const qRow = <usize>(nHead * headDim);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvOff = <usize>((h / group) * nb) * 34;
      const qp = q + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      const op = out + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      // The query as a Q8_0 activation row, codes widened to i16 in the order dotRow reads.
      quantize_q8_0_i16(qp, qh, headDim, 0, 1, 8);
      for (let j = 0; j < nKv; j++) {
        const sp = scores + (<usize>j << 2);
        store<f32>(sp, dotRow(k + <usize>j * rowBytes + kvOff, qh, headDim, sp) * scale);
      }
      softmaxRowExact(scores, scores, nKv);
      memory.fill(op, 0, <usize>headDim << 2);
      for (let j = 0; j < nKv; j++) {
        const vp = v + <usize>j * rowBytes + kvOff;
        const pv = f32x4.splat(load<f32>(scores + (<usize>j << 2)));
        for (let b = 0; b < nb; b++) {
          const blk = vp + <usize>b * 34;
          const d = f32x4.splat(halfToFloat(load<u16>(blk)));
          const o = op + (<usize>b << 7);
          const c0 = v128.load(blk, 2); // codes 0..15
          const c1 = v128.load(blk, 18); // codes 16..31
          accumulate8(o, i16x8.extend_low_i8x16_s(c0), d, pv);
          accumulate8(o + 32, i16x8.extend_high_i8x16_s(c0), d, pv);
          accumulate8(o + 64, i16x8.extend_low_i8x16_s(c1), d, pv);
          accumulate8(o + 96, i16x8.extend_high_i8x16_s(c1), d, pv);
        }
      }
    }
  }
}

/** o[0..8) += (codes * d) * p: eight dequantized V values (ggml's to_float, then its vec_mad). */
// @ts-ignore: decorator
@inline
function accumulate8(o: usize, codes: v128, d: v128, p: v128): void {
  const lo = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(codes)), d);
  const hi = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(codes)), d);
  v128.store(o, f32x4.add(v128.load(o), f32x4.mul(lo, p)));
  v128.store(o, f32x4.add(v128.load(o, 16), f32x4.mul(hi, p)), 16);
}

/**
 * Write n f32 (n % 32 == 0) as Q8_0 blocks, a Q8_0 KV cache row: d = f16(amax/127),
 * q = roundHalfEven(x * (127/amax)), the rounding of ggml's x86 quantize_row_q8_0 (llama.cpp
 * stores K/V through the type's from_float, the same one that quantizes matmul inputs).
 */
export function store_q8_0(x: usize, dst: usize, n: i32): void {
  const nb = n >> 5;
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 7);
    const blk = dst + <usize>b * 34;
    const amax = maxAbs(xb, 32);
    store<u16>(blk, <u16>floatToHalf(amax / <f32>127.0));
    codesQ8_0(xb, amax, blk + 2);
  }
}

/** Write n f32 as halves (an f16 KV cache row). */
export function store_f16(x: usize, h: usize, n: i32): void {
  for (let j = 0; j < n; j++) store<u16>(h + (<usize>j << 1), <u16>floatToHalf(load<f32>(x + (<usize>j << 2))));
}
