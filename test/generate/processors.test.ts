/**
 * Each processor of the sampler chain against the formula written out the slow, obvious way
 * (whole-vocabulary sorts, plain loops), on hand-made and random logits, up to the 55296-entry
 * Chinese-Alpaca vocabulary (where the sampler's bounded-heap shortcuts really run).
 */
import { describe, expect, it } from "vitest";
import { createSampler, type SamplerOptions, type SamplerStage } from "../../src/generate/index.js";

/** Neutral options: nothing runs unless the test asks for it. */
function only(stage: SamplerStage, vocabSize: number, o: Partial<SamplerOptions> = {}) {
  return createSampler({
    vocabSize, order: [stage], temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1, ...o,
  });
}

function processed(stage: SamplerStage, logits: ArrayLike<number>, o: Partial<SamplerOptions> = {}, context: number[] = [], promptLength = 0): Float64Array {
  return only(stage, logits.length, o).process(logits, context, promptLength, new Float64Array(logits.length));
}

function keptIds(v: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let i = 0; i < v.length; i++) if (v[i] > -Infinity) ids.push(i);
  return ids;
}

/** Deterministic logits: normal(0, sd) from a small LCG + Box-Muller. */
function randomLogits(n: number, seed: number, sd = 2): Float32Array {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return x;
}

