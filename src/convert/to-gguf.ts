/**
 * HF LLaMA / Llama-2 / Mixtral weights -> GGUF, as llama.cpp's convert_hf_to_gguf.py lays
 * them out (read for behaviour, not copied): llama-architecture keys from config.json, wq/wk
 * rows permuted to GGUF's adjacent-pair RoPE layout, Mixtral experts stacked into 3-D
 * `ffn_*_exps` tensors, 1-D tensors kept F32, the tokenizer in `tokenizer.ggml.*`.
 * Streams one tensor at a time through writeGguf (atomic).
 */
import { InvalidArgumentError } from "../errors.js";
import { GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import { writeGguf, type GgufTensorInput, type GgufValue } from "../formats/gguf/index.js";
import { quantize } from "../formats/quants/index.js";
import type { LlamaConfig } from "../formats/hf-config.js";
import { SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from "../formats/safetensors.js";
import { chooseTensorType, FILE_TYPE } from "./quantize.js";
import { hfToGgufName, isIgnoredHfTensor, parseExpertName, permuteRopeRows, ropePermuteHeads } from "./llama-layout.js";
import { readF32, type ModelSource, type ModelTensor } from "./model-source.js";
import { ggufTokenizerFromHfFiles } from "./gguf-tokenizer.js";
import { FormatError } from "../formats/errors.js";

/** --outtype values: a float type, one of the quantized types, or "auto" (the weights' own float type). */
export const GGUF_OUTTYPES = { f32: GGMLType.F32, f16: GGMLType.F16, bf16: GGMLType.BF16, q8_0: GGMLType.Q8_0, q4_0: GGMLType.Q4_0, q4_k: GGMLType.Q4_K, q6_k: GGMLType.Q6_K } as const;
export type GgufOuttype = keyof typeof GGUF_OUTTYPES | "auto";

const DTYPE_TO_GGML: Partial<Record<SafetensorsDtype, GGMLType>> = { F32: GGMLType.F32, F16: GGMLType.F16, BF16: GGMLType.BF16 };

export interface ToGgufOptions {
  outtype?: GgufOuttype;
  overwrite?: boolean;
  /** general.name */
  name?: string;
  /** (tensors written, total, GGUF tensor name); throwing aborts and leaves no file. */
  onProgress?: (done: number, total: number, tensor: string) => void;
  /** Also write PATH.sha256, always matching PATH (writeAtomically). */
  manifest?: boolean;
}

export interface GgufPlanEntry {
  ggufName: string;
  /** GGUF shape, ne[0] first. */
  shape: number[];
  type: GGMLType;
  /** HF tensors it is made of (several for stacked experts). */
  sources: ModelTensor[];
  /** Heads for the RoPE row permutation of wq / wk. */
  permuteHeads?: number;
}

/** The llama-architecture metadata for a config (llama.cpp uses arch "llama" for Mixtral too). */
export function llamaGgufMetadata(config: LlamaConfig, fileType: number, name: string): Record<string, GgufValue> {
  const a = "llama";
  const m: Record<string, GgufValue> = {
    "general.architecture": a,
    "general.name": name,
    "general.file_type": fileType,
    [`${a}.vocab_size`]: config.vocabSize,
    [`${a}.context_length`]: config.maxPositions,
    [`${a}.embedding_length`]: config.hiddenSize,
    [`${a}.block_count`]: config.numLayers,
    [`${a}.feed_forward_length`]: config.intermediateSize,
    [`${a}.rope.dimension_count`]: config.headDim,
    [`${a}.attention.head_count`]: config.numHeads,
    [`${a}.attention.head_count_kv`]: config.numKvHeads,
    [`${a}.attention.layer_norm_rms_epsilon`]: config.rmsEps,
    [`${a}.rope.freq_base`]: config.ropeTheta,
  };
  if (config.headDim !== config.hiddenSize / config.numHeads) {
    m[`${a}.attention.key_length`] = config.headDim;
    m[`${a}.attention.value_length`] = config.headDim;
  }
  if (config.numExperts > 0) {
    m[`${a}.expert_count`] = config.numExperts;
    m[`${a}.expert_used_count`] = config.numExpertsPerTok;
  }
  const rs = config.ropeScaling;
  if (rs.type === "linear") {
    m[`${a}.rope.scaling.type`] = "linear";
    m[`${a}.rope.scaling.factor`] = rs.factor;
  } else if (rs.type === "yarn") {
    m[`${a}.rope.scaling.type`] = "yarn";
    m[`${a}.rope.scaling.factor`] = rs.factor;
    if (rs.originalContext !== undefined) m[`${a}.rope.scaling.original_context_length`] = rs.originalContext;
    if (rs.finetuned !== undefined) m[`${a}.rope.scaling.finetuned`] = rs.finetuned;
  }
  // "dynamic" (NTK by context length) has no GGUF key: llama.cpp applies no scaling, and the
  // factor is a run-time choice (zh-llama run --rope-scaling); convertToGguf reports it.
  return m;
}

/** The HF tensors a LLaMA / Mixtral of `config` is made of, with their shapes (lm_head optional: tied embeddings). */
export function expectedLlamaTensors(config: LlamaConfig, vocabSize: number): Map<string, { shape: number[]; optional?: boolean }> {
  const H = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const out = new Map<string, { shape: number[]; optional?: boolean }>([
    ["model.embed_tokens.weight", { shape: [vocabSize, H] }],
    ["model.norm.weight", { shape: [H] }],
    ["lm_head.weight", { shape: [vocabSize, H], optional: true }],
  ]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.set(`${p}self_attn.q_proj.weight`, { shape: [q, H] });
    out.set(`${p}self_attn.k_proj.weight`, { shape: [kv, H] });
    out.set(`${p}self_attn.v_proj.weight`, { shape: [kv, H] });
    out.set(`${p}self_attn.o_proj.weight`, { shape: [H, q] });
    out.set(`${p}input_layernorm.weight`, { shape: [H] });
    out.set(`${p}post_attention_layernorm.weight`, { shape: [H] });
    if (config.numExperts > 0) {
      out.set(`${p}block_sparse_moe.gate.weight`, { shape: [config.numExperts, H] });
      for (let e = 0; e < config.numExperts; e++) {
        out.set(`${p}block_sparse_moe.experts.${e}.w1.weight`, { shape: [I, H] });
        out.set(`${p}block_sparse_moe.experts.${e}.w2.weight`, { shape: [H, I] });
        out.set(`${p}block_sparse_moe.experts.${e}.w3.weight`, { shape: [I, H] });
      }
    } else {
      out.set(`${p}mlp.gate_proj.weight`, { shape: [I, H] });
      out.set(`${p}mlp.up_proj.weight`, { shape: [I, H] });
      out.set(`${p}mlp.down_proj.weight`, { shape: [H, I] });
    }
  }
  return out;
}

/**
 * Refuses, before anything is written, a model that lacks a tensor its config.json calls for
 * or has one of another shape (a truncated or partial checkpoint would otherwise become a
 * GGUF that no loader accepts). Names the first few missing tensors and the count.
 */
export function checkModelComplete(source: ModelSource, vocabSize: number): void {
  const expected = expectedLlamaTensors(source.config, vocabSize);
  const have = new Map(source.tensors.map((t) => [t.name, t]));
  const missing = [...expected].filter(([name, e]) => !e.optional && !have.has(name)).map(([name]) => name);
  if (missing.length > 0) {
    const required = [...expected.values()].filter((e) => !e.optional).length;
    throw new FormatError(
      `${source.name}: missing ${missing.length} of the ${required} tensors a ${source.config.numLayers}-layer model needs: ${missing.slice(0, 4).join(", ")}${missing.length > 4 ? ", …" : ""} (a truncated or partial checkpoint?); nothing was written`,
    );
  }
  for (const [name, e] of expected) {
    const t = have.get(name);
    if (t && (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i]))) {
      throw new FormatError(`${source.name}: tensor ${JSON.stringify(name)} has shape [${t.shape.join(", ")}]; config.json calls for [${e.shape.join(", ")}]; nothing was written`);
    }
  }
}

