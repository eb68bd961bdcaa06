import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGguf, writeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize, quantize } from "../../src/formats/quants/index.js";
import { ggmlGgufSummary, hasGgml } from "../helpers/llama-cpp.js";
import { runCli } from "../helpers/cli.js";

const run = runCli;

/** A small llama-shaped F32 model with deterministic weights. */
async function makeModel(dir: string): Promise<string> {
  const path = join(dir, "tiny-f32.gguf");
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.2;
  const f32 = (n: number) => new Uint8Array(Float32Array.from({ length: n }, random).buffer);
  const dim = 256, ff = 512, vocab = 40;
  await writeGguf(path, {
    metadata: {
      "general.architecture": "llama",
      "general.name": "tiny",
      "llama.context_length": 64,
      "llama.embedding_length": dim,
      "llama.block_count": 1,
      "llama.feed_forward_length": ff,
      "llama.attention.head_count": 4,
      "llama.attention.layer_norm_rms_epsilon": 1e-5,
      "tokenizer.ggml.tokens": Array.from({ length: vocab }, (_, i) => `t${i}`),
    },
    tensors: [
      { name: "token_embd.weight", type: GGMLType.F32, shape: [dim, vocab], data: f32(dim * vocab) },
      { name: "blk.0.attn_norm.weight", type: GGMLType.F32, shape: [dim], data: f32(dim) },
      { name: "blk.0.attn_q.weight", type: GGMLType.F32, shape: [dim, dim], data: f32(dim * dim) },
      { name: "blk.0.ffn_down.weight", type: GGMLType.F32, shape: [ff, dim], data: f32(ff * dim) },
      { name: "blk.0.ffn_gate_inp.weight", type: GGMLType.F32, shape: [dim, 4], data: f32(dim * 4) },
      { name: "output.weight", type: GGMLType.F32, shape: [dim, vocab], data: f32(dim * vocab) },
    ],
  });
  return path;
}

describe("zh-llama CLI: formats", () => {
  it("--help lists the sub-commands; unknown commands fail", async () => {
    const help = await run("--help");
    expect(help.status).toBe(0);
    for (const name of ["inspect", "dump-tensor", "quantize"]) expect(help.stdout).toContain(name);
    expect((await run("frobnicate")).status).toBe(2);
    expect((await run("inspect", "--bogus", "x")).stderr).toMatch(/Unknown option '--bogus'/);
  });

  it("inspect prints a summary and exact JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-cli-"));
    const path = await makeModel(dir);
    const human = await run("inspect", path);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/architecture: +llama/);
    expect(human.stdout).toMatch(/vocabulary: +40 tokens/);
    expect(human.stdout).toMatch(/context_length +64/);
    expect(human.stdout).toContain("… (40 items, STRING[])");
    const json = await run("inspect", path, "--json");
    const parsed = JSON.parse(json.stdout);
    expect(Object.keys(parsed)).toEqual(["version", "metadata", "tensors"]);
    expect(parsed.version).toBe(3);
    expect(parsed.metadata["tokenizer.ggml.tokens"]).toHaveLength(40);
    expect(parsed.tensors[0]).toEqual({ name: "token_embd.weight", type: "F32", shape: [256, 40], offset: 0 });
  });

  it("inspect names the problem in a broken file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-cli-"));
    const path = join(dir, "broken.gguf");
    await writeFile(path, Buffer.from("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x00"));
    const r = await run("inspect", path);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/GgufFormatError: .*broken\.gguf: at byte 8: tensor count/);
  });

  it("dump-tensor writes float32 little-endian and refuses to overwrite", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-cli-"));
    const path = await makeModel(dir);
    const q = join(dir, "q.gguf");
    expect((await run("quantize", path, q, "q4_0")).status).toBe(0);
    const out = join(dir, "t.f32");
    expect((await run("dump-tensor", q, "blk.0.attn_q.weight", "--out", out)).status).toBe(0);
    const bytes = await readFile(out);
    const model = await openGguf(q);
    const expected = dequantize(GGMLType.Q4_0, await model.readTensorBytes("blk.0.attn_q.weight"), 256 * 256);
    expect(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)).toEqual(expected);
    expect((await run("dump-tensor", q, "blk.0.attn_q.weight", "--out", out)).stderr).toMatch(/already exists/);
    expect((await run("dump-tensor", q, "nope", "--out", join(dir, "x"))).stderr).toMatch(/no tensor named "nope"/);
    await model.close();
  });

  it("quantize follows llama.cpp's tensor-type conventions and writes quantize() bytes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-cli-"));
    const path = await makeModel(dir);
    const out = join(dir, "q4k.gguf");
    const r = await run("quantize", path, out, "Q4_K");
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/quantize: 100%/);
    const model = await openGguf(out);
    const types = Object.fromEntries(model.tensors.map((t) => [t.name, GGMLType[t.type]]));
    expect(types).toEqual({
      "token_embd.weight": "Q4_K",
      "blk.0.attn_norm.weight": "F32",
      "blk.0.attn_q.weight": "Q4_K",
      "blk.0.ffn_down.weight": "Q4_K",
      "blk.0.ffn_gate_inp.weight": "F32",
      "output.weight": "Q6_K",
    });
    expect(model.metadata["general.file_type"]).toBe(14);
    const source = await openGguf(path);
    const weights = await source.readTensorF32("blk.0.attn_q.weight");
    expect(await model.readTensorBytes("blk.0.attn_q.weight")).toEqual(quantize(GGMLType.Q4_K, weights));
    await Promise.all([model.close(), source.close()]);
    const keep = join(dir, "keep.gguf");
    await run("quantize", path, keep, "q8_0", "--keep-output-f16");
    const kept = await openGguf(keep);
    expect(GGMLType[kept.tensor("output.weight").type]).toBe("F16");
    expect(GGMLType[kept.tensor("token_embd.weight").type]).toBe("Q8_0");
    await kept.close();
    if (hasGgml) expect(ggmlGgufSummary(out).tensors.map((t) => t.type)).toEqual(model.tensors.map((t) => t.type));
    expect((await run("quantize", path, out, "Q4_K")).stderr).toMatch(/already exists/);
    expect((await run("quantize", path, join(dir, "z.gguf"), "Q9_9")).stderr).toMatch(/unknown or unsupported TYPE "Q9_9"/);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
