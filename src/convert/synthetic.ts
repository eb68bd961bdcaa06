/**
 * Synthetic LLaMA-family models: deterministic random weights of any shape and ggml type,
 * written with zh-llama's own GGUF writer. Tests, golden-output tools and benchmarks generate
 * them on the fly (a 125M-parameter benchmark model need not be committed), and the same seed
 * always gives the same bytes. It lives with the converter because it makes model files and
 * picks each tensor's type with the converter's llama.cpp rules (quantize.ts); the model layer
 * only reads what it writes.
 */
import { GGMLType } from "../formats/ggml-types.js";
import { GgufValueType, type GgufWriteSpec, type GgufValue } from "../formats/gguf/index.js";
import { quantize } from "../formats/quants/index.js";
import { chooseTensorType } from "./quantize.js";

export interface SyntheticModelOptions {
  name?: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  ffn: number;
  vocab: number;
  ctx?: number;
  /** Type of the 2-D weights (1-D norms stay F32; the output follows llama.cpp's rules unless outputType is given). */
  type?: GGMLType;
  outputType?: GGMLType;
  tied?: boolean;
  experts?: number;
  expertsUsed?: number;
  ropeBase?: number;
  ropeScaling?: { type: "linear"; factor: number } | { type: "yarn"; factor: number; originalContext: number };
  seed?: number;
}

/** mulberry32: a tiny 32-bit generator, identical in every JavaScript runtime. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A SentencePiece-style vocabulary llama.cpp accepts: <unk>, <s>, </s>, the 256 byte pieces,
 * then "▁w<i>" word pieces up to `n`.
 */
export function syntheticVocab(n: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256 && tokens.length < n; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  while (tokens.length < n) {
    tokens.push(`▁w${tokens.length}`);
    types.push(1);
  }
  return { tokens, scores: tokens.map((_, i) => (types[i] === 1 ? -i : 0)), types };
}

/** The GGUF (header and lazily generated tensors) of a random model. */
export function syntheticModel(o: SyntheticModelOptions): GgufWriteSpec {
  const kvHeads = o.kvHeads ?? o.heads;
  const headDim = o.dim / o.heads;
  const type = o.type ?? GGMLType.F32;
  const arch = "llama";
  const vocab = syntheticVocab(o.vocab);
  const metadata: Record<string, GgufValue> = {
    "general.architecture": arch,
    "general.name": o.name ?? `synthetic-d${o.dim}-l${o.layers}`,
    [`${arch}.vocab_size`]: o.vocab,
    [`${arch}.context_length`]: o.ctx ?? 512,
    [`${arch}.embedding_length`]: o.dim,
    [`${arch}.block_count`]: o.layers,
    [`${arch}.feed_forward_length`]: o.ffn,
    [`${arch}.attention.head_count`]: o.heads,
    [`${arch}.attention.head_count_kv`]: kvHeads,
    [`${arch}.rope.dimension_count`]: headDim,
    [`${arch}.rope.freq_base`]: o.ropeBase ?? 10000,
    [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-5,
    "general.file_type": 0,
    "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.tokens": vocab.tokens,
    "tokenizer.ggml.scores": vocab.scores,
    "tokenizer.ggml.token_type": vocab.types,
    "tokenizer.ggml.bos_token_id": 1,
    "tokenizer.ggml.eos_token_id": 2,
    "tokenizer.ggml.unknown_token_id": 0,
    "tokenizer.ggml.add_bos_token": true,
    "tokenizer.ggml.add_eos_token": false,
  };
  if (o.experts) {
    metadata[`${arch}.expert_count`] = o.experts;
    metadata[`${arch}.expert_used_count`] = o.expertsUsed ?? 2;
  }
  if (o.ropeScaling) {
    metadata[`${arch}.rope.scaling.type`] = o.ropeScaling.type;
    metadata[`${arch}.rope.scaling.factor`] = o.ropeScaling.factor;
    if (o.ropeScaling.type === "yarn") metadata[`${arch}.rope.scaling.original_context_length`] = o.ropeScaling.originalContext;
  }

  const random = mulberry32(o.seed ?? 1);
  const tensors: GgufWriteSpec["tensors"] = [];
  // Weights uniform in +-sqrt(3/fanIn) (unit variance outputs); norms around 1.
  const add = (name: string, shape: number[], kind: "matrix" | "norm" | "router", isOutput = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const scale = kind === "norm" ? 0.2 : Math.sqrt(3 / shape[0]!) * 2;
    for (let i = 0; i < n; i++) values[i] = kind === "norm" ? 1 + (random() - 0.5) * scale : (random() - 0.5) * scale;
    const wanted = kind === "matrix" ? (isOutput && o.outputType !== undefined ? o.outputType : chooseTensorType({ name, shape }, type, isOutput)) : GGMLType.F32;
    tensors.push({ name, type: wanted, shape, data: () => (wanted === GGMLType.F32 ? new Uint8Array(values.buffer) : quantize(wanted, values)) });
  };
  const qDim = o.heads * headDim;
  const kvDim = kvHeads * headDim;
  add("token_embd.weight", [o.dim, o.vocab], "matrix", o.tied ?? false);
  for (let l = 0; l < o.layers; l++) {
    const p = `blk.${l}.`;
    add(p + "attn_norm.weight", [o.dim], "norm");
    add(p + "attn_q.weight", [o.dim, qDim], "matrix");
    add(p + "attn_k.weight", [o.dim, kvDim], "matrix");
    add(p + "attn_v.weight", [o.dim, kvDim], "matrix");
    add(p + "attn_output.weight", [qDim, o.dim], "matrix");
    add(p + "ffn_norm.weight", [o.dim], "norm");
    if (o.experts) {
      add(p + "ffn_gate_inp.weight", [o.dim, o.experts], "router");
      add(p + "ffn_gate_exps.weight", [o.dim, o.ffn, o.experts], "matrix");
      add(p + "ffn_up_exps.weight", [o.dim, o.ffn, o.experts], "matrix");
      add(p + "ffn_down_exps.weight", [o.ffn, o.dim, o.experts], "matrix");
    } else {
      add(p + "ffn_gate.weight", [o.dim, o.ffn], "matrix");
      add(p + "ffn_up.weight", [o.dim, o.ffn], "matrix");
      add(p + "ffn_down.weight", [o.ffn, o.dim], "matrix");
    }
  }
  add("output_norm.weight", [o.dim], "norm");
  if (!o.tied) add("output.weight", [o.dim, o.vocab], "matrix", true);
  return { metadata, metadataTypes: { "general.file_type": GgufValueType.UINT32 }, tensors };
}
