/**
 * Writing a model as an HF directory (safetensors shards + model.safetensors.index.json,
 * config.json, tokenizer files) or as Meta's `consolidated.*.pth` + params.json, as the
 * upstream merge scripts' `--output_type huggingface|pth` do (UPSTREAM.md 2b). Both stream one
 * tensor at a time and write the whole directory atomically with a SHA-256 manifest.
 */
import { InvalidArgumentError } from "../errors.js";
import { FormatError } from "../formats/errors.js";
import { fromFloat32, planSafetensorsShards, writeSafetensorsLazy, type SafetensorsFloatDtype, type SafetensorsLazyTensor } from "../formats/safetensors.js";
import { writeTorchCheckpoint, type TorchTensorOutput } from "../formats/pytorch.js";
import { hfToMetaName, isIgnoredHfTensor, metaSplitDim, permuteRopeRows, ropePermuteHeads } from "./llama-layout.js";
import { readF32, type ModelSource, type ModelTensor } from "./model-source.js";
import { writeDirectoryAtomically } from "./output-dir.js";
import { SAFETENSORS_DTYPE_BYTES } from "../formats/safetensors.js";

export interface WriteDirOptions {
  overwrite?: boolean;
  /** Convert every tensor to this dtype (default: keep each tensor's own). */
  dtype?: SafetensorsFloatDtype;
  /** Shard size for sources without a layout of their own (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** (tensors done, total, name); throwing aborts and leaves no output directory. */
  onProgress?: (done: number, total: number, name: string) => void;
}

const TORCH_DTYPE_NAME: Record<SafetensorsFloatDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** A tensor converted to `dtype` on read (unchanged when it already is). */
function asDtype(t: ModelTensor, dtype: SafetensorsFloatDtype | undefined): ModelTensor {
  if (!dtype || t.dtype === dtype) return t;
  if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") throw new FormatError(`tensor ${t.name} is ${t.dtype}, not a float type`);
  return { name: t.name, dtype, shape: t.shape, read: async () => fromFloat32(dtype, await readF32(t)).slice() };
}

/** The HF safetensors file name for a source shard name (pytorch_model-*.bin -> model-*.safetensors). */
export function safetensorsNameFor(fileName: string): string {
  if (fileName.endsWith(".safetensors")) return fileName;
  const m = /^pytorch_model(.*)\.bin$/.exec(fileName);
  return m ? `model${m[1]}.safetensors` : fileName.replace(/\.[^.]*$/, "") + ".safetensors";
}

/** config.json for the written model: the source's, with vocab_size / torch_dtype made true. */
export function outputConfig(source: ModelSource, dtype?: SafetensorsFloatDtype): Record<string, unknown> {
  const embed = source.tensors.find((t) => t.name === "model.embed_tokens.weight");
  const config: Record<string, unknown> = { ...(source.configJson ?? source.config.raw) };
  if (embed) config.vocab_size = embed.shape[0];
  const mainDtype = dtype ?? (embed && embed.dtype in TORCH_DTYPE_NAME ? (embed.dtype as SafetensorsFloatDtype) : undefined);
  if (mainDtype) config.torch_dtype = TORCH_DTYPE_NAME[mainDtype];
  return config;
}

/** Writes `source` as an HF safetensors directory at `out`. Returns the files written. */
export async function writeModelAsHf(source: ModelSource, out: string, options: WriteDirOptions = {}): Promise<string[]> {
  const { join } = await import("node:path");
  const fs = await import("node:fs/promises");
  const tensors = source.tensors.filter((t) => !isIgnoredHfTensor(t.name)).map((t) => asDtype(t, options.dtype));
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let done = 0;
  const lazy = (t: ModelTensor): SafetensorsLazyTensor => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: async () => {
      const bytes = await t.read();
      options.onProgress?.(++done, tensors.length, t.name);
      return bytes;
    },
  });
  let shards: { fileName: string; tensors: SafetensorsLazyTensor[] }[];
  if (source.shards.length > 0) {
    // The base's sharding layout, file for file (upstream copies the shard names).
    const placed = new Set<string>();
    shards = source.shards.map((s) => ({
      fileName: safetensorsNameFor(s.fileName),
      tensors: s.names.filter((n) => byName.has(n)).map((n) => (placed.add(n), lazy(byName.get(n)!))),
    }));
    const rest = tensors.filter((t) => !placed.has(t.name));
    if (rest.length > 0) shards[shards.length - 1]!.tensors.push(...rest.map(lazy));
    shards = shards.filter((s) => s.tensors.length > 0);
  } else {
    shards = planSafetensorsShards(tensors.map(lazy), options.maxShardBytes ?? 5_000_000_000);
  }
  return writeDirectoryAtomically(out, options.overwrite ?? false, async (dir) => {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (const shard of shards) {
      await writeSafetensorsLazy(join(dir, shard.fileName), shard.tensors, { format: "pt" });
      for (const t of shard.tensors) {
        weightMap[t.name] = shard.fileName;
        totalSize += t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
      }
    }
    if (shards.length > 1) {
      await fs.writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + "\n");
    }
    await fs.writeFile(join(dir, "config.json"), JSON.stringify(outputConfig(source, options.dtype), null, 2) + "\n");
    for (const [name, bytes] of Object.entries(source.files)) {
      if (name === "config.json" || name.endsWith(".index.json")) continue;
      await fs.writeFile(join(dir, name), bytes);
    }
  });
}

