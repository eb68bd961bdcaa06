/**
 * The memory plan (src/model/plan.ts) on the shapes users have, from headers alone (the tensor
 * data of these GGUFs is never read), and its refusals: a machine too small, one layer bigger
 * than a wasm32 memory, hostile metadata, a file that changes under the loader.
 */
import { describe, expect, it } from "vitest";
import { BufferSource, encodeGguf, layoutGguf, openGguf, type ByteSource } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import {
  LlamaModel, MemoryPlanError, ModelError, WASM32_MEMORY_BYTES, checkPlanFits, describePlan, planMemory, readHParams,
} from "../../src/model/index.js";
import { syntheticModel, syntheticVocab } from "../../src/convert/synthetic.js";

const GiB = 2 ** 30;

/** A header-only GGUF of a LLaMA shape: tensor infos, no data (the plan reads none). */
async function shapeOnly(o: { dim: number; layers: number; heads: number; kvHeads?: number; ffn: number; vocab: number; ctx: number; type: GGMLType; outputType?: GGMLType }) {
  const kvDim = (o.dim / o.heads) * (o.kvHeads ?? o.heads);
  const t = (name: string, type: GGMLType, shape: number[]) => ({ name, type, shape, data: new Uint8Array(0) });
  const tensors = [t("token_embd.weight", o.type, [o.dim, o.vocab])];
  for (let l = 0; l < o.layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(t(p + "attn_norm.weight", GGMLType.F32, [o.dim]), t(p + "attn_q.weight", o.type, [o.dim, o.dim]), t(p + "attn_k.weight", o.type, [o.dim, kvDim]), t(p + "attn_v.weight", o.type, [o.dim, kvDim]));
    tensors.push(t(p + "attn_output.weight", o.type, [o.dim, o.dim]), t(p + "ffn_norm.weight", GGMLType.F32, [o.dim]));
    tensors.push(t(p + "ffn_gate.weight", o.type, [o.dim, o.ffn]), t(p + "ffn_up.weight", o.type, [o.dim, o.ffn]), t(p + "ffn_down.weight", o.type, [o.ffn, o.dim]));
  }
  tensors.push(t("output_norm.weight", GGMLType.F32, [o.dim]), t("output.weight", o.outputType ?? o.type, [o.dim, o.vocab]));
  const v = syntheticVocab(o.vocab);
  const layout = layoutGguf({
    metadata: {
      "general.architecture": "llama", "llama.context_length": o.ctx, "llama.embedding_length": o.dim, "llama.block_count": o.layers, "llama.feed_forward_length": o.ffn,
      "llama.attention.head_count": o.heads, "llama.attention.head_count_kv": o.kvHeads ?? o.heads, "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": v.tokens, "tokenizer.ggml.scores": v.scores, "tokenizer.ggml.token_type": v.types,
    },
    tensors,
  });
  // The header, and a source claiming the full size whose data reads would fail.
  const header = layout.header;
  const read = async (off: number, n: number) => {
    const out = new Uint8Array(n); // zeros past the header: the plan never looks there
    if (off < header.length) out.set(header.subarray(off, Math.min(header.length, off + n)));
    return out;
  };
  const source: ByteSource = { name: "shape.gguf", size: layout.fileSize, read, close: async () => {} };
  return { file: await openGguf(source), fileSize: layout.fileSize };
}

const llama7b = { dim: 4096, layers: 32, heads: 32, ffn: 11008, vocab: 55296, ctx: 4096, type: GGMLType.Q4_0, outputType: GGMLType.Q6_K };
const llama13b = { ...llama7b, dim: 5120, layers: 40, heads: 40, ffn: 13824 };

