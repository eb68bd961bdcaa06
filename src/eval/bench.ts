/**
 * Speed measurement in llama-bench's terms: prompt processing (one batch of `promptTokens`
 * from an empty cache) and decode (`genTokens` single-token steps after it), each repeated
 * after a warm-up, reporting the median tokens/s.
 */
import { GGMLType } from "../formats/ggml-types.js";
import type { LlamaModel } from "../model/index.js";
import { mulberry32, type SyntheticModelOptions } from "../convert/synthetic.js";

export interface BenchOptions {
  promptTokens: number;
  genTokens: number;
  repetitions: number;
  seed?: number;
  /** One unmeasured run first (default true). */
  warmup?: boolean;
}

export interface BenchResult {
  promptTokens: number;
  genTokens: number;
  /** Median over the repetitions. */
  promptTokensPerS: number;
  decodeTokensPerS: number;
  runs: Array<{ promptMs: number; decodeMs: number }>;
}

/** The ~125M-parameter LLaMA shape of ../shared/BENCHMARKS.md (dim 768, 12 layers, GQA 12/4, ffn 2048, vocab 32000). */
export function benchmarkModelShape(type: GGMLType): SyntheticModelOptions {
  return { name: `bench-125m-${GGMLType[type].toLowerCase()}`, dim: 768, layers: 12, heads: 12, kvHeads: 4, ffn: 2048, vocab: 32000, ctx: 2048, type, outputType: type, seed: 125 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function benchModel(model: LlamaModel, o: BenchOptions): Promise<BenchResult> {
  const random = mulberry32(o.seed ?? 42);
  const prompt = Array.from({ length: o.promptTokens }, () => 3 + Math.floor(random() * (model.hp.nVocab - 3)));
  const runs: BenchResult["runs"] = [];
  for (let r = o.warmup === false ? 0 : -1; r < o.repetitions; r++) {
    model.reset();
    const t0 = performance.now();
    let logits = await model.evaluate(prompt);
    const t1 = performance.now();
    for (let i = 0; i < o.genTokens; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      logits = await model.evaluate([best]);
    }
    const t2 = performance.now();
    if (r >= 0) runs.push({ promptMs: t1 - t0, decodeMs: t2 - t1 }); // r = -1 is the warm-up
  }
  model.reset();
  if (runs.length === 0) return { promptTokens: o.promptTokens, genTokens: o.genTokens, promptTokensPerS: 0, decodeTokensPerS: 0, runs };
  return {
    promptTokens: o.promptTokens,
    genTokens: o.genTokens,
    promptTokensPerS: median(runs.map((x) => (o.promptTokens / x.promptMs) * 1000)),
    decodeTokensPerS: median(runs.map((x) => (o.genTokens / x.decodeMs) * 1000)),
    runs,
  };
}
