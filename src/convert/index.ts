/**
 * Checkpoint conversion: HF (safetensors / torch .bin) <-> GGUF, Meta .pth output, atomic
 * output directories with SHA-256 manifests, and llama.cpp-style requantization.
 */
import { openHfModel, type ModelSource } from "./model-source.js";
import { openGgufAsHf, type FromGgufOptions } from "./from-gguf.js";
import { writeModelAsGguf, type ToGgufOptions, type ToGgufReport } from "./to-gguf.js";
import { writeModelAsHf, type WriteDirOptions } from "./write-hf.js";

export * from "./llama-layout.js";
export * from "./model-source.js";
export * from "./gguf-tokenizer.js";
export * from "./to-gguf.js";
export * from "./from-gguf.js";
export * from "./write-hf.js";
export * from "./output-dir.js";
export { quantizeGguf, chooseTensorType, chooseMixType, planQuantization, QUANT_MIXES, type QuantMix, type QuantFallback, type QuantizeOptions, type QuantizeReport } from "./quantize.js";

/** Opens a model given as an HF directory or a GGUF file. */
export async function openModel(path: string, options: FromGgufOptions = {}): Promise<ModelSource & { warnings?: string[] }> {
  const { stat } = await import("node:fs/promises");
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new (await import("../errors.js")).InvalidArgumentError(`${path}: no such file or directory`);
  return s.isDirectory() ? openHfModel(path) : openGgufAsHf(path, options);
}

/** `zh-llama convert`: an HF LLaMA / Llama-2 / Mixtral directory to one GGUF file (+ OUT.sha256). */
export async function convertHfToGguf(hfDir: string, outPath: string, options: ToGgufOptions = {}): Promise<ToGgufReport & { manifest: string }> {
  const source = await openHfModel(hfDir);
  try {
    // The manifest is staged with the file and renamed in right after it: the two always match.
    const report = await writeModelAsGguf(source, outPath, { ...options, manifest: true });
    return { ...report, manifest: `${outPath}.sha256` };
  } finally {
    await source.close();
  }
}

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
