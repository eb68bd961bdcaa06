/**
 * Hugging Face JSON configs of the LLaMA family: `config.json` (LlamaForCausalLM /
 * MixtralForCausalLM), `generation_config.json` and PEFT's `adapter_config.json`. Each reader
 * checks the fields zh-llama relies on and keeps the raw object, so a merged model can carry
 * fields it does not understand (auto_map, custom keys) through unchanged.
 */
import { FormatError } from "./errors.js";
import { parseJsonObject } from "./json.js";

export class HfConfigError extends FormatError {}

type Json = Record<string, unknown>;

function asObject(value: unknown, file: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HfConfigError(`${file}: expected a JSON object`);
  return value as Json;
}

function parse(text: string, file: string): Json {
  return parseJsonObject(text, file, HfConfigError);
}

function int(o: Json, key: string, file: string, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw new HfConfigError(`${file}: ${key} should be a positive integer, got ${JSON.stringify(o[key])}`);
  return v;
}

function float(o: Json, key: string, file: string, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new HfConfigError(`${file}: ${key} should be a number, got ${JSON.stringify(o[key])}`);
  return v;
}

/** RoPE scaling as config.json states it (`type`, or `rope_type` in newer transformers). */
export type HfRopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | { type: "dynamic"; factor: number }
  | { type: "yarn"; factor: number; originalContext?: number; finetuned?: boolean };

/** What the converter and merger need from config.json. */
export interface LlamaConfig {
  architecture: "LlamaForCausalLM" | "MixtralForCausalLM";
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsEps: number;
  ropeTheta: number;
  ropeScaling: HfRopeScaling;
  tieWordEmbeddings: boolean;
  numExperts: number;
  numExpertsPerTok: number;
  /** torch_dtype as written ("float16", "bfloat16", "float32"), if any. */
  torchDtype?: string;
  /** The whole object, for carrying unknown fields through. */
  raw: Json;
}

