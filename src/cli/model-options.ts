/**
 * Flags shared by every command that loads a model (run, logits, perplexity, bench, chat,
 * serve), mapped onto LoadOptions. Metadata gives the defaults; flags override.
 */
import { existsSync } from "node:fs";
import { bundledModelPath } from "../bundled.js";
import { UsageError } from "../errors.js";
import { formatPlanBytes, KV_CACHE_TYPES, LlamaModel, type Backend, type KvCacheType, type LoadOptions, type RopeOverrides } from "../model/index.js";
import type { GgufFile, ByteInput } from "../formats/gguf/index.js";
import { numberOption, type CliIo } from "./command.js";
import { ProgressBar } from "./progress.js";

export const MODEL_OPTIONS = {
  model: { type: "string", short: "m" },
  backend: { type: "string" },
  threads: { type: "string", short: "t" },
  ctx: { type: "string", short: "c" },
  "kv-type": { type: "string" },
  batch: { type: "string", short: "b" },
  "rope-scaling": { type: "string" },
  "rope-scale": { type: "string" },
  "rope-freq-base": { type: "string" },
  "yarn-orig-ctx": { type: "string" },
  "ntk-alpha": { type: "string" },
  "ntk-formula": { type: "string" },
} as const;

export const MODEL_OPTIONS_USAGE = `model options:
  -m, --model FILE        GGUF model (split models: the first part); default: the bundled
                          Chinese-Alpaca-tiny (fixtures/models/chinese-alpaca-tiny-q4_0.gguf)
  --backend wasm|reference|webgpu  kernels: WebAssembly SIMD (default), the plain TypeScript
                          reference, or WGSL on WebGPU (where navigator.gpu exists: Deno, browsers)
  -t, --threads N         worker threads (default: all cores)
  -c, --ctx N             context length in tokens (default: the model's training context);
                          llama.cpp's --ctx-size is the same flag
  --kv-type f16|f32|q8_0  KV cache type (default f16, as llama.cpp); q8_0 takes 34 bytes per
                          32 values (head size a multiple of 32)
  -b, --batch N           prompt tokens per forward pass (default 64; also --batch-size)
  --rope-scaling none|linear|yarn   override the model's RoPE scaling
  --rope-scale F          linear / YaRN factor
  --rope-freq-base F      RoPE base frequency (rope_theta)
  --yarn-orig-ctx N       YaRN original context
  --ntk-alpha F|auto      NTK-aware scaling (Chinese-LLaMA-Alpaca): base' = base * alpha^(d/(d-2));
                          auto grows alpha with the sequence once it passes the trained context
  --ntk-formula v2|v1     auto alpha: v2 L/(n_ctx_train/2) - 1 (default), v1 (L/1024 - 1) * 1.1
  llama.cpp flags with no meaning here (-ngl/--n-gpu-layers, --mlock, --no-mmap, -fa, -tb)
  are ignored with a one-line note; --verbose prints a stack trace with an error`;

type Values = { [K in keyof typeof MODEL_OPTIONS]?: string };

/** The model shipped in the package (made by `npm run make-model`), used when -m is not given. */
export const BUNDLED_MODEL = bundledModelPath();

export function modelPath(values: Values): string {
  if (values.model) return values.model;
  if (existsSync(BUNDLED_MODEL)) return BUNDLED_MODEL;
  throw new UsageError(`-m MODEL.gguf is required (the bundled model ${BUNDLED_MODEL} is not there)`);
}

