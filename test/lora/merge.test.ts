/**
 * LoRA merging against an independent numpy implementation of the upstream low-memory merge
 * (tools/lora-hf-fixtures.py check-merge): stacked adapters, modules_to_save with the vocabulary
 * growing 32000 -> 49953 -> 49954, fan_in_fan_out, rsLoRA, bf16 / f16 / f32 inputs, every output
 * format. Tolerances are in units of the output dtype's last place (ulps).
 */
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { mergeLoraFiles } from "../../src/lora/index.js";
import { verifyManifest } from "../../src/convert/index.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { LlamaModel } from "../../src/model/index.js";
import { main } from "../../src/cli/index.js";
import { checkMerge, py, tempDir, writeTokenizer } from "./helpers.js";

describe("merge-lora: Chinese-Alpaca-Plus style stacking (32000 -> 49953 -> 49954)", () => {
  const root = tempDir();
  const base = join(root, "base");
  const llamaPlus = join(root, "llama-plus");
  const alpacaPlus = join(root, "alpaca-plus");
  // An f16 base in two torch .bin shards, as Meta's HF conversion ships it.
  py("model", base, "--dtype", "F16", "--format", "bin", "--shards", 2, "--vocab", 32000, "--hidden", 16, "--ffn", 32, "--heads", 4, "--kv-heads", 4, "--seed", 11);
  writeTokenizer(base, 32000);
  py("adapter", llamaPlus, "--base", base, "--r", 4, "--alpha", 8, "--modules-to-save", "embed_tokens,lm_head", "--vocab", 49953, "--format", "bin", "--dtype", "F16", "--seed", 12, "--scale", 0.1);
  writeTokenizer(llamaPlus, 49953);
  py("adapter", alpacaPlus, "--base", base, "--r", 8, "--alpha", 32, "--modules-to-save", "embed_tokens,lm_head", "--vocab", 49954, "--format", "safetensors", "--dtype", "F16", "--seed", 13, "--targets", "q_proj,v_proj,gate_proj", "--scale", 0.1);
  writeTokenizer(alpacaPlus, 49953, true);

  it("writes HF shards that match numpy element-wise (within one f16 step)", async () => {
    const out = join(root, "merged-hf");
    const result = await mergeLoraFiles({ base, adapters: [llamaPlus, alpacaPlus], out, format: "hf" });
    expect(result.report.vocabBefore).toBe(32000);
    expect(result.report.vocabAfter).toBe(49954);
    expect(result.report.merged).toBeGreaterThan(0);
    expect(result.report.adapters.map((a) => a.scalings)).toEqual([[2], [4]]);
    const files = readdirSync(out).sort();
    expect(files).toContain("model-00001-of-00002.safetensors");
    expect(files).toContain("model-00002-of-00002.safetensors");
    expect(files).toContain("model.safetensors.index.json");
    expect(files).toContain("SHA256SUMS");
    expect(files).toContain("added_tokens.json"); // the last adapter's tokenizer
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.vocab_size).toBe(49954);
    const check = checkMerge(["--base", base, "--lora", llamaPlus, "--lora", alpacaPlus, "--merged", out, "--format", "hf", "--max-ulps", 1]);
    expect(check.result.mismatched).toEqual([]);
    expect(check.result.shapes["model.embed_tokens.weight"]).toEqual([49954, 16]);
    expect(check.ok).toBe(true);
    const verify = await verifyManifest(out);
    expect(verify.bad).toEqual([]);
    expect(verify.ok.length).toBe(files.length - 1);
  });

  it("writes Meta consolidated.00.pth + params.json (wq/wk in Meta's RoPE layout)", async () => {
    const out = join(root, "merged-pth");
    await mergeLoraFiles({ base, adapters: [llamaPlus, alpacaPlus], out, format: "pth" });
    expect(existsSync(join(out, "consolidated.00.pth"))).toBe(true);
    const params = JSON.parse(readFileSync(join(out, "params.json"), "utf8"));
    expect(params).toMatchObject({ dim: 16, n_heads: 4, n_layers: 2, vocab_size: -1 });
    const check = checkMerge(["--base", base, "--lora", llamaPlus, "--lora", alpacaPlus, "--merged", out, "--format", "pth", "--max-ulps", 1]);
    expect(check.result.mismatched).toEqual([]);
  });

  it("writes a GGUF with the merged tokenizer that zh-llama runs", async () => {
    const out = join(root, "merged.gguf");
    const result = await mergeLoraFiles({ base, adapters: [llamaPlus, alpacaPlus], out, format: "gguf" });
    expect(result.files).toEqual([out, `${out}.sha256`]);
    const check = checkMerge(["--base", base, "--lora", llamaPlus, "--lora", alpacaPlus, "--merged", out, "--format", "gguf", "--max-ulps", 1]);
    expect(check.result.mismatched).toEqual([]);
    const gguf = await openGguf(out);
    const tokens = gguf.metadata["tokenizer.ggml.tokens"] as string[];
    expect(tokens.length).toBe(49954);
    expect(tokens[49953]).toBe("[PAD]");
    expect(gguf.metadata["tokenizer.ggml.padding_token_id"]).toBe(49953);
    await gguf.close();
    const model = await LlamaModel.load(out, { backend: "reference", nCtx: 16 });
    const logits = await model.evaluate([1, 300, 40000]);
    expect(logits.length).toBe(49954);
    expect(logits.every((x) => Number.isFinite(x))).toBe(true);
    await model.dispose();
    // And through the CLI, as a user would: zh-llama run -m merged.gguf.
    let stdout = "";
    const code = await main(["run", "-m", out, "--prompt-ids", "1,300,40000", "-n", "3", "--temp", "0", "--json"], { stdout: (t) => void (stdout += t), stderr: () => undefined, isTty: false });
    expect(code).toBe(0);
    expect(JSON.parse(stdout).generated_ids).toHaveLength(3);
    expect((await verifyManifest(out)).bad).toEqual([]);
  });
});

