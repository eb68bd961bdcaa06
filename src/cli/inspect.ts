import { openGguf, summarizeGguf, abbreviateValue, formatBytes, formatCount } from "../formats/gguf/index.js";
import { ggmlTypeName } from "../formats/ggml-types.js";
import { toJson } from "../formats/json.js";
import { UsageError } from "../errors.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { availableMemory, describePlan, formatPlanBytes, KV_CACHE_TYPES, kvTypeFor, planMemory, readHParams, type KvCacheType } from "../model/index.js";
import { defaultThreads } from "../runtime/threads.js";

export const inspectCommand: Command = {
  usage: `usage: zh-llama inspect MODEL.gguf [--json] [--tensors] [-c N] [--kv-type T] [-t N] [--parallel N]

Summarises a GGUF model from its header alone (no tensor data is read, so any size works).
Split models open from their first part (NAME-00001-of-0000N.gguf). For a LLaMA-family model
it also prints the memory plan a run would make: weights, KV cache (bytes per token and in
all), scratch, how the model is spread over 4 GiB wasm32 memories, types converted at load,
and whether it fits the memory this machine has free.

  --json      print {"version":N,"metadata":{...},"tensors":[{"name","type","shape","offset"}]}
              with every metadata value in full (64-bit integers exact)
  --tensors   list every tensor (name, type, shape, bytes) after the summary
  -m, --model FILE         the model (instead of the positional argument)
  -c, --ctx N              plan for this context (default: the training context)
  --kv-type f16|f32|q8_0   plan for this KV cache type (default f16)
  -t, --threads N          plan for this many threads (default: all cores)
  --parallel N             plan for N sequences with a KV cache each (default 1)`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: "boolean" }, tensors: { type: "boolean" }, model: { type: "string", short: "m" },
        ctx: { type: "string", short: "c" }, "kv-type": { type: "string" }, threads: { type: "string", short: "t" }, parallel: { type: "string" },
      },
    });
    const paths = values.model !== undefined ? [values.model, ...positionals] : positionals;
    if (paths.length !== 1) throw new UsageError("expected exactly one MODEL.gguf");
    const kv = values["kv-type"] ?? "f16";
    if (!(KV_CACHE_TYPES as readonly string[]).includes(kv)) throw new UsageError(`--kv-type must be ${KV_CACHE_TYPES.join(", ")}, got ${JSON.stringify(kv)}`);
    const file = await openGguf(paths[0]!);
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
      let hp;
      try {
        hp = readHParams(file.metadata);
      } catch (error) {
        if (values.ctx !== undefined) throw error;
      }
      if (hp) {
        const nCtx = values.ctx === undefined ? hp.nCtxTrain : numberOption("ctx", values.ctx, 0, 1, 1 << 24);
        const threads = values.threads === undefined ? defaultThreads() : numberOption("threads", values.threads, 1, 1, 256);
        const sessions = values.parallel === undefined ? 1 : numberOption("parallel", values.parallel, 1, 1, 64);
        const plan = planMemory(file, hp, { nCtx, kvType: kvTypeFor(hp, kv as KvCacheType), maxTok: Math.min(64, nCtx), threads, sessions });
        lines.push(...describePlan(plan));
        const free = await availableMemory();
        if (free !== undefined) {
          lines.push(`  this machine: ${formatPlanBytes(free)} free — ${plan.totalBytes <= free ? "fits" : `does not fit; ${formatPlanBytes(plan.kvBytesPerToken * 1024)} of KV cache per 1k tokens: choose a shorter -c`}`);
        }
      }
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
