import { openGguf, summarizeGguf, abbreviateValue, formatBytes, formatCount } from "../formats/gguf/index.js";
import { ggmlTypeName } from "../formats/ggml-types.js";
import { toJson } from "../formats/json.js";
import { UsageError } from "../errors.js";
import { parseCommandArgs, type Command } from "./command.js";

export const inspectCommand: Command = {
  usage: `usage: zh-llama inspect MODEL.gguf [--json] [--tensors]

Summarises a GGUF model from its header alone (no tensor data is read, so any size works).
Split models open from their first part (NAME-00001-of-0000N.gguf).

  --json      print {"version":N,"metadata":{...},"tensors":[{"name","type","shape","offset"}]}
              with every metadata value in full (64-bit integers exact)
  --tensors   list every tensor (name, type, shape, bytes) after the summary`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: { json: { type: "boolean" }, tensors: { type: "boolean" } },
    });
    if (positionals.length !== 1) throw new UsageError("expected exactly one MODEL.gguf");
    const file = await openGguf(positionals[0]!);
    try {
      if (values.json) {
        const tensors = file.tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), shape: t.shape, offset: t.offset }));
        io.stdout(toJson({ version: file.version, metadata: file.metadata, tensors }) + "\n");
        return 0;
      }
      const s = summarizeGguf(file);
      const lines = [
        `file:          ${s.file}${s.parts > 1 ? ` (+${s.parts - 1} more parts)` : ""}`,
        `size:          ${formatBytes(s.fileSize)} (${s.fileSize} bytes), GGUF v${s.version}`,
        `architecture:  ${s.architecture}${s.name ? `  (${s.name})` : ""}`,
        `parameters:    ${formatCount(s.parameters)} (${s.parameters})`,
        `vocabulary:    ${s.vocabSize ?? "?"} tokens${s.tokenizerModel ? `, tokenizer "${s.tokenizerModel}"` : ""}`,
        `tensors:       ${s.tensorCount}`,
        ...s.types.map((u) => `  ${u.type.padEnd(8)} ${String(u.tensors).padStart(5)} tensors  ${formatCount(u.elements).padStart(8)} values  ${formatBytes(u.bytes).padStart(11)}`),
        "hyper-parameters:",
        ...Object.entries(s.hyperParameters).map(([k, v]) => `  ${k.padEnd(40)} ${abbreviateValue(v, file.metadataTypes[`${s.architecture}.${k}`]!)}`),
        "metadata:",
        ...Object.entries(file.metadata)
          .filter(([k]) => !k.startsWith(s.architecture + "."))
          .map(([k, v]) => `  ${k.padEnd(40)} ${abbreviateValue(v, file.metadataTypes[k]!)}`),
      ];
      if (values.tensors) {
        lines.push("tensor list:");
        for (const t of file.tensors) {
          lines.push(`  ${t.name.padEnd(36)} ${ggmlTypeName(t.type).padEnd(8)} [${t.shape.join(", ")}]`.padEnd(72) + ` ${formatBytes(t.byteSize)}`);
        }
      }
      io.stdout(lines.join("\n") + "\n");
      return 0;
    } finally {
      await file.close();
    }
  },
};
