/**
 * TencentPretrain LLaMA checkpoints (Linly's Chinese-LLaMA / ChatLLaMA / ChatFlow releases) as
 * a model source. TencentPretrain saves its model's state dict: one `.bin` (a torch zip), or
 * several with `tencentpretrain_model.bin.index.json` (scripts/convert_model_into_blocks.py,
 * whole tensors per file, as the trainer reads them back).
 *
 *   TencentPretrain                                     HF                          Meta
 *   embedding.word.embedding.weight                     model.embed_tokens.weight   tok_embeddings
 *   encoder.transformer.N.self_attn.linear_layers.0     self_attn.q_proj            attention.wq
 *   encoder.transformer.N.self_attn.linear_layers.1     self_attn.k_proj            attention.wk
 *   encoder.transformer.N.self_attn.linear_layers.2     self_attn.v_proj            attention.wv
 *   encoder.transformer.N.self_attn.final_linear        self_attn.o_proj            attention.wo
 *   encoder.transformer.N.feed_forward.linear_gate      mlp.gate_proj               feed_forward.w1
 *   encoder.transformer.N.feed_forward.linear_1         mlp.up_proj                 feed_forward.w3
 *   encoder.transformer.N.feed_forward.linear_2         mlp.down_proj               feed_forward.w2
 *   encoder.transformer.N.layer_norm_1                  input_layernorm             attention_norm
 *   encoder.transformer.N.layer_norm_2                  post_attention_layernorm    ffn_norm
 *   encoder.layer_norm                                  model.norm                  norm
 *   target.lm.output_layer                              lm_head                     output
 *
 * From TencentPretrain's model definition: GatedFeedForward computes
 * linear_2(act(linear_gate(x)) * linear_1(x)), so linear_gate is LLaMA's gate (w1) and
 * linear_1 its up projection (w3), as its convert_llama_to_tencentpretrain.py maps them.
 * Attention views q/k rows as [heads, head_dim] and apply_rotary_emb rotates adjacent pairs
 * (2i, 2i+1) as complex numbers: Meta's layout, which its conversion scripts copy unchanged
 * from consolidated.*.pth (and reach from HF with the rotate-half -> pairs `unpermute`). So
 * q/k rows are permuted to HF's rotate-half layout here exactly as Linly's
 * convert_llama_from_tencentpretrain_to_hf.py does (k with the KV head count: repeat_kv gives
 * KV head j to query heads j*g..j*g+g-1, llama.cpp's grouping). RMSNorm, no biases, RoPE base
 * 10000 (precompute_freqs_cis's default; the encoder passes none), head size
 * hidden_size / heads_num.
 *
 * Hyper-parameters come from a TencentPretrain config (models/llama/7b_config.json: emb_size,
 * feedforward_size, heads_num, local_kv_heads_num, layers_num, layernorm_eps, ...); what the
 * shapes say (hidden, ffn, layers, vocabulary, KV width) is inferred, and heads_num, which
 * they cannot say, comes from the config, a flag, or TencentPretrain's own LLaMA configs for
 * the four LLaMA widths.
 */
import { parseJsonObject } from "../formats/json.js";
import { FormatError } from "../formats/errors.js";
import { InvalidArgumentError } from "../errors.js";
import { SAFETENSORS_DTYPE_BYTES } from "../formats/safetensors.js";
import { openTorchCheckpoint, type TorchCheckpoint } from "../formats/pytorch.js";
import { permuteRopeRows, ropePermuteHeads } from "./llama-layout.js";
import type { ModelSource, ModelTensor } from "./model-source.js";
import { checkForeignShapes, findTokenizerFiles, syntheticHfConfig } from "./foreign-source.js";

export interface TencentPretrainOptions {
  /** A TencentPretrain config JSON (models/llama/*_config.json). */
  config?: string;
  /** heads_num, when there is no config. */
  heads?: number;
  /** local_kv_heads_num (default: from the shapes). */
  kvHeads?: number;
  /** A SentencePiece tokenizer.model (default: tokenizer.model beside the checkpoint). */
  tokenizer?: string;
}

export const TENCENTPRETRAIN_INDEX = "tencentpretrain_model.bin.index.json";

