/**
 * TencentPretrain (Linly) checkpoints as a conversion input. The reference is an independent
 * float64 numpy forward pass that follows TencentPretrain's own model definition
 * (tools/tencentpretrain-forward.py: its interleaved-pair RoPE, repeat_kv grouping, RMSNorm,
 * linear_gate/linear_1 gated FFN) over the committed checkpoint
 * fixtures/golden/tencentpretrain/linly-tiny (tools/make-tencentpretrain-fixture.mjs):
 * zh-llama's logits on the converted GGUF must agree with it to 1e-5, so a wrong q/k head
 * layout, gate/up swap or KV grouping shows.
 */
import { describe, expect, it } from "vitest";
import { copyFileSync, cpSync, existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Readable } from "node:stream";
import { convertHfToGguf, openModel, openTencentPretrainModel } from "../../src/convert/index.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { openTorchCheckpoint, writeTorchCheckpoint, type TorchTensorOutput } from "../../src/formats/pytorch.js";
import { FormatError } from "../../src/formats/errors.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { main } from "../../src/cli/index.js";
import { templateNameFromModelName } from "../../src/chat/detect.js";
import { py, tempDir } from "../lora/helpers.js";
import { lastLogits, maxAbsDiff } from "../helpers/logits.js";
import { repoRoot } from "../helpers/shared.js";

const FIX = join(repoRoot, "fixtures/golden/tencentpretrain");
const MODEL = join(FIX, "linly-tiny");
const CONFIG = join(FIX, "linly-tiny_config.json");
const golden = JSON.parse(readFileSync(join(FIX, "linly-tiny.logits.json"), "utf8")) as { cases: { ids: number[]; last: number[] }[] };
const forwardScript = join(repoRoot, "tools/tencentpretrain-forward.py");

const zhLogits = lastLogits;

const maxDiff = maxAbsDiff;

function numpyTp(path: string, ids: number[], extra: string[] = []): number[] {
  const out = execFileSync("python3", [forwardScript, "tp", path, ...extra, "--ids", ids.join(",")], { encoding: "utf8", maxBuffer: 1 << 26 });
  const { logits } = JSON.parse(out) as { logits: number[][] };
  return logits[logits.length - 1]!;
}

/** All of the fixture's tensors, read back with zh-llama's torch reader. */
async function fixtureTensors(): Promise<TorchTensorOutput[]> {
  const out: TorchTensorOutput[] = [];
  for (const f of ["tencentpretrain_model-0.bin", "tencentpretrain_model-1.bin"]) {
    const ckpt = await openTorchCheckpoint(join(MODEL, f));
    for (const t of ckpt.tensors) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await ckpt.readTensor(t.name) });
    await ckpt.close();
  }
  return out;
}

/** A single-file TencentPretrain checkpoint (+ tokenizer.model) made from the fixture, edited by `edit`. */
async function singleFile(edit: (ts: TorchTensorOutput[]) => TorchTensorOutput[] = (x) => x): Promise<{ dir: string; bin: string }> {
  const dir = tempDir("zh-tp-");
  const bin = join(dir, "chatllama-zh-tiny.bin");
  await writeTorchCheckpoint(bin, edit(await fixtureTensors()));
  copyFileSync(join(MODEL, "tokenizer.model"), join(dir, "tokenizer.model"));
  return { dir, bin };
}