describe("merge-lora: adapter variants", () => {
  it("fan_in_fan_out + rsLoRA on bf16 weights", async () => {
    const root = tempDir();
    const base = join(root, "base");
    const lora = join(root, "lora");
    py("model", base, "--dtype", "BF16", "--vocab", 64, "--hidden", 32, "--ffn", 64, "--heads", 4, "--kv-heads", 2, "--seed", 21);
    py("adapter", lora, "--base", base, "--r", 16, "--alpha", 8, "--fan-in-fan-out", "--rslora", "--targets", "q_proj,o_proj", "--dtype", "BF16", "--seed", 22);
    const out = join(root, "out");
    const result = await mergeLoraFiles({ base, adapters: [lora], out });
    expect(result.report.adapters[0]!.scalings).toEqual([8 / 4]);
    const check = checkMerge(["--base", base, "--lora", lora, "--merged", out, "--format", "hf", "--max-ulps", 1]);
    expect(check.result.mismatched).toEqual([]);
    expect(check.result.tensors).toBeGreaterThan(10);
  });

  it("f32 weights, two adapters with PEFT adapter names, exact to the float32 rounding", async () => {
    const root = tempDir();
    const base = join(root, "base");
    const a = join(root, "a");
    const b = join(root, "b");
    py("model", base, "--dtype", "F32", "--vocab", 64, "--hidden", 32, "--ffn", 48, "--seed", 31, "--compress");
    py("adapter", a, "--base", base, "--r", 4, "--alpha", 16, "--seed", 32, "--adapter-name");
    py("adapter", b, "--base", base, "--r", 2, "--alpha", 2, "--seed", 33, "--format", "bin", "--targets", "k_proj,down_proj,up_proj");
    const out = join(root, "out");
    await mergeLoraFiles({ base, adapters: [a, b], out });
    const check = checkMerge(["--base", base, "--lora", a, "--lora", b, "--merged", out, "--format", "hf", "--max-ulps", 0]);
    expect(check.result.mismatched).toEqual([]);
    expect(check.result.max_ulps).toBe(0);
  });

  it("carries the last adapter's config.json (rope scaling of the 16K models) and reports memory", async () => {
    const root = tempDir();
    const base = join(root, "base");
    const lora = join(root, "lora");
    py("model", base, "--vocab", 64, "--seed", 41);
    py("adapter", lora, "--base", base, "--seed", 42, "--config", JSON.stringify({ max_position_embeddings: 1024, rope_scaling: { type: "linear", factor: 4.0 } }));
    writeTokenizer(lora, 64);
    const out = join(root, "out.gguf");
    const result = await mergeLoraFiles({ base, adapters: [lora], out, format: "gguf", outtype: "f16" });
    expect(result.peakRssBytes).toBeGreaterThan(0);
    expect(result.modelBytes).toBeGreaterThan(0);
    const gguf = await openGguf(out);
    expect(gguf.metadata["llama.rope.scaling.type"]).toBe("linear");
    expect(gguf.metadata["llama.rope.scaling.factor"]).toBe(4);
    expect(gguf.metadata["llama.context_length"]).toBe(1024);
    await gguf.close();
  });
});

