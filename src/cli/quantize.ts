import { QUANT_MIXES, isQuantMix, quantizeGguf, type QuantMix } from "../convert/quantize.js";
import { formatBytes } from "../formats/gguf/index.js";
import { ggmlTypeFromName, ggmlTypeName, type GGMLType } from "../formats/ggml-types.js";
import { QUANTIZE_TYPES } from "../formats/quants/index.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";
import { ProgressBar } from "./progress.js";

const MIXES = Object.keys(QUANT_MIXES).join(", ");

export const quantizeCommand: Command = {
  usage: `usage: zh-llama quantize IN.gguf OUT.gguf TYPE [--allow-requantize] [--leave-output-tensor] [--keep-output-f16] [--force]

Requantizes every 2-D weight to TYPE with llama.cpp's conventions: 1-D tensors (norms) and
the MoE router stay F32, the output projection gets Q6_K (Q8_0 if its rows are not a
multiple of 256) unless TYPE is F16/BF16/F32/Q8_0. A weight whose rows TYPE cannot tile falls
back as llama-quantize does (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0) with
a warning each. Streams tensor by tensor and writes OUT.gguf atomically; prints the sizes before
and after.

  TYPE               a llama-quantize mix: ${MIXES}
                     (llama.cpp's per-tensor rules: Q4_K_M and Q5_K_M give attn_v and ffn_down
                     Q6_K in the first and last eighth of the layers and every third between;
                     Q4_K_S gives the first 4 attn_v and the first eighth of ffn_down Q5_K;
                     Q3_K_M/L and Q2_K raise attn_v, ffn_down and attn_output; an 8-expert
                     model gets Q8_0 attn_v/attn_k), or one ggml type for every weight:
                     ${QUANTIZE_TYPES.map(ggmlTypeName).join(", ")}
                     (Q3_K, Q4_K, Q5_K alone are such pure types, like llama-quantize --pure)
  --allow-requantize   requantize a model that is already quantized (refused without it: the
                     second rounding adds to the first; quantize from the F16/F32 model)
  --leave-output-tensor  keep output.weight in the type it has
  --keep-output-f16  give the output projection F16
  --force            replace OUT.gguf if it exists`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: {
        "keep-output-f16": { type: "boolean" },
        "leave-output-tensor": { type: "boolean" },
        "allow-requantize": { type: "boolean" },
        force: { type: "boolean" },
      },
    });
    if (positionals.length !== 3) throw new UsageError("expected IN.gguf OUT.gguf TYPE");
    const [input, output, typeName] = positionals as [string, string, string];
    const target = quantTarget(typeName);
    let bar: ProgressBar | undefined;
    const report = await quantizeGguf(input, output, target, {
      keepOutputF16: values["keep-output-f16"],
      leaveOutputTensor: values["leave-output-tensor"],
      allowRequantize: values["allow-requantize"] ?? false,
      overwrite: values.force,
      onFallback: (f) => io.stderr(`zh-llama quantize: warning: ${f.name}: rows of ${f.rowLength} values are not a whole number of ${f.wanted} blocks; ${f.used} instead\n`),
      onProgress: (done, total, name) => {
        bar ??= new ProgressBar(io, "quantize", total);
        bar.update(done, name);
      },
    });
    const sizes = `${formatBytes(report.inputBytes)} -> ${formatBytes(report.outputBytes)}`;
    bar?.done(sizes);
    if (report.fallbacks.length > 0) {
      io.stderr(`zh-llama quantize: warning: ${report.fallbacks.length} of ${report.tensors.length} tensors needed a fallback type (their rows are too short or not a multiple of the block)\n`);
    }
    if (report.outputBytes > report.inputBytes) io.stderr(`zh-llama quantize: warning: the output is larger than the input (${sizes})\n`);
    const counts = new Map<string, number>();
    for (const t of report.tensors) counts.set(t.to, (counts.get(t.to) ?? 0) + 1);
    const ratio = report.inputBytes > 0 ? ` (${((100 * report.outputBytes) / report.inputBytes).toFixed(1)}% of the input)` : "";
    io.stdout(`wrote ${output}: ${[...counts].map(([t, n]) => `${n} x ${t}`).join(", ")}; ${sizes}${ratio}\n`);
    return 0;
  },
};

/** A llama-quantize mix name (Q4_K_M ...) or a ggml type name, case-insensitive. */
export function quantTarget(name: string): GGMLType | QuantMix {
  const upper = name.toUpperCase();
  if (isQuantMix(upper)) return upper;
  const type = ggmlTypeFromName(name);
  if (type === undefined || !QUANTIZE_TYPES.includes(type)) {
    throw new UsageError(`unknown or unsupported TYPE ${JSON.stringify(name)}; choose a mix (${MIXES}) or one of ${QUANTIZE_TYPES.map(ggmlTypeName).join(", ")}`);
  }
  return type;
}
