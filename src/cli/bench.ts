import { UsageError } from "../errors.js";
import { benchModel, benchmarkModelShape, compareMarkdown, compareSvg, compareWithLlamaCpp } from "../eval/index.js";
import { encodeGguf } from "../formats/gguf/index.js";
import { GGMLType, ggmlTypeFromName } from "../formats/ggml-types.js";
import { toJson } from "../formats/json.js";
import { LlamaModel, syntheticModel } from "../model/index.js";
import { numberOption, parseCommandArgs, type Command } from "./command.js";
import { MODEL_OPTIONS, MODEL_OPTIONS_USAGE, loadModel, loadOptionsFrom } from "./model-options.js";

export const benchCommand: Command = {
  usage: `usage: zh-llama bench (-m MODEL.gguf | --synthetic --type q4_0) [-p 128] [-n 64] [-r 3] [--json]

Prompt-processing and decode speed: a batch of -p random tokens from an empty cache, then -n
single-token decode steps; the median of -r runs after a warm-up.
  -p, --n-prompt N    prompt tokens (default 128)
  -n, --n-gen N       decode steps (default 64)
  -r, --repetitions N (default 3)
  --synthetic         generate the ~125M-parameter benchmark model (dim 768, 12 layers, GQA 12/4,
                      ffn 2048, vocab 32000) with random weights instead of loading -m
  --type T            weight type of the synthetic model (f32, f16, q8_0, q4_0, q4_k, q6_k; default q4_0)
  --json              {"model","backend","threads","prompt_tokens","prompt_tokens_per_s","gen_tokens","decode_tokens_per_s"}
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
        vs: { type: "string" },
        svg: { type: "string" },
      },
    });
    if (values.vs !== undefined && values.vs !== "llama.cpp") throw new UsageError(`--vs accepts only llama.cpp, got ${JSON.stringify(values.vs)}`);
    const promptTokens = numberOption("n-prompt", values["n-prompt"], 128, 1, 1 << 16);
    const genTokens = numberOption("n-gen", values["n-gen"], 64, 0, 1 << 16);
    const repetitions = numberOption("repetitions", values.repetitions, 3, 1, 1000);
    const load = loadOptionsFrom(values);
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
      if (!values.model) throw new UsageError("give -m MODEL.gguf or --synthetic");
      source = values.model;
      name = values.model;
    }
    if (values.vs) {
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
        const threads = load.threads ?? (globalThis.navigator?.hardwareConcurrency ?? 1);
        const row = await compareWithLlamaCpp(path!, name, { threads, promptTokens, genTokens, repetitions }, (line) => io.stderr(line + "\n"));
        if (values.json) io.stdout(toJson(row) + "\n");
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
    const nCtx = Math.max(promptTokens + genTokens + 1, 16);
    const model = await loadModel(io, source, { ...load, nCtx, batchSize: load.batchSize ?? Math.min(promptTokens, 512) });
    try {
      const r = await benchModel(model, { promptTokens, genTokens, repetitions });
      const threads = model.threads;
      if (values.json) {
        io.stdout(toJson({ model: name, backend: load.backend, threads, prompt_tokens: promptTokens, prompt_tokens_per_s: r.promptTokensPerS, gen_tokens: genTokens, decode_tokens_per_s: r.decodeTokensPerS }) + "\n");
      } else {
        io.stdout(`| model | backend | threads | test | tokens/s |\n|---|---|---|---|---|\n`);
        io.stdout(`| ${name} | ${load.backend} | ${threads} | pp${promptTokens} | ${r.promptTokensPerS.toFixed(2)} |\n`);
        io.stdout(`| ${name} | ${load.backend} | ${threads} | tg${genTokens} | ${r.decodeTokensPerS.toFixed(2)} |\n`);
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
