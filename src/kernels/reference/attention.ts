/**
 * Causal attention of nTok queries over a KV cache with grouped-query heads.
 *
 *   for query t (position pos0 + t) and head h, with kv head g = floor(h / (nHead / nKvHead)):
 *     score_j = (q_h . k_{j,g}) * scale        for j = 0 .. pos0 + t
 *     p = softmax(score);   out_h = sum_j p_j v_{j,g}
 *
 * K and V rows hold nKvHead * headDim values per position. With an f16 cache, llama.cpp's two
 * F16 matrix products round their inputs (q, then p) to f16; `kvF16` reproduces that, with the
 * cache values given already as f16-exact floats. With an f32 cache, q . k sums as llama.cpp's
 * KQ product does (dotF32) and is scaled by the float32 scale; the softmax treats the row as
 * padded to blocks of 16 (llama.cpp's KQ rows run over the whole n_kv, later positions masked);
 * out_h sums as llama.cpp's KQV product does with `llamaKqv` (per dimension over the transposed
 * V: dotF32Tiny for two or more queries, dotF32 for one), else p_j v_j in position order, each
 * product and sum rounded to float32, as the WASM kernel does (see assembly/attention.ts for
 * which models take which).
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import { dequantizeQ8_0 } from "../../formats/quants/q8_0.js";
import { dotQ8_0 } from "./matmul.js";
import { quantizeQ8_0, roundF16 } from "./quantize.js";
import { reduce16, softmaxExact, softmaxRow } from "./norm.js";
import { fmaf } from "./k-quants-low.js";

const f = Math.fround;

/**
 * ggml_vec_dot_f32 with AVX-512 (llama.cpp's F32 KQ product, KQV for one query, F32 weights for one token): blocks of 64 into four 16-lane
 * accumulators, x*y + acc fused; those added pairwise (0+2, 1+3, then 0+1) and across lanes as
 * _mm512_reduce_add_ps does; the rest one by one, sum += x*y, product and sum each rounded to
 * float32 (not fused: checked against the prebuilt CPU backend's mul_mat).
 */
export function dotF32(x: Float32Array, y: Float32Array, n: number): number {
  const np = n & ~63;
  let sum = 0;
  if (np > 0) {
    const acc = new Float32Array(64);
    for (let i = 0; i < np; i += 64) for (let l = 0; l < 64; l++) acc[l] = fmaf(x[i + l], y[i + l], acc[l]);
    for (let l = 0; l < 32; l++) acc[l] = f(acc[l] + acc[l + 32]);
    for (let l = 0; l < 16; l++) acc[l] = f(acc[l] + acc[l + 16]);
    sum = reduce16(acc);
  }
  for (let i = np; i < n; i++) sum = f(sum + f(x[i] * y[i]));
  return sum;
}

/**
 * The F32 dot product of llamafile's tinyBLAS with AVX-512 (llama.cpp's mul_mat for two or more
 * contiguous input rows, n % 16 == 0, rows % 4 == 0): one 16-lane accumulator, x*y + acc fused,
 * then _mm512_reduce_add_ps.
 */
export function dotF32Tiny(x: Float32Array, y: Float32Array, n: number): number {
  const acc = new Float32Array(16);
  for (let i = 0; i < n; i += 16) for (let l = 0; l < 16; l++) acc[l] = fmaf(x[i + l], y[i + l], acc[l]);
  return reduce16(acc);
}

/** 34 bytes a Q8_0 block, as ggml-types.ts records it. */
const Q8_0_BYTES = GGML_TYPES[GGMLType.Q8_0].bytesPerBlock;

export interface AttentionShape {
  nHead: number;
  nKvHead: number;
  headDim: number;
}

export function attention(
  q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape,
  pos0: number, nTok: number, scale: number, kvF16: boolean, llamaKqv = false,
): Float32Array {
  const { nHead, nKvHead, headDim } = shape;
  const group = nHead / nKvHead;
  const kvRow = nKvHead * headDim;
  const out = new Float32Array(nTok * nHead * headDim);
  const qh = new Float32Array(headDim);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = 0; h < nHead; h++) {
      const g = Math.floor(h / group);
      const qo = (t * nHead + h) * headDim;
      const score = new Float32Array(nKv);
      if (kvF16) {
        for (let j = 0; j < nKv; j++) {
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += roundF16(q[qo + d]) * k[j * kvRow + g * headDim + d];
          score[j] = dot * scale;
        }
      } else {
        qh.set(q.subarray(qo, qo + headDim));
        for (let j = 0; j < nKv; j++) score[j] = f(dotF32(qh, k.subarray(j * kvRow + g * headDim), headDim) * f(scale));
      }
      const p = softmaxRow(score, nKv, true);
      if (llamaKqv && !kvF16) {
        // llama.cpp's KQV product: V transposed (a row of positions per dimension, the masked ones
        // p = 0; zeros pad the row to whole 64-value blocks), one dot product per dimension.
        const nPad = Math.ceil(nKv / 64) * 64;
        const pp = new Float32Array(nPad);
        const vd = new Float32Array(nPad);
        pp.set(p);
        const tiny = nTok >= 2 && headDim % 4 === 0;
        for (let d = 0; d < headDim; d++) {
          for (let j = 0; j < nKv; j++) vd[j] = v[j * kvRow + g * headDim + d];
          out[qo + d] = tiny ? dotF32Tiny(pp, vd, nPad) : dotF32(pp, vd, nPad);
        }
        continue;
      }
      for (let j = 0; j < nKv; j++) {
        const pj = kvF16 ? roundF16(p[j]) : p[j];
        for (let d = 0; d < headDim; d++) {
          const vd = v[j * kvRow + g * headDim + d];
          out[qo + d] = kvF16 ? out[qo + d] + pj * vd : f(out[qo + d] + f(pj * vd));
        }
      }
    }
  }
  return out;
}

/**
 * The same attention over a Q8_0 cache (rows of nKvHead * headDim / 32 block_q8_0, 34 bytes
 * each), as llama.cpp's flash-attention path computes it:
 *
 *   q8 = Q8_0(q_h)   (the query rounded to K's vec_dot type, like a matmul input)
 *   score_j = scale * sum_b d(k_j,b) * d(q8,b) * sum_i k_j,b,i * q8_b,i     (integer block sums)
 *   out_h = sum_j p_j * dequant(v_j)                                        (p = softmax(score))
 */
export function attentionQ8_0(
  q: Float32Array, k: Uint8Array, v: Uint8Array, shape: AttentionShape, pos0: number, nTok: number, scale: number,
): Float32Array {
  const { nHead, nKvHead, headDim } = shape;
  const group = nHead / nKvHead;
  const nb = headDim / 32;
  /** Byte offset of kv head g's blocks at position j. */
  const at = (j: number, g: number) => (j * nKvHead + g) * nb * Q8_0_BYTES;
  const out = new Float32Array(nTok * nHead * headDim);
  const vj = new Float32Array(headDim);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = 0; h < nHead; h++) {
      const g = Math.floor(h / group);
      const qo = (t * nHead + h) * headDim;
      const q8 = quantizeQ8_0(q.subarray(qo, qo + headDim));
      const score = new Float32Array(nKv);
      for (let j = 0; j < nKv; j++) score[j] = dotQ8_0(k, at(j, g), q8) * scale;
      const p = softmaxExact(score, nKv);
      for (let j = 0; j < nKv; j++) {
        dequantizeQ8_0(v.subarray(at(j, g)), vj, nb);
        for (let d = 0; d < headDim; d++) out[qo + d] += p[j] * vj[d];
      }
    }
  }
  return out;
}
