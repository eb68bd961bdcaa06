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
 * With an f16 cache llama.cpp rounds q and p to f16 before its two matrix products (the F16
 * matmul converts its input); we do the same so both engines see the same numbers.
 * With a Q8_0 cache llama.cpp (flash attention, the path that allows quantized V) quantizes q
 * to Q8_0 (K's vec_dot type) and takes integer block dot products, as a Q8_0 matmul does
 * (q8_0.ts); V rows are dequantized to f32 and weighted by p. (Its Hadamard rotations of q, k,
 * v and the output, for head sizes that are multiples of 64, are separate ops: hadamard.ts.)
 * Heads [h0, h1) only, so threads can split heads. scores: scratch of nKv f32 per thread,
 * qh: scratch of headDim f32 per thread (the Q8_0 query fits: 2*headDim + headDim/4 bytes).
 */
import { floatToHalf, halfToFloat, halves4, hsumF32, maxAbs, HALF_TO_SINGLE, HALVES_MASK } from "./common";
import { softmaxRow } from "./norm";
import { dotRow } from "./q8_0";
import { codesQ8_0, quantize_q8_0_i16 } from "./quantize";

const KV_F16: i32 = 1;
const KV_Q8_0: i32 = 8;

// @ts-ignore: decorator
@inline
function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), v128.load(b + (<usize>j << 2))));
  let s = hsumF32(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

// @ts-ignore: decorator
@inline
function dotF16(a: usize, h: usize, n: i32): f32 {
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(HALVES_MASK);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k = halves4(v128.load16x4_s(h + (<usize>j << 1)), magic, mask);
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), k));
  }
  let s = hsumF32(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * halfToFloat(load<u16>(h + (<usize>j << 1)));
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
function scores4F16(qh: usize, k: usize, ks: usize, n: i32, scale: f32, out: usize, magic: v128, mask: v128): void {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  const k2 = ks + ks;
  const k3 = k2 + ks;
  for (let j = 0; j < n; j += 4) {
    const x = v128.load(qh + (<usize>j << 2));
    const kj = k + (<usize>j << 1);
    a = f32x4.add(a, f32x4.mul(x, halves4(v128.load16x4_s(kj), magic, mask)));
    b = f32x4.add(b, f32x4.mul(x, halves4(v128.load16x4_s(kj + ks), magic, mask)));
    c = f32x4.add(c, f32x4.mul(x, halves4(v128.load16x4_s(kj + k2), magic, mask)));
    d = f32x4.add(d, f32x4.mul(x, halves4(v128.load16x4_s(kj + k3), magic, mask)));
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
function weightedSumF16(v: usize, vs: usize, p: usize, nKv: i32, n: i32, out: usize, magic: v128, mask: v128): void {
  let d = 0;
  for (; d + 16 <= n; d += 16) {
    let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
    let vp = v + (<usize>d << 1);
    for (let j = 0; j < nKv; j++, vp += vs) {
      const pv = v128.load32_splat(p + (<usize>j << 2));
      const h0 = v128.load(vp);
      const h1 = v128.load(vp, 16);
      o0 = f32x4.add(o0, f32x4.mul(halves4(i32x4.extend_low_i16x8_s(h0), magic, mask), pv));
      o1 = f32x4.add(o1, f32x4.mul(halves4(i32x4.extend_high_i16x8_s(h0), magic, mask), pv));
      o2 = f32x4.add(o2, f32x4.mul(halves4(i32x4.extend_low_i16x8_s(h1), magic, mask), pv));
      o3 = f32x4.add(o3, f32x4.mul(halves4(i32x4.extend_high_i16x8_s(h1), magic, mask), pv));
    }
    const od = out + (<usize>d << 2);
    v128.store(od, o0);
    v128.store(od, o1, 16);
    v128.store(od, o2, 32);
    v128.store(od, o3, 48);
  }
  for (; d + 4 <= n; d += 4) {
    let o = f32x4.splat(0);
    let vp = v + (<usize>d << 1);
    for (let j = 0; j < nKv; j++, vp += vs) o = f32x4.add(o, f32x4.mul(halves4(v128.load16x4_s(vp), magic, mask), v128.load32_splat(p + (<usize>j << 2))));
    v128.store(out + (<usize>d << 2), o);
  }
  for (; d < n; d++) {
    let o: f32 = 0;
    let vp = v + (<usize>d << 1);
    for (let j = 0; j < nKv; j++, vp += vs) o = o + halfToFloat(load<u16>(vp)) * load<f32>(p + (<usize>j << 2));
    store<f32>(out + (<usize>d << 2), o);
  }
}

export function attention(
  q: usize, k: usize, v: usize, out: usize, scores: usize, qh: usize,
  nHead: i32, nKvHead: i32, headDim: i32, pos0: i32, nTok: i32, kvType: i32, scale: f32,
  h0: i32, h1: i32,
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
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(HALVES_MASK);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvOff = <usize>((h / group) * headDim) * elt;
      const qp = q + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      const op = out + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      if (kvF16) {
        for (let d = 0; d < headDim; d++) {
          store<f32>(qh + (<usize>d << 2), halfToFloat(floatToHalf(load<f32>(qp + (<usize>d << 2)))));
        }
        let j = 0;
        if ((headDim & 3) == 0) {
          for (; j + 4 <= nKv; j += 4) {
            scores4F16(qh, k + <usize>j * kvRow * elt + kvOff, kvRow * elt, headDim, scale, scores + (<usize>j << 2), magic, mask);
          }
        }
        for (; j < nKv; j++) {
          store<f32>(scores + (<usize>j << 2), dotF16(qh, k + <usize>j * kvRow * elt + kvOff, headDim) * scale);
        }
      } else {
        for (let j = 0; j < nKv; j++) {
          store<f32>(scores + (<usize>j << 2), dotF32(qp, k + <usize>j * kvRow * elt + kvOff, headDim) * scale);
        }
      }
      softmaxRow(scores, scores, nKv);
      if (kvF16) {
        for (let j = 0; j < nKv; j++) {
          const sp = scores + (<usize>j << 2);
          store<f32>(sp, halfToFloat(floatToHalf(load<f32>(sp))));
        }
        weightedSumF16(v + kvOff, kvRow * elt, scores, nKv, headDim, op, magic, mask);
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
      softmaxRow(scores, scores, nKv);
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