const GLOBAL_TP_TO_HF: Record<string, string> = {
  "embedding.word.embedding.weight": "model.embed_tokens.weight",
  "encoder.layer_norm.weight": "model.norm.weight",
  "target.lm.output_layer.weight": "lm_head.weight",
};
const LAYER_TP_TO_HF: Record<string, string> = {
  "self_attn.linear_layers.0.weight": "self_attn.q_proj.weight",
  "self_attn.linear_layers.1.weight": "self_attn.k_proj.weight",
  "self_attn.linear_layers.2.weight": "self_attn.v_proj.weight",
  "self_attn.final_linear.weight": "self_attn.o_proj.weight",
  "feed_forward.linear_gate.weight": "mlp.gate_proj.weight",
  "feed_forward.linear_1.weight": "mlp.up_proj.weight",
  "feed_forward.linear_2.weight": "mlp.down_proj.weight",
  "layer_norm_1.weight": "input_layernorm.weight",
  "layer_norm_2.weight": "post_attention_layernorm.weight",
};
const HF_TO_TP_LAYER = Object.fromEntries(Object.entries(LAYER_TP_TO_HF).map(([a, b]) => [b, a]));
const HF_TO_TP_GLOBAL = Object.fromEntries(Object.entries(GLOBAL_TP_TO_HF).map(([a, b]) => [b, a]));
const TP_LAYER_RE = /^encoder\.transformer\.(\d+)\.(.+)$/;

/** The HF name of a TencentPretrain LLaMA key, or undefined. */
export function tencentPretrainToHfName(key: string): string | undefined {
  if (GLOBAL_TP_TO_HF[key]) return GLOBAL_TP_TO_HF[key];
  const m = TP_LAYER_RE.exec(key);
  if (!m) return undefined;
  const rest = LAYER_TP_TO_HF[m[2]!];
  return rest ? `model.layers.${m[1]}.${rest}` : undefined;
}

/** The TencentPretrain key of an HF LLaMA tensor name, or undefined. */
export function hfToTencentPretrainName(name: string): string | undefined {
  if (HF_TO_TP_GLOBAL[name]) return HF_TO_TP_GLOBAL[name];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  const rest = m ? HF_TO_TP_LAYER[m[2]!] : undefined;
  return m && rest ? `encoder.transformer.${m[1]}.${rest}` : undefined;
}

/** Whether a state dict's keys are TencentPretrain's (its embedding or encoder prefixes). */
export function looksLikeTencentPretrain(keys: Iterable<string>): boolean {
  for (const k of keys) if (k.startsWith("embedding.word.") || k.startsWith("encoder.transformer.")) return true;
  return false;
}

/** A TencentPretrain config, checked to describe a LLaMA. */
export interface TencentPretrainConfig {
  embSize?: number;
  hiddenSize?: number;
  feedforwardSize?: number;
  headsNum?: number;
  localKvHeadsNum?: number;
  layersNum?: number;
  layernormEps: number;
  maxSeqLength: number;
  tieWeights: boolean;
}

/** TencentPretrain's models/llama*\/*_config.json heads_num by emb_size (head size 128). */
const LLAMA_HEADS: Record<number, { heads: number; file: string }> = {
  4096: { heads: 32, file: "models/llama/7b_config.json" },
  5120: { heads: 40, file: "models/llama/13b_config.json" },
  6656: { heads: 52, file: "models/llama/33b_config.json" },
  8192: { heads: 64, file: "models/llama/65b_config.json" },
};