/** Model-parallel shard counts of Meta's releases by hidden size (upstream merge script). */
const META_SHARDS: Record<number, { shards: number; normEps: number; multipleOf: number }> = {
  4096: { shards: 1, normEps: 1e-6, multipleOf: 256 },
  5120: { shards: 2, normEps: 1e-6, multipleOf: 256 },
  6656: { shards: 4, normEps: 1e-6, multipleOf: 256 },
  8192: { shards: 8, normEps: 1e-5, multipleOf: 256 },
};

function sliceRows(data: Uint8Array, shape: number[], dim: 0 | 1, start: number, count: number, itemSize: number): Uint8Array {
  const [rows, cols] = [shape[0]!, shape[1] ?? 1];
  if (dim === 0) return data.slice(start * cols * itemSize, (start + count) * cols * itemSize);
  const out = new Uint8Array(rows * count * itemSize);
  for (let r = 0; r < rows; r++) out.set(data.subarray((r * cols + start) * itemSize, (r * cols + start + count) * itemSize), r * count * itemSize);
  return out;
}

export interface WriteMetaOptions extends WriteDirOptions {
  /** Model-parallel shards (default: Meta's count for the hidden size, else 1). */
  shards?: number;
}

/**
 * Writes `source` as Meta's consolidated.NN.pth + params.json (F16 unless `dtype` says),
 * with wq/wk un-permuted back to Meta's interleaved RoPE layout. Each shard file is written in
 * its own pass over the tensors, so memory stays at one tensor.
 */
export async function writeModelAsMeta(source: ModelSource, out: string, options: WriteMetaOptions = {}): Promise<string[]> {
  const { join } = await import("node:path");
  const fs = await import("node:fs/promises");
  const config = source.config;
  if (config.numExperts > 0) throw new InvalidArgumentError("Meta .pth output is for LLaMA / Llama-2; write Mixtral as HF or GGUF");
  const dtype = options.dtype ?? "F16";
  const known = META_SHARDS[config.hiddenSize];
  const nShards = options.shards ?? known?.shards ?? 1;
  const tensors: { meta: string; t: ModelTensor; heads?: number }[] = [];
  for (const t of source.tensors) {
    if (isIgnoredHfTensor(t.name)) continue;
    const meta = hfToMetaName(t.name);
    if (!meta) throw new FormatError(`${source.name}: tensor ${t.name} has no Meta counterpart`);
    tensors.push({ meta, t: asDtype(t, dtype), heads: ropePermuteHeads(t.name, config.numHeads, config.numKvHeads) });
  }
  const total = tensors.length * nShards;
  let done = 0;
  return writeDirectoryAtomically(out, options.overwrite ?? false, async (dir) => {
    for (let s = 0; s < nShards; s++) {
      const outputs: TorchTensorOutput[] = tensors.map(({ meta, t, heads }) => {
        // Uneven splits give the last shard the remainder ("13B: [24976, 24977]").
        const dim = nShards > 1 ? metaSplitDim(meta) : undefined;
        const itemSize = SAFETENSORS_DTYPE_BYTES[t.dtype];
        let shape = t.shape;
        let start = 0;
        let count = 0;
        if (dim !== undefined) {
          const size = t.shape[dim]!;
          const base = Math.floor(size / nShards);
          start = s * base;
          count = s === nShards - 1 ? size - start : base;
          shape = dim === 0 ? [count, t.shape[1]!] : [t.shape[0]!, count];
        }
        return {
          name: meta,
          dtype: t.dtype,
          shape,
          data: async () => {
            let bytes = await t.read();
            if (heads !== undefined) bytes = permuteRopeRows(bytes, t.shape[0]!, t.shape[1]!, heads, itemSize);
            if (dim !== undefined) bytes = sliceRows(bytes, t.shape, dim, start, count, itemSize);
            options.onProgress?.(++done, total, meta);
            return bytes;
          },
        };
      });
      await writeTorchCheckpoint(join(dir, `consolidated.${String(s).padStart(2, "0")}.pth`), outputs);
    }
    const params: Record<string, unknown> = {
      dim: config.hiddenSize,
      multiple_of: known?.multipleOf ?? 256,
      n_heads: config.numHeads,
      n_layers: config.numLayers,
      norm_eps: config.rmsEps,
      vocab_size: -1,
    };
    if (config.numKvHeads !== config.numHeads) params.n_kv_heads = config.numKvHeads;
    if (config.ropeTheta !== 10000) params.rope_theta = config.ropeTheta;
    await fs.writeFile(join(dir, "params.json"), JSON.stringify(params) + "\n");
    // Upstream writes the tokenizer next to the weights; keep the whole tokenizer set.
    for (const [name, bytes] of Object.entries(source.files)) {
      if (name.startsWith("tokenizer") || name === "special_tokens_map.json" || name === "added_tokens.json") await fs.writeFile(join(dir, name), bytes);
    }
  });
}