describe("merge-lora: other bases and layouts", () => {
  it("merges into a GGUF base (seen through export-hf's inverse permutation)", async () => {
    const root = tempDir();
    const hf = join(root, "hf");
    const lora = join(root, "lora");
    py("model", hf, "--vocab", 300, "--hidden", 32, "--ffn", 48, "--heads", 4, "--kv-heads", 2, "--seed", 51);
    writeTokenizer(hf, 300);
    py("adapter", lora, "--base", hf, "--r", 4, "--alpha", 8, "--seed", 52);
    const { convertHfToGguf } = await import("../../src/convert/index.js");
    const gguf = join(root, "base.gguf");
    await convertHfToGguf(hf, gguf, { outtype: "f32" });
    const out = join(root, "out");
    await mergeLoraFiles({ base: gguf, adapters: [lora], out });
    const check = checkMerge(["--base", hf, "--lora", lora, "--merged", out, "--format", "hf", "--max-ulps", 0]);
    expect(check.result.mismatched).toEqual([]);
    expect(existsSync(join(out, "tokenizer.model"))).toBe(true);
  });

  it("splits Meta .pth across model-parallel shards as upstream does (uneven vocab split)", async () => {
    const root = tempDir();
    const hf = join(root, "hf");
    py("model", hf, "--vocab", 301, "--hidden", 32, "--ffn", 48, "--heads", 4, "--seed", 53, "--dtype", "F16");
    const { openHfModel, writeModelAsMeta } = await import("../../src/convert/index.js");
    const { openTorchCheckpoint } = await import("../../src/formats/pytorch.js");
    const one = join(root, "one");
    const two = join(root, "two");
    const source = await openHfModel(hf);
    await writeModelAsMeta(source, one);
    await writeModelAsMeta(source, two, { shards: 2 });
    await source.close();
    const whole = await openTorchCheckpoint(join(one, "consolidated.00.pth"));
    const a = await openTorchCheckpoint(join(two, "consolidated.00.pth"));
    const b = await openTorchCheckpoint(join(two, "consolidated.01.pth"));
    expect(a.tensor("output.weight")!.shape).toEqual([150, 32]);
    expect(b.tensor("output.weight")!.shape).toEqual([151, 32]);
    expect(a.tensor("tok_embeddings.weight")!.shape).toEqual([301, 16]);
    expect(a.tensor("layers.0.attention.wo.weight")!.shape).toEqual([32, 16]);
    expect(a.tensor("layers.0.attention.wq.weight")!.shape).toEqual([16, 32]);
    expect(a.tensor("norm.weight")!.shape).toEqual([32]);
    // Concatenating the shards gives the single-shard tensors back.
    for (const info of whole.tensors) {
      const full = await whole.readTensor(info.name);
      const pa = await a.readTensor(info.name);
      const pb = await b.readTensor(info.name);
      const sa = a.tensor(info.name)!.shape;
      if (sa.join() === info.shape.join()) {
        expect(Buffer.compare(Buffer.from(pa), Buffer.from(full))).toBe(0);
        expect(Buffer.compare(Buffer.from(pb), Buffer.from(full))).toBe(0);
      } else if (sa[0] !== info.shape[0]) {
        expect(Buffer.compare(Buffer.concat([pa, pb]), Buffer.from(full)), info.name).toBe(0);
      } else {
        const rows = info.shape[0]!;
        const ca = sa[1]! * 2;
        const cb = b.tensor(info.name)!.shape[1]! * 2;
        const joined = Buffer.alloc(full.length);
        for (let r = 0; r < rows; r++) {
          Buffer.from(pa.subarray(r * ca, (r + 1) * ca)).copy(joined, r * (ca + cb));
          Buffer.from(pb.subarray(r * cb, (r + 1) * cb)).copy(joined, r * (ca + cb) + ca);
        }
        expect(Buffer.compare(joined, Buffer.from(full)), info.name).toBe(0);
      }
    }
    for (const f of [whole, a, b]) await f.close();
  });
});
