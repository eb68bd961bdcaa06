import { quantizeGguf } from "../convert/quantize.js";
import { formatBytes } from "../formats/gguf/index.js";
import { ggmlTypeFromName, ggmlTypeName } from "../formats/ggml-types.js";
import { QUANTIZE_TYPES } from "../formats/quants/index.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

export const quantizeCommand: Command = {
  usage: `usage: zh-llama quantize IN.gguf OUT.gguf TYPE [--keep-output-f16] [--force]

Requantizes every 2-D weight to TYPE with llama.cpp's conventions: 1-D tensors (norms) and
the MoE router stay F32, the output projection gets Q6_K (Q8_0 if its rows are not a
multiple of 256) unless TYPE is F16/BF16/F32/Q8_0. Streams tensor by tensor and writes
OUT.gguf atomically.

  TYPE               one of: ${QUANTIZE_TYPES.map(ggmlTypeName).join(", ")}
  --keep-output-f16  keep the output projection in F16
  --force            replace OUT.gguf if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { "keep-output-f16": { type: "boolean" }, force: { type: "boolean" } },
    });
    if (positionals.length !== 3) throw new UsageError("expected IN.gguf OUT.gguf TYPE");
    const [input, output, typeName] = positionals as [string, string, string];
    const type = ggmlTypeFromName(typeName);
    if (type === undefined || !QUANTIZE_TYPES.includes(type)) {
      throw new UsageError(`unknown or unsupported TYPE ${JSON.stringify(typeName)}; choose one of ${QUANTIZE_TYPES.map(ggmlTypeName).join(", ")}`);
    }
    let bar: ProgressBar | undefined;
    const report = await quantizeGguf(input, output, type, {
      keepOutputF16: values["keep-output-f16"],
      overwrite: values.force,
      onProgress: (done, total, name) => {
        bar ??= new ProgressBar(io, "quantize", total);
        bar.update(done, name);
      },
    });
    bar?.done(`${formatBytes(report.inputBytes)} -> ${formatBytes(report.outputBytes)}`);
    const counts = new Map<string, number>();
    for (const t of report.tensors) counts.set(t.to, (counts.get(t.to) ?? 0) + 1);
    io.stdout(`wrote ${output}: ${[...counts].map(([t, n]) => `${n} x ${t}`).join(", ")}\n`);
    return 0;
  },
};