function naiveSoftmax(x: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** ids sorted by logit descending, lower id first on ties. */
function byLogit(x: ArrayLike<number>): number[] {
  return Array.from(x, (_, i) => i).sort((a, b) => x[b] - x[a] || a - b);
}

describe("repetition penalty (HF)", () => {
  it("divides positive and multiplies negative logits of context ids, each id once", () => {
    const out = processed("penalties", [2, -1, 0.5, 3, 0], { repetitionPenalty: 2 }, [0, 1, 0, 0, 4]);
    expect(Array.from(out)).toEqual([1, -2, 0.5, 3, 0]);
  });

  it("counts prompt tokens too, and only the last penaltyLastN when set", () => {
    expect(Array.from(processed("penalties", [4, 4, 4], { repetitionPenalty: 2 }, [0, 1], 2))).toEqual([2, 2, 4]);
    expect(Array.from(processed("penalties", [4, 4, 4], { repetitionPenalty: 2, penaltyLastN: 1 }, [0, 1]))).toEqual([4, 2, 4]);
  });

  it("leaves everything alone with an empty context", () => {
    const x = randomLogits(100, 3);
    expect(processed("penalties", x, { repetitionPenalty: 1.3 })).toEqual(Float64Array.from(x));
  });

  it("matches the formula on random logits and contexts", () => {
    const x = randomLogits(1000, 5);
    const context = Array.from({ length: 300 }, (_, i) => (i * 7919) % 1000);
    const out = processed("penalties", x, { repetitionPenalty: 1.1 }, context);
    const ids = new Set(context);
    for (let i = 0; i < x.length; i++) {
      const s = x[i];
      expect(out[i]).toBe(ids.has(i) ? (s < 0 ? s * 1.1 : s / 1.1) : s);
    }
  });
});

describe("frequency and presence penalties (OpenAI)", () => {
  it("subtracts count * frequency + presence, over generated tokens only", () => {
    // prompt = [0, 1]; generated = [1, 2, 2, 2]
    const out = processed("penalties", [1, 1, 1, 1], { frequencyPenalty: 0.5, presencePenalty: 0.25 }, [0, 1, 1, 2, 2, 2], 2);
    expect(Array.from(out)).toEqual([1, 1 - 0.5 - 0.25, 1 - 1.5 - 0.25, 1]);
  });

  it("with the repetition penalty, applies it first (llama.cpp's penalties sampler)", () => {
    const out = processed("penalties", [3, -3], { repetitionPenalty: 1.5, frequencyPenalty: 1, presencePenalty: 0 }, [0, 1, 1]);
    expect(Array.from(out)).toEqual([3 / 1.5 - 1, -3 * 1.5 - 2]);
  });
});

describe("logit bias", () => {
  it("adds the bias, and -Infinity bans a token", () => {
    const out = processed("logit_bias", [1, 2, 3], { logitBias: { 0: 2.5, 2: -Infinity } });
    expect(Array.from(out)).toEqual([3.5, 2, -Infinity]);
    const map = processed("logit_bias", [1, 2, 3], { logitBias: new Map([[1, -1]]) });
    expect(Array.from(map)).toEqual([1, 1, 3]);
  });
});

describe("temperature", () => {
  it("divides every logit by T", () => {
    const x = randomLogits(500, 9);
    const out = processed("temperature", x, { temperature: 0.7 });
    for (let i = 0; i < x.length; i++) expect(out[i]).toBe(x[i] / 0.7);
  });
});

describe("top-k", () => {
  it("keeps the k largest", () => {
    const x = randomLogits(2000, 11);
    for (const k of [1, 2, 40, 1999]) {
      expect(keptIds(processed("top_k", x, { topK: k }))).toEqual(byLogit(x).slice(0, k).sort((a, b) => a - b));
    }
  });

  it("keeps every token tied with the k-th (HF: scores < kth value are removed)", () => {
    expect(keptIds(processed("top_k", [1, 3, 2, 3, 2, 0], { topK: 2 }))).toEqual([1, 3]);
    expect(keptIds(processed("top_k", [1, 3, 2, 3, 2, 0], { topK: 3 }))).toEqual([1, 2, 3, 4]);
  });

  it("is a no-op for k = 0 and for k beyond the vocabulary", () => {
    const x = randomLogits(50, 12);
    expect(keptIds(processed("top_k", x, { topK: 0 })).length).toBe(50);
    expect(keptIds(processed("top_k", x, { topK: 100000 })).length).toBe(50);
  });
});

/** HF top-p written out: the smallest prefix (by probability) whose sum reaches p. */
function naiveTopP(x: ArrayLike<number>, p: number): number[] {
  const probs = naiveSoftmax(x);
  const order = byLogit(x);
  const kept: number[] = [];
  let cum = 0;
  for (const id of order) {
    kept.push(id);
    cum += probs[id];
    if (cum >= p) break;
  }
  return kept.sort((a, b) => a - b);
}

describe("top-p", () => {
  it("keeps the smallest set reaching p", () => {
    // probabilities 0.5, 0.25, 0.125, 0.125
    const x = [Math.log(0.5), Math.log(0.25), Math.log(0.125), Math.log(0.125)];
    expect(keptIds(processed("top_p", x, { topP: 0.5 }))).toEqual([0]);
    expect(keptIds(processed("top_p", x, { topP: 0.6 }))).toEqual([0, 1]);
    expect(keptIds(processed("top_p", x, { topP: 0.8 }))).toEqual([0, 1, 2]);
  });

  it("always keeps at least one token", () => {
    expect(keptIds(processed("top_p", randomLogits(100, 13), { topP: 1e-9 })).length).toBe(1);
  });

  it("is a no-op at p = 1", () => {
    expect(keptIds(processed("top_p", randomLogits(100, 14), { topP: 1 })).length).toBe(100);
  });

  it("matches the full sort on a 55296-entry vocabulary, small and large nuclei", () => {
    for (const [sd, p] of [[4, 0.9], [1, 0.5], [0.5, 0.95]] as const) {
      const x = randomLogits(55296, 15 + p * 10, sd);
      expect(keptIds(processed("top_p", x, { topP: p }))).toEqual(naiveTopP(x, p));
    }
  });
});

describe("min-p", () => {
  it("drops tokens below minP times the top probability", () => {
    const x = randomLogits(3000, 17);
    for (const minP of [0.01, 0.1, 0.5, 1]) {
      const probs = naiveSoftmax(x);
      const top = Math.max(...probs);
      const want = probs.flatMap((q, i) => (q >= minP * top ? [i] : []));
      expect(keptIds(processed("min_p", x, { minP }))).toEqual(want);
    }
  });
});

/** HF typical-p written out with a full sort. */
function naiveTypical(x: ArrayLike<number>, mass: number): number[] {
  const probs = naiveSoftmax(x);
  const h = -probs.reduce((a, q) => (q > 0 ? a + q * Math.log(q) : a), 0);
  const dist = probs.map((q) => Math.abs(-Math.log(q) - h));
  const order = Array.from(x, (_, i) => i).sort((a, b) => dist[a] - dist[b] || a - b);
  let cum = 0;
  let last = order.length - 1;
  for (let j = 0; j < order.length; j++) {
    cum += probs[order[j]];
    if (cum >= mass) {
      last = j;
      break;
    }
  }
  const limit = dist[order[last]];
  return order.filter((i) => dist[i] <= limit).sort((a, b) => a - b);
}

describe("typical-p", () => {
  it("matches the full sort, small and 55296-entry vocabularies", () => {
    for (const [n, sd, mass] of [[200, 2, 0.5], [200, 1, 0.9], [55296, 3, 0.3], [55296, 0.7, 0.2], [55296, 0.5, 0.9]] as const) {
      const x = randomLogits(n, 19 + n + mass, sd);
      expect(keptIds(processed("typical_p", x, { typicalP: mass }))).toEqual(naiveTypical(x, mass));
    }
  });
});

describe("chain order", () => {
  it("hf applies the temperature before top-p, llama.cpp after", () => {
    const x = randomLogits(5000, 23);
    const o = { vocabSize: x.length, temperature: 0.5, topK: 0, topP: 0.9, repetitionPenalty: 1, seed: 1 };
    const hf = createSampler({ ...o, order: "hf" }).process(x, [], 0, new Float64Array(x.length));
    const cpp = createSampler({ ...o, order: "llama.cpp" }).process(x, [], 0, new Float64Array(x.length));
    expect(keptIds(hf)).toEqual(naiveTopP(Array.from(x, (v) => v / 0.5), 0.9));
    expect(keptIds(cpp)).toEqual(naiveTopP(x, 0.9));
    expect(keptIds(cpp).length).toBeGreaterThan(keptIds(hf).length);
    for (const i of keptIds(cpp)) expect(cpp[i]).toBe(x[i] / 0.5);
  });

  it("llama.cpp order: typical-p, then top-p over what typical left (unsorted survivors)", () => {
    const x = randomLogits(55296, 31, 0.8);
    const s = createSampler({ vocabSize: x.length, order: "llama.cpp", temperature: 1, topK: 0, typicalP: 0.9, topP: 0.8, repetitionPenalty: 1, seed: 1 });
    const out = s.process(x, [], 0, new Float64Array(x.length));
    const typical = new Set(naiveTypical(x, 0.9));
    const masked = Array.from(x, (v, i) => (typical.has(i) ? v : -Infinity));
    expect(keptIds(out)).toEqual(naiveTopP(masked, 0.8));
  });

  it("the upstream default chain equals penalty -> /T -> top-k -> top-p written out", () => {
    const x = randomLogits(55296, 29, 3);
    const context = [5, 17, 17, 900, 55295, ...byLogit(x).slice(0, 5)];
    const s = createSampler({ vocabSize: x.length, seed: 1 });
    const out = s.process(x, context, 0, new Float64Array(x.length));
    const y = Array.from(x);
    for (const id of new Set(context)) y[id] = y[id] < 0 ? y[id] * 1.1 : y[id] / 1.1;
    const t = y.map((v) => v / 0.2);
    const top40 = byLogit(t).slice(0, 40);
    const masked = t.map((v, i) => (top40.includes(i) ? v : -Infinity));
    expect(keptIds(out)).toEqual(naiveTopP(masked, 0.9));
    for (const i of keptIds(out)) expect(out[i]).toBeCloseTo(t[i], 9);
  });
});
