/**
 * Speculative decoding: a small draft model proposes k tokens, the target model scores them
 * all in one forward pass and keeps the longest run its own sampling rule accepts, plus one
 * token of its own (Chen et al. 2023; Chinese-LLaMA-Alpaca-2 scripts/inference/
 * speculative_sample.py, which pairs a 1.3B draft with the 7B / 13B models). The maths is in
 * src/generate/speculative.ts; this file runs the two models.
 *
 *   context ....... c | x1 x2 x3 x4          draft: x_i ~ q_i, one token per forward pass
 *   target: evaluate([pending, x1..x4], allLogits) -> p_1 .. p_5 in one pass
 *   accept x1 x2, reject x3 -> emit x1 x2 y, y ~ norm(max(p_3 - q_3, 0));
 *   both KV caches truncated back to c x1 x2; y is evaluated with the next round's drafts.
 *
 * Greedy (temperature 0): a draft token is kept while it equals the target's argmax, so the
 * output is exactly greedy decoding with the target alone. Sampling: every emitted token is
 * distributed exactly as the target's processed distribution p, whatever the draft proposes.
 */
import { Xoshiro128 } from "./rng.js";
import { createSampler } from "./sampler.js";
import { DRAFT_K_START, drawFrom, nextDraftK, speculativeAccept, speculativeAcceptGreedy } from "./speculative.js";
import { InvalidArgumentError } from "../errors.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ContextOverflowError } from "../model/errors.js";
import { TokenEmitter, topLogits, type GenerateOptions, type GenerationResult } from "./decode.js";
import { LlamaModel, type LlamaSession } from "../model/model.js";


/** @internal Tokens of `promptIds` a session evaluates (the rest is reused from its cache). */
export function promptTokensToEvaluate(session: LlamaSession, promptIds: readonly number[]): number {
  let n = 0;
  const cached = session.cachedTokens;
  while (n < cached.length && n < promptIds.length && cached[n] === promptIds[n]) n++;
  return promptIds.length - Math.min(n, promptIds.length - 1);
}

/** @internal */
export function checkPrompt(session: LlamaSession, promptIds: readonly number[], what: string): void {
  if (promptIds.length === 0) throw new ContextOverflowError(`the ${what} is empty: at least one token (e.g. BOS) is needed`);
  if (promptIds.length >= session.nCtx) {
    throw new ContextOverflowError(`the ${what} has ${promptIds.length} tokens, but the context holds ${session.nCtx}: shorten it or raise --ctx`);
  }
}

export interface SpeculativeOptions extends GenerateOptions {
  /** The draft model (or a session of it); its vocabulary must be the target's. */
  draft: LlamaModel | LlamaSession;
  /** Tokens drafted per round; default: upstream's adaptive rule (start 4, +2 after a fully accepted round, else -1, at least 1). */
  draftK?: number;
}

export interface SpeculativeStats {
  /** Rounds that drafted at least one token. */
  rounds: number;
  drafted: number;
  accepted: number;
  /** accepted / drafted (0 when nothing was drafted). */
  acceptanceRate: number;
  /** Emitted tokens per target forward pass (1 without a draft). */
  tokensPerTargetPass: number;
}

export interface SpeculativeResult extends GenerationResult {
  speculative: SpeculativeStats;
}

export type SpeculativeEvent = { type: "token"; id: number; text: string } | { type: "done"; result: SpeculativeResult };

const sessionOf = (m: LlamaModel | LlamaSession): LlamaSession => (m instanceof LlamaModel ? m.session : m);

/**
 * Streams the target's continuation of `promptIds`, drafted by `options.draft`. Events and
 * result are generate()'s, with `result.speculative` added. Both KV caches reuse what they
 * already hold of the prompt.
 */
/**
 * A draft model must share the target's vocabulary (ids are compared token by token). `draftName`
 * names it in the error (the CLI passes its --draft-model path).
 */
export function checkDraftModel(target: LlamaModel, draft: LlamaModel, draftName?: string): void {
  if (draft.hp.nVocab === target.hp.nVocab) return;
  throw new InvalidArgumentError(
    draftName === undefined
      ? `the draft model's vocabulary has ${draft.hp.nVocab} tokens, the target's ${target.hp.nVocab}: they must share one tokenizer`
      : `${draftName} has ${draft.hp.nVocab} tokens, the model ${target.hp.nVocab}: they must share one vocabulary`,
  );
}

