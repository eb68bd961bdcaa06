/**
 * Tensor names and layouts of the LLaMA family in its three homes.
 *
 *   HF (transformers)            GGUF (llama.cpp)          Meta (consolidated.*.pth)
 *   model.embed_tokens.weight    token_embd.weight         tok_embeddings.weight
 *   model.norm.weight            output_norm.weight        norm.weight
 *   lm_head.weight               output.weight             output.weight
 *   model.layers.N.
 *     self_attn.q_proj.weight    blk.N.attn_q.weight       layers.N.attention.wq.weight
 *     self_attn.k_proj.weight    blk.N.attn_k.weight       layers.N.attention.wk.weight
 *     self_attn.v_proj.weight    blk.N.attn_v.weight       layers.N.attention.wv.weight
 *     self_attn.o_proj.weight    blk.N.attn_output.weight  layers.N.attention.wo.weight
 *     mlp.gate_proj.weight       blk.N.ffn_gate.weight     layers.N.feed_forward.w1.weight
 *     mlp.down_proj.weight       blk.N.ffn_down.weight     layers.N.feed_forward.w2.weight
 *     mlp.up_proj.weight         blk.N.ffn_up.weight       layers.N.feed_forward.w3.weight
 *     input_layernorm.weight     blk.N.attn_norm.weight    layers.N.attention_norm.weight
 *     post_attention_layernorm   blk.N.ffn_norm.weight     layers.N.ffn_norm.weight
 *   Mixtral: block_sparse_moe.gate -> blk.N.ffn_gate_inp; block_sparse_moe.experts.E.w1/w2/w3
 *   -> blk.N.ffn_{gate,down,up}_exps, the experts stacked into one 3-D tensor.
 *
 * RoPE layout: HF rotates halves (rotate_half: dim i pairs with i + d/2), Meta and GGUF rotate
 * adjacent pairs (2i, 2i+1). Converting HF -> GGUF or HF -> Meta permutes the rows of wq and
 * wk within each head (llama.cpp convert_hf_to_gguf `permute`, upstream's `unpermute`):
 *
 *   rows viewed as [heads, 2, d/2]  ->  swap the last two axes  ->  [heads, d/2, 2]
 *
 * so GGUF row h*d + 2i + j is HF row h*d + j*d/2 + i. wk uses the KV head count.
 * Shapes: HF/numpy [rows, cols]; GGUF lists ne[0] = cols first.
 */

const LAYER_HF_TO_GGUF: Record<string, string> = {
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "input_layernorm.weight": "attn_norm.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "block_sparse_moe.gate.weight": "ffn_gate_inp.weight",
};
const LAYER_GGUF_TO_HF = Object.fromEntries(Object.entries(LAYER_HF_TO_GGUF).map(([a, b]) => [b, a]));

const LAYER_HF_TO_META: Record<string, string> = {
  "self_attn.q_proj.weight": "attention.wq.weight",
  "self_attn.k_proj.weight": "attention.wk.weight",
  "self_attn.v_proj.weight": "attention.wv.weight",
  "self_attn.o_proj.weight": "attention.wo.weight",
  "mlp.gate_proj.weight": "feed_forward.w1.weight",
  "mlp.down_proj.weight": "feed_forward.w2.weight",
  "mlp.up_proj.weight": "feed_forward.w3.weight",
  "input_layernorm.weight": "attention_norm.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
};

const GLOBAL_HF_TO_GGUF: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};
const GLOBAL_GGUF_TO_HF = Object.fromEntries(Object.entries(GLOBAL_HF_TO_GGUF).map(([a, b]) => [b, a]));
const GLOBAL_HF_TO_META: Record<string, string> = {
  "model.embed_tokens.weight": "tok_embeddings.weight",
  "model.norm.weight": "norm.weight",
  "lm_head.weight": "output.weight",
};

/** Mixtral expert weights: w1 = gate, w2 = down, w3 = up. */
export const EXPERT_GGUF: Record<string, string> = { w1: "ffn_gate_exps.weight", w2: "ffn_down_exps.weight", w3: "ffn_up_exps.weight" };

const LAYER_RE = /^model\.layers\.(\d+)\.(.+)$/;
const EXPERT_RE = /^block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$/;

/** HF tensors with no place in GGUF / Meta (recomputed at run time). */
export function isIgnoredHfTensor(name: string): boolean {
  return name.endsWith("rotary_emb.inv_freq");
}

