import { readFile } from "node:fs/promises";
import { UsageError } from "../errors.js";
import { DEFAULT_REPORT_TYPES, quantReport, quantReportMarkdown } from "../eval/index.js";
import { ggmlTypeFromName, ggmlTypeName, type GGMLType } from "../formats/ggml-types.js";
import { toJson } from "../formats/json.js";
import { QUANTIZE_TYPES } from "../formats/quants/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { utf8Text } from "./tokenize.js";

export const quantReportCommand: Command = {
  usage: `usage: zh-llama quant-report -m MODEL.gguf -f TEXT.txt [--types q8_0,q4_0,...] [--ctx 512] [--chunks N] [--json]

Quantizes the model to each type (llama.cpp's tensor-type conventions) and reports file size,
bits per weight, perplexity on TEXT (llama.cpp's method) and decode speed — the upstream
READMEs' quantization table, for any model.
  --types LIST   default: ${DEFAULT_REPORT_TYPES.map(ggmlTypeName).join(",")}
  -t, --threads N`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: { model: { type: "string", short: "m" }, file: { type: "string", short: "f" }, types: { type: "string" }, ctx: { type: "string", short: "c" }, chunks: { type: "string" }, threads: { type: "string", short: "t" }, json: { type: "boolean" } },
    });
    if (!values.model) throw new UsageError("-m MODEL.gguf is required");
    if (!values.file) throw new UsageError("-f TEXT.txt is required");
    const types = values.types?.split(",").map((name) => {
      const t = ggmlTypeFromName(name.trim());
      if (t === undefined || !QUANTIZE_TYPES.includes(t)) throw new UsageError(`unknown or unsupported type ${JSON.stringify(name)}`);
      return t as GGMLType;
    });
    const rows = await quantReport(values.model, utf8Text(await readFile(values.file), `text file ${values.file}`), {
      types,
      ctx: numberOption("ctx", values.ctx, 512, 8, 1 << 20),
      chunks: values.chunks === undefined ? undefined : numberOption("chunks", values.chunks, 1, 1, 1e9),
      threads: values.threads === undefined ? undefined : numberOption("threads", values.threads, 1, 1, 256),
      onRow: (r) => io.stderr(`${r.type}: ${(r.bytes / 2 ** 20).toFixed(2)} MiB, PPL ${r.ppl.toFixed(4)}, ${r.decodeTokensPerS.toFixed(1)} tok/s\n`),
    });
    io.stdout(values.json ? toJson(rows) + "\n" : quantReportMarkdown(rows));
    return 0;
  },
};
