/**
 * HF <-> GGUF conversion. The checks that matter are against references no one here wrote:
 * a float64 numpy forward pass of the HF weights with transformers' rotate-half RoPE
 * (tools/lora-hf-fixtures.py forward) must give the logits zh-llama computes on the converted
 * GGUF (which uses GGUF's adjacent-pair layout, so a wrong Q/K permutation shows), ggml's own
 * reader must accept the file, and llama.cpp's logits on ../shared's gguf-py-written model must
 * come out of the numpy pass over our HF export.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { convertHfToGguf, exportGgufToHf, openHfModel } from "../../src/convert/index.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { openSafetensors } from "../../src/formats/safetensors.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { py, tempDir, writeTokenizer } from "../lora/helpers.js";
import { lastLogits, maxAbsDiff } from "../helpers/logits.js";
import { hasShared, repoRoot, sharedPath } from "../helpers/shared.js";
import { ggmlGgufSummary, hasGgml } from "../helpers/llama-cpp.js";

const IDS = [1, 100, 7, 250, 33, 299];

const zhLogits = (path: string, ids = IDS) => lastLogits(path, ids);

const maxDiff = maxAbsDiff;

function numpyLogits(dir: string, ids = IDS): number[] {
  return JSON.parse(py("forward", dir, ids.join(","))) as number[];
}

async function tensorsOf(dir: string): Promise<Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>> {
  const source = await openHfModel(dir);
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const t of source.tensors) out.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: await t.read() });
  await source.close();
  return out;
}

describe("convert HF -> GGUF", () => {
  it("LLaMA-2 style GQA (f32): zh-llama on the GGUF matches numpy's HF forward pass", async () => {
    const root = tempDir("zh-convert-");
    const hf = join(root, "hf");
    py("model", hf, "--vocab", 300, "--hidden", 64, "--ffn", 96, "--heads", 4, "--kv-heads", 2, "--layers", 2, "--seed", 5, "--format", "bin", "--shards", 2);
    writeTokenizer(hf, 300);
    const out = join(root, "model.gguf");
    const report = await convertHfToGguf(hf, out, { outtype: "f32" });
    expect(report.types).toEqual({ F32: 2 * 9 + 3 });
    const diff = maxDiff(await zhLogits(out), numpyLogits(hf));
    console.log(`GQA f32: max |logit diff| vs numpy float64 = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(2e-4);
    if (hasGgml) {
      const summary = ggmlGgufSummary(out);
      expect(summary.tensors.length).toBe(21);
      expect(summary.kv.find((k) => k.key === "llama.attention.head_count_kv")?.value).toBe(2);
    }
  });

  it("Mixtral (experts stacked into ffn_*_exps) matches numpy", async () => {
    const root = tempDir("zh-convert-");
    const hf = join(root, "hf");
    py("model", hf, "--vocab", 300, "--hidden", 32, "--ffn", 48, "--heads", 4, "--kv-heads", 1, "--layers", 2, "--experts", 4, "--seed", 6);
    writeTokenizer(hf, 300);
    const out = join(root, "model.gguf");
    await convertHfToGguf(hf, out);
    const gguf = await openGguf(out);
    expect(gguf.tensor("blk.0.ffn_gate_exps.weight").shape).toEqual([32, 48, 4]);
    expect(gguf.tensor("blk.1.ffn_down_exps.weight").shape).toEqual([48, 32, 4]);
    expect(gguf.metadata["llama.expert_count"]).toBe(4);
    await gguf.close();
    const diff = maxDiff(await zhLogits(out), numpyLogits(hf));
    console.log(`Mixtral f32: max |logit diff| vs numpy float64 = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(2e-4);
    // And back: the HF export is the original checkpoint, tensor for tensor.
    const back = join(root, "back");
    await exportGgufToHf(out, back);
    const a = await tensorsOf(hf);
    const b = await tensorsOf(back);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, t] of a) expect(Buffer.compare(Buffer.from(b.get(name)!.bytes), Buffer.from(t.bytes)), name).toBe(0);
  });

  for (const dtype of ["F16", "BF16"] as const) {
    it(`HF -> GGUF -> HF is exact for ${dtype} (tied embeddings, rope scaling kept)`, async () => {
      const root = tempDir("zh-convert-");
      const hf = join(root, "hf");
      py("model", hf, "--dtype", dtype, "--vocab", 300, "--hidden", 32, "--ffn", 64, "--heads", 2, "--layers", 2, "--tie", "--seed", 7,
        "--rope-scaling", JSON.stringify({ type: "yarn", factor: 4.0, original_max_position_embeddings: 64, finetuned: true }));
      writeTokenizer(hf, 300);
      const out = join(root, "model.gguf");
      await convertHfToGguf(hf, out);
      const gguf = await openGguf(out);
      expect(gguf.tensor("blk.0.attn_q.weight").type).toBe(dtype === "F16" ? GGMLType.F16 : GGMLType.BF16);
      expect(gguf.tensor("blk.0.attn_norm.weight").type).toBe(GGMLType.F32);
      expect(gguf.has("output.weight")).toBe(false);
      expect(gguf.metadata["llama.rope.scaling.type"]).toBe("yarn");
      expect(gguf.metadata["llama.rope.scaling.original_context_length"]).toBe(64);
      expect(gguf.metadata["llama.rope.scaling.finetuned"]).toBe(true);
      await gguf.close();
      const back = join(root, "back");
      await exportGgufToHf(out, back);
      const a = await tensorsOf(hf);
      const b = await tensorsOf(back);
      for (const [name, t] of a) {
        const u = b.get(name)!;
        expect(u.dtype, name).toBe(t.dtype);
        expect(u.shape, name).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from(u.bytes), Buffer.from(t.bytes)), name).toBe(0);
      }
      const config = JSON.parse(readFileSync(join(back, "config.json"), "utf8"));
      expect(config.rope_scaling).toEqual({ type: "yarn", factor: 4, original_max_position_embeddings: 64, finetuned: true });
      expect(config.tie_word_embeddings).toBe(true);
      expect(config.torch_dtype).toBe(dtype === "F16" ? "float16" : "bfloat16");
    });
  }

  it("--outtype q8_0 / q4_0 / q4_k / q6_k follow llama.cpp's per-tensor rules and still run", async () => {
    const root = tempDir("zh-convert-");
    const hf = join(root, "hf");
    py("model", hf, "--vocab", 300, "--hidden", 256, "--ffn", 512, "--heads", 4, "--layers", 1, "--seed", 8, "--scale", 0.05);
    writeTokenizer(hf, 300);
    const f32 = join(root, "f32.gguf");
    await convertHfToGguf(hf, f32, { outtype: "f32" });
    const reference = await zhLogits(f32);
    for (const [outtype, main] of [["q8_0", GGMLType.Q8_0], ["q4_0", GGMLType.Q4_0], ["q4_k", GGMLType.Q4_K], ["q6_k", GGMLType.Q6_K]] as const) {
      const out = join(root, `${outtype}.gguf`);
      await convertHfToGguf(hf, out, { outtype });
      const gguf = await openGguf(out);
      expect(gguf.tensor("blk.0.attn_q.weight").type, outtype).toBe(main);
      expect(gguf.tensor("blk.0.ffn_norm.weight").type).toBe(GGMLType.F32);
      // The output projection gets Q6_K for 4-bit targets, as llama-quantize does.
      if (outtype === "q4_0" || outtype === "q4_k") expect(gguf.tensor("output.weight").type).toBe(GGMLType.Q6_K);
      await gguf.close();
      // Relative to the logits' range: quantization error, not a layout bug (which is O(1)).
      const range = Math.max(...reference) - Math.min(...reference);
      const diff = maxDiff(await zhLogits(out), reference) / range;
      console.log(`${outtype}: max |logit diff| vs f32 = ${(diff * 100).toFixed(2)}% of the logit range`);
      expect(diff).toBeLessThan(outtype === "q8_0" ? 0.03 : 0.3);
    }
  });
});

describe.skipIf(!hasShared)("export-hf on llama.cpp's reference model (../shared/reference)", () => {
  it("the HF export reproduces llama.cpp's logits in numpy, and converting back is bit-exact", async () => {
    const name = "llama-d64-l2-h4kv1-synthvocab-f32";
    const root = tempDir("zh-export-");
    const hf = join(root, "hf");
    await exportGgufToHf(sharedPath(`reference/${name}.gguf`), hf);
    const c = JSON.parse(readFileSync(sharedPath(`reference/${name}.json`), "utf8")) as { prompt: { tokens: number[] }; first_step: { logits_f32le_base64: string } };
    const bytes = Buffer.from(c.first_step.logits_f32le_base64, "base64");
    const llamaCpp = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const diff = maxDiff(numpyLogits(hf, c.prompt.tokens), llamaCpp);
    console.log(`numpy HF forward on our export vs llama.cpp: max |logit diff| = ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-3);
    const again = join(root, "again.gguf");
    await convertHfToGguf(hf, again);
    const original = await openGguf(sharedPath(`reference/${name}.gguf`));
    const ours = await openGguf(again);
    expect(ours.tensors.map((t) => t.name).sort()).toEqual(original.tensors.map((t) => t.name).sort());
    for (const t of original.tensors) {
      const u = ours.tensor(t.name);
      expect(u.shape, t.name).toEqual(t.shape);
      expect(Buffer.compare(Buffer.from(await ours.readTensorBytes(u)), Buffer.from(await original.readTensorBytes(t))), t.name).toBe(0);
    }
    expect(ours.metadata["tokenizer.ggml.tokens"]).toEqual(original.metadata["tokenizer.ggml.tokens"]);
    await ours.close();
    await original.close();
  });
});

describe("safetensors shards written by export-hf", () => {
  it("splits at the shard size with an index", async () => {
    const root = tempDir("zh-export-");
    const hf = join(root, "hf");
    py("model", hf, "--vocab", 300, "--hidden", 32, "--ffn", 64, "--seed", 9);
    writeTokenizer(hf, 300);
    const out = join(root, "m.gguf");
    await convertHfToGguf(hf, out);
    const back = join(root, "back");
    await exportGgufToHf(out, back, { maxShardBytes: 40_000 });
    const index = JSON.parse(readFileSync(join(back, "model.safetensors.index.json"), "utf8"));
    const files = [...new Set(Object.values(index.weight_map as Record<string, string>))];
    expect(files.length).toBeGreaterThan(1);
    const first = await openSafetensors(join(back, files[0]!));
    expect(first.metadata).toEqual({ format: "pt" });
    await first.close();
  });
});

describe.skipIf(!hasGgml)("llama.cpp runs what zh-llama converts (tools/convert-llamacpp-logits.mjs)", () => {
  const cases: Array<[string, (string | number)[]]> = [
    ["LLaMA-2 GQA, linear RoPE scaling x2", ["--vocab", 300, "--hidden", 64, "--ffn", 96, "--heads", 4, "--kv-heads", 2, "--rope-scaling", JSON.stringify({ type: "linear", factor: 2.0 }), "--seed", 15]],
    ["Mixtral 4 experts top-2, MQA, tied", ["--vocab", 300, "--hidden", 32, "--ffn", 48, "--heads", 4, "--kv-heads", 1, "--experts", 4, "--tie", "--seed", 16]],
  ];
  for (const [label, args] of cases) {
    it(`${label}: llama.cpp, zh-llama and numpy agree`, async () => {
      const root = tempDir("zh-convert-");
      const hf = join(root, "hf");
      py("model", hf, ...args);
      writeTokenizer(hf, 300);
      const out = join(root, "model.gguf");
      await convertHfToGguf(hf, out, { outtype: "f32" });
      const { execFileSync } = await import("node:child_process");
      const json = JSON.parse(execFileSync("node", [join(repoRoot, "tools", "convert-llamacpp-logits.mjs"), out, IDS.join(",")], { encoding: "utf8" })) as { logits_f32le_base64: string };
      const bytes = Buffer.from(json.logits_f32le_base64, "base64");
      const llamaCpp = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      const numpy = numpyLogits(hf);
      const zh = await zhLogits(out);
      const d1 = maxDiff(llamaCpp, numpy);
      const d2 = maxDiff(llamaCpp, zh);
      console.log(`${label}: llama.cpp vs numpy ${d1.toExponential(2)}, llama.cpp vs zh-llama ${d2.toExponential(2)}`);
      expect(d1).toBeLessThan(1e-4);
      expect(d2).toBeLessThan(1e-4);
    });
  }
});
