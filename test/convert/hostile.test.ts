/**
 * Issue 19: `convert` must refuse a model that lacks tensors its config.json calls for (a
 * truncated or partial checkpoint: once it wrote a GGUF with 1 of the 111 tensors), or has one
 * of the wrong shape, before writing anything.
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { convertHfToGguf } from "../../src/convert/index.js";
import { FormatError } from "../../src/formats/errors.js";
import { writeTorchCheckpoint } from "../../src/formats/pytorch.js";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import { tempDir, writeTokenizer } from "../lora/helpers.js";

const CONFIG = { architectures: ["LlamaForCausalLM"], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 300, rms_norm_eps: 1e-6 };

/** Every tensor of the 2-layer CONFIG model, HF names and shapes. */
function fullModel(): Record<string, number[]> {
  const t: Record<string, number[]> = { "model.embed_tokens.weight": [300, 8], "model.norm.weight": [8], "lm_head.weight": [300, 8] };
  for (let l = 0; l < 2; l++) {
    for (const n of ["q_proj", "k_proj", "v_proj", "o_proj"]) t[`model.layers.${l}.self_attn.${n}.weight`] = [8, 8];
    t[`model.layers.${l}.mlp.gate_proj.weight`] = [16, 8];
    t[`model.layers.${l}.mlp.up_proj.weight`] = [16, 8];
    t[`model.layers.${l}.mlp.down_proj.weight`] = [8, 16];
    t[`model.layers.${l}.input_layernorm.weight`] = [8];
    t[`model.layers.${l}.post_attention_layernorm.weight`] = [8];
  }
  return t;
}

async function hfDir(tensors: Record<string, number[]>, format: "safetensors" | "bin"): Promise<string> {
  const dir = tempDir("zh-convert-hostile-");
  writeFileSync(join(dir, "config.json"), JSON.stringify(CONFIG));
  writeTokenizer(dir, 300);
  const entries = Object.entries(tensors);
  if (format === "safetensors") {
    await writeSafetensors(join(dir, "model.safetensors"), Object.fromEntries(entries.map(([name, shape]) => [name, { dtype: "F32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) }])));
  } else {
    await writeTorchCheckpoint(join(dir, "pytorch_model.bin"), entries.map(([name, shape]) => ({ name, dtype: "F32" as const, shape, data: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) })));
  }
  return dir;
}

describe("convert refuses an incomplete model before writing", () => {
  for (const format of ["safetensors", "bin"] as const) {
    it(`one tensor of 21 (${format})`, async () => {
      const dir = await hfDir({ "model.embed_tokens.weight": [300, 8] }, format);
      const out = join(dir, "out.gguf");
      const error = await convertHfToGguf(dir, out).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FormatError);
      expect((error as Error).message).toMatch(/missing 19 of the 20 tensors a 2-layer model needs: model\.norm\.weight, model\.layers\.0\.self_attn\.q_proj\.weight, .*nothing was written/);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dir).filter((n) => n.startsWith("out.gguf"))).toEqual([]);
    });
  }

  it("one layer's tensor missing", async () => {
    const t = fullModel();
    delete t["model.layers.1.mlp.down_proj.weight"];
    const dir = await hfDir(t, "safetensors");
    await expect(convertHfToGguf(dir, join(dir, "out.gguf"))).rejects.toThrow(/missing 1 of the 20 tensors a 2-layer model needs: model\.layers\.1\.mlp\.down_proj\.weight/);
    expect(existsSync(join(dir, "out.gguf"))).toBe(false);
  });

  it("a tensor of another shape than config.json says", async () => {
    const dir = await hfDir({ ...fullModel(), "model.layers.0.mlp.up_proj.weight": [8, 16] }, "safetensors");
    await expect(convertHfToGguf(dir, join(dir, "out.gguf"))).rejects.toThrow(/"model\.layers\.0\.mlp\.up_proj\.weight" has shape \[8, 16\]; config\.json calls for \[16, 8\]/);
  });

  it("the complete model converts (tied embeddings too)", async () => {
    const t = fullModel();
    delete t["lm_head.weight"];
    const dir = await hfDir(t, "bin");
    const report = await convertHfToGguf(dir, join(dir, "out.gguf"), { outtype: "f32" });
    expect(report.tensors).toBe(20);
  });
});
