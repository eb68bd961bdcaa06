/**
 * Numerically stable softmax and log-softmax over a vocabulary of logits.
 *
 *   p_i        = exp(x_i - m) / Σ_j exp(x_j - m),   m = max_j x_j
 *   log p_i    = x_i - m - log Σ_j exp(x_j - m)
 *
 * Subtracting the maximum keeps every exponent <= 0, so nothing overflows; sums are taken in
 * float64 whatever the array type. -Infinity logits (banned tokens) get probability 0 and
 * log-probability -Infinity. NaN or +Infinity logits, and rows with no finite logit, raise
 * SamplingError: they come from a broken forward pass, and a silent NaN would sample garbage.
 */
import { InvalidArgumentError } from "../errors.js";
import { SamplingError } from "./errors.js";

/** A writable vector of floats: probabilities, logits or log-probabilities. */
export type FloatVector = Float32Array | Float64Array;

/** max_i x_i, after checking that no entry is NaN or +Infinity and at least one is finite. */
export function checkedMax(x: ArrayLike<number>, what = "logits"): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v > m) {
      if (v === Infinity) throw new SamplingError(`${what}[${i}] is +Infinity`);
      m = v;
    } else if (v !== v) {
      throw new SamplingError(`${what}[${i}] is NaN`);
    }
  }
  if (m === -Infinity) {
    throw new SamplingError(x.length === 0 ? `${what} is empty` : `every entry of ${what} is -Infinity; no token can be chosen`);
  }
  return m;
}

function checkOut(x: ArrayLike<number>, out: FloatVector): void {
  if (out.length !== x.length) {
    throw new InvalidArgumentError(`output length ${out.length} does not match logits length ${x.length}`);
  }
}

/** log Σ_i exp(x_i), stably. */
export function logSumExp(x: ArrayLike<number>): number {
  const m = checkedMax(x);
  let z = 0;
  for (let i = 0; i < x.length; i++) z += Math.exp(x[i] - m);
  return m + Math.log(z);
}

/** Writes softmax(logits) into `out` (which may be `logits` itself) and returns it. */
export function probabilities(logits: ArrayLike<number>): Float32Array;
export function probabilities<T extends FloatVector>(logits: ArrayLike<number>, out: T): T;
export function probabilities(logits: ArrayLike<number>, out: FloatVector = new Float32Array(logits.length)): FloatVector {
  checkOut(logits, out);
  const m = checkedMax(logits);
  let z = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i] - m);
    out[i] = e;
    z += e;
  }
  const inv = 1 / z;
  for (let i = 0; i < out.length; i++) out[i] *= inv;
  return out;
}

/** Writes log_softmax(logits) into `out` (which may be `logits` itself) and returns it. */
export function logSoftmax(logits: ArrayLike<number>): Float32Array;
export function logSoftmax<T extends FloatVector>(logits: ArrayLike<number>, out: T): T;
export function logSoftmax(logits: ArrayLike<number>, out: FloatVector = new Float32Array(logits.length)): FloatVector {
  checkOut(logits, out);
  const shift = logSumExp(logits);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - shift;
  return out;
}
