/**
 * Classifier-free guidance over two sequences, each with its own KV cache, as HF's
 * UnbatchedClassifierFreeGuidanceLogitsProcessor runs for Chinese-LLaMA-Alpaca-2's
 * --negative_prompt / --guidance_scale:
 *
 *   cond   = logits of the prompt                   (the conversation)
 *   uncond = logits of the negative prompt          (the same template, the negative prompt in
 *            the system prompt's place), or of the prompt's last token alone when none is given
 *   out    = g * (log_softmax(cond) - log_softmax(uncond)) + log_softmax(uncond)
 *
 * Each sampled token is appended to both sequences. The guided log-probabilities then go
 * through the usual sampler (penalties, temperature, top-k, top-p): HF puts the CFG processor
 * first. With g = 1 HF adds no processor at all, so neither does this: the output is exactly
 * generate()'s.
 */
import { applyCfg } from "./cfg.js";
import { createSampler } from "./sampler.js";
import { InvalidArgumentError } from "../errors.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { TokenEmitter, generate, topLogits, type GenerateOptions, type GenerationEvent } from "./decode.js";
import { LlamaModel, type LlamaSession } from "../model/model.js";
import { checkPrompt, promptTokensToEvaluate } from "./decode-speculative.js";

export interface CfgOptions extends GenerateOptions {
  /** Guidance scale g; 1 = off (upstream default), > 1 pushes away from the negative prompt. */
  cfgScale: number;
  /** The negative prompt's token ids; default: the prompt's last token alone (as upstream). */
  negativePromptIds?: readonly number[];
  /** The unconditional sequence's session (kept across chat turns); default: a new one, released at the end. */
  negativeSession?: LlamaSession;
}

/**
 * Streams the guided continuation of `promptIds`; events and result as generate(). The result's
 * `timings.promptTokens` counts the tokens both sequences evaluated.
 */
export async function* generateCfg(target: LlamaModel | LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: CfgOptions): AsyncGenerator<GenerationEvent> {
  const scale = options.cfgScale;
  if (!Number.isFinite(scale)) throw new InvalidArgumentError(`cfgScale ${scale} must be a finite number`);
  if (scale === 1) {
    yield* generate(target, tokenizer, promptIds, options);
    return;
  }
  const cond = target instanceof LlamaModel ? target.session : target;
  const uncond = options.negativeSession ?? cond.model.createSession({ nCtx: cond.nCtx });
  try {
    checkPrompt(cond, promptIds, "prompt");
    const negativeIds = options.negativePromptIds ?? promptIds.slice(-1);
    checkPrompt(uncond, negativeIds, "negative prompt");
    const maxTokens = options.maxTokens ?? 400;
    const V = cond.model.hp.nVocab;
    const sampler = createSampler({ ...options, vocabSize: V });
    const out = new TokenEmitter(tokenizer, options);
    const guided = new Float32Array(V);
    const context = [...promptIds];

    const promptTokens = promptTokensToEvaluate(cond, promptIds) + promptTokensToEvaluate(uncond, negativeIds);
    const t0 = performance.now();
    let c = await cond.evaluateSequence(promptIds);
    let u = await uncond.evaluateSequence(negativeIds);
    const promptMs = performance.now() - t0;
    applyCfg(c, u, scale, guided);
    const firstTopLogits = topLogits(guided, options.topLogits ?? 10);
    const t1 = performance.now();

    while (out.generated.length < maxTokens) {
      if (options.signal?.aborted) {
        const rest = out.finish("abort");
        if (rest) yield { type: "token", id: -1, text: rest };
        break;
      }
      const id = sampler.sample(guided, context, promptIds.length);
      context.push(id);
      const text = out.push(id);
      if (text) yield { type: "token", id, text };
      if (out.done || out.generated.length >= maxTokens) break;
      if (cond.nPast >= cond.nCtx || uncond.nPast >= uncond.nCtx) break; // a context is full: "length"
      c = await cond.evaluate([id]);
      u = await uncond.evaluate([id]);
      applyCfg(c, u, scale, guided);
    }
    const rest = out.finish("length");
    if (rest) yield { type: "token", id: -1, text: rest };
    yield { type: "done", result: out.result(promptIds, firstTopLogits, promptTokens, promptMs, performance.now() - t1) };
  } finally {
    if (!options.negativeSession) uncond.release();
  }
}
