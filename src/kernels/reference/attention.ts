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
import { roundF16 } from "./quantize.js";
import { softmax } from "./norm.js";

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