export function loadOptionsFrom(values: Values): LoadOptions & { threads?: number } {
  const backend = values.backend ?? "wasm";
  if (backend !== "wasm" && backend !== "reference" && backend !== "webgpu") throw new UsageError(`--backend must be wasm, reference or webgpu, got ${JSON.stringify(backend)}`);
  if (backend === "webgpu" && !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    throw new UsageError("--backend webgpu needs navigator.gpu (Deno, or a browser); this runtime has none");
  }
  const kv = values["kv-type"] ?? "f16";
  if (!(KV_CACHE_TYPES as readonly string[]).includes(kv)) throw new UsageError(`--kv-type must be ${KV_CACHE_TYPES.join(", ")}, got ${JSON.stringify(kv)}`);
  const scaling = values["rope-scaling"];
  if (scaling !== undefined && scaling !== "none" && scaling !== "linear" && scaling !== "yarn") {
    throw new UsageError(`--rope-scaling must be none, linear or yarn, got ${JSON.stringify(scaling)}`);
  }
  const rope: RopeOverrides = {
    scaling,
    scale: values["rope-scale"] === undefined ? undefined : numberOption("rope-scale", values["rope-scale"], 1, 1e-6, 1e6),
    freqBase: values["rope-freq-base"] === undefined ? undefined : numberOption("rope-freq-base", values["rope-freq-base"], 10000, 1e-6, 1e12),
    yarnOrigCtx: values["yarn-orig-ctx"] === undefined ? undefined : numberOption("yarn-orig-ctx", values["yarn-orig-ctx"], 0, 1, 1 << 24),
  };
  const alpha = values["ntk-alpha"];
  if (alpha !== undefined) rope.ntkAlpha = alpha === "auto" ? "auto" : numberOption("ntk-alpha", alpha, 1, 1, 1e6);
  const formula = values["ntk-formula"];
  if (formula !== undefined) {
    if (formula !== "v1" && formula !== "v2") throw new UsageError(`--ntk-formula must be v1 or v2, got ${JSON.stringify(formula)}`);
    rope.ntkAutoFormula = formula;
  }
  return {
    backend: backend as Backend,
    kvCacheType: kv as KvCacheType,
    nCtx: values.ctx === undefined ? undefined : numberOption("ctx", values.ctx, 0, 1, 1 << 24),
    batchSize: values.batch === undefined ? undefined : numberOption("batch", values.batch, 64, 1, 4096),
    threads: values.threads === undefined ? undefined : numberOption("threads", values.threads, 1, 1, 256),
    rope,
  };
}

/**
 * LlamaModel.load with what a user wants to see on stderr: a progress bar while the weights
 * stream in (on a terminal), then one line: size, time, rate, memories, context, conversions.
 */
export async function loadModel(io: CliIo, input: ByteInput | GgufFile, options: LoadOptions = {}): Promise<LlamaModel> {
  let bar: ProgressBar | undefined;
  const t0 = performance.now();
  let bytes = 0;
  const model = await LlamaModel.load(input, {
    ...options,
    onProgress: (done, total) => {
      bytes = total;
      if (io.isTty) (bar ??= new ProgressBar(io, "loading", total)).update(done, `${formatPlanBytes(done)} of ${formatPlanBytes(total)}`);
      options.onProgress?.(done, total);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const p = model.plan;
  const name = model.file.name.split(/[\\/]/).pop();
  const converted = model.weights.conversions.length > 0 ? `; converted at load (no kernel): ${p.conversions.map((c) => c.name).slice(0, 3).join(", ")}${p.conversions.length > 3 ? ` and ${p.conversions.length - 3} more` : ""}` : "";
  const line =
    `loaded ${name}: ${formatPlanBytes(bytes)} in ${seconds.toFixed(1)} s (${(bytes / 2 ** 20 / Math.max(seconds, 1e-3)).toFixed(0)} MiB/s); ` +
    `${formatPlanBytes(p.totalBytes)} in ${p.memories.length} memor${p.memories.length === 1 ? "y" : "ies"} (weights ${formatPlanBytes(p.weightBytes)}, KV cache ${formatPlanBytes(p.kvBytes)}), ` +
    `context ${p.nCtx}, ${model.threads} thread${model.threads === 1 ? "" : "s"}, ${model.gpu ? "WebGPU" : model.kernels.path}${converted}`;
  if (bar) bar.done(line.replace(/^loaded /, ""));
  else io.stderr(line + "\n");
  return model;
}
