/**
 * Shared pieces of the readers for checkpoints that are not HF directories (Meta's
 * consolidated.*.pth, TencentPretrain .bin): the config.json they stand for, the tokenizer
 * files found beside them, and the shape check that runs before anything is written.
 */
import { FormatError } from "../formats/errors.js";
import { parseLlamaConfig, type LlamaConfig } from "../formats/hf-config.js";
import type { SafetensorsDtype } from "../formats/safetensors.js";
import { expectedLlamaTensors } from "./to-gguf.js";
import type { ModelTensor } from "./model-source.js";

/** The hyper-parameters a LLaMA checkpoint without a config.json is described by. */
export interface LlamaShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  rmsEps: number;
  ropeTheta: number;
  maxPositions: number;
  tied: boolean;
  dtype: SafetensorsDtype;
}

const TORCH_DTYPE: Partial<Record<SafetensorsDtype, string>> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** The config.json transformers' conversion scripts write for such a model. */
export function syntheticHfConfig(s: LlamaShape, where: string): { json: Record<string, unknown>; config: LlamaConfig } {
  const json: Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_attention_heads: s.heads,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: s.rmsEps,
    rope_theta: s.ropeTheta,
    tie_word_embeddings: s.tied,
    vocab_size: s.vocab,
    bos_token_id: 1,
    eos_token_id: 2,
  };
  const dtype = TORCH_DTYPE[s.dtype];
  if (dtype) json.torch_dtype = dtype;
  return { json, config: parseLlamaConfig(JSON.stringify(json), `${where} (config.json derived from its hyper-parameters)`) };
}

/** Tokenizer files a converted model carries, as HF directories name them. */
const TOKENIZER_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

/**
 * The tokenizer for a checkpoint: `explicit` (a tokenizer.model; its directory's other
 * tokenizer files come along), else the first of `dirs` that has a tokenizer.model. Empty when
 * none is found (a GGUF output then asks for --tokenizer).
 */
export async function findTokenizerFiles(dirs: readonly string[], explicit?: string): Promise<Record<string, Uint8Array>> {
  const fs = await import("node:fs/promises");
  const { dirname, join } = await import("node:path");
  const files: Record<string, Uint8Array> = {};
  if (explicit !== undefined) {
    const bytes = await fs.readFile(explicit).catch(() => {
      throw new FormatError(`${explicit}: no such tokenizer file (--tokenizer takes a SentencePiece tokenizer.model)`);
    });
    files["tokenizer.model"] = bytes;
    for (const name of TOKENIZER_FILES.slice(1)) {
      const extra = await fs.readFile(join(dirname(explicit), name)).catch(() => undefined);
      if (extra) files[name] = extra;
    }
    return files;
  }
  for (const dir of dirs) {
    const model = await fs.readFile(join(dir, "tokenizer.model")).catch(() => undefined);
    if (!model) continue;
    files["tokenizer.model"] = model;
    for (const name of TOKENIZER_FILES.slice(1)) {
      const extra = await fs.readFile(join(dir, name)).catch(() => undefined);
      if (extra) files[name] = extra;
    }
    return files;
  }
  return files;
}

/**
 * Checks a model's tensors (HF names, full shapes) against what its hyper-parameters call
 * for, before anything is written. `label(hfName)` names the tensor as the checkpoint does
 * (its own key and file), so the error points at what the user has on disk.
 */
export function checkForeignShapes(
  where: string,
  config: LlamaConfig,
  vocab: number,
  tensors: readonly ModelTensor[],
  label: (hfName: string) => string,
  why: string,
): void {
  const expected = expectedLlamaTensors(config, vocab);
  const have = new Map(tensors.map((t) => [t.name, t]));
  const missing = [...expected].filter(([name, e]) => !e.optional && !have.has(name)).map(([name]) => label(name));
  if (missing.length > 0) {
    throw new FormatError(
      `${where}: missing ${missing.length} tensor${missing.length > 1 ? "s" : ""} a ${config.numLayers}-layer model needs: ${missing.slice(0, 4).join(", ")}${missing.length > 4 ? ", …" : ""} (a truncated or partial checkpoint?); nothing was written`,
    );
  }
  for (const [name, e] of expected) {
    const t = have.get(name);
    if (t && (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i]))) {
      throw new FormatError(`${where}: ${label(name)} has shape [${t.shape.join(", ")}]; ${why} calls for [${e.shape.join(", ")}]; nothing was written`);
    }
  }
}
