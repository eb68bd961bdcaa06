/**
 * A model as a list of lazily read tensors under their Hugging Face names, whatever it was
 * stored as: an HF directory (safetensors or torch .bin shards) or a GGUF file seen through
 * the inverse of llama.cpp's conversion. Converters, the LoRA merger and the writers all
 * speak this one shape, so "merge into a GGUF base" and "export a GGUF to HF" are the same
 * code as "convert HF to GGUF", run the other way.
 *
 * Nothing here holds more than one tensor: `read()` fetches one from disk when called.
 */
import { InvalidArgumentError } from "../errors.js";
import { FormatError } from "../formats/errors.js";
import { parseLlamaConfig, type LlamaConfig } from "../formats/hf-config.js";
import { openSafetensors, SAFETENSORS_DTYPE_BYTES, toFloat32, type SafetensorsDtype, type SafetensorsIndex } from "../formats/safetensors.js";
import { openTorchCheckpoint } from "../formats/pytorch.js";
import { openByteSource } from "../formats/gguf/source.js";
import type { GgufValue } from "../formats/gguf/index.js";

/** One tensor under its HF name, HF (row-major, numpy) shape and storage dtype. */
export interface ModelTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes in `dtype`, row-major. */
  read(): Promise<Uint8Array>;
}

/** A file of tensors: a safetensors file or a torch checkpoint. */
export interface TensorFile {
  readonly name: string;
  readonly tensors: readonly { name: string; dtype: SafetensorsDtype; shape: number[]; byteLength: number }[];
  readTensor(name: string): Promise<Uint8Array>;
  readTensorF32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Opens a safetensors file or a torch zip checkpoint, told apart by their first bytes. */
export async function openTensorFile(path: string): Promise<TensorFile> {
  const source = await openByteSource(path);
  let zip = false;
  try {
    const head = await source.read(0, Math.min(4, source.size));
    zip = head.length >= 2 && head[0] === 0x50 && head[1] === 0x4b;
    if (head.length >= 2 && head[0] === 0x80 && head[1] <= 5) {
      throw new FormatError(`${path}: a legacy (pre-1.6, non-zip) torch checkpoint; re-save it with torch>=1.6 or convert it to safetensors`);
    }
  } finally {
    await source.close();
  }
  return zip ? openTorchCheckpoint(path) : openSafetensors(path);
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function tensorByteLength(t: { dtype: SafetensorsDtype; shape: readonly number[] }): number {
  return elementCount(t.shape) * SAFETENSORS_DTYPE_BYTES[t.dtype];
}

/** A tensor's values as float32 (F32 / F16 / BF16 / F64 storage). */
export async function readF32(t: ModelTensor): Promise<Float32Array> {
  return toFloat32(t.dtype, await t.read(), elementCount(t.shape), `tensor ${JSON.stringify(t.name)}`);
}

export interface ModelSource {
  /** For messages: the directory or file. */
  readonly name: string;
  readonly config: LlamaConfig;
  /** config.json's text as found (carried to HF outputs with vocab_size patched), if any. */
  readonly configJson?: Record<string, unknown>;
  readonly tensors: ModelTensor[];
  /** How the weights were split into files, by HF file name (kept by HF outputs). */
  readonly shards: { fileName: string; names: string[] }[];
  /** Tokenizer and other small files to carry to HF outputs (tokenizer.model, *.json, *.py). */
  readonly files: Record<string, Uint8Array>;
  /** Tokenizer as GGUF metadata, when the source is a GGUF (lossless for GGUF outputs). */
  readonly ggufTokenizer?: Record<string, GgufValue>;
  close(): Promise<void>;
}

/** Files an HF model directory may carry besides weights, copied to merged outputs. */
export const HF_SIDE_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json", "generation_config.json"];

async function readSideFiles(dir: string, names: readonly string[], withPython: boolean): Promise<Record<string, Uint8Array>> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const files: Record<string, Uint8Array> = {};
  const listing = await fs.readdir(dir);
  for (const name of listing) {
    if (names.includes(name) || (withPython && name.endsWith(".py"))) files[name] = await fs.readFile(join(dir, name));
  }
  return files;
}

/** Weight files of an HF directory, in shard order, from the index when there is one. */
async function weightFiles(dir: string): Promise<{ files: string[]; format: "safetensors" | "pytorch" }> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const listing = (await fs.readdir(dir)).sort();
  for (const [indexName, format] of [["model.safetensors.index.json", "safetensors"], ["pytorch_model.bin.index.json", "pytorch"]] as const) {
    if (listing.includes(indexName)) {
      let index: SafetensorsIndex;
      try {
        index = JSON.parse(await fs.readFile(join(dir, indexName), "utf8")) as SafetensorsIndex;
      } catch (error) {
        throw new FormatError(`${join(dir, indexName)}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
      }
      if (!index || typeof index.weight_map !== "object") throw new FormatError(`${join(dir, indexName)}: no weight_map`);
      const files = [...new Set(Object.values(index.weight_map))].sort();
      for (const f of files) {
        if (typeof f !== "string" || f.includes("/") || f.includes("\\") || !listing.includes(f)) throw new FormatError(`${join(dir, indexName)}: shard ${JSON.stringify(f)} is missing from ${dir}`);
      }
      return { files, format };
    }
  }
  const st = listing.filter((n) => n.endsWith(".safetensors") && !n.startsWith("adapter_model"));
  if (st.length > 0) return { files: st, format: "safetensors" };
  const bin = listing.filter((n) => /^pytorch_model.*\.bin$/.test(n));
  if (bin.length > 0) return { files: bin, format: "pytorch" };
  throw new FormatError(`${dir}: no model weights (model*.safetensors or pytorch_model*.bin)`);
}

/** Opens an HF LLaMA / Llama-2 / Mixtral directory: config.json plus weight shards. */
export async function openHfModel(dir: string): Promise<ModelSource> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const configPath = join(dir, "config.json");
  const configText = await fs.readFile(configPath, "utf8").catch(() => {
    throw new FormatError(`${dir}: no config.json (is this a Hugging Face model directory?)`);
  });
  const config = parseLlamaConfig(configText, configPath);
  const { files } = await weightFiles(dir);
  const opened: TensorFile[] = [];
  try {
    const tensors: ModelTensor[] = [];
    const shards: ModelSource["shards"] = [];
    const seen = new Set<string>();
    for (const fileName of files) {
      const file = await openTensorFile(join(dir, fileName));
      opened.push(file);
      const names: string[] = [];
      for (const info of file.tensors) {
        if (seen.has(info.name)) throw new FormatError(`${dir}: tensor ${JSON.stringify(info.name)} appears in two shards`);
        seen.add(info.name);
        names.push(info.name);
        tensors.push({ name: info.name, dtype: info.dtype, shape: info.shape, read: () => file.readTensor(info.name) });
      }
      shards.push({ fileName, names });
    }
    return {
      name: dir,
      config,
      configJson: config.raw,
      tensors,
      shards,
      files: await readSideFiles(dir, HF_SIDE_FILES, true),
      close: async () => {
        for (const f of opened) await f.close();
      },
    };
  } catch (error) {
    for (const f of opened) await f.close().catch(() => undefined);
    throw error;
  }
}

/** Looks a tensor up by name, with an error naming the model when it is missing. */
export function requireTensor(source: ModelSource, name: string): ModelTensor {
  const t = source.tensors.find((x) => x.name === name);
  if (!t) throw new InvalidArgumentError(`${source.name}: no tensor ${JSON.stringify(name)}`);
  return t;
}
