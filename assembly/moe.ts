/*
 * Mixture-of-experts routing (Mixtral): router logits -> softmax -> top-k -> renormalise.
 *
 *   p = softmax(logits[0..nExpert));  pick the k largest p (ties: lower expert id first);
 *   w_i = p_i / sum of the k picked p     (Mixtral renormalises; norm = 0 keeps raw p)
 * Writes expert ids to idx (i32[k]) and weights to wt (f32[k]), best first. The layer output
 * is then sum_i w_i * expert_i(x) (axpy in norm.ts). probs: scratch of nExpert f32.
 */
import { softmaxRow } from "./norm";

export function moe_route(logits: usize, probs: usize, nExpert: i32, k: i32, norm: i32, idx: usize, wt: usize): void {
  softmaxRow(logits, probs, nExpert);
  let sum: f32 = 0;
  for (let i = 0; i < k; i++) {
    let best = -1;
    let bp: f32 = -Infinity;
    for (let e = 0; e < nExpert; e++) {
      let taken = false;
      for (let j = 0; j < i; j++) if (load<i32>(idx + (<usize>j << 2)) == e) taken = true;
      const p = load<f32>(probs + (<usize>e << 2));
      if (!taken && p > bp) {
        bp = p;
        best = e;
      }
    }
    store<i32>(idx + (<usize>i << 2), best);
    store<f32>(wt + (<usize>i << 2), bp);
    sum += bp;
  }
  if (norm) for (let i = 0; i < k; i++) store<f32>(wt + (<usize>i << 2), load<f32>(wt + (<usize>i << 2)) / sum);
}
