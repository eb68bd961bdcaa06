/**
 * Speculative decoding on tiny synthetic models: greedy output identical to the target alone,
 * and with sampling the emitted tokens distributed as the target's processed distribution
 * (chi-square over the first two tokens, fixed seeds, so the test is deterministic).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSampler } from "../../src/generate/index.js";
import { type LlamaModel } from "../../src/model/index.js";
import { generateText } from "../../src/generate/index.js";
import { generateSpeculative, type SpeculativeOptions, type SpeculativeResult } from "../../src/generate/index.js";
import type { SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { GGMLType, loadTiny } from "./helpers.js";

let target: LlamaModel;
let quantDraft: LlamaModel;
let q8Draft: LlamaModel;
let otherDraft: LlamaModel;
let tokenizer: SentencePieceTokenizer;
const prompt = [1, 270, 281, 262, 299, 263];

beforeAll(async () => {
  ({ model: target, tokenizer } = await loadTiny());
  // The same weights in Q8_0 / Q4_0: drafts that mostly / often agree. A different seed: one that does not.
  ({ model: q8Draft } = await loadTiny({ type: GGMLType.Q8_0 }));
  ({ model: quantDraft } = await loadTiny({ type: GGMLType.Q4_0 }));
  ({ model: otherDraft } = await loadTiny({ seed: 99, layers: 1 }));
});
afterAll(async () => {
  for (const m of [target, q8Draft, quantDraft, otherDraft]) await m.dispose();
});

async function speculative(draft: LlamaModel, options: Omit<SpeculativeOptions, "draft">): Promise<SpeculativeResult> {
  for await (const e of generateSpeculative(target.session, tokenizer, prompt, { ...options, draft })) if (e.type === "done") return e.result;
  throw new Error("no result");
}

describe("greedy speculative decoding", () => {
  it("gives exactly the target's greedy output, whatever the draft and k", async () => {
    const options = { temperature: 0, repetitionPenalty: 1.1, maxTokens: 40, ignoreEos: true };
    const plain = await generateText(target.session, tokenizer, prompt, options);
    for (const draft of [q8Draft, quantDraft, otherDraft]) {
      for (const draftK of [undefined, 1, 3, 8]) {
        const r = await speculative(draft, { ...options, draftK });
        expect(r.generatedIds, `draftK ${draftK}`).toEqual(plain.generatedIds);
        expect(r.text).toBe(plain.text);
        expect(r.finishReason).toBe("length");
      }
    }
    const q8 = await speculative(q8Draft, options);
    const q4 = await speculative(quantDraft, options);
    const other = await speculative(otherDraft, options);
    expect(q8.speculative.acceptanceRate).toBeGreaterThan(0.7);
    expect(q8.speculative.tokensPerTargetPass).toBeGreaterThan(2);
    expect(q4.speculative.acceptanceRate).toBeGreaterThan(other.speculative.acceptanceRate);
  });

  it("stops on stop strings and max tokens as generate() does; the caches stay consistent", async () => {
    const options = { temperature: 0, repetitionPenalty: 1, maxTokens: 12, ignoreEos: true };
    const plain = await generateText(target.session, tokenizer, prompt, options);
    const stopText = tokenizer.decode(plain.generatedIds.slice(5, 6)).trim();
    const stopped = await generateText(target.session, tokenizer, prompt, { ...options, stop: [stopText] });
    const r = await speculative(quantDraft, { ...options, stop: [stopText] });
    expect(r.text).toBe(stopped.text);
    expect(r.finishReason).toBe("stop");
    // The target's cache holds a prefix of prompt + output: a follow-up generation reuses it correctly.
    const cached = target.session.cachedTokens;
    expect(cached.slice(0, prompt.length)).toEqual(prompt);
    expect(cached.slice(prompt.length)).toEqual(r.generatedIds.slice(0, cached.length - prompt.length));
    for (const n of [0, 1, 2, 7]) {
      expect((await speculative(quantDraft, { ...options, maxTokens: n })).generatedIds).toEqual(plain.generatedIds.slice(0, n));
    }
  });

  it("rejects a draft with another vocabulary and a bad k", async () => {
    const { model: small } = await loadTiny({ vocab: 280 });
    await expect(speculative(small, { temperature: 0 })).rejects.toThrow(/draft model's vocabulary has 280 tokens, the target's 300/);
    await expect(speculative(quantDraft, { temperature: 0, draftK: 0 })).rejects.toThrow(/draftK 0 must be an integer >= 1/);
    await small.dispose();
  });
});

describe("sampled speculative decoding keeps the target distribution", () => {
  // Concentrated enough that a two-token joint distribution has few bins.
  const sampling = { temperature: 0.7, topK: 5, topP: 1, repetitionPenalty: 1.1 };

  /** p(x1) p(x2 | x1) over the target's processed distributions. */
  async function jointDistribution(): Promise<Map<string, number>> {
    const sampler = createSampler({ ...sampling, vocabSize: 300, seed: 0 });
    const session = target.createSession();
    const p1 = sampler.probabilities(await session.evaluateSequence(prompt), prompt, prompt.length, new Float64Array(300));
    const joint = new Map<string, number>();
    for (let x1 = 0; x1 < 300; x1++) {
      if (p1[x1] === 0) continue;
      const ctx = [...prompt, x1];
      const p2 = sampler.probabilities(await session.evaluateSequence(ctx), ctx, prompt.length, new Float64Array(300));
      for (let x2 = 0; x2 < 300; x2++) if (p2[x2]! > 0) joint.set(`${x1},${x2}`, p1[x1]! * p2[x2]!);
    }
    session.release();
    return joint;
  }

  function chiSquare(counts: Map<string, number>, expected: Map<string, number>, n: number): { chi2: number; df: number; outside: number } {
    let chi2 = 0;
    let df = -1;
    let rest = 0;
    let restExpected = 0;
    let outside = 0;
    for (const [key, c] of counts) if (!expected.has(key)) outside += c;
    for (const [key, p] of expected) {
      const e = p * n;
      const c = counts.get(key) ?? 0;
      if (e < 5) {
        rest += c;
        restExpected += e;
        continue;
      }
      chi2 += (c - e) ** 2 / e;
      df++;
    }
    if (restExpected > 0) {
      chi2 += (rest - restExpected) ** 2 / restExpected;
      df++;
    }
    return { chi2, df, outside };
  }

  /** Upper 0.1% point of chi-square (Wilson-Hilferty). */
  const critical = (df: number) => df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;

  it("chi-square over the first two tokens, with a disagreeing and an agreeing draft", async () => {
    const expected = await jointDistribution();
    const n = 1500;
    for (const [draft, draftK] of [[quantDraft, 1], [q8Draft, undefined]] as const) {
      const counts = new Map<string, number>();
      let accepted = 0;
      let drafted = 0;
      for (let seed = 1; seed <= n; seed++) {
        const r = await speculative(draft, { ...sampling, seed, maxTokens: 2, ignoreEos: true, draftK });
        const key = r.generatedIds.join(",");
        counts.set(key, (counts.get(key) ?? 0) + 1);
        accepted += r.speculative.accepted;
        drafted += r.speculative.drafted;
      }
      const { chi2, df, outside } = chiSquare(counts, expected, n);
      expect(outside, "tokens the target rules out").toBe(0);
      expect(df).toBeGreaterThan(5);
      expect(chi2, `chi2 ${chi2.toFixed(1)} on ${df} df (acceptance ${(accepted / drafted).toFixed(2)})`).toBeLessThan(critical(df));
      // Both paths of the rule ran: acceptances and rejections.
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThan(drafted);
    }
  });
});