describe("memory plan", () => {
  it("spreads a 7B Q4_0 at 4096 tokens over 2 memories, a 13B over 3, every memory under 4 GiB", async () => {
    for (const [shape, memories] of [[llama7b, 2], [llama13b, 3]] as const) {
      const { file, fileSize } = await shapeOnly(shape);
      const hp = readHParams(file.metadata);
      const plan = planMemory(file, hp, { nCtx: 4096, kvType: GGMLType.F16, maxTok: 64, threads: 1 });
      expect(plan.memories.length, describePlan(plan).join("\n")).toBe(memories);
      for (const m of plan.memories) expect(m.bytes).toBeLessThanOrEqual(WASM32_MEMORY_BYTES);
      // Every layer in exactly one memory, in order; the KV cache of f16 K and V for every layer.
      expect(plan.layerMemory).toEqual([...plan.layerMemory].sort((a, b) => a - b));
      expect(plan.kvBytesPerToken).toBe(2 * shape.layers * shape.dim * 2);
      expect(plan.kvBytes).toBe(4096 * plan.kvBytesPerToken);
      expect(Math.abs(plan.weightBytes - fileSize)).toBeLessThan(0.01 * fileSize);
      // One thread runs it: the plan does not depend on threads for its memory count.
      expect(planMemory(file, hp, { nCtx: 4096, kvType: GGMLType.F16, maxTok: 64, threads: 8 }).memories.length).toBe(memories);
    }
  });

  it("a q8_0 KV cache takes 34 bytes per 32 values, and sessions multiply the KV cache", async () => {
    const { file } = await shapeOnly(llama7b);
    const hp = readHParams(file.metadata);
    const q8 = planMemory(file, hp, { nCtx: 2048, kvType: GGMLType.Q8_0, maxTok: 64, threads: 1 });
    expect(q8.kvBytesPerToken).toBe((2 * 32 * 4096 * 34) / 32);
    const two = planMemory(file, hp, { nCtx: 2048, kvType: GGMLType.Q8_0, maxTok: 64, threads: 1, sessions: 2 });
    expect(two.kvBytes).toBe(2 * q8.kvBytes);
  });

  it("refuses a plan bigger than the machine, naming the sizes and a context that fits", async () => {
    const { file } = await shapeOnly(llama13b);
    const plan = planMemory(file, readHParams(file.metadata), { nCtx: 32768, kvType: GGMLType.F16, maxTok: 64, threads: 2 });
    expect(() => checkPlanFits(plan, 64 * GiB, "13b.gguf")).not.toThrow();
    expect(() => checkPlanFits(plan, 16 * GiB, "13b.gguf")).toThrow(MemoryPlanError);
    expect(() => checkPlanFits(plan, 16 * GiB, "13b.gguf")).toThrow(
      /13b\.gguf does not fit this machine at a context of 32768 tokens: it needs [\d.]+ GiB \(weights [\d.]+ GiB, KV cache 800\.0 MiB per 1k tokens x 32768 tokens = 25\.00 GiB, .*and 16\.00 GiB is available; use a shorter context \(-c \d+ \/ nCtx: \d+ fits\)/,
    );
    expect(() => checkPlanFits(plan, 6 * GiB, "13b.gguf")).toThrow(/the weights alone \(7\.\d\d GiB\) leave no room/);
  });

  it("refuses a layer bigger than one wasm32 memory, and hostile sizes, before allocating", async () => {
    const { file } = await shapeOnly(llama7b);
    const hp = readHParams(file.metadata);
    // 7B at 2^20 tokens: one layer's KV cache alone is 16 GiB.
    expect(() => planMemory(file, hp, { nCtx: 1 << 20, kvType: GGMLType.F16, maxTok: 64, threads: 1 })).toThrow(/layer 0 needs .* more than one wasm32 memory holds .* use a shorter context/);
    expect(() => planMemory(file, hp, { nCtx: 2 ** 32 - 1, kvType: GGMLType.F16, maxTok: 64, threads: 1 })).toThrow(/context length must be an integer in 1\.\.16777216, got 4294967295/);
    expect(() => planMemory(file, { ...hp, nLayer: 2 ** 31 }, { nCtx: 512, kvType: GGMLType.F16, maxTok: 64, threads: 1 })).toThrow(/block_count is 2147483648, but the file has only \d+ tensors/);
  });

  it("a file that fails under the loader gives a ModelError naming the tensor", async () => {
    const bytes = await encodeGguf(syntheticModel({ dim: 64, layers: 2, heads: 4, ffn: 160, vocab: 300, type: GGMLType.Q8_0, seed: 3 }));
    const file = await openGguf(bytes);
    const victim = file.tensor("blk.1.ffn_up.weight");
    await file.close();
    const inner = new BufferSource(bytes);
    let armed = false;
    const failing: ByteSource = {
      name: "shrinking.gguf", size: bytes.length, close: async () => {},
      read: async (off, n) => {
        if (armed && off + n > victim.dataOffset && off < victim.dataOffset + victim.byteSize) throw new Error("file shrank while reading");
        return inner.read(off, n);
      },
    };
    const opened = await openGguf(failing);
    armed = true;
    const error = await LlamaModel.load(opened, { threads: 1, nCtx: 64 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelError);
    expect(String(error)).toMatch(/shrinking\.gguf: cannot read tensor "blk\.1\.ffn_up\.weight" .*file shrank/);
  });
});