export function parseLlamaConfig(text: string, file = "config.json"): LlamaConfig {
  const o = parse(text, file);
  const archs = Array.isArray(o.architectures) ? o.architectures : [];
  const modelType = typeof o.model_type === "string" ? o.model_type : undefined;
  const isMixtral = archs.includes("MixtralForCausalLM") || modelType === "mixtral";
  if (!isMixtral && !(archs.includes("LlamaForCausalLM") || modelType === "llama" || archs.length === 0)) {
    throw new HfConfigError(`${file}: architectures ${JSON.stringify(archs)} is not LlamaForCausalLM or MixtralForCausalLM`);
  }
  const hiddenSize = int(o, "hidden_size", file);
  const numHeads = int(o, "num_attention_heads", file);
  const numKvHeads = int(o, "num_key_value_heads", file, numHeads);
  const headDim = int(o, "head_dim", file, hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) throw new HfConfigError(`${file}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  if (headDim % 2 !== 0) throw new HfConfigError(`${file}: head size ${headDim} must be even for RoPE`);
  return {
    architecture: isMixtral ? "MixtralForCausalLM" : "LlamaForCausalLM",
    hiddenSize,
    intermediateSize: int(o, "intermediate_size", file),
    numLayers: int(o, "num_hidden_layers", file),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(o, "vocab_size", file),
    maxPositions: int(o, "max_position_embeddings", file, 2048),
    rmsEps: float(o, "rms_norm_eps", file, 1e-6),
    ropeTheta: float(o, "rope_theta", file, isMixtral ? 1e6 : 10000),
    ropeScaling: parseRopeScaling(o.rope_scaling, file),
    tieWordEmbeddings: o.tie_word_embeddings === true,
    numExperts: isMixtral ? int(o, "num_local_experts", file) : 0,
    numExpertsPerTok: isMixtral ? int(o, "num_experts_per_tok", file) : 0,
    torchDtype: typeof o.torch_dtype === "string" ? o.torch_dtype : undefined,
    raw: o,
  };
}

function parseRopeScaling(value: unknown, file: string): HfRopeScaling {
  if (value === undefined || value === null) return { type: "none" };
  const o = asObject(value, `${file}: rope_scaling`);
  const type = o.type ?? o.rope_type;
  const factor = float(o, "factor", `${file}: rope_scaling`);
  if (type === "linear") return { type: "linear", factor };
  if (type === "dynamic") return { type: "dynamic", factor };
  if (type === "yarn") {
    const orig = o.original_max_position_embeddings;
    return {
      type: "yarn",
      factor,
      originalContext: typeof orig === "number" ? orig : undefined,
      finetuned: typeof o.finetuned === "boolean" ? o.finetuned : undefined,
    };
  }
  throw new HfConfigError(`${file}: rope_scaling type ${JSON.stringify(type)} is not linear, dynamic or yarn`);
}

/** generation_config.json: kept raw, with the fields the sampler uses checked for type. */
export interface GenerationConfig {
  raw: Json;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
}

export function parseGenerationConfig(text: string, file = "generation_config.json"): GenerationConfig {
  const o = parse(text, file);
  const opt = (key: string): number | undefined => (o[key] === undefined ? undefined : float(o, key, file));
  return { raw: o, temperature: opt("temperature"), topP: opt("top_p"), topK: opt("top_k"), repetitionPenalty: opt("repetition_penalty"), maxNewTokens: opt("max_new_tokens") };
}

/** PEFT's LoraConfig as saved in adapter_config.json. */
export interface LoraAdapterConfig {
  r: number;
  loraAlpha: number;
  targetModules: string[];
  fanInFanOut: boolean;
  modulesToSave: string[];
  useRslora: boolean;
  /** Per-module overrides (PEFT >= 0.7): module-name pattern -> rank / alpha. */
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  baseModel?: string;
  raw: Json;
}

function stringList(o: Json, key: string, file: string): string[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v]; // PEFT accepts a regex string; kept as one entry
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new HfConfigError(`${file}: ${key} should be a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}

function numberMap(o: Json, key: string, file: string): Record<string, number> {
  const v = o[key];
  if (v === undefined || v === null) return {};
  const m = asObject(v, `${file}: ${key}`);
  for (const [k, x] of Object.entries(m)) {
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) throw new HfConfigError(`${file}: ${key}.${k} should be a positive number`);
  }
  return m as Record<string, number>;
}

export function parseAdapterConfig(text: string, file = "adapter_config.json"): LoraAdapterConfig {
  const o = parse(text, file);
  if (o.peft_type !== undefined && o.peft_type !== "LORA") throw new HfConfigError(`${file}: peft_type ${JSON.stringify(o.peft_type)} is not LORA`);
  return {
    r: int(o, "r", file),
    loraAlpha: float(o, "lora_alpha", file),
    targetModules: stringList(o, "target_modules", file),
    fanInFanOut: o.fan_in_fan_out === true,
    modulesToSave: stringList(o, "modules_to_save", file),
    useRslora: o.use_rslora === true,
    rankPattern: numberMap(o, "rank_pattern", file),
    alphaPattern: numberMap(o, "alpha_pattern", file),
    baseModel: typeof o.base_model_name_or_path === "string" ? o.base_model_name_or_path : undefined,
    raw: o,
  };
}

/**
 * PEFT's scaling for one module: alpha / r, or alpha / sqrt(r) with rsLoRA; rank_pattern and
 * alpha_pattern entries apply to modules whose name ends with the pattern key.
 */
export function loraScaling(config: LoraAdapterConfig, moduleName: string): number {
  const match = (pattern: Record<string, number>): number | undefined => {
    for (const [key, value] of Object.entries(pattern)) {
      if (moduleName === key || moduleName.endsWith(`.${key}`)) return value;
    }
    return undefined;
  };
  const r = match(config.rankPattern) ?? config.r;
  const alpha = match(config.alphaPattern) ?? config.loraAlpha;
  return config.useRslora ? alpha / Math.sqrt(r) : alpha / r;
}
