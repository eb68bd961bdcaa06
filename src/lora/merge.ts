/**
 * Merging stacked LoRA adapters into base weights, as the upstream low-memory merge scripts
 * do (UPSTREAM.md 2b-2d), one tensor at a time:
 *
 *   for each base tensor W (HF name k), for each adapter in the order given:
 *     if the adapter saves k whole (modules_to_save)  W = that tensor       (last one wins)
 *     if the adapter has lora_A/lora_B for k          W = W + s * B @ A     (deltas add up)
 *   s = alpha / r (alpha / sqrt(r) with rsLoRA); B @ A transposed when fan_in_fan_out.
 *
 * The product and the sums are computed in float32 and the result rounded once to the base
 * tensor's dtype (upstream rounds to fp16 after each adapter; one rounding is at least as
 * accurate and differs by at most one fp16 step). Replacing embed_tokens / lm_head is how the
 * vocabulary grows (32000 -> 49953 -> 49954); the rows of the result must match the last
 * adapter's tokenizer, which is checked before anything is written.
 *
 * The result is a ModelSource whose tensors compute their merged values when read, so any
 * writer (HF shards, Meta .pth, GGUF) streams it with one tensor in memory.
 */
import { InvalidArgumentError } from "../errors.js";
import type { SafetensorsFloatDtype } from "../formats/safetensors.js";
import { fromFloat32, toFloat32 } from "../formats/safetensors.js";
import { parseLlamaConfig } from "../formats/hf-config.js";
import { hfTokenizerSize, VocabularyMismatchError } from "../convert/gguf-tokenizer.js";
import { elementCount, type ModelSource, type ModelTensor } from "../convert/model-source.js";
import { LoraAdapterError, type LoraAdapter } from "./adapter.js";


const VOCAB_TENSORS = new Set(["model.embed_tokens.weight", "lm_head.weight"]);
const FLOAT = new Set(["F32", "F16", "BF16"]);

/**
 * W (row-major [rows, cols], float32) += scaling * B @ A, or its transpose with fan_in_fan_out.
 * A is [r, in], B is [out, r]; W is [out, in] ([in, out] with fan_in_fan_out).
 */
export function addLoraDelta(
  w: Float32Array,
  rows: number,
  cols: number,
  a: Float32Array,
  b: Float32Array,
  r: number,
  scaling: number,
  fanInFanOut = false,
): void {
  const out = fanInFanOut ? cols : rows;
  const inF = fanInFanOut ? rows : cols;
  if (a.length !== r * inF || b.length !== out * r || w.length !== rows * cols) {
    throw new InvalidArgumentError(`LoRA delta: A (${a.length}), B (${b.length}) and W [${rows}, ${cols}] do not fit rank ${r}`);
  }
  const acc = new Float64Array(inF);
  const f = Math.fround;
  const s = f(scaling);
  for (let o = 0; o < out; o++) {
    acc.fill(0);
    // Four rank components per pass over the row: a quarter of the accumulator traffic, which
    // is what bounds this loop (float64 sums, so the grouping does not change the f32 result).
    let k = 0;
    for (; k + 4 <= r; k += 4) {
      const b0 = b[o * r + k]!, b1 = b[o * r + k + 1]!, b2 = b[o * r + k + 2]!, b3 = b[o * r + k + 3]!;
      const a0 = k * inF, a1 = a0 + inF, a2 = a1 + inF, a3 = a2 + inF;
      for (let i = 0; i < inF; i++) acc[i] += b0 * a[a0 + i]! + b1 * a[a1 + i]! + b2 * a[a2 + i]! + b3 * a[a3 + i]!;
    }
    for (; k < r; k++) {
      const bv = b[o * r + k]!;
      const base = k * inF;
      for (let i = 0; i < inF; i++) acc[i] += bv * a[base + i]!;
    }
    if (!fanInFanOut) {
      const row = o * inF;
      for (let i = 0; i < inF; i++) w[row + i] = w[row + i]! + f(f(acc[i]!) * s);
    } else {
      for (let i = 0; i < inF; i++) w[i * out + o] = w[i * out + o]! + f(f(acc[i]!) * s);
    }
  }
}

export interface MergeReport {
  /** Tensors changed by at least one delta. */
  merged: number;
  /** Tensors replaced whole (modules_to_save). */
  replaced: number;
  /** Rows of the embedding before and after. */
  vocabBefore: number;
  vocabAfter: number;
  /** Per adapter: path, delta count, full tensors, scaling(s), tokenizer size. */
  adapters: { dir: string; deltas: number; full: string[]; scalings: number[]; tokenizerSize?: number }[];
  warnings: string[];
}

export interface LoraMergeOptions {
  /** dtype of merged tensors (default: each base tensor's own). */
  dtype?: SafetensorsFloatDtype;
}