export async function* generateSpeculative(
  target: LlamaModel | LlamaSession,
  tokenizer: SentencePieceTokenizer,
  promptIds: readonly number[],
  options: SpeculativeOptions,
): AsyncGenerator<SpeculativeEvent> {
  const t = sessionOf(target);
  const d = sessionOf(options.draft);
  checkDraftModel(t.model, d.model);
  const V = t.model.hp.nVocab;
  const fixedK = options.draftK;
  if (fixedK !== undefined && !(Number.isSafeInteger(fixedK) && fixedK >= 1)) throw new InvalidArgumentError(`draftK ${fixedK} must be an integer >= 1`);
  checkPrompt(t, promptIds, "prompt");
  checkPrompt(d, promptIds, "prompt (for the draft model)");
  const maxTokens = options.maxTokens ?? 400;
  const targetSampler = createSampler({ ...options, vocabSize: V });
  const draftSampler = createSampler({ ...options, vocabSize: V, seed: targetSampler.seed });
  const greedy = targetSampler.options.temperature === 0;
  // One stream of uniforms for drafting and for the accept/reject rule.
  const rng = new Xoshiro128(targetSampler.seed);
  const out = new TokenEmitter(tokenizer, options);
  const P = promptIds.length;
  const ctx = [...promptIds];

  const promptTokens = promptTokensToEvaluate(t, promptIds);
  const t0 = performance.now();
  let tReady: Float32Array | null = await t.evaluateSequence(promptIds);
  let dLogits = await d.evaluateSequence(promptIds);
  const promptMs = performance.now() - t0;
  const firstTopLogits = topLogits(tReady, options.topLogits ?? 10);
  const t1 = performance.now();

  const qs: Float64Array[] = [];
  const ps: Float64Array[] = [];
  const buffer = (list: Float64Array[], i: number) => (list[i] ??= new Float64Array(V));
  const scratch = new Float64Array(V);
  const stats = { rounds: 0, drafted: 0, accepted: 0, targetPasses: 0 };
  let k = fixedK ?? DRAFT_K_START;
  if (maxTokens <= 0) out.finish("length");

  while (!out.done) {
    if (options.signal?.aborted) {
      const rest = out.finish("abort");
      if (rest) yield { type: "token", id: -1, text: rest };
      break;
    }
    const base = ctx.length;
    const tPending = ctx.slice(t.nPast);
    const dPending = ctx.slice(d.nPast);
    if (t.nPast + tPending.length > t.nCtx) break; // the context is full: "length"
    const room = Math.min(t.nCtx - t.nPast - tPending.length, d.nCtx - d.nPast - dPending.length + 1);
    const kk = Math.max(0, Math.min(k, maxTokens - out.generated.length - 1, room));

    // Draft kk tokens, one forward pass each (the last one is not evaluated: the target decides first).
    const drafts: number[] = [];
    if (kk > 0) {
      if (dPending.length > 0) dLogits = await d.evaluate(dPending);
      for (let i = 0; i < kk; i++) {
        const q = draftSampler.probabilities(dLogits, ctx, P, buffer(qs, i));
        const x = greedy ? q.indexOf(1) : drawFrom(q, rng);
        drafts.push(x);
        ctx.push(x);
        if (out.isStopId(x)) break; // upstream stops drafting at EOS
        if (i < kk - 1) dLogits = await d.evaluate([x]);
      }
      ctx.length = base;
    }

    // Score every draft position (and the one after) in one target pass.
    const m = drafts.length;
    const batch = [...tPending, ...drafts];
    const rows = batch.length > 0 ? await t.evaluate(batch, { allLogits: true }) : null;
    if (batch.length > 0) stats.targetPasses++;
    const rowAt = (j: number): Float32Array => {
      const r = tPending.length - 1 + j;
      return r < 0 ? tReady! : rows!.subarray(r * V, (r + 1) * V);
    };
    let outcome;
    if (greedy) {
      const argmax: number[] = [];
      for (let j = 0; j <= m; j++) argmax.push(targetSampler.sample(rowAt(j), j === 0 ? ctx : [...ctx, ...drafts.slice(0, j)], P));
      outcome = speculativeAcceptGreedy(argmax, drafts);
    } else {
      const p: Float64Array[] = [];
      for (let j = 0; j <= m; j++) p.push(targetSampler.probabilities(rowAt(j), j === 0 ? ctx : [...ctx, ...drafts.slice(0, j)], P, buffer(ps, j)));
      outcome = speculativeAccept(p, qs.slice(0, m), drafts, rng, scratch);
    }
    tReady = null;
    const a = outcome.accepted;
    if (m > 0) {
      stats.rounds++;
      stats.drafted += m;
      stats.accepted += a;
      if (fixedK === undefined) k = nextDraftK(k, a === m);
    }

    // Keep the accepted drafts in both caches; the new token is evaluated next round.
    t.truncate(base + a);
    d.truncate(Math.min(d.nPast, base + a));
    for (const id of [...drafts.slice(0, a), outcome.token]) {
      ctx.push(id);
      const text = out.push(id);
      if (text) yield { type: "token", id, text };
      if (out.done) break;
      if (out.generated.length >= maxTokens) {
        const rest = out.finish("length");
        if (rest) yield { type: "token", id: -1, text: rest };
        break;
      }
    }
  }
  if (!out.done) {
    const rest = out.finish("length");
    if (rest) yield { type: "token", id: -1, text: rest };
  }
  // A stop inside an accepted run leaves drafts past it in the caches: keep only the context.
  t.truncate(Math.min(t.nPast, ctx.length));
  d.truncate(Math.min(d.nPast, ctx.length));
  yield {
    type: "done",
    result: {
      ...out.result(promptIds, firstTopLogits, promptTokens, promptMs, performance.now() - t1),
      speculative: {
        rounds: stats.rounds,
        drafted: stats.drafted,
        accepted: stats.accepted,
        acceptanceRate: stats.drafted > 0 ? stats.accepted / stats.drafted : 0,
        tokensPerTargetPass: stats.targetPasses > 0 ? out.generated.length / stats.targetPasses : 0,
      },
    },
  };
}
