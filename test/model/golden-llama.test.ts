/**
 * Conformance with llama.cpp on zh-llama's synthetic models (fixtures/golden/llama, made by
 * tools/golden-llama.mjs with llama.cpp's prebuilt CPU build). Every case regenerates its
 * model with the deterministic generator, checks it is byte-identical to the file llama.cpp
 * ran, and compares:
 *   - the last prompt position's full logits: max |difference| below LOGIT_TOLERANCE;
 *   - a greedy continuation: identical, except that a divergence is accepted at a step where
 *     llama.cpp's own top-1/top-2 gap is below GAP_TOLERANCE (a near tie that float rounding
 *     order may legitimately flip); the comparison stops there.
 */
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { LlamaModel, syntheticModel, type Backend, type SyntheticModelOptions } from "../../src/model/index.js";
import { repoRoot } from "../helpers/shared.js";

const LOGIT_TOLERANCE = 1e-3;
const GAP_TOLERANCE = 1e-3;

interface GoldenCase {
  name: string;
  model: Omit<SyntheticModelOptions, "type"> & { type: keyof typeof GGMLType };
  kv: "F32" | "F16";
  ctx: number;
  prompt: number[];
  steps: number;
}
interface Golden {
  gguf_sha256: string;
  first_logits_f32le_base64: string;
  greedy: Array<{ token: number; gap: number }>;
}

const cases = JSON.parse(readFileSync(join(repoRoot, "test/model/golden-cases.json"), "utf8")) as GoldenCase[];

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

describe("conformance with llama.cpp (fixtures/golden/llama)", () => {
  for (const c of cases) {
    const goldenPath = join(repoRoot, "fixtures/golden/llama", `${c.name}.json`);
    for (const backend of ["wasm", "reference"] as Backend[]) {
      it.skipIf(!existsSync(goldenPath))(`${c.name} (${backend})`, async () => {
        const golden = JSON.parse(readFileSync(goldenPath, "utf8")) as Golden;
        const bytes = await encodeGguf(syntheticModel({ ...c.model, type: GGMLType[c.model.type] }));
        expect(createHash("sha256").update(bytes).digest("hex"), "the generator no longer makes the file llama.cpp ran: rerun tools/golden-llama.mjs").toBe(golden.gguf_sha256);
        const model = await LlamaModel.load(bytes, { backend, nCtx: c.ctx, kvCacheType: c.kv === "F16" ? "f16" : "f32" });
        let logits = await model.evaluate(c.prompt);
        const ref = Buffer.from(golden.first_logits_f32le_base64, "base64");
        const expected = new Float32Array(ref.buffer.slice(ref.byteOffset, ref.byteOffset + ref.length));
        let maxDiff = 0;
        for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - expected[i]!));
        expect(maxDiff).toBeLessThan(LOGIT_TOLERANCE);
        // The reference backend is slow: a short continuation is enough to exercise the cache.
        const steps = backend === "reference" ? 8 : golden.greedy.length;
        let agreed = 0;
        for (let step = 0; step < steps; step++) {
          const ours = argmax(logits);
          const theirs = golden.greedy[step]!;
          if (ours !== theirs.token) {
            expect(theirs.gap, `step ${step}: zh-llama chose ${ours}, llama.cpp ${theirs.token} with a clear margin`).toBeLessThan(GAP_TOLERANCE);
            break;
          }
          agreed++;
          if (step < steps - 1) logits = await model.evaluate([ours]);
        }
        console.log(`${c.name} (${backend}): max |logit diff| ${maxDiff.toExponential(2)}, greedy agreed on ${agreed}/${steps} steps`);
        await model.dispose();
      });
    }
  }
});
