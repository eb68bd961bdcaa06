/**
 * Speculative sampling maths (Chen et al. 2023, "Accelerating Large Language Model Decoding
 * with Speculative Sampling"), as Chinese-LLaMA-Alpaca-2's
 * scripts/inference/speculative_sample.py does it for batch size 1:
 *
 *   the draft model proposes x_1..x_k, each drawn from its processed distribution q_i;
 *   the target scores all k in one forward pass, giving p_1..p_{k+1};
 *   for i = 1..k: accept x_i if r < min(1, p_i(x_i) / q_i(x_i)), r ~ U[0, 1);
 *                 on the first rejection, draw from norm(max(p_i - q_i, 0)) and stop;
 *   if all k are accepted, draw a bonus token from p_{k+1}.
 *
 * Whatever q is, every emitted token is distributed exactly as p (the test checks this with a
 * chi-square test). p and q must come from the same processors (penalties, temperature, top-k,
 * top-p, ...): Sampler.probabilities gives them.
 *
 * Draft length: without --draft_k, upstream adapts it: start at 4; after a round whose drafts
 * were all accepted, k += 2; otherwise k = max(1, k - 1).
 */
import { InvalidArgumentError } from "../errors.js";
import { SamplingError } from "./errors.js";
import type { Rng } from "./rng.js";
import type { FloatVector } from "./softmax.js";

/** Outcome of one verification round. */
export interface SpeculativeOutcome {
  /** How many draft tokens were accepted (0..k). */
  accepted: number;
  /** The token after them: the resampled one on a rejection, the bonus one otherwise. */
  token: number;
}

/** Draft length upstream starts with. */
export const DRAFT_K_START = 4;

/** The upstream adaptive rule for the next round's draft length. */
export function nextDraftK(k: number, allAccepted: boolean): number {
  return allAccepted ? k + 2 : Math.max(1, k - 1);
}

/** Draws an index from a dense, not necessarily normalised, vector of weights >= 0. */
export function drawFrom(weights: ArrayLike<number>, rng: Rng): number {
  let z = 0;
  for (let i = 0; i < weights.length; i++) z += weights[i];
  if (!(z > 0) || z === Infinity) throw new SamplingError(`cannot draw from weights summing to ${z}`);
  const target = rng.nextFloat() * z;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (w <= 0) continue;
    cum += w;
    last = i;
    if (cum > target) return i;
  }
  return last;
}

/**
 * Writes max(p - q, 0), normalised, into `out` and returns it. Where p <= q everywhere (p = q up
 * to rounding, so a rejection was nearly impossible) it falls back to p itself.
 */
export function residualDistribution<T extends FloatVector>(p: ArrayLike<number>, q: ArrayLike<number>, out: T): T {
  if (p.length !== q.length || out.length !== p.length) {
    throw new InvalidArgumentError(`residual lengths differ: p ${p.length}, q ${q.length}, out ${out.length}`);
  }
  let z = 0;
  for (let i = 0; i < p.length; i++) {
    const d = p[i] - q[i];
    out[i] = d > 0 ? d : 0;
    z += out[i];
  }
  if (z > 0) {
    for (let i = 0; i < out.length; i++) out[i] /= z;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = p[i];
  }
  return out;
}

/**
 * One round of speculative sampling.
 * @param target  k + 1 target distributions: at each draft position, and after the last draft
 * @param draft   k draft distributions the draft tokens were drawn from
 * @param tokens  the k draft tokens
 * @param scratch a vocabulary-sized buffer for the residual distribution
 */
export function speculativeAccept(
  target: readonly ArrayLike<number>[],
  draft: readonly ArrayLike<number>[],
  tokens: ArrayLike<number>,
  rng: Rng,
  scratch: FloatVector,
): SpeculativeOutcome {
  const k = tokens.length;
  if (draft.length !== k || target.length !== k + 1) {
    throw new InvalidArgumentError(`speculative round with ${k} draft tokens needs ${k} draft and ${k + 1} target distributions, got ${draft.length} and ${target.length}`);
  }
  for (let i = 0; i < k; i++) {
    const x = tokens[i];
    const p = target[i];
    const q = draft[i];
    if (!(Number.isInteger(x) && x >= 0 && x < p.length)) {
      throw new InvalidArgumentError(`draft token ${i} = ${x} is not an id below ${p.length}`);
    }
    const px = p[x];
    const qx = q[x];
    // q(x) = 0 cannot happen for a token drawn from q, but a draft made greedily can carry it:
    // then accept whenever the target allows x at all.
    const ratio = qx > 0 ? px / qx : px > 0 ? Infinity : 0;
    if (rng.nextFloat() < Math.min(1, ratio)) continue;
    return { accepted: i, token: drawFrom(residualDistribution(p, q, scratch), rng) };
  }
  return { accepted: k, token: drawFrom(target[k], rng) };
}

/**
 * The greedy round: draft token i is accepted while it equals the target's argmax at i; the
 * token after the accepted ones is the target's argmax there. With greedy draft and target the
 * output is identical to greedy decoding with the target alone.
 * @param targetArgmax k + 1 argmax ids of the target, one per position
 */
export function speculativeAcceptGreedy(targetArgmax: ArrayLike<number>, tokens: ArrayLike<number>): SpeculativeOutcome {
  const k = tokens.length;
  if (targetArgmax.length !== k + 1) {
    throw new InvalidArgumentError(`greedy round with ${k} draft tokens needs ${k + 1} target ids, got ${targetArgmax.length}`);
  }
  let i = 0;
  while (i < k && tokens[i] === targetArgmax[i]) i++;
  return { accepted: i, token: targetArgmax[i] };
}
