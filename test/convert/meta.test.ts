/**
 * Meta's consolidated.NN.pth + params.json as an input to convert and merge-lora. Checked by a
 * round trip through the project's own Meta writer (HF -> writeModelAsMeta with 2 and 3
 * model-parallel shards -> read back: every tensor byte-identical to the HF original, uneven
 * splits included) and by an independent numpy forward pass that joins the shards itself
 * (tools/tencentpretrain-forward.py meta: Meta's split axes, Meta's interleaved RoPE).
 */
import { describe, expect, it } from "vitest";
import { cpSync, existsSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { convertHfToGguf, mergeLoraFiles, openHfModel, openMetaModel, openModel, writeModelAsMeta } from "../../src/internals.js";
import { openTorchCheckpoint, writeTorchCheckpoint, type TorchTensorOutput } from "../../src/formats/pytorch.js";
import { FormatError } from "../../src/formats/errors.js";
import { main } from "../../src/cli/index.js";
import { py, tempDir, writeTokenizer } from "../lora/helpers.js";
import { lastLogits, maxAbsDiff } from "../helpers/logits.js";
import { repoRoot } from "../helpers/shared.js";

const IDS = [1, 100, 7, 250, 33, 299];
const forwardScript = join(repoRoot, "tools/tencentpretrain-forward.py");

const zhLogits = (path: string, ids = IDS) => lastLogits(path, ids);

const maxDiff = maxAbsDiff;

function numpyMeta(dir: string, ids = IDS): number[] {
  const { logits } = JSON.parse(execFileSync("python3", [forwardScript, "meta", dir, "--ids", ids.join(",")], { encoding: "utf8", maxBuffer: 1 << 26 })) as { logits: number[][] };
  return logits[logits.length - 1]!;
}

/** Rewrites consolidated.0N.pth with `edit` applied to its tensors. */
async function rewriteShard(dir: string, n: number, edit: (ts: TorchTensorOutput[]) => TorchTensorOutput[]): Promise<void> {
  const file = join(dir, `consolidated.${String(n).padStart(2, "0")}.pth`);
  const ckpt = await openTorchCheckpoint(file);
  const ts: TorchTensorOutput[] = [];
  for (const t of ckpt.tensors) ts.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await ckpt.readTensor(t.name) });
  await ckpt.close();
  await writeTorchCheckpoint(file, edit(ts), { overwrite: true });
}

/** An HF model (f32, vocab 301 so the output splits unevenly) and its Meta layout in `shards` files. */
async function metaModel(shards: number, dtype: "F32" | "F16" = "F32"): Promise<{ root: string; hf: string; meta: string }> {
  const root = tempDir("zh-meta-");
  const hf = join(root, "hf");
  py("model", hf, "--vocab", 301, "--hidden", 64, "--ffn", 96, "--heads", 4, "--kv-heads", 2, "--layers", 2, "--seed", 11, "--dtype", dtype);
  writeTokenizer(hf, 301);
  const meta = join(root, "meta");
  const source = await openHfModel(hf);
  await writeModelAsMeta(source, meta, { shards, dtype });
  await source.close();
  return { root, hf, meta };
}

