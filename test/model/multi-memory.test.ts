/**
 * Models spread over several wasm32 memories (src/model/plan.ts) compute exactly what one memory
 * computes. Every conformance fixture (test/model/golden-cases.json) and the bundled model are
 * loaded twice, once in one memory and once with one layer per memory and the smallest
 * per-memory limit the plan then accepts, and must give bit-identical logits
 * for a prompt and greedy decode steps, on one thread and on a pool of two.
 */
import { describe, expect, it } from "vitest";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { encodeGguf, openGguf } from "../../src/formats/gguf/index.js";
import { PAGE } from "../../src/kernels/index.js";
import {
  LlamaModel, MemoryPlanError, describePlan, kvTypeFor, planMemory, readHParams,
  type Backend, type KvCacheType,
} from "../../src/model/index.js";
import { syntheticModel, type SyntheticModelOptions } from "../../src/convert/synthetic.js";
import { repoRoot } from "../helpers/shared.js";
import { caseModelOptions, goldenCases, type GoldenCase } from "../helpers/golden-cases.js";

const cases = goldenCases;
const bundled = join(repoRoot, "fixtures/models/chinese-alpaca-tiny-q4_0.gguf");

/** The smallest page-multiple memory limit the plan accepts: spreads the model the most. */
async function tightestLimit(bytes: Uint8Array, nCtx: number, kvCacheType: KvCacheType, threads: number): Promise<number> {
  const file = await openGguf(bytes);
  const hp = readHParams(file.metadata);
  const plan = (limit: number) => planMemory(file, hp, { nCtx, kvType: kvTypeFor(hp, kvCacheType), maxTok: Math.min(64, nCtx), threads, memoryLimit: limit, layersPerMemory: 1 });
  let lo = 16, hi = 65536; // pages: lo fails or is the floor, hi fits
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    try {
      plan(mid * PAGE);
      hi = mid;
    } catch (e) {
      if (!(e instanceof MemoryPlanError)) throw e;
      lo = mid;
    }
  }
  return hi * PAGE;
}

async function run(bytes: Uint8Array, o: { backend: Backend; threads: number; nCtx: number; kv: KvCacheType; memoryLimit?: number }, prompt: number[], steps: number) {
  const spread = o.memoryLimit === undefined ? {} : { memoryLimit: o.memoryLimit, layersPerMemory: 1 };
  const model = await LlamaModel.load(bytes, { backend: o.backend, threads: o.threads, nCtx: o.nCtx, kvCacheType: o.kv, batchSize: 4, ...spread });
  try {
    const out: Float32Array[] = [await model.evaluate(prompt)];
    for (let i = 0; i < steps; i++) {
      const last = out[out.length - 1]!;
      let best = 0;
      for (let j = 1; j < last.length; j++) if (last[j]! > last[best]!) best = j;
      out.push(await model.evaluate([best]));
    }
    return { logits: out, memories: model.plan.memories.length, plan: model.plan };
  } finally {
    await model.dispose();
  }
}

const kvName = (kv: GoldenCase["kv"]): KvCacheType => (kv === "F32" ? "f32" : kv === "F16" ? "f16" : "q8_0");

describe("a model spread over several memories computes what one memory computes", () => {
  for (const c of cases) {
    for (const threads of [1, 2]) {
      it(`${c.name}, ${threads} thread${threads > 1 ? "s" : ""}`, async () => {
        const bytes = await encodeGguf(syntheticModel(caseModelOptions(c)));
        const kv = kvName(c.kv);
        const nCtx = Math.min(c.ctx, 64);
        const limit = await tightestLimit(bytes, nCtx, kv, threads);
        // The prompt runs in micro-batches of 4, so both prefill and decode steps cross memories
        // (as much of it as the 64-token context holds with the 3 decode steps).
        const prompt = c.prompt.slice(0, nCtx - 3);
        const one = await run(bytes, { backend: "wasm", threads, nCtx, kv }, prompt, 3);
        const many = await run(bytes, { backend: "wasm", threads, nCtx, kv, memoryLimit: limit }, prompt, 3);
        expect(one.memories).toBe(1);
        expect(many.memories, describePlan(many.plan).join("\n")).toBeGreaterThanOrEqual(Math.min(3, c.model.layers));
        expect(many.logits).toEqual(one.logits);
      });
    }
  }

  it.skipIf(!existsSync(bundled))("the bundled model over 3+ memories, reference and wasm backends", async () => {
    const bytes = new Uint8Array(readFileSync(bundled));
    const limit = await tightestLimit(bytes, 128, "f16", 2);
    const prompt = [1, 100, 200, 300, 400, 500, 600];
    for (const backend of ["wasm", "reference"] as Backend[]) {
      const threads = backend === "wasm" ? 2 : 1;
      const one = await run(bytes, { backend, threads, nCtx: 128, kv: "f16" }, prompt, 4);
      const many = await run(bytes, { backend, threads, nCtx: 128, kv: "f16", memoryLimit: limit }, prompt, 4);
      expect(many.memories).toBeGreaterThanOrEqual(3);
      expect(many.logits).toEqual(one.logits);
    }
  });
});
