/**
 * The trainer's forward pass is the inference graph: a model initialised by the trainer and
 * saved as F32 GGUF gives the same logits in LlamaModel (reference kernels, F32 KV cache) as
 * in the trainer itself.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LlamaModel } from "../../src/model/index.js";
import { makeConfig } from "../../src/train/config.js";
import { initModel, loadModel, saveModelGguf } from "../../src/train/io.js";
import { readFileSync } from "node:fs";
import { hasShared, sharedPath } from "../helpers/shared.js";

const cases = [
  { name: "MHA, separate lm_head", cfg: makeConfig({ nVocab: 97, nEmbd: 32, nLayer: 2, nHead: 4, nFf: 48, nCtx: 64 }) },
  { name: "GQA, tied embeddings", cfg: makeConfig({ nVocab: 61, nEmbd: 32, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 40, nCtx: 64, tiedEmbeddings: true }) },
  { name: "vocabulary of 2100 (three blocks of lm_head, the last partial)", cfg: makeConfig({ nVocab: 2100, nEmbd: 16, nLayer: 1, nHead: 2, nFf: 24, nCtx: 64 }) },
  { name: "MQA, rope base 1e4, eps 1e-6", cfg: makeConfig({ nVocab: 50, nEmbd: 48, nLayer: 1, nHead: 6, nHeadKv: 1, nFf: 64, nCtx: 64, rmsEps: 1e-6 }) },
];

describe("trainer forward = LlamaModel forward", () => {
  for (const { name, cfg } of cases) {
    it(name, async () => {
      const T = 12;
      const model = await initModel(cfg, { batch: 1, seq: T }, 1234);
      // Larger weights than the 0.02 default so the logits are far from uniform.
      for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] *= 10;
      for (const p of model.base.params) if (p.kind === "norm") for (let i = 0; i < p.size; i++) p.value.data[i] = 0.5 + ((i * 7) % 11) / 10;
      const ids = Array.from({ length: T }, (_, i) => (i * 13 + 5) % cfg.nVocab);
      const mine = model.allLogits(ids);
      const dir = mkdtempSync(join(tmpdir(), "zh-train-"));
      try {
        const path = join(dir, "m.gguf");
        await saveModelGguf(path, model);
        const ref = await LlamaModel.load(path, { backend: "reference", kvCacheType: "f32", nCtx: 32 });
        const theirs = await ref.evaluate(ids, { allLogits: true });
        await ref.dispose();
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < mine.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(mine[i]! - theirs[i]!));
          maxAbs = Math.max(maxAbs, Math.abs(theirs[i]!));
        }
        expect(maxAbs).toBeGreaterThan(0.5);
        expect(maxDiff).toBeLessThan(1e-4);
        // And back: the GGUF loads into the trainer unchanged.
        const { model: again } = await loadModel(path, { batch: 1, seq: T }, 1);
        expect(Array.from(again.allLogits(ids))).toEqual(Array.from(mine));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("vocabulary growth (a tokenizer extended with Chinese pieces)", () => {
  it("keeps the old rows and starts new embedding and lm_head rows at the mean of the old ones", async () => {
    const cfg = makeConfig({ nVocab: 40, nEmbd: 16, nLayer: 1, nHead: 2, nFf: 24, nCtx: 16 });
    const small = await initModel(cfg, { batch: 1, seq: 4 }, 8);
    const dir = mkdtempSync(join(tmpdir(), "zh-grow-"));
    try {
      await saveModelGguf(join(dir, "m.gguf"), small);
      const { model } = await loadModel(join(dir, "m.gguf"), { batch: 1, seq: 4 }, 1, { nVocab: 55 });
      expect(model.cfg.nVocab).toBe(55);
      for (const name of ["token_embd.weight", "output.weight"]) {
        const before = small.base.get(name).value.data, after = model.base.get(name).value.data;
        expect(Array.from(after.subarray(0, 40 * 16))).toEqual(Array.from(before));
        for (let j = 0; j < 16; j++) {
          let mean = 0;
          for (let r = 0; r < 40; r++) mean += before[r * 16 + j]! / 40;
          expect(after[54 * 16 + j]).toBeCloseTo(mean, 6);
        }
      }
      // Given the pieces, a new piece starts at the mean of the old pieces it is made of.
      const pieces = [...Array.from({ length: 38 }, (_, i) => `p${i}`), "a", "b", ...Array.from({ length: 14 }, (_, i) => `n${i}`), "ab"];
      const grown = (await loadModel(join(dir, "m.gguf"), { batch: 1, seq: 4 }, 1, { nVocab: 55, pieces })).model;
      for (const name of ["token_embd.weight", "output.weight"]) {
        const before = small.base.get(name).value.data, after = grown.base.get(name).value.data;
        for (let j = 0; j < 16; j++) expect(after[54 * 16 + j]).toBeCloseTo((before[38 * 16 + j]! + before[39 * 16 + j]!) / 2, 6);
      }
      await grown.dispose();
      await expect(loadModel(join(dir, "m.gguf"), { batch: 1, seq: 4 }, 1, { nVocab: 30 })).rejects.toThrow(/cannot shrink/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!hasShared)("trainer forward vs llama.cpp (../shared/reference)", () => {
  it("llama-d64-l2-h4kv1-synthvocab-f32: last-position logits", async () => {
    const name = "llama-d64-l2-h4kv1-synthvocab-f32";
    const c = JSON.parse(readFileSync(sharedPath(`reference/${name}.json`), "utf8")) as { prompt: { tokens: number[] }; first_step: { logits_f32le_base64: string } };
    const bytes = Buffer.from(c.first_step.logits_f32le_base64, "base64");
    const expected = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const ids = c.prompt.tokens;
    const { model } = await loadModel(sharedPath(`reference/${name}.gguf`), { batch: 1, seq: ids.length }, 1);
    const logits = model.allLogits(ids);
    const V = model.cfg.nVocab;
    let maxDiff = 0;
    for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[(ids.length - 1) * V + i]! - expected[i]!));
    expect(maxDiff).toBeLessThan(1e-3);
  });
});
