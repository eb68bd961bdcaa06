/** run / logits / perplexity / bench against llama.cpp's goldens for the synthetic models. */
import { describe, expect, it, beforeAll } from "vitest";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeGguf, encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { LlamaModel, ModelError, ContextOverflowError } from "../../src/model/index.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { generateText } from "../../src/generate/index.js";
import { perplexity } from "../../src/eval/index.js";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";
import { runCli } from "../helpers/cli.js";

const run = runCli;

const cases = JSON.parse(readFileSync(join(repoRoot, "test/model/golden-cases.json"), "utf8")) as Array<{ name: string; model: Record<string, unknown> & { type: string }; prompt: number[]; perplexity?: { ctx: number; tokens: number[] } }>;
const golden = (name: string) => JSON.parse(readFileSync(join(repoRoot, "fixtures/golden/llama", `${name}.json`), "utf8"));
const f32 = cases.find((c) => c.name === "f32-gqa")!;
const q4 = cases.find((c) => c.name === "q4_0-tied")!;

let dir = "";
let f32Path = "";
let q4Path = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-cli-model-"));
  f32Path = join(dir, "f32.gguf");
  q4Path = join(dir, "q4.gguf");
  await writeGguf(f32Path, syntheticModel({ ...(f32.model as object), type: GGMLType.F32 } as never));
  await writeGguf(q4Path, syntheticModel({ ...(q4.model as object), type: GGMLType.Q4_0 } as never));
});

describe("zh-llama run", () => {
  it("greedy --prompt-ids reproduces llama.cpp's continuation and prints the JSON summary", async () => {
    const r = await run("run", "-m", f32Path, "--prompt-ids", f32.prompt.join(","), "-n", "16", "--temp", "0", "--repeat-penalty", "1", "--kv-type", "f32", "--ignore-eos", "--ctx", "128", "--json");
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(["prompt_ids", "generated_ids", "text", "first_top_logits", "timings"]);
    expect(out.prompt_ids).toEqual(f32.prompt);
    expect(out.generated_ids).toEqual(golden("f32-gqa").greedy.slice(0, 16).map((g: { token: number }) => g.token));
    expect(out.first_top_logits).toHaveLength(10);
    expect(out.first_top_logits[0].id).toBe(out.generated_ids[0]);
    expect(Object.keys(out.timings)).toEqual(["prompt_tokens", "prompt_tokens_per_s", "generated_tokens", "decode_tokens_per_s"]);
    expect(out.timings.prompt_tokens).toBe(f32.prompt.length);
  });

  it("-p text is tokenized with BOS and streams text; stop strings end it", async () => {
    const text = "w263 w273 w283";
    const r = await run("run", "-m", q4Path, "-p", text, "-n", "8", "--temp", "0", "--ignore-eos", "--ctx", "64");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/8 generated at [\d.]+ tok\/s, length/);
    const model = await LlamaModel.load(q4Path, { nCtx: 64 });
    const tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
    const ids = tokenizer.encode(text);
    expect(ids[0]).toBe(1);
    const same = await generateText(model, tokenizer, ids, { temperature: 0, maxTokens: 8, ignoreEos: true });
    expect(r.stdout).toBe(same.text + "\n");
    expect(same.generatedIds).toHaveLength(8);
    // Stop on the text of the third generated token: the output ends before it.
    const stopText = tokenizer.decode(same.generatedIds.slice(2, 3)).trim();
    const stopped = await generateText(model, tokenizer, ids, { temperature: 0, maxTokens: 8, stop: [stopText], ignoreEos: true });
    expect(stopped.finishReason).toBe("stop");
    expect(stopped.text).toBe(same.text.slice(0, same.text.indexOf(stopText)));
    await model.dispose();
  });

  it("seeded sampling is reproducible", async () => {
    const a = await run("run", "-m", q4Path, "--prompt-ids", "1,5,6", "-n", "12", "--temp", "1", "--top-k", "0", "--top-p", "1", "--seed", "7", "--ctx", "64", "--json", "--ignore-eos");
    const b = await run("run", "-m", q4Path, "--prompt-ids", "1,5,6", "-n", "12", "--temp", "1", "--top-k", "0", "--top-p", "1", "--seed", "7", "--ctx", "64", "--json", "--ignore-eos");
    expect(JSON.parse(a.stdout).generated_ids).toEqual(JSON.parse(b.stdout).generated_ids);
  });

  it("bad requests give clear errors", async () => {
    expect((await run("run", "-m", q4Path, "--prompt-ids", "1,2,3000", "--ctx", "64")).stderr).toMatch(/token id 3000 is outside the vocabulary \(0\.\.299\)/);
    const long = Array.from({ length: 70 }, () => 5).join(",");
    expect((await run("run", "-m", q4Path, "--prompt-ids", long, "--ctx", "64")).stderr).toMatch(/prompt has 70 tokens, but the context holds 64/);
    expect((await run("run", "-m", q4Path)).stderr).toMatch(/exactly one of -p TEXT, -f FILE or --prompt-ids/);
    expect((await run("run", "-m", q4Path, "-p", "x", "--temp", "hot")).stderr).toMatch(/--temp expects a number/);
  });
});

