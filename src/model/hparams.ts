/**
 * Hyper-parameters of a LLaMA-family model, read from GGUF metadata the way llama.cpp reads
 * them (llama-model.cpp / llama-hparams, keys in UPSTREAM.md section 6). Covers LLaMA-1,
 * Llama-2 (grouped-query attention), the Chinese-LLaMA/Alpaca v1/v2 vocabularies, and
 * Mixtral (`llama` with expert counts, or `mixtral`).
 */
import type { GgufValue } from "../formats/gguf/index.js";
import type { RopeScaling } from "../kernels/index.js";
import { ModelError } from "./errors.js";

export const SUPPORTED_ARCHITECTURES = ["llama", "mixtral"] as const;

export interface LlamaHParams {
  arch: string;
  name: string;
  nVocab: number;
  /** Context the model was trained for ({arch}.context_length). */
  nCtxTrain: number;
  /** Model width (dim). */
  nEmbd: number;
  nLayer: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads (< nHead: grouped-query attention). */
  nHeadKv: number;
  /** Per-head width: nEmbd / nHead unless attention.key_length says otherwise. */
  headDim: number;
  /** FFN hidden width (per expert for MoE). */
  nFf: number;
  rmsEps: number;
  /** RoPE: rotated dimensions per head, base frequency, and the model's own scaling. */
  nRot: number;
  ropeFreqBase: number;
  ropeScaling: RopeScaling;
  /** MoE: experts per layer and experts used per token (0 for dense models). */
  nExpert: number;
  nExpertUsed: number;
}

type Meta = Record<string, GgufValue>;

function num(meta: Meta, key: string, fallback?: number): number {
  const value = meta[key];
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelError(`missing metadata key ${JSON.stringify(key)}`);
  }
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new ModelError(`metadata ${JSON.stringify(key)} should be a number, got ${JSON.stringify(value)}`);
  return n;
}

function positiveInt(meta: Meta, key: string, fallback?: number): number {
  const n = num(meta, key, fallback);
  if (!Number.isInteger(n) || n <= 0) throw new ModelError(`metadata ${JSON.stringify(key)} should be a positive integer, got ${n}`);
  return n;
}

/** Reads and checks the hyper-parameters. */
export function readHParams(meta: Meta): LlamaHParams {
  const arch = meta["general.architecture"];
  if (typeof arch !== "string") throw new ModelError(`missing metadata key "general.architecture"`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ModelError(`unsupported architecture ${JSON.stringify(arch)}; zh-llama runs ${SUPPORTED_ARCHITECTURES.join(", ")}`);
  }
  const k = (suffix: string) => `${arch}.${suffix}`;
  const nEmbd = positiveInt(meta, k("embedding_length"));
  const nHead = positiveInt(meta, k("attention.head_count"));
  const nHeadKv = positiveInt(meta, k("attention.head_count_kv"), nHead);
  if (nHead % nHeadKv !== 0) throw new ModelError(`${k("attention.head_count")} (${nHead}) is not a multiple of ${k("attention.head_count_kv")} (${nHeadKv})`);
  const headDim = positiveInt(meta, k("attention.key_length"), nEmbd / nHead);
  if (!Number.isInteger(headDim)) throw new ModelError(`${k("embedding_length")} (${nEmbd}) is not a multiple of ${k("attention.head_count")} (${nHead})`);
  const nRot = positiveInt(meta, k("rope.dimension_count"), headDim);
  if (nRot > headDim || nRot % 2 !== 0) throw new ModelError(`${k("rope.dimension_count")} (${nRot}) must be even and at most the head size ${headDim}`);

  const tokens = meta["tokenizer.ggml.tokens"];
  const nVocab = positiveInt(meta, k("vocab_size"), Array.isArray(tokens) ? tokens.length : undefined);
  const nCtxTrain = positiveInt(meta, k("context_length"));

  const nExpert = num(meta, k("expert_count"), 0);
  const nExpertUsed = num(meta, k("expert_used_count"), 0);
  if (nExpert > 0 && !(nExpertUsed > 0 && nExpertUsed <= nExpert)) {
    throw new ModelError(`${k("expert_used_count")} (${nExpertUsed}) must be in 1..${k("expert_count")} (${nExpert})`);
  }

  return {
    arch,
    name: typeof meta["general.name"] === "string" ? meta["general.name"] : arch,
    nVocab,
    nCtxTrain,
    nEmbd,
    nLayer: positiveInt(meta, k("block_count")),
    nHead,
    nHeadKv,
    headDim,
    nFf: positiveInt(meta, k("expert_feed_forward_length"), num(meta, k("feed_forward_length"))),
    rmsEps: num(meta, k("attention.layer_norm_rms_epsilon"), 1e-5),
    nRot,
    ropeFreqBase: num(meta, k("rope.freq_base"), 10000),
    ropeScaling: readRopeScaling(meta, arch, nCtxTrain),
    nExpert,
    nExpertUsed,
  };
}

/** The model's own RoPE scaling, as llama.cpp reads it (rope.scaling.* or legacy rope.scale_linear). */
export function readRopeScaling(meta: Meta, arch: string, nCtxTrain: number): RopeScaling {
  const k = (suffix: string) => `${arch}.${suffix}`;
  const type = meta[k("rope.scaling.type")];
  const factor = num(meta, k("rope.scaling.factor"), num(meta, k("rope.scale_linear"), 1));
  if (type === undefined || type === "none") {
    return factor !== 1 && type === undefined ? { type: "linear", factor } : { type: "none" };
  }
  if (type === "linear") return { type: "linear", factor };
  if (type === "yarn") {
    const optional = (suffix: string) => {
      const v = meta[k(suffix)];
      return v === undefined ? undefined : num(meta, k(suffix));
    };
    return {
      type: "yarn",
      factor,
      originalContext: positiveInt(meta, k("rope.scaling.original_context_length"), nCtxTrain),
      betaFast: optional("rope.scaling.yarn_beta_fast"),
      betaSlow: optional("rope.scaling.yarn_beta_slow"),
      extFactor: optional("rope.scaling.yarn_ext_factor"),
      attnFactor: optional("rope.scaling.attn_factor") ?? optional("rope.scaling.yarn_attn_factor"),
    };
  }
  throw new ModelError(`unsupported ${k("rope.scaling.type")} ${JSON.stringify(type)} (expected none, linear or yarn)`);
}