describe("TencentPretrain checkpoints -> GGUF", () => {
  it("sharded (tencentpretrain_model.bin.index.json) + --config: zh-llama agrees with TencentPretrain's forward to 1e-5", async () => {
    const out = join(tempDir("zh-tp-"), "linly.gguf");
    const report = await convertHfToGguf(MODEL, out, { config: CONFIG, outtype: "f32" });
    expect(report.warnings).toEqual([]);
    const gguf = await openGguf(out);
    expect(gguf.metadata["llama.attention.head_count"]).toBe(4);
    expect(gguf.metadata["llama.attention.head_count_kv"]).toBe(2);
    expect(gguf.metadata["llama.feed_forward_length"]).toBe(64);
    expect(gguf.metadata["llama.attention.layer_norm_rms_epsilon"]).toBeCloseTo(1e-5, 12);
    expect(gguf.metadata["llama.rope.freq_base"]).toBe(10000);
    expect((gguf.metadata["tokenizer.ggml.tokens"] as string[]).length).toBe(288);
    await gguf.close();
    const diffs: number[] = [];
    for (const c of golden.cases) {
      diffs.push(maxDiff(await zhLogits(out, c.ids), c.last));
      diffs.push(maxDiff(await zhLogits(out, c.ids, "wasm"), c.last));
    }
    console.log(`TencentPretrain golden: max |Δlogit| reference/wasm per case ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
    for (const d of diffs) expect(d).toBeLessThan(1e-5);
  });

  it("the F16 GGUF (auto outtype) stays close, and `chat --template linly` runs it", async () => {
    const root = tempDir("zh-tp-");
    const out = join(root, "linly-f16.gguf");
    let stdout = "";
    let stderr = "";
    const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), isTty: false };
    expect(await main(["convert", MODEL, out, "--config", CONFIG], io), stderr).toBe(0);
    expect(stdout).toMatch(/wrote .*linly-f16\.gguf: .*F16/);
    const c = golden.cases[0]!;
    expect(maxDiff(await zhLogits(out, c.ids), c.last)).toBeLessThan(2e-2);
    stdout = "";
    stderr = "";
    const chatIo = { ...io, input: Readable.from(["你好\n", "abc\n"]), interactive: false };
    const status = await main(["chat", "-m", out, "--template", "linly", "--ctx", "128", "--temp", "0", "-n", "4", "--kv-type", "f32"], chatIo);
    expect(status, stderr).toBe(0);
    expect(stderr).toMatch(/\[template linly, context 128 tokens\]/);
    expect(stdout.trim().length).toBeGreaterThan(0);
  });

  it("a single .bin (Linly's release layout) with the tokenizer beside it; --format hf matches the numpy HF forward", async () => {
    const { dir, bin } = await singleFile();
    const out = join(dir, "out.gguf");
    await convertHfToGguf(bin, out, { config: CONFIG, outtype: "f32" });
    for (const c of golden.cases) expect(maxDiff(await zhLogits(out, c.ids), c.last)).toBeLessThan(1e-5);
    // Named after the file, which is how chat recognises Linly's template.
    const gguf = await openGguf(out);
    expect(gguf.metadata["general.name"]).toBe("chatllama-zh-tiny");
    expect(templateNameFromModelName(gguf.metadata["general.name"] as string)).toBe("linly");
    await gguf.close();
    // HF output: transformers' rotate-half layout (Linly's convert_llama_from_tencentpretrain_to_hf.py
    // `permute`), run through the existing float64 HF forward (tools/lora-hf-fixtures.py).
    const hf = join(dir, "hf");
    await convertHfToGguf(bin, hf, { config: CONFIG, format: "hf", dtype: "F32" });
    expect(readdirSync(hf).sort()).toEqual(expect.arrayContaining(["config.json", "tokenizer.model", "SHA256SUMS"]));
    const cfg = JSON.parse(readFileSync(join(hf, "config.json"), "utf8"));
    expect(cfg).toMatchObject({ architectures: ["LlamaForCausalLM"], hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, rms_norm_eps: 1e-5, vocab_size: 288 });
    const c = golden.cases[0]!;
    const hfLogits = JSON.parse(py("forward", hf, c.ids.join(","))) as number[];
    expect(maxDiff(hfLogits, c.last)).toBeLessThan(1e-5);
    // And openModel finds the same model from the directory holding the .bin.
    const viaDir = await openModel(dir, { config: CONFIG });
    expect(viaDir.tensors.length).toBe(21);
    await viaDir.close();
  });

  it("without a config: shapes give the widths and KV heads; heads need --heads (or a LLaMA width)", async () => {
    const { dir, bin } = await singleFile();
    await expect(openTencentPretrainModel(bin)).rejects.toThrow(/number of attention heads cannot be read from the weights \(hidden size 32\); pass --config with TencentPretrain's config \(heads_num\) or --heads N/);
    await expect(openTencentPretrainModel(bin)).rejects.toBeInstanceOf(InvalidArgumentError);
    const out = join(dir, "noconf.gguf");
    let stderr = "";
    const io = { stdout: () => undefined, stderr: (t: string) => void (stderr += t), isTty: false };
    expect(await main(["convert", bin, out, "--heads", "4", "--outtype", "f32"], io), stderr).toBe(0);
    const gguf = await openGguf(out);
    expect(gguf.metadata["llama.attention.head_count_kv"]).toBe(2);
    expect(gguf.metadata["llama.attention.layer_norm_rms_epsilon"]).toBeCloseTo(1e-6, 12); // opts.py's default
    await gguf.close();
    // Same model but eps 1e-6: numpy with the same defaults agrees.
    const c = golden.cases[1]!;
    expect(maxDiff(await zhLogits(out, c.ids), numpyTp(bin, c.ids, ["--heads", "4"]))).toBeLessThan(1e-5);
  });

  it("tied output (no target.lm.output_layer, tie_weights): the embedding is the head", async () => {
    const { dir, bin } = await singleFile((ts) => ts.filter((t) => t.name !== "target.lm.output_layer.weight"));
    const out = join(dir, "tied.gguf");
    await convertHfToGguf(bin, out, { config: CONFIG, outtype: "f32" });
    const gguf = await openGguf(out);
    expect(gguf.tensors.some((t) => t.name === "output.weight")).toBe(false);
    await gguf.close();
    const c = golden.cases[0]!;
    expect(maxDiff(await zhLogits(out, c.ids), numpyTp(bin, c.ids, ["--config", CONFIG]))).toBeLessThan(1e-5);
  });
});

describe("TencentPretrain: bad input is refused before anything is written", () => {
  async function refused(input: string, pattern: RegExp, options: Record<string, unknown> = { config: CONFIG }, type: Function = FormatError): Promise<void> {
    const out = join(tempDir("zh-tp-bad-"), "out.gguf");
    const attempt = convertHfToGguf(input, out, options);
    await expect(attempt).rejects.toThrow(pattern);
    await expect(convertHfToGguf(input, out, options)).rejects.toBeInstanceOf(type);
    expect(existsSync(out)).toBe(false);
  }

  it("unknown keys, named with the file", async () => {
    const { bin } = await singleFile((ts) => [...ts, { name: "encoder.transformer.0.self_attn.linear_layers.0.bias", dtype: "F16", shape: [32], data: new Uint8Array(64) }]);
    await refused(bin, /chatllama-zh-tiny\.bin: tensor "encoder\.transformer\.0\.self_attn\.linear_layers\.0\.bias" is a bias, which LLaMA does not have/);
    const { bin: lora } = await singleFile((ts) => [...ts, { name: "encoder.transformer.1.self_attn.linear_layers.0.lora_A", dtype: "F16", shape: [4, 32], data: new Uint8Array(256) }]);
    await refused(lora, /lora_A" is a LoRA weight/);
    const { bin: other } = await singleFile((ts) => [...ts, { name: "encoder.transformer.1.feed_forward.linear_3.weight", dtype: "F16", shape: [4], data: new Uint8Array(8) }]);
    await refused(other, /linear_3\.weight" is not part of TencentPretrain's LLaMA/);
  });

  it("missing tensors and shape disagreements name the key and the file", async () => {
    const { bin } = await singleFile((ts) => ts.filter((t) => t.name !== "encoder.transformer.1.layer_norm_2.weight"));
    await refused(bin, /chatllama-zh-tiny\.bin: missing 1 tensor a 2-layer model needs: tensor "encoder\.transformer\.1\.layer_norm_2\.weight" \(a truncated or partial checkpoint\?\); nothing was written/);
    // The config says 3 layers; the checkpoint has 2.
    const conf3 = join(tempDir("zh-tp-bad-"), "c.json");
    writeFileSync(conf3, JSON.stringify({ ...JSON.parse(readFileSync(CONFIG, "utf8")), layers_num: 3 }));
    await refused(MODEL, /missing 9 tensors a 3-layer model needs: tensor "encoder\.transformer\.2\./, { config: conf3 });
    // local_kv_heads_num 1 in the config: linear_layers.1 is [16, 32], the config calls for [8, 32].
    const kv1 = join(tempDir("zh-tp-bad-"), "c.json");
    writeFileSync(kv1, JSON.stringify({ ...JSON.parse(readFileSync(CONFIG, "utf8")), local_kv_heads_num: 1 }));
    await refused(MODEL, /tensor "encoder\.transformer\.0\.self_attn\.linear_layers\.1\.weight" \(.*tencentpretrain_model-0\.bin\) has shape \[16, 32\]; .*c\.json \(.*local_kv_heads_num 1, .*\) calls for \[8, 32\]/, { config: kv1 });
    // A width the config does not have.
    const wide = join(tempDir("zh-tp-bad-"), "c.json");
    writeFileSync(wide, JSON.stringify({ ...JSON.parse(readFileSync(CONFIG, "utf8")), emb_size: 64, hidden_size: 64 }));
    await refused(MODEL, /embedding\.word\.embedding\.weight is \[288, 32\]; .* says emb_size 64/, { config: wide });
  });

  it("truncated, missing and overlapping shards", async () => {
    const dir = join(tempDir("zh-tp-bad-"), "m");
    cpSync(MODEL, dir, { recursive: true });
    truncateSync(join(dir, "tencentpretrain_model-1.bin"), 30000);
    await refused(dir, /tencentpretrain_model-1\.bin/);
    const dir2 = join(tempDir("zh-tp-bad-"), "m");
    cpSync(MODEL, dir2, { recursive: true });
    const { rmSync } = await import("node:fs");
    rmSync(join(dir2, "tencentpretrain_model-1.bin"));
    await refused(dir2, /tencentpretrain_model\.bin\.index\.json: shard "tencentpretrain_model-1\.bin" is missing/);
    // The same tensor in two shards.
    const dir3 = join(tempDir("zh-tp-bad-"), "m");
    cpSync(MODEL, dir3, { recursive: true });
    const ts = await fixtureTensors();
    await writeTorchCheckpoint(join(dir3, "tencentpretrain_model-1.bin"), [...ts.slice(10), ts[0]!], { overwrite: true });
    await refused(dir3, /tencentpretrain_model-1\.bin: tensor "embedding\.word\.embedding\.weight" is also in .*tencentpretrain_model-0\.bin/);
  });

  it("configs that are not a LLaMA, and no tokenizer", async () => {
    const bad = join(tempDir("zh-tp-bad-"), "c.json");
    writeFileSync(bad, JSON.stringify({ ...JSON.parse(readFileSync(CONFIG, "utf8")), layernorm: "normal" }));
    await refused(MODEL, /c\.json: layernorm is "normal"; a LLaMA has RMSNorm/, { config: bad });
    const hfConfig = join(tempDir("zh-tp-bad-"), "config.json");
    writeFileSync(hfConfig, JSON.stringify({ hidden_size: 32, num_attention_heads: 4 }));
    await refused(MODEL, /a Hugging Face config\.json, not a TencentPretrain config/, { config: hfConfig });
    const dir = tempDir("zh-tp-bad-");
    const bin = join(dir, "m.bin");
    await writeTorchCheckpoint(bin, await fixtureTensors());
    await refused(bin, /no tokenizer\.model beside the weights; pass --tokenizer FILE/);
    // --tokenizer supplies it.
    await convertHfToGguf(bin, join(dir, "ok.gguf"), { config: CONFIG, tokenizer: join(MODEL, "tokenizer.model") });
  });
});
