/**
 * LoRA merging: PEFT adapters (stacked, in order) into HF or GGUF base weights, streamed one
 * tensor at a time, written as HF shards, Meta consolidated.*.pth or a runnable GGUF.
 */
import { openModel } from "../convert/index.js";
import { tensorByteLength } from "../convert/model-source.js";
import { writeModelAsGguf, type GgufOuttype } from "../convert/to-gguf.js";
import { writeModelAsHf, writeModelAsMeta } from "../convert/write-hf.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";
import { openLoraAdapter, type LoraAdapter } from "./adapter.js";
import { mergeLora, type MergeReport } from "./merge.js";

export * from "./adapter.js";
export * from "./merge.js";

export type MergeOutputFormat = "hf" | "pth" | "gguf";

export interface MergeLoraFilesOptions {
  /** HF directory or GGUF file. */
  base: string;
  /** PEFT adapter directories, applied in this order. */
  adapters: string[];
  out: string;
  format?: MergeOutputFormat;
  /** GGUF output type (default: the merged weights' own float type). */
  outtype?: GgufOuttype;
  /** HF / pth output dtype (default: the base's; pth: F16 as upstream). */
  dtype?: SafetensorsFloatDtype;
  overwrite?: boolean;
  /** (tensors done, total, name); throwing aborts and leaves no output. */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface MergeLoraFilesResult {
  report: MergeReport;
  /** Files written (for gguf: the file and its .sha256). */
  files: string[];
  /** Bytes of the base model's weights. */
  modelBytes: number;
  /** Largest single output tensor, in bytes. */
  largestTensorBytes: number;
  /** Highest resident set size seen while writing, and the process's lifetime peak. */
  peakRssBytes: number;
  maxRssBytes: number;
  warnings: string[];
}

/** Merges and writes. Everything is checked before the first byte is written. */
export async function mergeLoraFiles(options: MergeLoraFilesOptions): Promise<MergeLoraFilesResult> {
  const base = await openModel(options.base);
  const adapters: LoraAdapter[] = [];
  let closeAll = async (): Promise<void> => {
    for (const a of adapters) await a.close();
    await base.close();
  };
  try {
    for (const dir of options.adapters) adapters.push(await openLoraAdapter(dir));
    const { source, report } = mergeLora(base, adapters, { dtype: options.format === "gguf" ? undefined : options.dtype });
    closeAll = () => source.close();
    const modelBytes = base.tensors.reduce((a, t) => a + tensorByteLength(t), 0);
    const largestTensorBytes = Math.max(...source.tensors.map((t) => tensorByteLength(t)));
    let peakRssBytes = process.memoryUsage.rss();
    const onProgress = (done: number, total: number, name: string): void => {
      peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
      options.onProgress?.(done, total, name);
    };
    const warnings = [...(base.warnings ?? []), ...report.warnings];
    let files: string[];
    const format = options.format ?? "hf";
    if (format === "gguf") {
      const r = await writeModelAsGguf(source, options.out, { outtype: options.outtype, overwrite: options.overwrite, onProgress, manifest: true });
      warnings.push(...r.warnings);
      files = [options.out, `${options.out}.sha256`];
    } else if (format === "pth") {
      files = await writeModelAsMeta(source, options.out, { overwrite: options.overwrite, dtype: options.dtype, onProgress });
    } else {
      files = await writeModelAsHf(source, options.out, { overwrite: options.overwrite, dtype: options.dtype, onProgress });
    }
    const maxRssBytes = process.resourceUsage().maxRSS * 1024;
    return { report, files, modelBytes, largestTensorBytes, peakRssBytes: Math.max(peakRssBytes, process.memoryUsage.rss()), maxRssBytes, warnings };
  } finally {
    await closeAll();
  }
}
