/**
 * Mixture-of-experts routing (Mixtral; HF MixtralSparseMoeBlock, llama.cpp build_moe_ffn):
 *
 *   p = softmax(router logits);  E = the k experts with the largest p (ties: lower id first);
 *   w_e = p_e / sum_{e' in E} p_e'    (renormalised when `norm`, as Mixtral does);
 *   y = sum_{e in E} w_e * expert_e(x),   expert_e(x) = down_e(silu(gate_e x) * up_e x)
 */
import { softmax } from "./norm.js";

export interface Route {
  experts: number[];
  weights: number[];
}

export function route(logits: Float32Array, k: number, norm = true): Route {
  const p = softmax(logits, logits.length);
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  const experts = order.slice(0, k);
  const picked = experts.map((e) => p[e]);
  const sum = Math.fround(picked.reduce((s, v) => Math.fround(s + v), 0));
  return { experts, weights: norm ? picked.map((v) => Math.fround(v / sum)) : picked };
}

/** y = sum_i weights[i] * outputs[i]. */
export function weightedSum(outputs: Float32Array[], weights: number[]): Float32Array {
  const y = new Float32Array(outputs[0].length);
  outputs.forEach((o, i) => o.forEach((v, j) => (y[j] = Math.fround(y[j] + Math.fround(v * weights[i])))));
  return y;
}
