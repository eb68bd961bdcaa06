/**
 * Classifier-free guidance: g = 1 is the unguided output; the guided logits equal the formula
 * out = g * (log_softmax(cond) - log_softmax(uncond)) + log_softmax(uncond), worked by hand in
 * float64 from two independent sessions' logits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCfg } from "../../src/generate/index.js";
import { type LlamaModel } from "../../src/model/index.js";
import { generateText, type GenerationResult } from "../../src/generate/index.js";
import type { SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { loadTiny } from "./helpers.js";

let model: LlamaModel;
let tokenizer: SentencePieceTokenizer;
const prompt = [1, 270, 281, 262, 299, 263];
const negative = [1, 290, 291, 292];

beforeAll(async () => {
  ({ model, tokenizer } = await loadTiny());
});
afterAll(async () => {
  await model.dispose();
});

async function cfg(options: Parameters<typeof generateCfg>[3]): Promise<GenerationResult> {
  for await (const e of generateCfg(model.session, tokenizer, prompt, options)) if (e.type === "done") return e.result;
  throw new Error("no result");
}

/** log_softmax in float64. */
function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x as ArrayLike<number>, (v) => v - lse);
}

/** The guided logits for one step, by hand, from fresh sessions. */
async function byHand(condIds: number[], uncondIds: number[], g: number): Promise<Float64Array> {
  const a = model.createSession();
  const b = model.createSession();
  const c = logSoftmax(await a.evaluate(condIds));
  const u = logSoftmax(await b.evaluate(uncondIds));
  a.release();
  b.release();
  return c.map((ci, i) => g * (ci - u[i]!) + u[i]!);
}

const argmax = (x: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
};

describe("classifier-free guidance", () => {
  it("scale 1 gives exactly the unguided output", async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.8, topK: 0, topP: 0.95, seed: 5 }]) {
      const options = { ...sampling, maxTokens: 16, ignoreEos: true };
      const plain = await generateText(model.session, tokenizer, prompt, options);
      const guided = await cfg({ ...options, cfgScale: 1, negativePromptIds: negative });
      expect(guided.generatedIds).toEqual(plain.generatedIds);
      expect(guided.firstTopLogits).toEqual(plain.firstTopLogits);
    }
  });

  it("the first step's guided logits are the formula, with a negative prompt and with the last token alone", async () => {
    for (const [neg, uncondIds] of [[negative, negative], [undefined, prompt.slice(-1)]] as const) {
      const g = 1.5;
      const expected = await byHand(prompt, [...uncondIds], g);
      const r = await cfg({ cfgScale: g, negativePromptIds: neg, temperature: 0, repetitionPenalty: 1, maxTokens: 1, ignoreEos: true });
      const top = [...expected.keys()].sort((i, j) => expected[j]! - expected[i]! || i - j).slice(0, 10);
      expect(r.firstTopLogits.map((t) => t.id)).toEqual(top);
      for (const t of r.firstTopLogits) expect(t.logit).toBeCloseTo(expected[t.id]!, 4);
      expect(r.generatedIds).toEqual([top[0]]);
    }
  });

  it("greedy guided decoding follows the formula step by step; the negative sequence gets each token", async () => {
    const g = 3;
    const r = await cfg({ cfgScale: g, negativePromptIds: negative, temperature: 0, repetitionPenalty: 1, maxTokens: 6, ignoreEos: true });
    const cond = [...prompt];
    const uncond = [...negative];
    for (const id of r.generatedIds) {
      expect(id).toBe(argmax(await byHand(cond, uncond, g)));
      cond.push(id);
      uncond.push(id);
    }
    const unguided = await generateText(model.session, tokenizer, prompt, { temperature: 0, repetitionPenalty: 1, maxTokens: 6, ignoreEos: true });
    expect(r.generatedIds).not.toEqual(unguided.generatedIds);
  });

  it("a kept negative session reuses its cache; bad scales are rejected", async () => {
    const session = model.createSession();
    const options = { cfgScale: 2, negativePromptIds: negative, negativeSession: session, temperature: 0, maxTokens: 4, ignoreEos: true };
    const first = await cfg(options);
    expect(session.cachedTokens.slice(0, negative.length)).toEqual(negative);
    const second = await cfg(options);
    expect(second.generatedIds).toEqual(first.generatedIds);
    expect(second.timings.promptTokens).toBe(2); // the last token of each prompt, for its logits
    session.release();
    await expect(cfg({ cfgScale: Number.NaN })).rejects.toThrow(/cfgScale NaN must be a finite number/);
  });
});
