/**
 * Text generation over a loaded model: prompt -> logits -> sampler -> token -> text, streamed
 * as an async iterator, with stop strings and ids, a token budget, abort, and timings.
 */
import { StopMatcher } from "./stop.js";
import { createSampler, type SamplerOptions } from "./sampler.js";
import type { SentencePieceTokenizer, StreamingDecoder } from "../tokenizer/index.js";
import { ContextOverflowError } from "../model/errors.js";
import { LlamaModel, type LlamaSession } from "../model/model.js";

export interface GenerateOptions extends Omit<SamplerOptions, "vocabSize"> {
  /** Most tokens to generate (default 400, the upstream max_new_tokens). */
  maxTokens?: number;
  /** Strings that end generation (never emitted). */
  stop?: readonly string[];
  /** Ids that end generation besides EOS. */
  stopIds?: readonly number[];
  /** Keep going past EOS. */
  ignoreEos?: boolean;
  signal?: AbortSignal;
  /** How many of the first step's top logits to report (default 10). */
  topLogits?: number;
  /**
   * Report each generated token's log-probability and this many alternatives (0..20) on its
   * events: the softmax of the model's raw logits, before penalties, bias, temperature, filters
   * and any constraint (llama-server's default, post_sampling_probs off). Off when undefined.
   */
  logprobs?: number;
  /** Restricts which token may come next (a grammar): masks the logits before each draw. */
  constraint?: LogitsConstraint;
  /**
   * Awaited between the prompt's micro-batches and after each token: a server gives its event
   * loop a turn here (a forward pass resolves as a microtask, so otherwise nothing else runs).
   */
  pause?: () => Promise<void>;
}

/** What generate() needs of a constraint (src/grammar's GrammarConstraint is one). */
export interface LogitsConstraint {
  /** Sets the logits of every token that may not come next to -Infinity. */
  mask(logits: Float32Array): void;
  /** Advances past the chosen token. */
  accept(id: number): void;
}

export type FinishReason = "stop" | "length" | "abort";

export interface GenerationResult {
  promptIds: number[];
  generatedIds: number[];
  text: string;
  finishReason: FinishReason;
  /** The first generated position's highest logits, before sampling. */
  firstTopLogits: Array<{ id: number; logit: number }>;
  timings: {
    /** Prompt tokens actually evaluated (cached ones are not). */
    promptTokens: number;
    promptMs: number;
    generatedTokens: number;
    decodeMs: number;
    promptTokensPerS: number;
    decodeTokensPerS: number;
  };
}

/** One generated token's log-probability and the most likely alternatives at its step. */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

/**
 * `logprobs` (with the option): the tokens drawn since the previous event, also those whose
 * text is held back or empty; the done event carries the rest.
 */
export type GenerationEvent = { type: "token"; id: number; text: string; logprobs?: TokenLogprob[] } | { type: "done"; result: GenerationResult; logprobs?: TokenLogprob[] };

/** log-softmax of `logits` at `id` and at the n most likely ids. */
export function tokenLogprob(logits: ArrayLike<number>, id: number, n: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  return { id, logprob: logits[id]! - lse, top: n > 0 ? topLogits(logits, n).map((t) => ({ id: t.id, logprob: t.logit - lse })) : [] };
}

/** The n highest logits (ties: lower id first), as generate() reports the first step. */
export function topLogits(logits: ArrayLike<number>, n: number): Array<{ id: number; logit: number }> {
  const top: Array<{ id: number; logit: number }> = [];
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id]!;
    if (top.length < n || logit > top[top.length - 1]!.logit) {
      top.push({ id, logit });
      top.sort((a, b) => b.logit - a.logit || a.id - b.id);
      if (top.length > n) top.pop();
    }
  }
  return top;
}

/**
 * Streams the continuation of `promptIds`. The model's KV cache is reused for the longest
 * prefix it already holds (a chat's earlier turns), so only new tokens are evaluated.
 */
