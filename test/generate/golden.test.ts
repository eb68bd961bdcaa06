/**
 * The sampler chain against fixtures/golden/sampling/golden.json: numpy restatements of HF
 * transformers' processors, the OpenAI penalties, llama.cpp's chain and xoshiro128**, made by
 * tools/golden-sampling.py. Same surviving ids exactly; values to 1e-6 (relative above 1).
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createSampler, Xoshiro128, type SamplerStage } from "../../src/generate/index.js";
import { repoRoot } from "../helpers/shared.js";

interface GoldenParams {
  repetition_penalty?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  penalty_last_n?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  typical_p?: number;
  logit_bias?: Record<string, number>;
}

interface GoldenCase {
  name: string;
  input: number;
  stages: SamplerStage[];
  params: GoldenParams;
  context: number[];
  prompt_length: number;
  kept: number[];
  values: number[] | null;
}

interface Golden {
  inputs: { name: string; logits: (number | null)[] }[];
  cases: GoldenCase[];
  rng: { seed: string; uint32: number[]; float: number[] }[];
}

const golden = JSON.parse(readFileSync(join(repoRoot, "fixtures/golden/sampling/golden.json"), "utf8")) as Golden;
const inputs = golden.inputs.map((i) => Float32Array.from(i.logits, (v) => (v === null ? -Infinity : v)));

describe("sampler chain vs numpy goldens", () => {
  it("has cases for every processor", () => {
    const stages = new Set(golden.cases.flatMap((c) => c.stages));
    for (const s of ["penalties", "temperature", "top_k", "top_p", "min_p", "typical_p", "logit_bias"]) expect(stages).toContain(s);
    expect(golden.cases.length).toBeGreaterThan(100);
  });

  it.each(golden.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const logits = inputs[c.input];
    const p = c.params;
    const sampler = createSampler({
      vocabSize: logits.length,
      order: c.stages,
      temperature: p.temperature ?? 1,
      topK: p.top_k ?? 0,
      topP: p.top_p ?? 1,
      minP: p.min_p ?? 0,
      typicalP: p.typical_p ?? 1,
      repetitionPenalty: p.repetition_penalty ?? 1,
      frequencyPenalty: p.frequency_penalty ?? 0,
      presencePenalty: p.presence_penalty ?? 0,
      penaltyLastN: p.penalty_last_n ?? Infinity,
      logitBias: p.logit_bias,
      seed: 0,
    });
    const out = sampler.process(logits, c.context, c.prompt_length, new Float64Array(logits.length));
    const kept: number[] = [];
    out.forEach((v, i) => {
      if (v > -Infinity) kept.push(i);
    });
    expect(kept).toEqual(c.kept);
    const want = c.values ?? c.kept.map((i) => logits[i]);
    kept.forEach((id, j) => {
      const tol = 1e-6 * Math.max(1, Math.abs(want[j]));
      if (!(Math.abs(out[id] - want[j]) <= tol)) expect.fail(`id ${id}: ${out[id]} vs golden ${want[j]}`);
    });
  });
});

describe("xoshiro128** vs the Python restatement", () => {
  it.each(golden.rng.map((r) => [r.seed, r] as const))("seed %s", (seed, r) => {
    const big = BigInt(seed);
    const g = new Xoshiro128(big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big);
    expect(Array.from({ length: 8 }, () => g.nextUint32())).toEqual(r.uint32);
    expect(Array.from({ length: 4 }, () => g.nextFloat())).toEqual(r.float);
  });
});