function vocabAdvice(): string {
  return (
    "The Chinese LLaMA releases use different vocabularies: LLaMA 32000, Chinese-LLaMA 49953, Chinese-Alpaca 49954 " +
    "(49953 + [PAD]), Chinese-LLaMA-2/Alpaca-2 55296. Each adapter must be merged with the tokenizer it was trained with " +
    "(请勿混用LLaMA/Alpaca词表); for the Plus/Pro Alpaca models merge the LLaMA-Plus adapter first and the Alpaca-Plus " +
    "adapter second: --lora LLAMA_PLUS --lora ALPACA_PLUS."
  );
}

/**
 * Plans the merge of `adapters` (in order) into `base`, checking every target, shape and
 * vocabulary first. Returns the merged model (lazy) and a report. Nothing is read yet.
 */
export function mergeLora(base: ModelSource, adapters: readonly LoraAdapter[], options: LoraMergeOptions = {}): { source: ModelSource; report: MergeReport } {
  const baseByName = new Map(base.tensors.map((t) => [t.name, t]));
  const warnings: string[] = [];
  const report: MergeReport = { merged: 0, replaced: 0, vocabBefore: 0, vocabAfter: 0, adapters: [], warnings };
  const embed = baseByName.get("model.embed_tokens.weight");
  if (!embed) throw new InvalidArgumentError(`${base.name}: no model.embed_tokens.weight`);
  report.vocabBefore = embed.shape[0]!;

  // Shapes as they evolve through the adapters, to check each adapter against what it sees.
  const shapes = new Map(base.tensors.map((t) => [t.name, t.shape]));
  let vocab = report.vocabBefore;
  let lastTokenizer: { size: number; dir: string } | undefined;
  const baseTokenizerSize = hfTokenizerSize(base.files, base.name);
  if (baseTokenizerSize !== undefined) lastTokenizer = { size: baseTokenizerSize, dir: base.name };

  for (const adapter of adapters) {
    const where = adapter.dir;
    // Upstream: with two adapters, vocab(tokenizer 1) <= vocab(tokenizer 2).
    if (adapter.tokenizerSize !== undefined && lastTokenizer && lastTokenizer.dir !== base.name && adapter.tokenizerSize < lastTokenizer.size) {
      throw new VocabularyMismatchError(
        `${where}: its tokenizer has ${adapter.tokenizerSize} tokens, fewer than the ${lastTokenizer.size} of ${lastTokenizer.dir} merged before it; ` +
          `the adapters are in the wrong order or from different families. ${vocabAdvice()}`,
      );
    }
    for (const [target, full] of adapter.full) {
      const current = shapes.get(target);
      if (!current) throw new LoraAdapterError(`${where}: modules_to_save tensor ${full.name} replaces ${target}, which the base model ${base.name} does not have`);
      if (VOCAB_TENSORS.has(target)) {
        if (full.shape.length !== 2 || full.shape[1] !== current[1]) {
          throw new LoraAdapterError(`${where}: ${full.name} is [${full.shape.join(", ")}], but ${target} has rows of ${current[1]} values`);
        }
        if (adapter.tokenizerSize !== undefined && full.shape[0] !== adapter.tokenizerSize) {
          throw new VocabularyMismatchError(
            `${where}: ${full.name} has ${full.shape[0]} rows but the adapter's own tokenizer has ${adapter.tokenizerSize} tokens. ${vocabAdvice()}`,
          );
        }
      } else if (full.shape.join(",") !== current.join(",")) {
        throw new LoraAdapterError(`${where}: ${full.name} is [${full.shape.join(", ")}], but the base's ${target} is [${current.join(", ")}]`);
      }
      shapes.set(target, full.shape);
    }
    const scalings = new Set<number>();
    for (const [target, d] of adapter.deltas) {
      const current = shapes.get(target);
      if (!current) {
        throw new LoraAdapterError(`${where}: the adapter targets ${target}, which the base model ${base.name} does not have (an adapter for a different architecture or size?)`);
      }
      if (current.length !== 2) throw new LoraAdapterError(`${where}: ${target} is not a matrix`);
      const [rows, cols] = current as [number, number];
      const [out, inF] = adapter.config.fanInFanOut ? [cols, rows] : [rows, cols];
      if (d.bShape[0] !== out || d.aShape[1] !== inF) {
        throw new LoraAdapterError(
          `${where}: ${target} is [${rows}, ${cols}] in the base but the adapter's B @ A is [${d.bShape[0]}, ${d.aShape[1]}]` +
            (adapter.config.fanInFanOut ? " (transposed: fan_in_fan_out)" : "") + ` — the adapter was trained on a different model size`,
        );
      }
      scalings.add(d.scaling);
    }
    const newVocab = shapes.get("model.embed_tokens.weight")![0]!;
    if (adapter.tokenizerSize !== undefined && adapter.tokenizerSize !== newVocab) {
      throw new VocabularyMismatchError(
        `${where}: the adapter's tokenizer has ${adapter.tokenizerSize} tokens but the model it applies to has ${newVocab} embedding rows ` +
          `and the adapter carries no embed_tokens / lm_head to change that. ${vocabAdvice()}`,
      );
    }
    vocab = newVocab;
    if (adapter.tokenizerSize !== undefined) lastTokenizer = { size: adapter.tokenizerSize, dir: where };
    report.adapters.push({ dir: where, deltas: adapter.deltas.size, full: [...adapter.full.keys()], scalings: [...scalings], tokenizerSize: adapter.tokenizerSize });
    if (adapter.deltas.size === 0 && adapter.full.size === 0) warnings.push(`${where}: the adapter changes nothing`);
  }
  const head = shapes.get("lm_head.weight");
  if (head && head[0] !== vocab) {
    throw new VocabularyMismatchError(`the merged embed_tokens has ${vocab} rows but lm_head ${head[0]}: the adapters disagree on the vocabulary. ${vocabAdvice()}`);
  }
  if (lastTokenizer && lastTokenizer.size !== vocab) {
    throw new VocabularyMismatchError(
      `the merged model has ${vocab} embedding rows but the tokenizer it would ship (${lastTokenizer.dir}) has ${lastTokenizer.size} tokens. ${vocabAdvice()}`,
    );
  }
  report.vocabAfter = vocab;

  const tensors: ModelTensor[] = base.tensors.map((t) => {
    const steps: { adapter: LoraAdapter; kind: "full" | "delta" }[] = [];
    for (const adapter of adapters) {
      if (adapter.full.has(t.name)) steps.splice(0, steps.length, { adapter, kind: "full" });
      if (adapter.deltas.has(t.name)) steps.push({ adapter, kind: "delta" });
    }
    if (steps.some((s) => s.kind === "delta")) report.merged++;
    else if (steps.length > 0) report.replaced++;
    const dtype = options.dtype ?? t.dtype;
    if (steps.length === 0 && dtype === t.dtype) return t;
    if (!FLOAT.has(t.dtype)) throw new InvalidArgumentError(`${base.name}: tensor ${t.name} is ${t.dtype}; only float weights can be merged`);
    const outDtype = dtype as SafetensorsFloatDtype;
    const shape = shapes.get(t.name)!;
    return {
      name: t.name,
      dtype: outDtype,
      shape,
      read: async () => {
        // A full replacement as the first step means the base tensor is never read.
        let values: Float32Array | undefined;
        let rawSource: { dtype: string; bytes: () => Promise<Uint8Array> } = { dtype: t.dtype, bytes: () => t.read() };
        for (const step of steps) {
          if (step.kind === "full") {
            const full = step.adapter.full.get(t.name)!;
            const info = step.adapter.weights.tensors.find((x) => x.name === full.name)!;
            rawSource = { dtype: info.dtype, bytes: () => step.adapter.weights.readTensor(full.name) };
            values = undefined;
            continue;
          }
          values ??= toFloat32(rawSource.dtype, await rawSource.bytes(), elementCount(shape), t.name);
          const d = step.adapter.deltas.get(t.name)!;
          const a = await step.adapter.weights.readTensorF32(d.a);
          const b = await step.adapter.weights.readTensorF32(d.b);
          addLoraDelta(values, shape[0]!, shape[1]!, a, b, d.aShape[0]!, d.scaling, step.adapter.config.fanInFanOut);
        }
        if (values) return fromFloat32(outDtype, values);
        const bytes = await rawSource.bytes();
        if (rawSource.dtype === outDtype) return bytes;
        return fromFloat32(outDtype, toFloat32(rawSource.dtype, bytes, elementCount(shape), t.name)).slice();
      },
    };
  });

  // Files: the last adapter with a tokenizer brings its whole tokenizer set; config.json,
  // generation_config.json and *.py come from the last adapter that has them, else the base.
  const files: Record<string, Uint8Array> = { ...base.files };
  let configJson: Record<string, unknown> | undefined = base.configJson ? { ...base.configJson } : undefined;
  for (const adapter of adapters) {
    if (adapter.files["tokenizer.model"]) {
      for (const name of Object.keys(files)) if (name.startsWith("tokenizer") || name === "special_tokens_map.json" || name === "added_tokens.json") delete files[name];
    }
    for (const [name, bytes] of Object.entries(adapter.files)) if (name !== "config.json") files[name] = bytes;
    if (adapter.configJson) configJson = { ...adapter.configJson };
  }
  if (configJson) configJson.vocab_size = vocab;
  const config = configJson ? parseLlamaConfig(JSON.stringify(configJson), `${adapters.at(-1)?.dir ?? base.name}/config.json`) : { ...base.config, vocabSize: vocab };
  const lastTokenizerFromAdapter = adapters.some((a) => a.files["tokenizer.model"]);
  const source: ModelSource = {
    name: base.name,
    config,
    configJson,
    tensors,
    shards: base.shards,
    files,
    ggufTokenizer: lastTokenizerFromAdapter ? undefined : base.ggufTokenizer,
    close: async () => {
      for (const a of adapters) await a.close();
      await base.close();
    },
  };
  return { source, report };
}

