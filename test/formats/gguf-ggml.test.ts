/** Files written by zh-llama, read back by llama.cpp's own GGUF reader (ggml's gguf.cpp). */
import { describe, expect, it } from "vitest";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGguf, writeGguf, writeGgufSplit, GgufValueType, type GgufWriteSpec } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { ggmlGgufSummary, hasGgml } from "../helpers/llama-cpp.js";

function spec(): GgufWriteSpec {
  const tensors = [
    { name: "token_embd.weight", type: GGMLType.Q4_0, shape: [64, 10] },
    { name: "blk.0.attn_norm.weight", type: GGMLType.F32, shape: [64] },
    { name: "blk.0.ffn_up.weight", type: GGMLType.Q6_K, shape: [256, 3] },
    { name: "blk.0.ffn_gate_exps.weight", type: GGMLType.F16, shape: [64, 4, 2] },
  ].map((t, k) => {
    const bytes = t.type === GGMLType.Q4_0 ? 18 * 2 * 10 : t.type === GGMLType.F32 ? 256 : t.type === GGMLType.Q6_K ? 210 * 3 : 2 * 64 * 8;
    return { ...t, data: new Uint8Array(bytes).map((_, i) => (i * 7 + k) & 0x3f) };
  });
  return {
    metadata: {
      "general.architecture": "llama",
      "general.name": "ggml acceptance",
      "llama.context_length": 128,
      "llama.embedding_length": 64,
      "llama.rope.freq_base": 10000,
      "llama.rope.scaling.finetuned": true,
      "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "▁你好", "\uFEFF"],
      "tokenizer.ggml.scores": [0, 0, 0, -1.5, -2],
      "tokenizer.ggml.token_type": [2, 3, 3, 1, 1],
      "tokenizer.ggml.add_bos_token": true,
      "custom.u64": 2n ** 40n,
    },
    metadataTypes: { "custom.u64": GgufValueType.UINT64 },
    tensors,
  };
}

describe.skipIf(!hasGgml)("GGUF files written by zh-llama, read by llama.cpp", () => {
  it("ggml sees the same metadata, types, shapes and offsets", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-llama-ggml-"));
    const path = join(dir, "m.gguf");
    await writeGguf(path, spec());
    const ggml = ggmlGgufSummary(path);
    const ours = await openGguf(path);
    expect(ggml.version).toBe(3);
    expect(ggml.alignment).toBe(ours.alignment);
    expect(ggml.data_offset).toBe(ours.headers[0]!.dataStart);
    expect(ggml.kv.map((e) => e.key)).toEqual(Object.keys(ours.metadata));
    const byKey = Object.fromEntries(ggml.kv.map((e) => [e.key, e]));
    expect(byKey["llama.context_length"]).toMatchObject({ type: GgufValueType.UINT32, value: 128 });
    expect(byKey["llama.rope.freq_base"]).toMatchObject({ type: GgufValueType.FLOAT32, value: 10000 });
    expect(byKey["tokenizer.ggml.tokens"]).toMatchObject({ arr_type: GgufValueType.STRING, value: ours.metadata["tokenizer.ggml.tokens"] });
    expect(byKey["tokenizer.ggml.scores"]).toMatchObject({ arr_type: GgufValueType.FLOAT32, n: 5 });
    expect(byKey["tokenizer.ggml.token_type"]).toMatchObject({ arr_type: GgufValueType.INT32, n: 5 });
    expect(byKey["custom.u64"]).toMatchObject({ type: GgufValueType.UINT64, value: 2 ** 40 });
    expect(ggml.tensors).toEqual(
      ours.tensors.map((t) => ({ name: t.name, type: t.type, offset: Number(t.offset), size: t.byteSize, ne: [...t.shape, 1, 1, 1].slice(0, 4) })),
    );
    await ours.close();
  });

  it("ggml accepts every part of a split model", async () => {
    const dir = await mkdtemp(join(tmpdir(), "zh-llama-ggml-"));
    const paths = await writeGgufSplit(join(dir, "m"), spec(), { maxTensorsPerPart: 2 });
    const parts = paths.map(ggmlGgufSummary);
    expect(parts.map((p) => p.tensors.length)).toEqual([2, 2]);
    expect(parts[1]!.kv.find((e) => e.key === "split.no")).toMatchObject({ type: GgufValueType.UINT16 });
  });
});