/** Which GGUF tensors a model becomes, with their types, without reading any weights. */
export function planGgufTensors(source: ModelSource, outtype: GgufOuttype): GgufPlanEntry[] {
  const config = source.config;
  const plan: GgufPlanEntry[] = [];
  const experts = new Map<string, GgufPlanEntry>();
  const hasOutput = source.tensors.some((t) => t.name === "lm_head.weight");
  for (const t of source.tensors) {
    if (isIgnoredHfTensor(t.name)) continue;
    const ggufName = hfToGgufName(t.name);
    if (!ggufName) throw new FormatError(`${source.name}: tensor ${JSON.stringify(t.name)} has no GGUF counterpart (not a LLaMA / Mixtral checkpoint?)`);
    const own = DTYPE_TO_GGML[t.dtype];
    if (own === undefined) throw new FormatError(`${source.name}: tensor ${JSON.stringify(t.name)} is ${t.dtype}; only F32, F16 and BF16 weights convert`);
    const target = outtype === "auto" ? own : GGUF_OUTTYPES[outtype];
    const expert = parseExpertName(t.name);
    if (expert) {
      let entry = experts.get(ggufName);
      if (!entry) {
        const shape = [t.shape[1]!, t.shape[0]!, config.numExperts];
        entry = { ggufName, shape, type: chooseTensorType({ name: ggufName, shape }, target, false), sources: [] };
        experts.set(ggufName, entry);
        plan.push(entry);
      }
      if (entry.sources.length !== expert.expert) throw new FormatError(`${source.name}: ${t.name} is out of order (expert ${expert.expert} after ${entry.sources.length - 1})`);
      entry.sources.push(t);
      continue;
    }
    const shape = [...t.shape].reverse();
    const isOutput = ggufName === "output.weight" || (ggufName === "token_embd.weight" && !hasOutput);
    const type = t.shape.length < 2 ? GGMLType.F32 : chooseTensorType({ name: ggufName, shape }, target, isOutput);
    plan.push({ ggufName, shape, type, sources: [t], permuteHeads: ropePermuteHeads(t.name, config.numHeads, config.numKvHeads) });
  }
  for (const e of experts.values()) {
    if (e.sources.length !== config.numExperts) throw new FormatError(`${source.name}: ${e.ggufName} has ${e.sources.length} experts, config.json says ${config.numExperts}`);
  }
  return plan;
}

