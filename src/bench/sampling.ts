/**
 * Time per Sampler.sample() call on 55296-entry logits (the Chinese-Alpaca / Alpaca-2
 * vocabulary) with a 512-token context, for the upstream default chain, greedy decoding and a
 * few other chains; plus, for scale, the obvious way (sort the whole vocabulary) once.
 * Twelve different logit rows are cycled, so no branch predictor memorises one row.
 */
import { Bench } from "tinybench";
import { createSampler, type SamplerOptions } from "../generate/index.js";
import { Xoshiro128 } from "../generate/rng.js";

const V = 55296;
const ROWS = 12;

/**
 * Logit rows. "peaked": normal(0, 2) with a handful of strong candidates 8-16 above, the shape
 * of a confident model's logits (the nucleus is a few tokens). "flat": normal(0, 1), the worst
 * case for top-p / typical-p without top-k (the nucleus is most of the vocabulary).
 */
function rows(kind: "peaked" | "flat"): Float32Array[] {
  const g = new Xoshiro128(kind === "peaked" ? 2026 : 2027);
  const sd = kind === "peaked" ? 2 : 1;
  return Array.from({ length: ROWS }, () => {
    const x = new Float32Array(V);
    for (let i = 0; i < V; i++) x[i] = sd * Math.sqrt(-2 * Math.log(1 - g.nextFloat())) * Math.cos(2 * Math.PI * g.nextFloat());
    if (kind === "peaked") for (let j = 0; j < 6; j++) x[Math.floor(g.nextFloat() * V)] += 8 + 8 * g.nextFloat();
    return x;
  });
}

const CHAINS: [string, "peaked" | "flat", Partial<SamplerOptions>][] = [
  ["upstream default (rep 1.1, T 0.2, top-k 40, top-p 0.9)", "peaked", {}],
  ["greedy (T 0, rep 1.1)", "peaked", { temperature: 0 }],
  ["llama.cpp order (top-k 40, top-p 0.95, min-p 0.05, T 0.8)", "peaked", { order: "llama.cpp", temperature: 0.8, topP: 0.95, minP: 0.05 }],
  ["T 0.8, top-p 0.9, no top-k", "peaked", { temperature: 0.8, topK: 0 }],
  ["T 0.8, top-p 0.9, no top-k, flat logits", "flat", { temperature: 0.8, topK: 0 }],
  ["T 1, typical-p 0.9, no top-k, flat logits", "flat", { temperature: 1, topK: 0, topP: 1, typicalP: 0.9 }],
  ["T 1, no filters", "peaked", { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1 }],
];

export default async function run(): Promise<void> {
  const logits = { peaked: rows("peaked"), flat: rows("flat") };
  const g = new Xoshiro128(7);
  const context = Array.from({ length: 512 }, () => Math.floor(g.nextFloat() * V));
  const bench = new Bench({ time: 1000, warmupTime: 200 });
  let sink = 0;
  for (const [name, kind, o] of CHAINS) {
    const sampler = createSampler({ vocabSize: V, seed: 1, ...o });
    const set = logits[kind];
    let r = 0;
    bench.add(name, () => {
      sink ^= sampler.sample(set[r++ % ROWS], context, 0);
    });
  }
  let r = 0;
  bench.add("for scale: copy + full sort of the vocabulary", () => {
    const x = logits.peaked[r++ % ROWS];
    const ids = Array.from({ length: V }, (_, i) => i).sort((a, b) => x[b] - x[a]);
    sink ^= ids[0];
  });
  await bench.run();
  console.log(`sample() on ${V}-entry logits, ${context.length}-token context (µs per call: mean ± rme, p50, p99)`);
  console.log("| chain | mean µs | p50 µs | p99 µs | calls/s |");
  console.log("|---|---:|---:|---:|---:|");
  for (const task of bench.tasks) {
    const res = task.result;
    if (res.state !== "completed") throw new Error(`${task.name}: ${res.state}`);
    const l = res.latency;
    const us = (ms: number | undefined): string => ((ms ?? NaN) * 1000).toFixed(1);
    console.log(`| ${task.name} | ${us(l.mean)} ± ${l.rme.toFixed(1)}% | ${us(l.p50)} | ${us(l.p99)} | ${Math.round(res.throughput.mean)} |`);
  }
}
