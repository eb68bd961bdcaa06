/**
 * A GGUF LLaMA / Mixtral model seen as HF tensors: the inverse of to-gguf.ts. Names are mapped
 * back, wq/wk rows un-permuted to HF's rotate-half layout, stacked experts split, and
 * config.json rebuilt from the `llama.*` keys. F32 / F16 / BF16 tensors keep their bytes, so
 * HF -> GGUF -> HF is exact; quantized tensors are dequantized (to F32, or the `dtype` asked).
 */
import { FormatError } from "../formats/errors.js";
import { GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import { openGguf, type GgufFile, type GgufTensorInfo, type GgufValue } from "../formats/gguf/index.js";
import { dequantize } from "../formats/quants/index.js";
import { parseLlamaConfig } from "../formats/hf-config.js";
import { fromFloat32, SAFETENSORS_DTYPE_BYTES, type SafetensorsFloatDtype } from "../formats/safetensors.js";
import { readHParams } from "../model/hparams.js";
import { EXPERT_GGUF, expertHfName, ggufToHfName, permuteRopeRows, ropePermuteHeads } from "./llama-layout.js";
import type { ModelSource, ModelTensor } from "./model-source.js";
import { hfFilesFromGgufTokenizer } from "./gguf-tokenizer.js";

const GGML_TO_DTYPE: Partial<Record<GGMLType, SafetensorsFloatDtype>> = { [GGMLType.F32]: "F32", [GGMLType.F16]: "F16", [GGMLType.BF16]: "BF16" };

export interface FromGgufOptions {
  /**
   * dtype of every HF tensor. Default: each float tensor keeps its type, 1-D F32 tensors take
   * the type of the token embedding (they were widened to F32 by the conversion), quantized
   * tensors become F16.
   */
  dtype?: SafetensorsFloatDtype;
}

/** config.json (as an object) for a GGUF model's hyper-parameters. */
export function hfConfigFromGguf(file: GgufFile, torchDtype: string): Record<string, unknown> {
  const meta = file.metadata;
  const hp = readHParams(meta);
  const arch = String(meta["general.architecture"]);
  const num = (key: string): number | undefined => {
    const v = meta[`${arch}.${key}`];
    return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
  };
  const mixtral = hp.nExpert > 0;
  const config: Record<string, unknown> = {
    architectures: [mixtral ? "MixtralForCausalLM" : "LlamaForCausalLM"],
    model_type: mixtral ? "mixtral" : "llama",
    hidden_size: hp.nEmbd,
    intermediate_size: hp.nFf,
    num_hidden_layers: hp.nLayer,
    num_attention_heads: hp.nHead,
    num_key_value_heads: hp.nHeadKv,
    max_position_embeddings: hp.nCtxTrain,
    rms_norm_eps: hp.rmsEps,
    rope_theta: hp.ropeFreqBase,
    vocab_size: hp.nVocab,
    hidden_act: "silu",
    tie_word_embeddings: !file.has("output.weight"),
    torch_dtype: torchDtype,
  };
  if (hp.headDim !== hp.nEmbd / hp.nHead) config.head_dim = hp.headDim;
  const bos = meta["tokenizer.ggml.bos_token_id"];
  const eos = meta["tokenizer.ggml.eos_token_id"];
  if (typeof bos === "number") config.bos_token_id = bos;
  if (typeof eos === "number") config.eos_token_id = eos;
  if (mixtral) {
    config.num_local_experts = hp.nExpert;
    config.num_experts_per_tok = hp.nExpertUsed;
  }
  const type = meta[`${arch}.rope.scaling.type`];
  const factor = num("rope.scaling.factor") ?? num("rope.scale_linear");
  if (type === "linear" || (type === undefined && factor !== undefined && factor !== 1)) config.rope_scaling = { type: "linear", factor };
  else if (type === "yarn") {
    const rs: Record<string, unknown> = { type: "yarn", factor };
    const orig = num("rope.scaling.original_context_length");
    if (orig !== undefined) rs.original_max_position_embeddings = orig;
    const finetuned = meta[`${arch}.rope.scaling.finetuned`];
    if (typeof finetuned === "boolean") rs.finetuned = finetuned;
    config.rope_scaling = rs;
  }
  return config;
}

/** Opens a GGUF model as HF tensors. Close the returned source when done. */
export async function openGgufAsHf(path: string, options: FromGgufOptions = {}): Promise<ModelSource & { warnings: string[] }> {
  const file = await openGguf(path);
  try {
    const meta = file.metadata;
    const hp = readHParams(meta);
    const warnings: string[] = [];
    const embd = file.has("token_embd.weight") ? file.tensor("token_embd.weight") : undefined;
    if (!embd) throw new FormatError(`${file.name}: no token_embd.weight`);
    const mainDtype: SafetensorsFloatDtype = options.dtype ?? GGML_TO_DTYPE[embd.type] ?? "F16";
    const torchDtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[mainDtype];
    const configJson = hfConfigFromGguf(file, torchDtype);
    const config = parseLlamaConfig(JSON.stringify(configJson), `${file.name} (config from GGUF metadata)`);
    const quantized = new Set<string>();

    const tensorOf = (info: GgufTensorInfo, name: string, hfShape: number[], rowStart: number, rows: number, permuteHeads?: number): ModelTensor => {
      const own = GGML_TO_DTYPE[info.type];
      const dtype: SafetensorsFloatDtype = options.dtype ?? (own && !(own === "F32" && info.shape.length === 1) ? own : mainDtype);
      if (!own) quantized.add(ggmlTypeName(info.type));
      return {
        name,
        dtype,
        shape: hfShape,
        read: async () => {
          const rowLength = info.shape[0]!;
          let bytes = await file.readTensorRows(info, rowStart, rows);
          if (own !== dtype) bytes = fromFloat32(dtype, dequantize(info.type, bytes, rows * rowLength)).slice();
          if (permuteHeads !== undefined) bytes = permuteRopeRows(bytes, rows, rowLength, permuteHeads, SAFETENSORS_DTYPE_BYTES[dtype], true);
          return bytes;
        },
      };
    };

    const tensors: ModelTensor[] = [];
    for (const info of file.tensors) {
      const expertMatch = /^blk\.(\d+)\.(ffn_(?:gate|down|up)_exps\.weight)$/.exec(info.name);
      if (expertMatch) {
        const w = Object.entries(EXPERT_GGUF).find(([, g]) => g === expertMatch[2])![0];
        const [cols, rows, n] = info.shape as [number, number, number];
        for (let e = 0; e < n; e++) tensors.push(tensorOf(info, expertHfName(Number(expertMatch[1]), e, w), [rows, cols], e * rows, rows));
        continue;
      }
      const name = ggufToHfName(info.name);
      if (!name) {
        warnings.push(`skipped GGUF tensor ${info.name} (no HF counterpart)`);
        continue;
      }
      const hfShape = [...info.shape].reverse();
      const rows = info.shape.slice(1).reduce((a, b) => a * b, 1);
      tensors.push(tensorOf(info, name, hfShape, 0, rows, ropePermuteHeads(name, hp.nHead, hp.nHeadKv)));
    }
    if (quantized.size > 0) warnings.push(`dequantized ${[...quantized].join(", ")} tensors (the HF weights are not the original ones)`);
    const tokenizerMeta: Record<string, GgufValue> = {};
    for (const [k, v] of Object.entries(meta)) if (k.startsWith("tokenizer.")) tokenizerMeta[k] = v;
    const files = hfFilesFromGgufTokenizer(meta, file.name);
    return {
      name: file.name,
      config,
      configJson,
      tensors,
      shards: [],
      files,
      ggufTokenizer: tokenizerMeta,
      warnings,
      close: () => file.close(),
    };
  } catch (error) {
    await file.close();
    throw error;
  }
}
