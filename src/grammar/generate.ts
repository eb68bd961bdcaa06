/**
 * generate() with a token constraint (a grammar): the same loop as src/model/generate.ts —
 * prompt through the session's KV cache, sample, stop strings and ids, budget, abort,
 * timings — with the constraint's mask applied to each step's logits before sampling.
 */
import { StopMatcher, createSampler } from "../generate/index.js";
import { ContextOverflowError, type FinishReason, type GenerateOptions, type GenerationEvent, type LlamaSession } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import type { TokenConstraint } from "./constraint.js";

export interface ConstrainedGenerateOptions extends GenerateOptions {
  constraint?: TokenConstraint;
  /**
   * Awaited between the prompt's micro-batches and after each token: a server gives its event
   * loop a turn here (a forward pass resolves as a microtask, so otherwise nothing else runs).
   */
  pause?: () => Promise<void>;
}

export async function* generateConstrained(session: LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: ConstrainedGenerateOptions = {}): AsyncGenerator<GenerationEvent> {
  const maxTokens = options.maxTokens ?? 400;
  const constraint = options.constraint;
  if (promptIds.length === 0) throw new ContextOverflowError("the prompt is empty: at least one token (e.g. BOS) is needed");
  if (promptIds.length >= session.nCtx) throw new ContextOverflowError(`the prompt has ${promptIds.length} tokens, but the context holds ${session.nCtx}: shorten it or raise --ctx`);
  const sampler = createSampler({ ...options, vocabSize: session.model.hp.nVocab });
  const stopIds = new Set(options.stopIds ?? []);
  if (!options.ignoreEos) stopIds.add(tokenizer.eosId);
  const stop = new StopMatcher({ strings: options.stop ?? [], ids: stopIds });
  const decoder = tokenizer.createStreamingDecoder();
  const context = [...promptIds];
  const generated: number[] = [];
  let text = "";
  let finishReason: FinishReason = "length";

  let reused = 0;
  const cached = session.cachedTokens;
  while (reused < cached.length && reused < promptIds.length && cached[reused] === promptIds[reused]) reused++;
  reused = Math.min(reused, promptIds.length - 1);
  const promptTokens = promptIds.length - reused;
  const t0 = performance.now();
  // The prompt goes in one micro-batch per call, so an abort or a pause can come in between.
  session.truncate(reused);
  const batch = session.state.maxTok;
  let logits: Float32Array = new Float32Array(0);
  for (let start = reused; start < promptIds.length; start += batch) {
    if (start > reused) {
      await options.pause?.();
      if (options.signal?.aborted) break;
    }
    logits = await session.evaluate(promptIds.slice(start, start + batch));
  }
  const promptMs = performance.now() - t0;
  const firstTopLogits = session.nPast < promptIds.length ? [] : top(logits, options.topLogits ?? 10);
  const t1 = performance.now();

  while (generated.length < maxTokens) {
    if (options.signal?.aborted || session.nPast < promptIds.length) {
      finishReason = "abort";
      break;
    }
    constraint?.mask(logits);
    const id = sampler.sample(logits, context, promptIds.length);
    constraint?.accept(id);
    generated.push(id);
    context.push(id);
    if (stop.isStopId(id)) {
      finishReason = "stop";
      break;
    }
    const piece = stop.push(decoder.push(id));
    if (piece.emit) {
      text += piece.emit;
      yield { type: "token", id, text: piece.emit };
    }
    if (piece.stopped) {
      finishReason = "stop";
      break;
    }
    if (generated.length >= maxTokens || session.nPast >= session.nCtx) break;
    await options.pause?.();
    logits = await session.evaluate([id]);
  }
  if (finishReason !== "stop") {
    const rest = stop.push(decoder.flush()).emit + stop.flush();
    if (rest) {
      text += rest;
      yield { type: "token", id: -1, text: rest };
    }
  }
  const decodeMs = performance.now() - t1;
  const decoded = Math.max(0, generated.length - 1);
  yield {
    type: "done",
    result: {
      promptIds: [...promptIds],
      generatedIds: generated,
      text,
      finishReason,
      firstTopLogits,
      timings: {
        promptTokens,
        promptMs,
        generatedTokens: generated.length,
        decodeMs,
        promptTokensPerS: promptMs > 0 ? (promptTokens / promptMs) * 1000 : 0,
        decodeTokensPerS: decodeMs > 0 ? (decoded / decodeMs) * 1000 : 0,
      },
    },
  };
}

function top(logits: Float32Array, n: number): Array<{ id: number; logit: number }> {
  const out: Array<{ id: number; logit: number }> = [];
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id]!;
    if (out.length < n || logit > out[out.length - 1]!.logit) {
      out.push({ id, logit });
      out.sort((a, b) => b.logit - a.logit || a.id - b.id);
      if (out.length > n) out.pop();
    }
  }
  return out;
}
