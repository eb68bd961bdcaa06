/**
 * The forward pass against llama.cpp's own outputs on the models in ../shared/reference
 * (deterministic random weights written by gguf-py; logits and greedy continuations from
 * node-llama-cpp 3.22.1's prebuilt CPU build, F32 KV cache).
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { LlamaModel, type Backend } from "../../src/model/index.js";
import { hasShared, sharedPath } from "../helpers/shared.js";

interface ReferenceCase {
  prompt: { tokens: number[] };
  first_step: { logits_f32le_base64: string; argmax: number };
  greedy: { tokens: number[]; steps: Array<{ gap_top1_top2?: number; gap?: number }> };
}

const cases = ["llama-d64-l2-h4kv1-synthvocab-f32", "llama-d128-l4-h4kv2-tied-q4_0", "mixtral-d128-l2-e8top2-q8_0"];

function referenceLogits(c: ReferenceCase): Float32Array {
  const bytes = Buffer.from(c.first_step.logits_f32le_base64, "base64");
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

describe.skipIf(!hasShared)("forward pass vs llama.cpp (../shared/reference)", () => {
  for (const backend of ["reference", "wasm"] as Backend[]) {
    for (const name of cases) {
      it(`${name} (${backend})`, async () => {
        const c = JSON.parse(readFileSync(sharedPath(`reference/${name}.json`), "utf8")) as ReferenceCase;
        const model = await LlamaModel.load(sharedPath(`reference/${name}.gguf`), { backend, kvCacheType: "f32", nCtx: 64 });
        const logits = await model.evaluate(c.prompt.tokens);
        const expected = referenceLogits(c);
        let maxDiff = 0;
        for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - expected[i]!));
        console.log(`${name} ${backend}: first-step max |logit diff| = ${maxDiff.toExponential(2)}`);
        expect(maxDiff).toBeLessThan(1e-3);
        // Greedy continuation, token by token.
        const generated: number[] = [];
        let next = logits;
        for (let step = 0; step < c.greedy.tokens.length; step++) {
          let best = 0;
          for (let i = 1; i < next.length; i++) if (next[i]! > next[best]!) best = i;
          generated.push(best);
          if (best !== c.greedy.tokens[step]) break;
          next = await model.evaluate([best]);
        }
        expect(generated).toEqual(c.greedy.tokens);
        await model.dispose();
      });
    }
  }
});
