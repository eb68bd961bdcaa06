import { convertHfToGguf } from "../convert/index.js";
import { GGUF_OUTTYPES, type GgufOuttype } from "../convert/to-gguf.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

export const convertCommand: Command = {
  usage: `usage: zh-llama convert HF_DIR OUT.gguf [--outtype TYPE] [--name NAME] [--force]

Converts an HF LLaMA / Llama-2 / Mixtral checkpoint (config.json + safetensors or
pytorch_model*.bin shards + tokenizer.model) to GGUF as llama.cpp does: wq/wk permuted to
GGUF's RoPE layout, Mixtral experts stacked, norms kept F32, the tokenizer (with HF added
tokens) in the metadata, rope scaling (linear, yarn) from config.json. Streams tensor by
tensor, writes atomically, and writes OUT.gguf.sha256.

  --outtype TYPE   ${Object.keys(GGUF_OUTTYPES).join(", ")} (default: the checkpoint's own float type)
  --name NAME      general.name (default: the directory name)
  --force          replace OUT.gguf if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { outtype: { type: "string" }, name: { type: "string" }, force: { type: "boolean" } },
    });
    if (positionals.length !== 2) throw new UsageError("expected HF_DIR OUT.gguf");
    const [dir, out] = positionals as [string, string];
    const outtype = (values.outtype?.toLowerCase() ?? "auto") as GgufOuttype;
    if (outtype !== "auto" && !(outtype in GGUF_OUTTYPES)) throw new UsageError(`--outtype must be one of ${Object.keys(GGUF_OUTTYPES).join(", ")}`);
    let bar: ProgressBar | undefined;
    const report = await convertHfToGguf(dir, out, {
      outtype,
      name: values.name,
      overwrite: values.force,
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
