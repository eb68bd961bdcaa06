/**
 * Checkpoint conversion: HF (safetensors / torch .bin), Meta consolidated.*.pth and
 * TencentPretrain .bin inputs <-> GGUF, HF and Meta .pth outputs, atomic
 * output directories with SHA-256 manifests, and llama.cpp-style requantization.
 */
import { openHfModel, type ModelSource } from "./model-source.js";
import { openGgufAsHf, type FromGgufOptions } from "./from-gguf.js";
import { writeModelAsGguf, type ToGgufOptions, type ToGgufReport } from "./to-gguf.js";
import { writeModelAsHf, type WriteDirOptions } from "./write-hf.js";
import { isMetaDir, openMetaModel, type MetaModelOptions } from "./meta-source.js";
import { openTencentPretrainModel, TENCENTPRETRAIN_INDEX, type TencentPretrainOptions } from "./tencentpretrain.js";
import { InvalidArgumentError } from "../errors.js";
import { FormatError } from "../formats/errors.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";

export * from "./llama-layout.js";
export * from "./model-source.js";
export * from "./gguf-tokenizer.js";
export * from "./to-gguf.js";
export * from "./from-gguf.js";
export * from "./write-hf.js";
export * from "./output-dir.js";
export * from "./meta-source.js";
export * from "./tencentpretrain.js";
export * from "./synthetic.js";
export { syntheticHfConfig, findTokenizerFiles, type LlamaShape } from "./foreign-source.js";
export { quantizeGguf, chooseTensorType, chooseMixType, planQuantization, QUANT_MIXES, type QuantMix, type QuantFallback, type QuantizeOptions, type QuantizeReport } from "./quantize.js";

/** How to read checkpoints that carry no config.json (TencentPretrain) or no tokenizer beside them. */
export type OpenModelOptions = FromGgufOptions & TencentPretrainOptions & MetaModelOptions;

/**
 * Opens a model: an HF directory (config.json + safetensors / pytorch_model*.bin), Meta's
 * consolidated.NN.pth + params.json directory, a TencentPretrain checkpoint (a .bin file, or a
 * directory with tencentpretrain_model.bin.index.json or .bin files) or a GGUF file.
 */
export async function openModel(path: string, options: OpenModelOptions = {}): Promise<ModelSource & { warnings?: string[] }> {
  const { stat, readdir } = await import("node:fs/promises");
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new InvalidArgumentError(`${path}: no such file or directory`);
  if (s.isDirectory()) {
    const listing = await readdir(path);
    if (listing.includes(TENCENTPRETRAIN_INDEX)) return openTencentPretrainModel(path, options);
    if (!listing.includes("config.json")) {
      if (await isMetaDir(path)) return openMetaModel(path, options);
      if (listing.some((n) => n.endsWith(".bin") && !n.startsWith("pytorch_model") && !n.startsWith("adapter_model"))) return openTencentPretrainModel(path, options);
    }
    return openHfModel(path);
  }
  const { openByteSource } = await import("../formats/gguf/source.js");
  const source = await openByteSource(path);
  let head: Uint8Array;
  try {
    head = await source.read(0, Math.min(4, source.size));
  } finally {
    await source.close();
  }
  // A torch zip ("PK"): TencentPretrain's single-file checkpoints.
  if (head[0] === 0x50 && head[1] === 0x4b) return openTencentPretrainModel(path, options);
  return openGgufAsHf(path, options);
}

export interface ConvertOptions extends ToGgufOptions, TencentPretrainOptions, MetaModelOptions {
  /** "gguf" (default): one GGUF file; "hf": an HF safetensors directory. */
  format?: "gguf" | "hf";
  /** HF output dtype (default: each tensor's own). */
  dtype?: SafetensorsFloatDtype;
}

/**
 * `zh-llama convert`: a checkpoint (HF directory, Meta consolidated.*.pth directory or
 * TencentPretrain .bin / shards) to one GGUF file (+ OUT.sha256) or an HF directory.
 */
export async function convertHfToGguf(input: string, outPath: string, options: ConvertOptions = {}): Promise<ToGgufReport & { manifest: string }> {
  const source = await openModel(input, options);
  try {
    if (source.ggufTokenizer === undefined && !source.files["tokenizer.model"] && (options.format ?? "gguf") === "gguf") {
      throw new FormatError(`${input}: no tokenizer.model beside the weights; pass --tokenizer FILE (a GGUF carries its tokenizer)`);
    }
    const warnings = [...(source.warnings ?? [])];
    if (options.format === "hf") {
      const files = await writeModelAsHf(source, outPath, { overwrite: options.overwrite, dtype: options.dtype, onProgress: options.onProgress });
      const types: Record<string, number> = {};
      for (const t of source.tensors) types[t.dtype] = (types[t.dtype] ?? 0) + 1;
      return { path: outPath, tensors: source.tensors.length, types, warnings, manifest: files.find((f) => f.endsWith("SHA256SUMS")) ?? `${outPath}/SHA256SUMS` };
    }
    // The manifest is staged with the file and renamed in right after it: the two always match.
    // general.name: a single-file checkpoint is named by its file, without ".bin".
    const name = options.name ?? (/\.(bin|pt|pth)$/.test(input) ? input.split(/[\\/]/).pop()!.replace(/\.(bin|pt|pth)$/, "") : undefined);
    const report = await writeModelAsGguf(source, outPath, { ...options, name, manifest: true });
    return { ...report, warnings: [...warnings, ...report.warnings], manifest: `${outPath}.sha256` };
  } finally {
    await source.close();
  }
}

/** The same as convertHfToGguf, under the name for what it now reads. */
export const convertModel = convertHfToGguf;

/** `zh-llama export-hf`: a GGUF model to an HF safetensors directory (exact for F32/F16/BF16). */
export async function exportGgufToHf(ggufPath: string, outDir: string, options: WriteDirOptions & FromGgufOptions = {}): Promise<{ files: string[]; warnings: string[] }> {
  const source = await openGgufAsHf(ggufPath, { dtype: options.dtype });
  try {
    const files = await writeModelAsHf(source, outDir, options);
    return { files, warnings: source.warnings };
  } finally {
    await source.close();
  }
}