export async function* generate(target: LlamaModel | LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: GenerateOptions = {}): AsyncGenerator<GenerationEvent> {
  const model = target instanceof LlamaModel ? target.session : target;
  const maxTokens = options.maxTokens ?? 400;
  if (promptIds.length === 0) throw new ContextOverflowError("the prompt is empty: at least one token (e.g. BOS) is needed");
  if (promptIds.length >= model.nCtx) {
    throw new ContextOverflowError(`the prompt has ${promptIds.length} tokens, but the context holds ${model.nCtx}: shorten it or raise --ctx`);
  }
  const sampler = createSampler({ ...options, vocabSize: model.model.hp.nVocab });
  const out = new TokenEmitter(tokenizer, options);
  const context = [...promptIds];

  // Reuse the cached prefix; the last prompt token is always evaluated, for its logits. The
  // rest goes in one micro-batch per call, so an abort or a pause can come in between.
  const reused = Math.min(commonPrefix(model.cachedTokens, promptIds, Math.min(model.nPast, promptIds.length)), promptIds.length - 1);
  const promptTokens = promptIds.length - reused;
  const t0 = performance.now();
  model.truncate(reused);
  let logits: Float32Array = new Float32Array(0);
  for (let start = reused; start < promptIds.length; start += model.state.maxTok) {
    if (start > reused) {
      await options.pause?.();
      if (options.signal?.aborted) break;
    }
    logits = await model.evaluate(promptIds.slice(start, start + model.state.maxTok));
  }
  const promptMs = performance.now() - t0;
  const firstTopLogits = model.nPast < promptIds.length ? [] : topLogits(logits, options.topLogits ?? 10);
  const t1 = performance.now();
  const pending: TokenLogprob[] = [];

  while (out.generated.length < maxTokens) {
    if (options.signal?.aborted || model.nPast < promptIds.length) {
      const rest = out.finish("abort");
      if (rest) yield { type: "token", id: -1, text: rest };
      break;
    }
    // Raw logits: read before the constraint masks them in place.
    const raw = options.logprobs === undefined ? undefined : Float32Array.from(logits);
    options.constraint?.mask(logits);
    const id = sampler.sample(logits, context, promptIds.length);
    options.constraint?.accept(id);
    context.push(id);
    if (raw) pending.push(tokenLogprob(raw, id, options.logprobs!));
    const text = out.push(id);
    if (text) {
      yield raw ? { type: "token", id, text, logprobs: pending.splice(0) } : { type: "token", id, text };
    }
    if (out.done) break;
    if (out.generated.length >= maxTokens) break;
    if (model.nPast >= model.nCtx) break; // the context is full: stop with "length"
    await options.pause?.();
    logits = await model.evaluate([id]);
  }
  if (!out.done) {
    const rest = out.finish("length");
    if (rest) yield { type: "token", id: -1, text: rest };
  }
  const result = out.result(promptIds, firstTopLogits, promptTokens, promptMs, performance.now() - t1);
  yield options.logprobs === undefined ? { type: "done", result } : { type: "done", result, logprobs: pending.splice(0) };
}

function commonPrefix(a: readonly number[], b: readonly number[], limit: number): number {
  let n = 0;
  while (n < limit && a[n] === b[n]) n++;
  return n;
}

/** Runs generate() to the end and returns its result, calling onText for each piece. */
export async function generateText(model: LlamaModel | LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: GenerateOptions = {}, onText?: (text: string) => void): Promise<GenerationResult> {
  for await (const event of generate(model, tokenizer, promptIds, options)) {
    if (event.type === "token") onText?.(event.text);
    else return event.result;
  }
  throw new Error("generate() ended without a result");
}

/** @internal Stop ids, stop strings and streaming decode of generated tokens, shared by the CFG and speculative loops. */
export class TokenEmitter {
  readonly generated: number[] = [];
  text = "";
  finishReason: FinishReason = "length";
  private readonly stopIds: Set<number>;
  private readonly stop: StopMatcher;
  private readonly decoder: StreamingDecoder;
  private stopped = false;

  constructor(tokenizer: SentencePieceTokenizer, options: GenerateOptions) {
    this.stopIds = new Set(options.stopIds ?? []);
    if (!options.ignoreEos) this.stopIds.add(tokenizer.eosId);
    this.stop = new StopMatcher({ strings: options.stop ?? [], ids: this.stopIds });
    this.decoder = tokenizer.createStreamingDecoder();
  }

  isStopId(id: number): boolean {
    return this.stopIds.has(id);
  }

  get done(): boolean {
    return this.stopped;
  }

  /** Takes one generated id; returns the text it releases ("" while a stop string may be starting). */
  push(id: number): string {
    this.generated.push(id);
    if (this.stop.isStopId(id)) {
      this.finish("stop");
      return "";
    }
    const piece = this.stop.push(this.decoder.push(id));
    this.text += piece.emit;
    if (piece.stopped) this.finish("stop");
    return piece.emit;
  }

  /** Ends generation; returns text still held back (a partial stop string that never completed). */
  finish(reason: FinishReason): string {
    if (this.stopped) return "";
    this.stopped = true;
    this.finishReason = reason;
    if (reason === "stop") return "";
    const rest = this.stop.push(this.decoder.flush()).emit + this.stop.flush();
    this.text += rest;
    return rest;
  }

  /** generate()'s result for what was emitted. */
  result(promptIds: readonly number[], firstTopLogits: GenerationResult["firstTopLogits"], promptTokens: number, promptMs: number, decodeMs: number): GenerationResult {
    const generated = this.generated.length;
    // As generate(): decode speed counts the tokens that needed a forward pass (the last one did not).
    const decoded = Math.max(0, generated - 1);
    return {
      promptIds: [...promptIds],
      generatedIds: this.generated,
      text: this.text,
      finishReason: this.finishReason,
      firstTopLogits,
      timings: {
        promptTokens,
        promptMs,
        generatedTokens: generated,
        decodeMs,
        promptTokensPerS: promptMs > 0 ? (promptTokens / promptMs) * 1000 : 0,
        decodeTokensPerS: decodeMs > 0 ? (decoded / decodeMs) * 1000 : 0,
      },
    };
  }
}
