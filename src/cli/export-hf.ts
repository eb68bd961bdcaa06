import { exportGgufToHf } from "../convert/index.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

const DTYPES: Record<string, SafetensorsFloatDtype> = { f32: "F32", f16: "F16", bf16: "BF16" };

export const exportHfCommand: Command = {
  usage: `usage: zh-llama export-hf MODEL.gguf OUT_DIR [--dtype f32|f16|bf16] [--force]

Writes a GGUF LLaMA / Mixtral model as an HF directory (safetensors shards, config.json,
tokenizer.model), undoing the conversion: wq/wk back to HF's rotate-half layout, experts
split. F32 / F16 / BF16 tensors keep their exact values, so HF -> GGUF -> HF is lossless;
quantized tensors are dequantized. Writes OUT_DIR/SHA256SUMS.

  --dtype T   dtype of every tensor (default: each tensor's own; norms follow the embedding)
  --force     replace OUT_DIR if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { dtype: { type: "string" }, force: { type: "boolean" } },
    });
    if (positionals.length !== 2) throw new UsageError("expected MODEL.gguf OUT_DIR");
    const [model, out] = positionals as [string, string];
    const dtype = values.dtype === undefined ? undefined : DTYPES[values.dtype.toLowerCase()];
    if (values.dtype !== undefined && !dtype) throw new UsageError("--dtype must be f32, f16 or bf16");
    let bar: ProgressBar | undefined;
    const { files, warnings } = await exportGgufToHf(model, out, {
      dtype,
      overwrite: values.force,
      onProgress: (done, total, name) => {
        bar ??= new ProgressBar(io, "export", total);
        bar.update(done, name);
      },
    });
    bar?.done(`${files.length} files`);
    for (const w of warnings) io.stderr(`warning: ${w}\n`);
    io.stdout(`wrote ${out}: ${files.join(", ")}\n`);
    return 0;
  },
};
