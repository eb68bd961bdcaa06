import { UsageError } from "../errors.js";
import { benchModel, benchmarkModelShape, compareMarkdown, compareSvg, compareWithLlamaCpp } from "../eval/index.js";
import { encodeGguf } from "../formats/gguf/index.js";
import { GGMLType, ggmlTypeFromName } from "../formats/ggml-types.js";
import { toJson } from "../formats/json.js";
import { LlamaModel } from "../model/index.js";
import { syntheticModel } from "../convert/synthetic.js";
import { defaultThreads } from "../runtime/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom, modelPath } from "./model-options.js";
import { basename } from "node:path";

export const benchCommand: Command = {
  usage: `usage: zh-llama bench [-m MODEL.gguf | --synthetic --type q4_0] [-t 1,2] [-p 128,512] [-n 64] [-r 3] [-o md|json|jsonl|csv]

Prompt-processing and decode speed: a batch of -p random tokens from an empty cache, then -n
single-token decode steps; the median of -r runs after a warm-up. Without -m or --synthetic:
the bundled model. -t, -p and -n take comma-separated lists, as llama-bench does: one
measurement per combination (the model is loaded once per thread count).
  -t, --threads N,...  worker threads (default: all cores)
  -p, --n-prompt N,... prompt tokens (default 128)
  -n, --n-gen N,...    decode steps (default 64)
  -r, --repetitions N  (default 3)
  -o, --output FORMAT  md (default: a table, pp and tg rows), json (one array), jsonl (one
                       object a line), csv
  --synthetic         generate the ~125M-parameter benchmark model (dim 768, 12 layers, GQA 12/4,
                      ffn 2048, vocab 32000) with random weights instead of loading -m
  --type T            weight type of the synthetic model (f32, f16, q8_0, q4_0, q4_k, q6_k; default q4_0)
  --json              the same as -o jsonl: {"model","backend","threads","prompt_tokens",
                      "prompt_tokens_per_s","gen_tokens","decode_tokens_per_s"} a line
  --vs llama.cpp      also run llama.cpp native (npm node-llama-cpp; tools/install-llama-cpp.sh installs it)
                      on the same file and threads, alternating runs, and print both with the ratio
  --svg FILE          with --vs: write a bar chart of the ratios
${MODEL_OPTIONS_USAGE}`,

  async run(args, io) {
    const { values } = parseCommandArgs({
      args,
      allowPositionals: false,
      options: {
        ...MODEL_OPTIONS,
        "n-prompt": { type: "string", short: "p" },
        "n-gen": { type: "string", short: "n" },
        repetitions: { type: "string", short: "r" },
        synthetic: { type: "boolean" },
        type: { type: "string" },
        json: { type: "boolean" },
        output: { type: "string", short: "o" },
        vs: { type: "string" },
        svg: { type: "string" },
      },
    });
    if (values.vs !== undefined && values.vs !== "llama.cpp") throw new UsageError(`--vs accepts only llama.cpp, got ${JSON.stringify(values.vs)}`);
    const promptList = listOption("n-prompt", values["n-prompt"], 128, 1, 1 << 16);
    const genList = listOption("n-gen", values["n-gen"], 64, 0, 1 << 16);
    const threadList = values.threads === undefined ? [undefined] : listOption("threads", values.threads, 1, 1, 256);
    const repetitions = numberOption("repetitions", values.repetitions, 3, 1, 1000);
    const format = values.output ?? (values.json ? "jsonl" : "md");
    if (!["md", "json", "jsonl", "csv"].includes(format)) throw new UsageError(`-o must be md, json, jsonl or csv, got ${JSON.stringify(format)}`);
    if (values.json && values.output !== undefined && values.output !== "jsonl") throw new UsageError("--json is -o jsonl; give one of them");
    const load = loadOptionsFrom({ ...values, threads: undefined });
    const [promptTokens, genTokens] = [promptList[0]!, genList[0]!];
    let source: string | Uint8Array;
    let name: string;
    if (values.synthetic) {
      const type = ggmlTypeFromName(values.type ?? "q4_0");
      if (type === undefined) throw new UsageError(`unknown --type ${JSON.stringify(values.type)}`);
      io.stderr(`generating the ${GGMLType[type]} benchmark model...\n`);
      const shape = benchmarkModelShape(type);
      source = await encodeGguf(syntheticModel(shape));
      name = shape.name!;
    } else {
      source = modelPath(values);
      name = values.model ?? basename(source);
    }
    if (values.vs) {
      if (promptList.length > 1 || genList.length > 1 || threadList.length > 1) throw new UsageError("--vs llama.cpp measures one combination: give single -t, -p and -n values");
      let path = values.model;
      let cleanup = async () => {};
      if (typeof source !== "string") {
        const { mkdtemp, rm } = await import("node:fs/promises");
        const { tmpdir } = await import("node:os");
        const { join } = await import("node:path");
        const dir = await mkdtemp(join(tmpdir(), "zh-bench-"));
        path = join(dir, `${name}.gguf`);
        const { writeFile } = await import("node:fs/promises");
        await writeFile(path, source);
        cleanup = () => rm(dir, { recursive: true, force: true });
      }
      try {
        const threads = threadList[0] ?? defaultThreads();
        const row = await compareWithLlamaCpp(path!, name, { threads, promptTokens, genTokens, repetitions }, (line) => io.stderr(line + "\n"));
        if (format !== "md") io.stdout(toJson(row) + "\n");
        else io.stdout(compareMarkdown([row]) + `\n(peer: llama.cpp via ${row.peer}; medians of ${repetitions} alternating runs)\n`);
        if (values.svg) {
          const { writeAtomically, writeAll } = await import("../formats/gguf/index.js");
          await writeAtomically(values.svg, true, (h) => writeAll(h, new TextEncoder().encode(compareSvg([row], "zh-llama / llama.cpp")), 0));
        }
      } finally {
        await cleanup();
      }
      return 0;
    }
    const maxPrompt = Math.max(...promptList);
    const nCtx = Math.max(maxPrompt + Math.max(...genList) + 1, 16);
    const rows: BenchRow[] = [];
    for (const threads of threadList) {
      const model = await loadModel(io, source, { ...load, threads, nCtx, batchSize: load.batchSize ?? Math.min(maxPrompt, 512) });
      // What ran, on stderr so the table formats stay as they are.
      io.stderr(`bench: ${model.gpu ? model.gpu.description : `kernels ${model.kernels.path}`}, ${model.threads} thread${model.threads === 1 ? "" : "s"}\n`);
      try {
        for (const p of promptList) {
          for (const n of genList) {
            const r = await benchModel(model, { promptTokens: p, genTokens: n, repetitions });
            rows.push({ model: name, backend: load.backend ?? "wasm", threads: model.threads, prompt_tokens: p, prompt_tokens_per_s: r.promptTokensPerS, gen_tokens: n, decode_tokens_per_s: r.decodeTokensPerS });
            if (format === "jsonl") io.stdout(toJson(rows.at(-1)) + "\n");
          }
        }
      } finally {
        await model.dispose();
      }
    }
    if (format === "json") io.stdout(toJson(rows) + "\n");
    else if (format === "csv") {
      const keys = Object.keys(rows[0]!) as Array<keyof BenchRow>;
      io.stdout([keys.join(","), ...rows.map((r) => keys.map((k) => (typeof r[k] === "string" ? JSON.stringify(r[k]) : String(r[k]))).join(","))].join("\n") + "\n");
    } else if (format === "md") io.stdout(benchMarkdown(rows, promptList.length > 1 && genList.length > 1));
    return 0;
  },
};