export function parseTencentPretrainConfig(text: string, file: string): TencentPretrainConfig {
  const raw = parseJsonObject(text, file);
  if (!("emb_size" in raw) && !("heads_num" in raw) && ("hidden_size" in raw && "num_attention_heads" in raw)) {
    throw new FormatError(`${file}: this is a Hugging Face config.json, not a TencentPretrain config (emb_size, heads_num, layers_num, ...)`);
  }
  const int = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw new FormatError(`${file}: ${key} should be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  // TencentPretrain options that make a model something other than LLaMA.
  const want: [string, unknown, string][] = [
    ["layernorm", "rms", "RMSNorm"],
    ["feed_forward", "gated", "a gated (SwiGLU) feed-forward"],
    ["hidden_act", "silu", "SiLU"],
    ["layernorm_positioning", "pre", "pre-norm layers"],
    ["rotary_position_embedding", true, "rotary position embeddings"],
    ["remove_transformer_bias", true, "no biases"],
    ["encoder", "transformer", "the transformer encoder"],
    ["mask", "causal", "a causal mask"],
  ];
  for (const [key, value, what] of want) {
    if (key in raw && raw[key] !== value) throw new FormatError(`${file}: ${key} is ${JSON.stringify(raw[key])}; a LLaMA has ${what} (${key}: ${JSON.stringify(value)})`);
  }
  for (const key of ["parameter_sharing", "factorized_embedding_parameterization", "remove_attention_scale", "relative_position_embedding", "has_lmtarget_bias"]) {
    if (raw[key] === true) throw new FormatError(`${file}: ${key} is true; not a LLaMA model`);
  }
  const eps = raw.layernorm_eps;
  if (eps !== undefined && (typeof eps !== "number" || !(eps > 0))) throw new FormatError(`${file}: layernorm_eps should be a positive number, got ${JSON.stringify(eps)}`);
  const embSize = int("emb_size");
  const hiddenSize = int("hidden_size");
  if (embSize !== undefined && hiddenSize !== undefined && embSize !== hiddenSize) throw new FormatError(`${file}: emb_size ${embSize} differs from hidden_size ${hiddenSize}; a LLaMA has one width`);
  const headsNum = int("heads_num");
  const headSize = int("attention_head_size");
  const width = hiddenSize ?? embSize;
  if (headSize !== undefined && headsNum !== undefined && width !== undefined && headSize * headsNum !== width) {
    throw new FormatError(`${file}: attention_head_size ${headSize} x heads_num ${headsNum} is not hidden_size ${width} (TencentPretrain's RoPE assumes hidden_size / heads_num)`);
  }
  return {
    embSize,
    hiddenSize,
    feedforwardSize: int("feedforward_size"),
    headsNum,
    localKvHeadsNum: int("local_kv_heads_num"),
    layersNum: int("layers_num"),
    // tencentpretrain/opts.py's default.
    layernormEps: typeof eps === "number" ? eps : 1e-6,
    maxSeqLength: int("max_seq_length") ?? 2048,
    tieWeights: raw.tie_weights === true,
  };
}

/** The checkpoint files of a TencentPretrain path: the file itself, or a directory's shards. */
export async function tencentPretrainFiles(path: string): Promise<string[]> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const s = await fs.stat(path).catch(() => undefined);
  if (!s) throw new InvalidArgumentError(`${path}: no such file or directory`);
  if (!s.isDirectory()) return [path];
  const listing = (await fs.readdir(path)).sort();
  if (listing.includes(TENCENTPRETRAIN_INDEX)) {
    const indexPath = join(path, TENCENTPRETRAIN_INDEX);
    let index: { weight_map?: Record<string, unknown> };
    try {
      index = JSON.parse(await fs.readFile(indexPath, "utf8")) as typeof index;
    } catch (error) {
      throw new FormatError(`${indexPath}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!index || typeof index.weight_map !== "object" || index.weight_map === null) throw new FormatError(`${indexPath}: no weight_map`);
    const names = [...new Set(Object.values(index.weight_map))];
    for (const f of names) {
      if (typeof f !== "string" || f.includes("/") || f.includes("\\") || !listing.includes(f)) throw new FormatError(`${indexPath}: shard ${JSON.stringify(f)} is missing from ${path}`);
    }
    // tencentpretrain_model-0.bin, -1, ... -10: in numeric order.
    const num = (f: string): number => Number(/-(\d+)\.bin$/.exec(f)?.[1] ?? 0);
    return (names as string[]).sort((a, b) => num(a) - num(b) || a.localeCompare(b)).map((f) => join(path, f));
  }
  const bins = listing.filter((n) => n.endsWith(".bin") || n.endsWith(".pt"));
  if (bins.length === 0) throw new FormatError(`${path}: no TencentPretrain checkpoint (*.bin, or ${TENCENTPRETRAIN_INDEX} and its shards)`);
  return bins.map((f) => join(path, f));
}

function unknownKeyMessage(file: string, key: string): string {
  const hint = key.endsWith(".bias")
    ? "a bias, which LLaMA does not have (a model trained without remove_transformer_bias?)"
    : /lora/i.test(key)
      ? "a LoRA weight: merge the adapter into the model in TencentPretrain first"
      : "not part of TencentPretrain's LLaMA (embedding.word, encoder.transformer.N.self_attn / feed_forward / layer_norm_1/2, encoder.layer_norm, target.lm.output_layer)";
  return `${file}: tensor ${JSON.stringify(key)} is ${hint}; nothing was written`;
}

/** Opens a TencentPretrain LLaMA checkpoint (a .bin file, or a directory of shards) as an HF-named model source. */
export async function openTencentPretrainModel(path: string, options: TencentPretrainOptions = {}): Promise<ModelSource & { warnings: string[] }> {
  const fs = await import("node:fs/promises");
  const { dirname } = await import("node:path");
  const files = await tencentPretrainFiles(path);
  let cfg: TencentPretrainConfig | undefined;
  if (options.config !== undefined) {
    const text = await fs.readFile(options.config, "utf8").catch(() => {
      throw new InvalidArgumentError(`${options.config}: no such config file (--config takes a TencentPretrain config such as models/llama/7b_config.json)`);
    });
    cfg = parseTencentPretrainConfig(text, options.config);
  }
  const opened: TorchCheckpoint[] = [];
  const warnings: string[] = [];
  try {
    const where = new Map<string, TorchCheckpoint>();
    for (const f of files) {
      const ckpt = await openTorchCheckpoint(f);
      opened.push(ckpt);
      for (const t of ckpt.tensors) {
        const before = where.get(t.name);
        if (before) throw new FormatError(`${ckpt.name}: tensor ${JSON.stringify(t.name)} is also in ${before.name}; nothing was written`);
        where.set(t.name, ckpt);
      }
    }
    if (!looksLikeTencentPretrain(where.keys())) {
      throw new FormatError(`${files.length === 1 ? files[0] : path}: not a TencentPretrain checkpoint (no embedding.word.embedding.weight or encoder.transformer.N.* keys)`);
    }
    const tpNameOf = new Map<string, string>();
    const raw: { hf: string; key: string; file: TorchCheckpoint }[] = [];
    let layers = 0;
    for (const [key, file] of where) {
      const hf = tencentPretrainToHfName(key);
      if (!hf) throw new FormatError(unknownKeyMessage(file.name, key));
      const m = TP_LAYER_RE.exec(key);
      if (m) layers = Math.max(layers, Number(m[1]) + 1);
      tpNameOf.set(hf, key);
      raw.push({ hf, key, file });
    }
    const info = (hf: string) => {
      const key = tpNameOf.get(hf);
      return key ? where.get(key)!.tensor(key)! : undefined;
    };
    const label = (hf: string): string => {
      const key = tpNameOf.get(hf) ?? hfToTencentPretrainName(hf) ?? hf;
      const file = where.get(key);
      return `tensor ${JSON.stringify(key)}${file ? ` (${file.name})` : ""}`;
    };
    const src = files.length === 1 ? files[0]! : path;
    const embed = info("model.embed_tokens.weight");
    if (!embed || embed.shape.length !== 2) throw new FormatError(`${src}: no embedding.word.embedding.weight matrix; nothing was written`);
    const [vocab, hidden] = embed.shape as [number, number];
    const configName = options.config ?? "the config";
    if (cfg) {
      const width = cfg.hiddenSize ?? cfg.embSize;
      if (width !== undefined && width !== hidden) throw new FormatError(`${src}: embedding.word.embedding.weight is [${vocab}, ${hidden}]; ${configName} says emb_size ${width}; nothing was written`);
      if (cfg.layersNum !== undefined && cfg.layersNum !== layers && layers > 0) {
        // Missing layers are reported tensor by tensor below; extra ones here.
        if (layers > cfg.layersNum) throw new FormatError(`${src}: has ${layers} layers (encoder.transformer.${layers - 1}.*); ${configName} says layers_num ${cfg.layersNum}; nothing was written`);
      }
    }
    const numLayers = cfg?.layersNum ?? layers;
    if (numLayers === 0) throw new FormatError(`${src}: no encoder.transformer.N.* layers; nothing was written`);
    let heads = options.heads ?? cfg?.headsNum;
    if (options.heads !== undefined && cfg?.headsNum !== undefined && options.heads !== cfg.headsNum) {
      throw new InvalidArgumentError(`--heads ${options.heads} disagrees with heads_num ${cfg.headsNum} in ${configName}`);
    }
    if (heads === undefined) {
      const known = LLAMA_HEADS[hidden];
      if (!known) {
        throw new InvalidArgumentError(
          `${src}: the number of attention heads cannot be read from the weights (hidden size ${hidden}); pass --config with TencentPretrain's config (heads_num) or --heads N`,
        );
      }
      heads = known.heads;
      warnings.push(`heads_num ${heads} for emb_size ${hidden} from TencentPretrain's ${known.file}; pass --config or --heads if this model differs`);
    }
    if (hidden % heads !== 0 || (hidden / heads) % 2 !== 0) throw new InvalidArgumentError(`${src}: hidden size ${hidden} does not split into ${heads} heads of even size`);
    const headDim = hidden / heads;
    const k = info("model.layers.0.self_attn.k_proj.weight");
    let kvHeads = options.kvHeads ?? cfg?.localKvHeadsNum;
    if (kvHeads === undefined) {
      if (k && k.shape.length === 2 && k.shape[0]! % headDim === 0) kvHeads = k.shape[0]! / headDim;
      else kvHeads = heads;
    }
    if (heads % kvHeads !== 0) throw new InvalidArgumentError(`${src}: ${heads} heads do not group over ${kvHeads} KV heads`);
    const up = info("model.layers.0.mlp.up_proj.weight");
    const intermediate = cfg?.feedforwardSize ?? (up && up.shape.length === 2 ? up.shape[0]! : undefined);
    if (intermediate === undefined) throw new FormatError(`${label("model.layers.0.mlp.up_proj.weight")} is missing; nothing was written`);
    const tied = !tpNameOf.has("lm_head.weight");
    const { json, config } = syntheticHfConfig(
      {
        hidden,
        intermediate,
        layers: numLayers,
        heads,
        kvHeads,
        vocab,
        rmsEps: cfg?.layernormEps ?? 1e-6,
        ropeTheta: 10000,
        maxPositions: cfg?.maxSeqLength ?? 2048,
        tied,
        dtype: embed.dtype,
      },
      src,
    );
    const tensors: ModelTensor[] = raw.map(({ hf, key, file }) => {
      const t = file.tensor(key)!;
      const permute = ropePermuteHeads(hf, heads, kvHeads);
      return {
        name: hf,
        dtype: t.dtype,
        shape: t.shape,
        read: async () => {
          const bytes = await file.readTensor(key);
          // TencentPretrain's (Meta's) interleaved RoPE pairs -> HF's rotate-half rows.
          return permute === undefined ? bytes : permuteRopeRows(bytes, t.shape[0]!, t.shape[1]!, permute, SAFETENSORS_DTYPE_BYTES[t.dtype], true);
        },
      };
    });
    const why = cfg
      ? `${configName} (emb_size ${hidden}, heads_num ${heads}, local_kv_heads_num ${kvHeads}, layers_num ${numLayers}${cfg.feedforwardSize ? `, feedforward_size ${cfg.feedforwardSize}` : ""})`
      : `the shapes (hidden ${hidden}, ${heads} heads, ${kvHeads} KV heads, ffn ${intermediate}, ${numLayers} layers)`;
    checkForeignShapes(src, config, vocab, tensors, label, why);
    for (const t of tensors) {
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16") throw new FormatError(`${label(t.name)} is ${t.dtype}; only F32, F16 and BF16 weights convert; nothing was written`);
    }
    const dirs = [...new Set(files.map((f) => dirname(f)))];
    const side = await findTokenizerFiles(dirs, options.tokenizer);
    return {
      name: path,
      config,
      configJson: json,
      tensors,
      shards: [],
      files: side,
      warnings,
      close: async () => {
        for (const f of opened) await f.close();
      },
    };
  } catch (error) {
    for (const f of opened) await f.close().catch(() => undefined);
    throw error;
  }
}
