/**
 * Classifier-free guidance ("negative prompt"), as Hugging Face's
 * UnbatchedClassifierFreeGuidanceLogitsProcessor, which the Chinese-LLaMA-Alpaca-2 scripts use
 * for --negative_prompt / --guidance_scale:
 *
 *   c = log_softmax(cond),  u = log_softmax(uncond)
 *   out = g * (c - u) + u
 *
 * cond are the logits of the real prompt, uncond those of the negative prompt (or, with no
 * negative prompt, of the prompt's last token alone), each from its own KV cache. g = 1 gives c
 * unchanged (HF returns the log-softmax then too); g > 1 pushes away from the negative prompt.
 */
import { InvalidArgumentError } from "../errors.js";
import { logSumExp, type FloatVector } from "./softmax.js";

/**
 * Writes the guided logits into `out` (which may be `cond` or `uncond`) and returns it. A token
 * at -Infinity in either input stays at -Infinity: the formula would give NaN (inf - inf) or
 * +Infinity there, and a token one side rules out should not be forced.
 */
export function applyCfg<T extends FloatVector>(cond: ArrayLike<number>, uncond: ArrayLike<number>, scale: number, out: T): T {
  if (cond.length !== uncond.length || out.length !== cond.length) {
    throw new InvalidArgumentError(`CFG lengths differ: cond ${cond.length}, uncond ${uncond.length}, out ${out.length}`);
  }
  if (!Number.isFinite(scale)) throw new InvalidArgumentError(`CFG scale ${scale} must be finite`);
  const lc = logSumExp(cond);
  const lu = logSumExp(uncond);
  for (let i = 0; i < cond.length; i++) {
    const c = cond[i] - lc;
    const u = uncond[i] - lu;
    if (c === -Infinity || u === -Infinity) out[i] = -Infinity;
    else out[i] = scale === 1 ? c : scale * (c - u) + u;
  }
  return out;
}