interface BenchRow {
  model: string;
  backend: string;
  threads: number;
  prompt_tokens: number;
  prompt_tokens_per_s: number;
  gen_tokens: number;
  decode_tokens_per_s: number;
}

/** llama-bench's table: a ppN row per thread count and prompt size, a tgN row per generation length. */
function benchMarkdown(rows: BenchRow[], tagTg: boolean): string {
  const lines = ["| model | backend | threads | test | tokens/s |", "|---|---|---|---|---|"];
  const seen = new Set<string>();
  for (const r of rows) {
    const pp = `${r.threads} pp${r.prompt_tokens}`;
    if (!seen.has(pp)) {
      seen.add(pp);
      lines.push(`| ${r.model} | ${r.backend} | ${r.threads} | pp${r.prompt_tokens} | ${r.prompt_tokens_per_s.toFixed(2)} |`);
    }
    if (r.gen_tokens > 0) lines.push(`| ${r.model} | ${r.backend} | ${r.threads} | tg${r.gen_tokens}${tagTg ? ` @ pp${r.prompt_tokens}` : ""} | ${r.decode_tokens_per_s.toFixed(2)} |`);
  }
  return lines.join("\n") + "\n";
}

/** A comma-separated list of numbers (llama-bench's `-p 128,512`); each checked as numberOption does. */
function listOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number[] {
  if (value === undefined) return [fallback];
  const items = value.split(",").map((s) => s.trim());
  const list = items.map((item) => numberOption(name, item, fallback, min, max));
  if (list.some((n) => !Number.isInteger(n))) throw new UsageError(`--${name} expects integers, got ${JSON.stringify(value)}`);
  return [...new Set(list)];
}