/** One plan entry's GGUF bytes. */
export async function ggufTensorBytes(entry: GgufPlanEntry): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const t of entry.sources) {
    let raw = await t.read();
    if (entry.permuteHeads !== undefined) raw = permuteRopeRows(raw, t.shape[0]!, t.shape[1] ?? 1, entry.permuteHeads, SAFETENSORS_DTYPE_BYTES[t.dtype]);
    const own = DTYPE_TO_GGML[t.dtype];
    if (own === entry.type) parts.push(raw);
    else {
      const view: ModelTensor = { ...t, read: async () => raw };
      const f32 = await readF32(view);
      parts.push(entry.type === GGMLType.F32 ? new Uint8Array(f32.buffer) : quantize(entry.type, f32));
    }
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface ToGgufReport {
  path: string;
  tensors: number;
  types: Record<string, number>;
  warnings: string[];
}

/** Writes `source` as a GGUF model at `path`. */
export async function writeModelAsGguf(source: ModelSource, path: string, options: ToGgufOptions = {}): Promise<ToGgufReport> {
  const outtype = options.outtype ?? "auto";
  if (outtype !== "auto" && !(outtype in GGUF_OUTTYPES)) throw new InvalidArgumentError(`unknown outtype ${JSON.stringify(outtype)}`);
  const plan = planGgufTensors(source, outtype);
  const embed = source.tensors.find((t) => t.name === "model.embed_tokens.weight");
  if (!embed) throw new FormatError(`${source.name}: no model.embed_tokens.weight`);
  if (embed.shape.length !== 2) throw new FormatError(`${source.name}: model.embed_tokens.weight has shape [${embed.shape.join(", ")}]; expected [vocabulary, ${source.config.hiddenSize}]`);
  const vocabSize = embed.shape[0]!;
  checkModelComplete(source, vocabSize);
  const config = { ...source.config, vocabSize };
  const mainType = outtype === "auto" ? (DTYPE_TO_GGML[embed.dtype] ?? GGMLType.F32) : GGUF_OUTTYPES[outtype];
  const fileType = FILE_TYPE[mainType] ?? 0;
  const tokenizer = source.ggufTokenizer ?? ggufTokenizerFromHfFiles(source.files, vocabSize, source.name);
  const tokens = tokenizer["tokenizer.ggml.tokens"];
  if (Array.isArray(tokens) && tokens.length !== vocabSize) {
    throw new FormatError(`${source.name}: the tokenizer has ${tokens.length} tokens but the embedding ${vocabSize} rows`);
  }
  const metadata: Record<string, GgufValue> = {
    ...llamaGgufMetadata(config, fileType, options.name ?? source.name.split(/[\\/]/).filter(Boolean).pop() ?? "llama"),
    ...tokenizer,
  };
  if (mainType !== GGMLType.F32 && mainType !== GGMLType.F16 && mainType !== GGMLType.BF16) metadata["general.quantization_version"] = 2;
  const warnings: string[] = [];
  if (source.config.ropeScaling.type === "dynamic") {
    warnings.push(`config.json asks for dynamic NTK RoPE scaling (factor ${source.config.ropeScaling.factor}); GGUF has no key for it, apply it at run time`);
  }
  const tensors: GgufTensorInput[] = plan.map((entry) => ({ name: entry.ggufName, type: entry.type, shape: entry.shape, data: () => ggufTensorBytes(entry) }));
  await writeGguf(path, { metadata, tensors }, {
    overwrite: options.overwrite,
    manifest: options.manifest,
    onProgress: (done, total) => options.onProgress?.(done, total, plan[done - 1]!.ggufName),
  });
  const types: Record<string, number> = {};
  for (const e of plan) types[ggmlTypeName(e.type)] = (types[ggmlTypeName(e.type)] ?? 0) + 1;
  return { path, tensors: plan.length, types, warnings };
}

