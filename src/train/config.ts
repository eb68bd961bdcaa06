/**
 * The shape of a trainable LLaMA: the dense subset of what src/model runs (no MoE), with the
 * conversions to and from GGUF hyper-parameters so that a trained model loads in LlamaModel.
 */
import type { GgufValue } from "../formats/gguf/index.js";
import { InvalidArgumentError } from "../errors.js";
import type { LlamaHParams } from "../model/hparams.js";
import type { RopeScaling } from "../kernels/index.js";

export interface TrainModelConfig {
  nVocab: number;
  /** Model width (dim). */
  nEmbd: number;
  nLayer: number;
  /** Query heads. */
  nHead: number;
  /** Key/value heads (grouped-query attention when < nHead). */
  nHeadKv: number;
  /** Per-head width (nEmbd / nHead by default). */
  headDim: number;
  /** FFN hidden width. */
  nFf: number;
  /** Context length written to GGUF (llama.context_length). */
  nCtx: number;
  rmsEps: number;
  ropeFreqBase: number;
  /** Rotated dimensions per head (= headDim for LLaMA). */
  nRot: number;
  ropeScaling: RopeScaling;
  /** lm_head shares the embedding matrix (no output.weight tensor). */
  tiedEmbeddings: boolean;
}

/** Fills in the derived fields and checks the shape. */
export function makeConfig(c: Partial<TrainModelConfig> & Pick<TrainModelConfig, "nVocab" | "nEmbd" | "nLayer" | "nHead" | "nFf">): TrainModelConfig {
  const headDim = c.headDim ?? c.nEmbd / c.nHead;
  const cfg: TrainModelConfig = {
    nVocab: c.nVocab,
    nEmbd: c.nEmbd,
    nLayer: c.nLayer,
    nHead: c.nHead,
    nHeadKv: c.nHeadKv ?? c.nHead,
    headDim,
    nFf: c.nFf,
    nCtx: c.nCtx ?? 512,
    rmsEps: c.rmsEps ?? 1e-5,
    ropeFreqBase: c.ropeFreqBase ?? 10000,
    nRot: c.nRot ?? headDim,
    ropeScaling: c.ropeScaling ?? { type: "none" },
    tiedEmbeddings: c.tiedEmbeddings ?? false,
  };
  checkConfig(cfg);
  return cfg;
}

export function checkConfig(c: TrainModelConfig): void {
  const positive = ["nVocab", "nEmbd", "nLayer", "nHead", "nHeadKv", "headDim", "nFf", "nCtx", "nRot"] as const;
  for (const key of positive) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) throw new InvalidArgumentError(`model config: ${key} must be a positive integer, got ${c[key]}`);
  }
  if (c.nHead % c.nHeadKv !== 0) throw new InvalidArgumentError(`model config: nHead (${c.nHead}) must be a multiple of nHeadKv (${c.nHeadKv})`);
  if (c.nRot > c.headDim || c.nRot % 2 !== 0) throw new InvalidArgumentError(`model config: nRot (${c.nRot}) must be even and at most headDim (${c.headDim})`);
  if (!(c.rmsEps > 0)) throw new InvalidArgumentError(`model config: rmsEps must be positive, got ${c.rmsEps}`);
}

/** The trainable config of a model LlamaModel can run; Mixtral (MoE) is refused. */
export function configFromHParams(hp: LlamaHParams, tiedEmbeddings: boolean): TrainModelConfig {
  if (hp.nExpert > 0) throw new InvalidArgumentError(`${hp.name}: the trainer handles dense LLaMA models only (this one has ${hp.nExpert} experts)`);
  if (hp.ropeScaling.type === "ntk") throw new InvalidArgumentError(`${hp.name}: NTK rope scaling depends on the sequence length and is not trained`);
  const cfg: TrainModelConfig = {
    nVocab: hp.nVocab, nEmbd: hp.nEmbd, nLayer: hp.nLayer, nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim,
    nFf: hp.nFf, nCtx: hp.nCtxTrain, rmsEps: hp.rmsEps, ropeFreqBase: hp.ropeFreqBase, nRot: hp.nRot,
    ropeScaling: hp.ropeScaling, tiedEmbeddings,
  };
  checkConfig(cfg);
  return cfg;
}

/** The `llama.*` hyper-parameter keys llama.cpp's converter writes for this config. */
export function configToGgufMetadata(c: TrainModelConfig, name: string): Record<string, GgufValue> {
  const meta: Record<string, GgufValue> = {
    "general.architecture": "llama",
    "general.name": name,
    "llama.vocab_size": c.nVocab,
    "llama.context_length": c.nCtx,
    "llama.embedding_length": c.nEmbd,
    "llama.block_count": c.nLayer,
    "llama.feed_forward_length": c.nFf,
    "llama.rope.dimension_count": c.nRot,
    "llama.attention.head_count": c.nHead,
    "llama.attention.head_count_kv": c.nHeadKv,
    "llama.attention.layer_norm_rms_epsilon": c.rmsEps,
    "llama.rope.freq_base": c.ropeFreqBase,
    // 0 = all F32 (llama_ftype LLAMA_FTYPE_ALL_F32).
    "general.file_type": 0,
  };
  if (c.headDim !== c.nEmbd / c.nHead) {
    meta["llama.attention.key_length"] = c.headDim;
    meta["llama.attention.value_length"] = c.headDim;
  }
  const s = c.ropeScaling;
  if (s.type === "linear") {
    meta["llama.rope.scaling.type"] = "linear";
    meta["llama.rope.scaling.factor"] = s.factor;
  } else if (s.type === "yarn") {
    meta["llama.rope.scaling.type"] = "yarn";
    meta["llama.rope.scaling.factor"] = s.factor;
    meta["llama.rope.scaling.original_context_length"] = s.originalContext;
  }
  return meta;
}

/** Parameters outside the embeddings and lm_head (the "size" issue 9 talks about). */
export function countNonEmbeddingParams(c: TrainModelConfig): number {
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const perLayer = 2 * c.nEmbd + qDim * c.nEmbd + 2 * kvDim * c.nEmbd + c.nEmbd * qDim + 3 * c.nFf * c.nEmbd;
  return c.nLayer * perLayer + c.nEmbd;
}