/** The GGUF name of an HF tensor (experts: the stacked tensor's name), or undefined. */
export function hfToGgufName(name: string): string | undefined {
  if (GLOBAL_HF_TO_GGUF[name]) return GLOBAL_HF_TO_GGUF[name];
  const m = LAYER_RE.exec(name);
  if (!m) return undefined;
  const expert = EXPERT_RE.exec(m[2]!);
  if (expert) return `blk.${m[1]}.${EXPERT_GGUF[expert[2]!]}`;
  const rest = LAYER_HF_TO_GGUF[m[2]!];
  return rest ? `blk.${m[1]}.${rest}` : undefined;
}

/** The HF name of a GGUF tensor (not for stacked experts), or undefined. */
export function ggufToHfName(name: string): string | undefined {
  if (GLOBAL_GGUF_TO_HF[name]) return GLOBAL_GGUF_TO_HF[name];
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const rest = LAYER_GGUF_TO_HF[m[2]!];
  return rest ? `model.layers.${m[1]}.${rest}` : undefined;
}

/** The Meta (consolidated.*.pth) name of an HF tensor, or undefined. */
export function hfToMetaName(name: string): string | undefined {
  if (GLOBAL_HF_TO_META[name]) return GLOBAL_HF_TO_META[name];
  const m = LAYER_RE.exec(name);
  if (!m) return undefined;
  const rest = LAYER_HF_TO_META[m[2]!];
  return rest ? `layers.${m[1]}.${rest}` : undefined;
}

const META_TO_HF_LAYER = Object.fromEntries(Object.entries(LAYER_HF_TO_META).map(([a, b]) => [b, a]));
const META_TO_HF_GLOBAL = Object.fromEntries(Object.entries(GLOBAL_HF_TO_META).map(([a, b]) => [b, a]));

/** The HF name of a Meta (consolidated.*.pth) tensor, or undefined (rope.freqs and unknown keys). */
export function metaToHfName(name: string): string | undefined {
  if (META_TO_HF_GLOBAL[name]) return META_TO_HF_GLOBAL[name];
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const rest = META_TO_HF_LAYER[m[2]!];
  return rest ? `model.layers.${m[1]}.${rest}` : undefined;
}

/**
 * How Meta's model-parallel shards split a tensor (llama/model.py: ColumnParallelLinear for
 * wq/wk/wv/w1/w3 and output -> dim 0; RowParallelLinear for wo/w2 -> dim 1; ParallelEmbedding
 * for tok_embeddings -> dim 1 in LLaMA 1/2; norms replicated -> undefined).
 */
export function metaSplitDim(metaName: string): 0 | 1 | undefined {
  if (metaName === "tok_embeddings.weight" || /\.(wo|w2)\.weight$/.test(metaName)) return 1;
  if (metaName === "output.weight" || /\.(wq|wk|wv|w1|w3)\.weight$/.test(metaName)) return 0;
  return undefined;
}

/** Which heads count a q/k projection permutes with, or undefined for other tensors. */
export function ropePermuteHeads(hfName: string, numHeads: number, numKvHeads: number): number | undefined {
  if (hfName.endsWith("self_attn.q_proj.weight")) return numHeads;
  if (hfName.endsWith("self_attn.k_proj.weight")) return numKvHeads;
  return undefined;
}

/**
 * Reorders the rows of a row-major [rows, cols] matrix of `itemSize`-byte elements from HF's
 * rotate-half layout to the adjacent-pair layout of GGUF and Meta (`inverse`: back again).
 */
export function permuteRopeRows(data: Uint8Array, rows: number, cols: number, heads: number, itemSize: number, inverse = false): Uint8Array {
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) throw new RangeError(`cannot permute ${rows} rows into ${heads} heads of even size`);
  const headDim = rows / heads;
  const half = headDim / 2;
  const rowBytes = cols * itemSize;
  const out = new Uint8Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const pair = h * headDim + 2 * i + j; // GGUF / Meta row
        const halves = h * headDim + j * half + i; // HF row
        const [from, to] = inverse ? [pair, halves] : [halves, pair];
        out.set(data.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
    }
  }
  return out;
}

/** Splits an HF expert name: model.layers.N.block_sparse_moe.experts.E.wK.weight. */
export function parseExpertName(name: string): { layer: number; expert: number; w: string } | undefined {
  const m = LAYER_RE.exec(name);
  const e = m ? EXPERT_RE.exec(m[2]!) : null;
  return m && e ? { layer: Number(m[1]), expert: Number(e[1]), w: e[2]! } : undefined;
}

export function expertHfName(layer: number, expert: number, w: string): string {
  return `model.layers.${layer}.block_sparse_moe.experts.${expert}.${w}.weight`;
}
