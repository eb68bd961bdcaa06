/**
 * How the threads of a step share its ops (src/runtime/executor.ts):
 *   - a matmul's rows: fixed contiguous slices, then the rest in chunks from a per-op counter
 *     (sharedRows): every row exactly once, whatever the thread count;
 *   - decoding: every thread rounds the token and normalises it itself, the token's RoPE heads
 *     and its f16 cache stores are split;
 * and none of it changes a bit: 2 and 3 threads give the one-thread logits, prompt and every
 * decode step, on models of the types whose kernels lay rows out in groups (Q4_0, Q4_K, Q6_K)
 * and one that does not (Q8_0), with the default f16 cache.
 */
import { describe, expect, it } from "vitest";
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { LlamaModel } from "../../src/model/index.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { sharedRows } from "../../src/runtime/executor.js";

describe("sharedRows: a matmul's rows among n threads", () => {
  it("fixed slices and counter chunks cover every row once, in whole groups of 8", () => {
    for (const rows of [8, 32, 40, 256, 264, 768, 4096, 11008, 32000, 55296]) {
      for (const n of [2, 3, 4, 8]) {
        const { fixed, chunk } = sharedRows(rows, n);
        expect(fixed % 8).toBe(0);
        expect(chunk % 8).toBe(0);
        expect(fixed).toBeGreaterThanOrEqual(0);
        expect(fixed).toBeLessThanOrEqual(rows);
        // the executor's fixed slices, then chunks handed out in counter order
        const seen = new Uint8Array(rows);
        for (let t = 0; t < n; t++) {
          const f0 = Math.floor(((fixed / 8) * t) / n) * 8, f1 = t === n - 1 ? fixed : Math.floor(((fixed / 8) * (t + 1)) / n) * 8;
          for (let r = f0; r < f1; r++) seen[r]!++;
        }
        for (let r0 = fixed; r0 < rows; r0 += chunk) for (let r = r0; r < Math.min(rows, r0 + chunk); r++) seen[r]!++;
        expect(seen.every((c) => c === 1)).toBe(true);
        // at least seven eighths stay in fixed slices once there are enough rows to share
        if (rows >= 64 * n) expect(fixed).toBeGreaterThanOrEqual(Math.floor((rows * 3) / 4));
      }
    }
  });
});

/** Prompt logits (every position) and greedy decode steps' logits. */
async function run(bytes: Uint8Array, threads: number) {
  const model = await LlamaModel.load(bytes, { nCtx: 96, threads });
  try {
    const prompt = await model.evaluate(Array.from({ length: 19 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 37) % 290))), { allLogits: true });
    const steps: Float32Array[] = [];
    let logits = prompt.slice(prompt.length - model.hp.nVocab);
    for (let s = 0; s < 6; s++) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      logits = await model.evaluate([best]);
      steps.push(logits);
    }
    return { prompt, steps };
  } finally {
    await model.dispose();
  }
}

describe("threads share a step without changing a bit", () => {
  const cases: Array<[string, GGMLType, number]> = [
    ["Q4_0 (grouped rows)", GGMLType.Q4_0, 256],
    ["Q4_K (grouped rows)", GGMLType.Q4_K, 256],
    ["Q6_K (grouped rows)", GGMLType.Q6_K, 256],
    ["Q8_0", GGMLType.Q8_0, 256],
  ];
  for (const [name, type, dim] of cases) {
    it(`${name}: 2 and 3 threads give the one-thread logits, prompt and decode`, async () => {
      // rows enough for the counter's chunks (ffn 1024: 896 fixed rows and chunks of 32 at 2 threads)
      const bytes = await encodeGguf(syntheticModel({ dim, layers: 2, heads: 4, kvHeads: 2, ffn: 1024, vocab: 300, type, seed: 5 }));
      const one = await run(bytes, 1);
      for (const threads of [2, 3]) {
        const many = await run(bytes, threads);
        expect(Array.from(many.prompt)).toEqual(Array.from(one.prompt));
        many.steps.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(one.steps[i]!)));
      }
    }, 120_000);
  }
});
