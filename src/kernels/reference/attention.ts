/**
 * Causal attention of nTok queries over a KV cache with grouped-query heads.
 *
 *   for query t (position pos0 + t) and head h, with kv head g = floor(h / (nHead / nKvHead)):
 *     score_j = (q_h . k_{j,g}) * scale        for j = 0 .. pos0 + t
 *     p = softmax(score);   out_h = sum_j p_j v_{j,g}
 *
 * K and V rows hold nKvHead * headDim values per position. With an f16 cache, llama.cpp's two
 * F16 matrix products round their inputs (q, then p) to f16; `kvF16` reproduces that, with the
 * cache values given already as f16-exact floats.
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import { dequantizeQ8_0 } from "../../formats/quants/q8_0.js";
import { dotQ8_0 } from "./matmul.js";
import { quantizeQ8_0, roundF16 } from "./quantize.js";
import { softmax } from "./norm.js";

/** 34 bytes a Q8_0 block, as ggml-types.ts records it. */
const Q8_0_BYTES = GGML_TYPES[GGMLType.Q8_0].bytesPerBlock;

export interface AttentionShape {
  nHead: number;
  nKvHead: number;
  headDim: number;
}

export function attention(
  q: Float32Array, k: Float32Array, v: Float32Array, shape: AttentionShape,
  pos0: number, nTok: number, scale: number, kvF16: boolean,
): Float32Array {
  const { nHead, nKvHead, headDim } = shape;
  const group = nHead / nKvHead;
  const kvRow = nKvHead * headDim;
  const out = new Float32Array(nTok * nHead * headDim);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = 0; h < nHead; h++) {
      const g = Math.floor(h / group);
      const qo = (t * nHead + h) * headDim;
      const score = new Float32Array(nKv);
      for (let j = 0; j < nKv; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) {
          const qd = kvF16 ? roundF16(q[qo + d]) : q[qo + d];
          dot += qd * k[j * kvRow + g * headDim + d];
        }
        score[j] = dot * scale;
      }
      const p = softmax(score, nKv);
      for (let j = 0; j < nKv; j++) {
        const pj = kvF16 ? roundF16(p[j]) : p[j];
        for (let d = 0; d < headDim; d++) out[qo + d] += pj * v[j * kvRow + g * headDim + d];
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
      const p = softmax(score, nKv);
      for (let j = 0; j < nKv; j++) {
        dequantizeQ8_0(v.subarray(at(j, g)), vj, nb);
        for (let d = 0; d < headDim; d++) out[qo + d] += p[j] * vj[d];
      }
    }
  }
  return out;
}