describe("Meta consolidated.*.pth as an input", () => {
  for (const [shards, dtype] of [[2, "F32"], [3, "F16"]] as const) {
    it(`round trip: HF -> Meta (${shards} shards, ${dtype}) -> read back gives the HF tensors byte for byte`, async () => {
      const { hf, meta } = await metaModel(shards, dtype);
      const a = await openHfModel(hf);
      const b = await openMetaModel(meta);
      expect(b.tensors.map((t) => t.name).sort()).toEqual(a.tensors.map((t) => t.name).sort());
      for (const t of a.tensors) {
        const u = b.tensors.find((x) => x.name === t.name)!;
        expect(u.shape, t.name).toEqual(t.shape);
        expect(u.dtype).toBe(t.dtype);
        expect(Buffer.from(await u.read()).equals(Buffer.from(await t.read())), t.name).toBe(true);
      }
      expect(b.config).toMatchObject({ hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, numLayers: 2, vocabSize: 301 });
      expect(b.config.rmsEps).toBe(a.config.rmsEps);
      expect(Object.keys(b.files)).toContain("tokenizer.model");
      await a.close();
      await b.close();
    });
  }

  it("convert DIR: zh-llama on the GGUF matches numpy over the shards (Meta's forward) and HF's forward", async () => {
    const { root, hf, meta } = await metaModel(2);
    const out = join(root, "meta.gguf");
    let stderr = "";
    const io = { stdout: () => undefined, stderr: (t: string) => void (stderr += t), isTty: false };
    expect(await main(["convert", meta, out, "--outtype", "f32"], io), stderr).toBe(0);
    const zh = await zhLogits(out);
    const dMeta = maxDiff(zh, numpyMeta(meta));
    const dHf = maxDiff(zh, JSON.parse(py("forward", hf, IDS.join(","))) as number[]);
    console.log(`Meta 2-shard: max |Δlogit| zh-llama vs numpy(Meta shards) ${dMeta.toExponential(2)}, vs numpy(HF) ${dHf.toExponential(2)}`);
    expect(dMeta).toBeLessThan(1e-5);
    expect(dHf).toBeLessThan(1e-5);
    // The same GGUF as converting the HF original (tensor data; the name differs).
    const fromHf = join(root, "hf.gguf");
    await convertHfToGguf(hf, fromHf, { outtype: "f32", name: "meta" });
    expect(maxDiff(await zhLogits(fromHf), zh)).toBe(0);
    // --format hf: an HF directory equal to the original.
    const back = join(root, "back");
    await convertHfToGguf(meta, back, { format: "hf" });
    const a = await openHfModel(hf);
    const b = await openHfModel(back);
    for (const t of a.tensors) expect(Buffer.from(await b.tensors.find((x) => x.name === t.name)!.read()).equals(Buffer.from(await t.read())), t.name).toBe(true);
    await a.close();
    await b.close();
  });

  it("merge-lora --base DIR (Meta) gives what the HF base gives", async () => {
    const { root, hf, meta } = await metaModel(2);
    const lora = join(root, "lora");
    py("adapter", lora, "--base", hf, "--r", 4, "--alpha", 8, "--targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "--seed", 12);
    const fromMeta = join(root, "m1");
    const fromHf = join(root, "m2");
    let stderr = "";
    const io = { stdout: () => undefined, stderr: (t: string) => void (stderr += t), isTty: false };
    expect(await main(["merge-lora", "--base", meta, "--lora", lora, "--out", fromMeta], io), stderr).toBe(0);
    await mergeLoraFiles({ base: hf, adapters: [lora], out: fromHf });
    const a = await openHfModel(fromHf);
    const b = await openHfModel(fromMeta);
    expect(b.tensors.length).toBe(a.tensors.length);
    for (const t of a.tensors) expect(Buffer.from(await b.tensors.find((x) => x.name === t.name)!.read()).equals(Buffer.from(await t.read())), t.name).toBe(true);
    await a.close();
    await b.close();
  });

  it("LLaMA 1's rope.freqs is skipped; a Llama-3-style row split of tok_embeddings is recognised by its width", async () => {
    const { hf, meta } = await metaModel(2);
    for (const n of [0, 1]) await rewriteShard(meta, n, (ts) => [...ts, { name: "rope.freqs", dtype: "F32", shape: [8], data: new Uint8Array(32) }]);
    const source = await openHfModel(hf);
    const embed = await source.tensors.find((t) => t.name === "model.embed_tokens.weight")!.read();
    await source.close();
    const rows = (from: number, to: number): Uint8Array => embed.slice(from * 64 * 4, to * 64 * 4);
    await rewriteShard(meta, 0, (ts) => ts.map((t) => (t.name === "tok_embeddings.weight" ? { ...t, shape: [150, 64], data: rows(0, 150) } : t)));
    await rewriteShard(meta, 1, (ts) => ts.map((t) => (t.name === "tok_embeddings.weight" ? { ...t, shape: [151, 64], data: rows(150, 301) } : t)));
    const m = await openModel(meta);
    expect(m.tensors.some((t) => t.name.includes("rope"))).toBe(false);
    const e = m.tensors.find((t) => t.name === "model.embed_tokens.weight")!;
    expect(e.shape).toEqual([301, 64]);
    expect(Buffer.from(await e.read()).equals(Buffer.from(embed))).toBe(true);
    await m.close();
  });
});

describe("Meta: bad input is refused before anything is written", () => {
  async function refused(dir: string, pattern: RegExp): Promise<void> {
    const out = join(tempDir("zh-meta-bad-"), "out.gguf");
    await expect(convertHfToGguf(dir, out)).rejects.toThrow(pattern);
    await expect(convertHfToGguf(dir, out)).rejects.toBeInstanceOf(FormatError);
    expect(existsSync(out)).toBe(false);
  }

  it("missing params.json or a missing shard", async () => {
    const { meta } = await metaModel(3);
    const a = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, a, { recursive: true });
    rmSync(join(a, "params.json"));
    await refused(a, /no params\.json beside consolidated\.00\.pth/);
    const b = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, b, { recursive: true });
    rmSync(join(b, "consolidated.01.pth"));
    await refused(b, /consolidated\.01\.pth is missing \(found consolidated\.00\.pth, consolidated\.02\.pth\)/);
  });

  it("truncated and mismatched shards name the file and the key", async () => {
    const { meta } = await metaModel(2);
    const a = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, a, { recursive: true });
    truncateSync(join(a, "consolidated.01.pth"), 20000);
    await refused(a, /consolidated\.01\.pth/);
    // A shard without one of the other's tensors.
    const rewrite = (dir: string, edit: (ts: TorchTensorOutput[]) => TorchTensorOutput[]): Promise<void> => rewriteShard(dir, 1, edit);
    const b = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, b, { recursive: true });
    await rewrite(b, (ts) => ts.filter((t) => t.name !== "layers.1.attention.wk.weight"));
    await refused(b, /consolidated\.01\.pth: no tensor "layers\.1\.attention\.wk\.weight", which .*consolidated\.00\.pth has/);
    // A replicated norm of another size.
    const c = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, c, { recursive: true });
    await rewrite(c, (ts) => ts.map((t) => (t.name === "norm.weight" ? { ...t, shape: [32], data: (t.data as Uint8Array).slice(0, 128) } : t)));
    await refused(c, /consolidated\.01\.pth: tensor "norm\.weight" has shape \[32\], but \[64\] in .*consolidated\.00\.pth/);
    // A split tensor whose parts do not join.
    const d = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, d, { recursive: true });
    await rewrite(d, (ts) => ts.map((t) => (t.name === "layers.0.attention.wo.weight" ? { ...t, shape: [32, 32], data: (t.data as Uint8Array).slice(0, 32 * 32 * 4) } : t)));
    await refused(d, /consolidated\.01\.pth: tensor "layers\.0\.attention\.wo\.weight" has shape \[32, 32\], which does not join \[64, 32\]/);
    // An unknown key.
    const e = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, e, { recursive: true });
    await rewrite(e, (ts) => [...ts, { name: "layers.0.attention.wq.bias", dtype: "F32", shape: [4], data: new Uint8Array(16) }]);
    await refused(e, /tensor "layers\.0\.attention\.wq\.bias" is not in .*consolidated\.00\.pth/);
  });

  it("params.json that disagrees with the shards", async () => {
    const { meta } = await metaModel(2);
    const write = (dir: string, patch: Record<string, unknown>): void => {
      const p = JSON.parse(readFileSync(join(meta, "params.json"), "utf8"));
      writeFileSync(join(dir, "params.json"), JSON.stringify({ ...p, ...patch }));
    };
    const a = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, a, { recursive: true });
    write(a, { n_layers: 3 });
    await refused(a, /missing 9 tensors a 3-layer model needs: tensor "layers\.2\.attention\.wq\.weight"/);
    const b = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, b, { recursive: true });
    write(b, { n_kv_heads: 4 });
    await refused(b, /tensor "layers\.0\.attention\.wk\.weight" has shape \[32, 64\]; params\.json \(dim 64, n_heads 4, n_kv_heads 4, n_layers 2\) calls for \[64, 64\]/);
    const c = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, c, { recursive: true });
    write(c, { vocab_size: 32000 });
    await refused(c, /params\.json: vocab_size 32000, but tok_embeddings\.weight has 301 rows/);
    const d = join(tempDir("zh-meta-bad-"), "m");
    cpSync(meta, d, { recursive: true });
    renameSync(join(d, "tokenizer.model"), join(d, "tok.model"));
    await refused(d, /no tokenizer\.model beside the weights; pass --tokenizer FILE/);
  });
});
