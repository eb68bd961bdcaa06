/**
 * Wire types of the metadata keys llama.cpp reads. llama.cpp checks a key's type when it reads
 * it (a u32 written as i32 is refused), so the writer uses these when the caller gives none.
 * Source: gguf-py/gguf/constants.py (Keys) and llama.cpp's loader.
 * Keys under `{arch}.` are listed by their suffix.
 */
import { GgufValueType as T } from "./constants.js";
import type { GgufType } from "./header.js";

const generalKeys: Record<string, GgufType> = {
  "general.architecture": T.STRING,
  "general.name": T.STRING,
  "general.alignment": T.UINT32,
  "general.file_type": T.UINT32,
  "general.quantization_version": T.UINT32,
  "split.no": T.UINT16,
  "split.count": T.UINT16,
  "split.tensors.count": T.INT32,
  "tokenizer.ggml.model": T.STRING,
  "tokenizer.ggml.pre": T.STRING,
  "tokenizer.ggml.tokens": { array: T.STRING },
  "tokenizer.ggml.token_type": { array: T.INT32 },
  "tokenizer.ggml.scores": { array: T.FLOAT32 },
  "tokenizer.ggml.merges": { array: T.STRING },
  "tokenizer.ggml.bos_token_id": T.UINT32,
  "tokenizer.ggml.eos_token_id": T.UINT32,
  "tokenizer.ggml.unknown_token_id": T.UINT32,
  "tokenizer.ggml.seperator_token_id": T.UINT32,
  "tokenizer.ggml.padding_token_id": T.UINT32,
  "tokenizer.ggml.add_bos_token": T.BOOL,
  "tokenizer.ggml.add_eos_token": T.BOOL,
  "tokenizer.ggml.add_space_prefix": T.BOOL,
  "tokenizer.ggml.remove_extra_whitespaces": T.BOOL,
  "tokenizer.ggml.precompiled_charsmap": { array: T.UINT8 },
  "tokenizer.chat_template": T.STRING,
  "adapter.type": T.STRING,
  "adapter.lora.alpha": T.FLOAT32,
};

const archKeys: Record<string, GgufType> = {
  vocab_size: T.UINT32,
  context_length: T.UINT32,
  embedding_length: T.UINT32,
  block_count: T.UINT32,
  feed_forward_length: T.UINT32,
  expert_feed_forward_length: T.UINT32,
  expert_count: T.UINT32,
  expert_used_count: T.UINT32,
  expert_shared_count: T.UINT32,
  expert_weights_scale: T.FLOAT32,
  pooling_type: T.UINT32,
  logit_scale: T.FLOAT32,
  "attention.head_count": T.UINT32,
  "attention.head_count_kv": T.UINT32,
  "attention.key_length": T.UINT32,
  "attention.value_length": T.UINT32,
  "attention.layer_norm_epsilon": T.FLOAT32,
  "attention.layer_norm_rms_epsilon": T.FLOAT32,
  "attention.causal": T.BOOL,
  "attention.sliding_window": T.UINT32,
  "rope.dimension_count": T.UINT32,
  "rope.freq_base": T.FLOAT32,
  "rope.scale_linear": T.FLOAT32,
  "rope.scaling.type": T.STRING,
  "rope.scaling.factor": T.FLOAT32,
  "rope.scaling.attn_factor": T.FLOAT32,
  "rope.scaling.original_context_length": T.UINT32,
  "rope.scaling.finetuned": T.BOOL,
  "rope.scaling.yarn_log_multiplier": T.FLOAT32,
  "rope.scaling.yarn_ext_factor": T.FLOAT32,
  "rope.scaling.yarn_attn_factor": T.FLOAT32,
  "rope.scaling.yarn_beta_fast": T.FLOAT32,
  "rope.scaling.yarn_beta_slow": T.FLOAT32,
};

/** The wire type llama.cpp expects for `key`, if it is one it knows. */
export function knownKeyType(key: string): GgufType | undefined {
  const general = generalKeys[key];
  if (general !== undefined) return general;
  const dot = key.indexOf(".");
  return dot > 0 ? archKeys[key.slice(dot + 1)] : undefined;
}
