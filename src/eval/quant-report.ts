/**
 * The upstream READMEs' quantization table for any model: quantize to each type, then
 * measure file size, perplexity on a text (llama.cpp's method) and decode speed.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quantizeGguf } from "../convert/quantize.js";
import { GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import { LlamaModel } from "../model/index.js";
import { tokenizerFromGgufMetadata } from "../tokenizer/index.js";
import { benchModel } from "./bench.js";
import { perplexity } from "./perplexity.js";

export const DEFAULT_REPORT_TYPES: readonly GGMLType[] = [GGMLType.F16, GGMLType.Q8_0, GGMLType.Q6_K, GGMLType.Q5_K, GGMLType.Q5_1, GGMLType.Q5_0, GGMLType.Q4_K, GGMLType.Q4_1, GGMLType.Q4_0, GGMLType.Q3_K, GGMLType.Q2_K];

export interface QuantReportRow {
  type: string;
  bytes: number;
  /** Bits per weight over the whole file. */
  bpw: number;
  ppl: number;
  decodeTokensPerS: number;
}

export async function quantReport(
  modelPath: string,
  text: string,
  options: { types?: readonly GGMLType[]; ctx: number; chunks?: number; threads?: number; genTokens?: number; onRow?: (row: QuantReportRow) => void },
): Promise<QuantReportRow[]> {
  const dir = await mkdtemp(join(tmpdir(), "zh-quant-report-"));
  const rows: QuantReportRow[] = [];
  try {
    for (const type of options.types ?? DEFAULT_REPORT_TYPES) {
      const path = join(dir, `${ggmlTypeName(type)}.gguf`);
      await quantizeGguf(modelPath, path, type);
      const bytes = (await stat(path)).size;
      const model = await LlamaModel.load(path, { nCtx: Math.max(options.ctx, 80), batchSize: Math.min(options.ctx, 512), threads: options.threads });
      try {
        const tokenizer = tokenizerFromGgufMetadata(model.file.metadata, model.file.name);
        let tokens = tokenizer.encode(text, { addBos: true });
        if (options.chunks) tokens = tokens.slice(0, options.chunks * options.ctx);
        const ppl = await perplexity(model, tokens, { ctx: options.ctx, bosId: tokenizer.bosId });
        const speed = await benchModel(model, { promptTokens: 8, genTokens: options.genTokens ?? 32, repetitions: 1 });
        const params = model.file.tensors.reduce((n, t) => n + t.elements, 0);
        const row = { type: ggmlTypeName(type), bytes, bpw: (bytes * 8) / params, ppl: ppl.ppl, decodeTokensPerS: speed.decodeTokensPerS };
        rows.push(row);
        options.onRow?.(row);
      } finally {
        await model.dispose();
        await rm(path, { force: true });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
}

export function quantReportMarkdown(rows: QuantReportRow[]): string {
  return [
    "| type | size | bpw | PPL | decode tok/s |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.type} | ${(r.bytes / 2 ** 20).toFixed(2)} MiB | ${r.bpw.toFixed(2)} | ${r.ppl.toFixed(4)} | ${r.decodeTokensPerS.toFixed(1)} |`),
  ].join("\n") + "\n";
}
