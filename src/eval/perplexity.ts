/**
 * Perplexity the way llama.cpp's `llama-perplexity` computes it, so figures are comparable with
 * the upstream READMEs' tables: the tokenized text (with BOS) is cut into chunks of `ctx`
 * tokens; each chunk is evaluated from an empty cache with its first token replaced by BOS;
 * only the second half of each chunk is scored (every scored token sees at least ctx/2 tokens
 * of context): positions first = ctx/2 .. ctx-2 predict tokens first+1 .. ctx-1.
 *   ppl = exp( -(1/N) * sum log p(token | previous tokens of its chunk) )
 */
import { InvalidArgumentError } from "../errors.js";
import type { LlamaModel } from "../model/index.js";

export interface PerplexityResult {
  ppl: number;
  chunks: number;
  tokensScored: number;
  /** Running perplexity after each chunk (what llama.cpp prints as [1]x,[2]y,...). */
  perChunk: number[];
}

/** log p(target) under softmax(logits), in float64. */
export function logProb(logits: Float32Array, offset: number, n: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  return logits[offset + target]! - max - Math.log(sum);
}

export async function perplexity(
  model: LlamaModel,
  tokens: readonly number[],
  options: { ctx: number; bosId: number; onChunk?: (done: number, total: number, ppl: number) => void },
): Promise<PerplexityResult> {
  const { ctx, bosId } = options;
  if (!Number.isInteger(ctx) || ctx < 4) throw new InvalidArgumentError(`perplexity context must be an integer >= 4, got ${ctx}`);
  if (ctx > model.nCtx) throw new InvalidArgumentError(`perplexity context ${ctx} exceeds the model's loaded context ${model.nCtx}`);
  const chunks = Math.floor(tokens.length / ctx);
  if (chunks < 1) throw new InvalidArgumentError(`the text has ${tokens.length} tokens; at least one chunk of ${ctx} is needed (lower --ctx)`);
  const first = Math.floor(ctx / 2);
  const n = model.hp.nVocab;
  let nll = 0;
  let scored = 0;
  const perChunk: number[] = [];
  for (let c = 0; c < chunks; c++) {
    const chunk = tokens.slice(c * ctx, (c + 1) * ctx);
    chunk[0] = bosId;
    model.reset();
    const logits = await model.evaluate(chunk, { allLogits: true });
    for (let j = first; j < ctx - 1; j++) {
      nll -= logProb(logits, j * n, n, chunk[j + 1]!);
      scored++;
    }
    perChunk.push(Math.exp(nll / scored));
    options.onChunk?.(c + 1, chunks, perChunk[c]!);
  }
  model.reset();
  return { ppl: Math.exp(nll / scored), chunks, tokensScored: scored, perChunk };
}
