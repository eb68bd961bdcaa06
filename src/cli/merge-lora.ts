import { mergeLoraFiles, type MergeOutputFormat } from "../lora/index.js";
import { GGUF_OUTTYPES, type GgufOuttype } from "../convert/to-gguf.js";
import { formatBytes } from "../formats/gguf/index.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

const FORMATS: MergeOutputFormat[] = ["hf", "pth", "gguf"];
const DTYPES: Record<string, SafetensorsFloatDtype> = { f32: "F32", f16: "F16", bf16: "BF16" };

export const mergeLoraCommand: Command = {
  usage: `usage: zh-llama merge-lora --base BASE --lora ADAPTER [--lora ADAPTER ...] --out OUT
                          [--format hf|pth|gguf] [--outtype TYPE] [--force]

Merges PEFT LoRA adapters into base weights, as the Chinese-LLaMA-Alpaca low-memory merge
scripts do: for every target module W' = W + (alpha/r) B@A in float32 (alpha/sqrt(r) with
rsLoRA, transposed with fan_in_fan_out); adapters apply in the order given and their deltas
add up; modules_to_save tensors (embed_tokens, lm_head) replace the base's, the last adapter
winning, which is how the vocabulary grows (32000 -> 49953 -> 49954). The last adapter's
tokenizer and config.json are carried over. Vocabulary mismatches are refused with an
explanation. One tensor is in memory at a time; peak memory is reported.

  --base BASE      HF directory (safetensors or pytorch_model*.bin), Meta's original
                   layout (consolidated.NN.pth + params.json, shards joined as Meta
                   splits them), a TencentPretrain .bin, or a GGUF file
  --lora DIR       a PEFT adapter directory; repeat for stacked adapters
                   (Plus/Pro Alpaca: --lora LLAMA_PLUS --lora ALPACA_PLUS, in that order)
  --out OUT        output directory (hf, pth) or .gguf file (gguf)
  --format F       hf (safetensors shards, default), pth (Meta consolidated.*.pth +
                   params.json) or gguf (ready for zh-llama run)
  --outtype TYPE   gguf: ${Object.keys(GGUF_OUTTYPES).join(", ")} (default: the weights' float type)
                   hf / pth: f32, f16, bf16 (default: the base's; pth f16)
  --force          replace OUT if it exists

Writes a SHA-256 manifest (OUT/SHA256SUMS, or OUT.gguf.sha256); check it with zh-llama verify.`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        base: { type: "string" },
        lora: { type: "string", multiple: true },
        out: { type: "string" },
        format: { type: "string" },
        outtype: { type: "string" },
        force: { type: "boolean" },
      },
    });
    if (!values.base) throw new UsageError("--base is required");
    if (!values.lora || values.lora.length === 0) throw new UsageError("at least one --lora is required");
    if (!values.out) throw new UsageError("--out is required");
    const format = (values.format ?? (values.out.endsWith(".gguf") ? "gguf" : "hf")) as MergeOutputFormat;
    if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(", ")}`);
    let outtype: GgufOuttype | undefined;
    let dtype: SafetensorsFloatDtype | undefined;
    if (values.outtype !== undefined) {
      const t = values.outtype.toLowerCase();
      if (format === "gguf") {
        if (!(t in GGUF_OUTTYPES)) throw new UsageError(`--outtype for gguf must be one of ${Object.keys(GGUF_OUTTYPES).join(", ")}`);
        outtype = t as GgufOuttype;
      } else {
        dtype = DTYPES[t];
        if (!dtype) throw new UsageError(`--outtype for ${format} must be f32, f16 or bf16`);
      }
    }
    let bar: ProgressBar | undefined;
    const result = await mergeLoraFiles({
      base: values.base,
      adapters: values.lora,
      out: values.out,
      format,
      outtype,
      dtype,
      overwrite: values.force,
      onProgress: (done, total, name) => {
        bar ??= new ProgressBar(io, "merge", total);
        bar.update(done, name);
      },
    });
    const r = result.report;
    bar?.done(`${r.merged} tensors merged, ${r.replaced} replaced`);
    for (const a of r.adapters) {
      io.stderr(`  ${a.dir}: ${a.deltas} LoRA deltas (scaling ${a.scalings.join(", ") || "-"})${a.full.length ? `, replaces ${a.full.join(", ")}` : ""}${a.tokenizerSize !== undefined ? `, tokenizer ${a.tokenizerSize}` : ""}\n`);
    }
    for (const w of result.warnings) io.stderr(`warning: ${w}\n`);
    io.stdout(
      `wrote ${values.out} (${format}): vocabulary ${r.vocabBefore} -> ${r.vocabAfter}\n` +
        `memory: peak RSS ${formatBytes(result.peakRssBytes)} (process max ${formatBytes(result.maxRssBytes)}) for a ${formatBytes(result.modelBytes)} model; largest tensor ${formatBytes(result.largestTensorBytes)}\n`,
    );
    return 0;
  },
};