describe("zh-llama logits / perplexity / bench", () => {
  it("logits writes the last position's logits, equal to llama.cpp's", async () => {
    const out = join(dir, "logits.f32");
    const r = await run("logits", "-m", f32Path, "--prompt-ids", f32.prompt.join(","), "--out", out, "--ctx", "128", "--kv-type", "f32");
    expect(r.status, r.stderr).toBe(0);
    const bytes = await readFile(out);
    const ours = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const ref = Buffer.from(golden("f32-gqa").first_logits_f32le_base64, "base64");
    const theirs = new Float32Array(ref.buffer, ref.byteOffset, ref.length / 4);
    expect(ours.length).toBe(300);
    let max = 0;
    for (let i = 0; i < 300; i++) max = Math.max(max, Math.abs(ours[i]! - theirs[i]!));
    expect(max).toBeLessThan(1e-4);
  });

  it("perplexity equals llama.cpp's method computed from llama.cpp's logits", async () => {
    for (const [c, path] of [[f32, f32Path], [q4, q4Path]] as const) {
      const g = golden(c.name).perplexity;
      const model = await LlamaModel.load(path, { nCtx: g.ctx, kvCacheType: "f32", batchSize: g.ctx });
      const r = await perplexity(model, g.tokens, { ctx: g.ctx, bosId: 1 });
      expect(r.chunks).toBe(3);
      expect(r.tokensScored).toBe(g.tokens_scored);
      expect(Math.abs(r.ppl - g.ppl) / g.ppl).toBeLessThan(1e-5);
      await model.dispose();
    }
    const text = join(dir, "text.txt");
    await writeFile(text, Array.from({ length: 200 }, (_, i) => `w${260 + (i % 37)}`).join(" "));
    const r = await run("perplexity", "-m", q4Path, "-f", text, "--ctx", "64", "--chunks", "3", "--json");
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(["ppl", "chunks", "tokens_scored"]);
    expect(out.chunks).toBe(3);
    expect(out.tokens_scored).toBe(3 * 31);
    expect(out.ppl).toBeGreaterThan(1);
    expect((await run("perplexity", "-m", q4Path, "-f", text, "--ctx", "4096")).stderr).toMatch(/at least one chunk of 4096/);
  });

  it("bench reports prompt and decode speed", async () => {
    const r = await run("bench", "-m", q4Path, "-p", "16", "-n", "4", "-r", "1", "--json");
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.prompt_tokens).toBe(16);
    expect(out.prompt_tokens_per_s).toBeGreaterThan(0);
    expect(out.decode_tokens_per_s).toBeGreaterThan(0);
  });
});

describe("bad models", () => {
  const spec = () => syntheticModel({ dim: 64, layers: 1, heads: 4, ffn: 96, vocab: 300, seed: 3 });
  it("a missing tensor, a wrong shape, a missing key and an unsupported architecture are named", async () => {
    const missing = spec();
    missing.tensors = missing.tensors.filter((t) => t.name !== "blk.0.attn_k.weight");
    await expect(LlamaModel.load(await encodeGguf(missing))).rejects.toThrow(/missing tensor "blk\.0\.attn_k\.weight" \(expected shape \[64, 64\]\)/);
    const wrong = spec();
    wrong.metadata["llama.feed_forward_length"] = 128;
    await expect(LlamaModel.load(await encodeGguf(wrong))).rejects.toThrow(/tensor "blk\.0\.ffn_gate\.weight" has shape \[64, 96\], but the hyper-parameters need \[64, 128\]/);
    const noKey = spec();
    delete noKey.metadata["llama.block_count"];
    await expect(LlamaModel.load(await encodeGguf(noKey))).rejects.toThrow(ModelError);
    await expect(LlamaModel.load(await encodeGguf(noKey))).rejects.toThrow(/missing metadata key "llama\.block_count"/);
    const arch = spec();
    arch.metadata["general.architecture"] = "gpt2";
    await expect(LlamaModel.load(await encodeGguf(arch))).rejects.toThrow(/unsupported architecture "gpt2"/);
  });
  it("context overflow is an error, not a wrong answer", async () => {
    const model = await LlamaModel.load(await encodeGguf(spec()), { nCtx: 8 });
    await model.evaluate([1, 2, 3, 4, 5, 6]);
    await expect(model.evaluate([1, 2, 3])).rejects.toThrow(ContextOverflowError);
    await model.dispose();
  });
});
