import { convertHfToGguf } from "../convert/index.js";
import { GGUF_OUTTYPES, type GgufOuttype } from "../convert/to-gguf.js";
import { UsageError } from "../errors.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

const HF_DTYPES: Record<string, SafetensorsFloatDtype> = { f32: "F32", f16: "F16", bf16: "BF16" };

export const convertCommand: Command = {
  usage: `usage: zh-llama convert MODEL OUT [--outtype TYPE] [--format gguf|hf] [--name NAME] [--force]
                        [--config FILE] [--heads N] [--kv-heads N] [--tokenizer FILE]

Converts a LLaMA / Llama-2 / Mixtral checkpoint to GGUF (default) or to an HF safetensors
directory (--format hf). MODEL is one of:
  - an HF directory: config.json + safetensors or pytorch_model*.bin shards + tokenizer.model;
  - Meta's original layout: a directory of consolidated.NN.pth shards + params.json (the
    model-parallel shards are joined as Meta's model splits them; tokenizer.model from the
    directory, its parent, or --tokenizer);
  - a TencentPretrain checkpoint (Linly's Chinese-LLaMA / ChatLLaMA): one .bin, or a directory
    of shards with tencentpretrain_model.bin.index.json. Hyper-parameters from --config
    (TencentPretrain's models/llama/*_config.json) or the shapes; the head count needs --config
    or --heads unless the width is one of LLaMA's (4096/5120/6656/8192). Linly ships
    tokenizer.model beside the weights (else --tokenizer).
GGUF output is written as llama.cpp does: wq/wk permuted to GGUF's RoPE layout, Mixtral experts
stacked, norms kept F32, the tokenizer (with HF added tokens) in the metadata, rope scaling
(linear, yarn) from config.json. Streams tensor by tensor, writes atomically, and writes
OUT.sha256 (OUT/SHA256SUMS for --format hf). Bad or mismatched shards are refused before
anything is written.

  --outtype TYPE   gguf: ${Object.keys(GGUF_OUTTYPES).join(", ")}; hf: f32, f16, bf16
                   (default: the checkpoint's own float type)
  --format F       gguf (default) or hf
  --name NAME      general.name (default: the directory name)
  --config FILE    TencentPretrain config JSON (emb_size, heads_num, layers_num, layernorm_eps, ...)
  --heads N        attention heads (TencentPretrain without --config)
  --kv-heads N     KV heads (default: from the shapes)
  --tokenizer FILE SentencePiece tokenizer.model (Meta and TencentPretrain checkpoints)
  --force          replace OUT if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: {
        outtype: { type: "string" },
        format: { type: "string" },
        name: { type: "string" },
        force: { type: "boolean" },
        config: { type: "string" },
        heads: { type: "string" },
        "kv-heads": { type: "string" },
        tokenizer: { type: "string" },
      },
    });
    if (positionals.length !== 2) throw new UsageError("expected MODEL OUT");
    const [dir, out] = positionals as [string, string];
    const format = (values.format ?? "gguf").toLowerCase();
    if (format !== "gguf" && format !== "hf") throw new UsageError("--format must be gguf or hf");
    let outtype: GgufOuttype = "auto";
    let dtype: SafetensorsFloatDtype | undefined;
    if (values.outtype !== undefined) {
      const t = values.outtype.toLowerCase();
      if (format === "hf") {
        dtype = HF_DTYPES[t];
        if (!dtype) throw new UsageError("--outtype for --format hf must be f32, f16 or bf16");
      } else {
        if (!(t in GGUF_OUTTYPES)) throw new UsageError(`--outtype must be one of ${Object.keys(GGUF_OUTTYPES).join(", ")}`);
        outtype = t as GgufOuttype;
      }
    }
    const heads = values.heads === undefined ? undefined : numberOption("heads", values.heads, 0, 1, 1 << 16);
    const kvHeads = values["kv-heads"] === undefined ? undefined : numberOption("kv-heads", values["kv-heads"], 0, 1, 1 << 16);
    if ((heads !== undefined && !Number.isInteger(heads)) || (kvHeads !== undefined && !Number.isInteger(kvHeads))) throw new UsageError("--heads and --kv-heads take whole numbers");
    let bar: ProgressBar | undefined;
    const report = await convertHfToGguf(dir, out, {
      format,
      outtype,
      dtype,
      name: values.name,
      overwrite: values.force,
      config: values.config,
      heads,
      kvHeads,
      tokenizer: values.tokenizer,
      onProgress: (done, total, name) => {
        bar ??= new ProgressBar(io, "convert", total);
        bar.update(done, name);
      },
    });
    bar?.done(`${report.tensors} tensors`);
    for (const w of report.warnings) io.stderr(`warning: ${w}\n`);
    io.stdout(`wrote ${out}: ${Object.entries(report.types).map(([t, n]) => `${n} x ${t}`).join(", ")}\n`);
    return 0;
  },
};
