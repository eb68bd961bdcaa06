/**
 * Meta's original LLaMA / Llama-2 layout as a model source: a directory of
 * `consolidated.NN.pth` model-parallel shards and `params.json` (the layout writeModelAsMeta
 * writes). Tensors come out under their HF names, as transformers' convert_llama_weights_to_hf
 * would produce them:
 *
 *   - each tensor is the shards' parts concatenated along the axis Meta's model splits it on
 *     (llama/model.py): wq/wk/wv/w1/w3 and output along dim 0 (column-parallel), wo/w2 along
 *     dim 1 (row-parallel), tok_embeddings along dim 1 (ParallelEmbedding; along dim 0 when
 *     the parts are full rows, as Llama 3's vocabulary-parallel embedding); norms are
 *     replicated and taken from shard 0;
 *   - wq/wk rows go from Meta's interleaved RoPE pairs to HF's rotate-half layout (the
 *     script's `permute`; wk with the KV head count);
 *   - `rope.freqs` (LLaMA 1 saves it) is recomputed at run time and skipped.
 *
 * Shards are checked against each other (same keys, same dtypes, agreeing shapes) and against
 * params.json before any output is written. One tensor is in memory at a time (its parts and
 * the result).
 */
import { parseJsonObject } from "../formats/json.js";
import { FormatError } from "../formats/errors.js";
import { SAFETENSORS_DTYPE_BYTES } from "../formats/safetensors.js";
import { openTorchCheckpoint, type TorchCheckpoint } from "../formats/pytorch.js";
import { hfToMetaName, metaSplitDim, metaToHfName, permuteRopeRows, ropePermuteHeads } from "./llama-layout.js";
import type { ModelSource, ModelTensor } from "./model-source.js";
import { checkForeignShapes, findTokenizerFiles, syntheticHfConfig } from "./foreign-source.js";

export interface MetaModelOptions {
  /** A SentencePiece tokenizer.model (default: DIR/tokenizer.model, else DIR/../tokenizer.model). */
  tokenizer?: string;
}

/** Meta's params.json, checked. */
export interface MetaParams {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  normEps: number;
  ropeTheta: number;
  vocabSize: number;
  raw: Record<string, unknown>;
}

const SHARD_RE = /^consolidated\.(\d+)\.pth$/;

/** Whether `dir` looks like Meta's layout (params.json or consolidated.*.pth, no config.json). */
export async function isMetaDir(dir: string): Promise<boolean> {
  const fs = await import("node:fs/promises");
  const listing = await fs.readdir(dir).catch(() => [] as string[]);
  if (listing.includes("config.json")) return false;
  return listing.includes("params.json") || listing.some((n) => SHARD_RE.test(n));
}

export function parseMetaParams(text: string, file: string): MetaParams {
  const raw = parseJsonObject(text, file);
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw new FormatError(`${file}: ${key} should be a positive integer, got ${JSON.stringify(raw[key])}`);
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new FormatError(`${file}: ${key} should be a positive number, got ${JSON.stringify(raw[key])}`);
    return v;
  };
  if (raw.use_scaled_rope === true) {
    throw new FormatError(`${file}: use_scaled_rope (Llama 3.1's RoPE frequency scaling) is not supported; convert the HF release instead`);
  }
  const dim = int("dim");
  const nHeads = int("n_heads");
  const nKvHeads = int("n_kv_heads", nHeads);
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) throw new FormatError(`${file}: dim ${dim} does not split into ${nHeads} heads of even size`);
  if (nHeads % nKvHeads !== 0) throw new FormatError(`${file}: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const vocab = raw.vocab_size;
  if (vocab !== undefined && (typeof vocab !== "number" || !Number.isSafeInteger(vocab) || (vocab <= 0 && vocab !== -1))) {
    throw new FormatError(`${file}: vocab_size should be -1 or a positive integer, got ${JSON.stringify(vocab)}`);
  }
  return {
    dim,
    nLayers: int("n_layers"),
    nHeads,
    nKvHeads,
    // llama/model.py ModelArgs defaults.
    normEps: num("norm_eps", 1e-5),
    ropeTheta: num("rope_theta", 10000),
    vocabSize: typeof vocab === "number" ? vocab : -1,
    raw,
  };
}

interface Part {
  file: TorchCheckpoint;
  shape: number[];
}

/** Concatenates row-major parts along `dim` (0 or 1) of 2-D tensors. */
function concatParts(parts: readonly Uint8Array[], shapes: readonly number[][], dim: 0 | 1, itemSize: number): Uint8Array {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  if (dim === 0) {
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
  const rows = shapes[0]![0]!;
  const rowBytes = shapes.reduce((a, s) => a + s[1]! * itemSize, 0);
  let col = 0;
  for (let i = 0; i < parts.length; i++) {
    const w = shapes[i]![1]! * itemSize;
    const p = parts[i]!;
    for (let r = 0; r < rows; r++) out.set(p.subarray(r * w, (r + 1) * w), r * rowBytes + col);
    col += w;
  }
  return out;
}

/** Opens a Meta consolidated.*.pth + params.json directory as an HF-named model source. */
export async function openMetaModel(dir: string, options: MetaModelOptions = {}): Promise<ModelSource> {
  const fs = await import("node:fs/promises");
  const { join, dirname, resolve } = await import("node:path");
  const listing = (await fs.readdir(dir)).sort();
  const paramsPath = join(dir, "params.json");
  const shardNames = listing.filter((n) => SHARD_RE.test(n)).sort((a, b) => Number(SHARD_RE.exec(a)![1]) - Number(SHARD_RE.exec(b)![1]));
  if (!listing.includes("params.json")) {
    throw new FormatError(`${dir}: no params.json beside ${shardNames[0] ?? "the consolidated.*.pth shards"} (Meta's layout is consolidated.NN.pth + params.json; copy params.json from the release)`);
  }
  const params = parseMetaParams(await fs.readFile(paramsPath, "utf8"), paramsPath);
  if (shardNames.length === 0) throw new FormatError(`${dir}: params.json but no consolidated.NN.pth shards`);
  shardNames.forEach((name, i) => {
    const n = Number(SHARD_RE.exec(name)![1]);
    if (n !== i) throw new FormatError(`${dir}: consolidated.${String(i).padStart(2, "0")}.pth is missing (found ${shardNames.join(", ")}); every model-parallel shard is needed`);
  });

  const opened: TorchCheckpoint[] = [];
  try {
    for (const name of shardNames) opened.push(await openTorchCheckpoint(join(dir, name)));
    const nShards = opened.length;
    const first = opened[0]!;
    // Same keys in every shard.
    const keys = first.tensors.map((t) => t.name);
    for (const file of opened.slice(1)) {
      const own = new Set(file.tensors.map((t) => t.name));
      const lacking = keys.find((k) => !own.has(k));
      if (lacking) throw new FormatError(`${file.name}: no tensor ${JSON.stringify(lacking)}, which ${first.name} has (a truncated or mismatched shard?); nothing was written`);
      const extra = file.tensors.find((t) => !keys.includes(t.name));
      if (extra) throw new FormatError(`${file.name}: tensor ${JSON.stringify(extra.name)} is not in ${first.name} (shards of different models?); nothing was written`);
    }

    const tensors: ModelTensor[] = [];
    const metaNameOf = new Map<string, string>();
    for (const key of keys) {
      if (key === "rope.freqs") continue;
      const hf = metaToHfName(key);
      if (!hf) throw new FormatError(`${first.name}: tensor ${JSON.stringify(key)} is not part of Meta's LLaMA layout (tok_embeddings, layers.N.attention.wq/wk/wv/wo, layers.N.feed_forward.w1/w2/w3, norms, output); nothing was written`);
      const parts: Part[] = opened.map((file) => ({ file, shape: file.tensor(key)!.shape }));
      const dtype = first.tensor(key)!.dtype;
      for (const p of parts) {
        const d = p.file.tensor(key)!.dtype;
        if (d !== dtype) throw new FormatError(`${p.file.name}: tensor ${JSON.stringify(key)} is ${d}, but ${dtype} in ${first.name}; nothing was written`);
      }
      let dim = nShards > 1 ? metaSplitDim(key) : undefined;
      const s0 = parts[0]!.shape;
      if (dim !== undefined && s0.length !== 2) throw new FormatError(`${first.name}: tensor ${JSON.stringify(key)} has shape [${s0.join(", ")}]; expected a matrix; nothing was written`);
      // LLaMA 1/2 split the embedding's columns; Llama 3 its rows. The parts' width says which.
      if (key === "tok_embeddings.weight" && dim === 1 && s0[1] === params.dim) dim = 0;
      let shape: number[];
      if (dim === undefined) {
        for (const p of parts) {
          if (p.shape.join(",") !== s0.join(",")) throw new FormatError(`${p.file.name}: tensor ${JSON.stringify(key)} has shape [${p.shape.join(", ")}], but [${s0.join(", ")}] in ${first.name} (it is the same in every shard); nothing was written`);
        }
        shape = [...s0];
      } else {
        const other = 1 - dim;
        for (const p of parts) {
          if (p.shape.length !== 2 || p.shape[other] !== s0[other]) {
            throw new FormatError(`${p.file.name}: tensor ${JSON.stringify(key)} has shape [${p.shape.join(", ")}], which does not join [${s0.join(", ")}] of ${first.name} along dim ${dim}; nothing was written`);
          }
        }
        shape = [...s0];
        shape[dim] = parts.reduce((a, p) => a + p.shape[dim]!, 0);
      }
      const heads = ropePermuteHeads(hf, params.nHeads, params.nKvHeads);
      const splitDim = dim;
      const itemSize = SAFETENSORS_DTYPE_BYTES[dtype];
      metaNameOf.set(hf, key);
      tensors.push({
        name: hf,
        dtype,
        shape,
        read: async () => {
          let bytes: Uint8Array;
          if (splitDim === undefined) bytes = await first.readTensor(key);
          else {
            const raw: Uint8Array[] = [];
            for (const p of parts) raw.push(await p.file.readTensor(key));
            bytes = raw.length === 1 ? raw[0]! : concatParts(raw, parts.map((p) => p.shape), splitDim, itemSize);
          }
          // Meta's interleaved pairs -> HF's rotate-half rows (transformers' `permute`).
          if (heads !== undefined) bytes = permuteRopeRows(bytes, shape[0]!, shape[1]!, heads, itemSize, true);
          return bytes;
        },
      });
    }

    const embed = tensors.find((t) => t.name === "model.embed_tokens.weight");
    if (!embed || embed.shape.length !== 2) throw new FormatError(`${dir}: no tok_embeddings.weight matrix in ${first.name}; nothing was written`);
    const vocab = embed.shape[0]!;
    if (params.vocabSize > 0 && params.vocabSize !== vocab) {
      throw new FormatError(`${paramsPath}: vocab_size ${params.vocabSize}, but tok_embeddings.weight has ${vocab} rows; nothing was written`);
    }
    if (embed.shape[1] !== params.dim) throw new FormatError(`${first.name}: tok_embeddings.weight is [${embed.shape.join(", ")}] once joined; params.json says dim ${params.dim}; nothing was written`);
    const w1 = tensors.find((t) => t.name === "model.layers.0.mlp.gate_proj.weight");
    if (!w1) throw new FormatError(`${first.name}: no layers.0.feed_forward.w1.weight (a truncated or partial checkpoint?); nothing was written`);
    const { json, config } = syntheticHfConfig(
      {
        hidden: params.dim,
        intermediate: w1.shape[0]!,
        layers: params.nLayers,
        heads: params.nHeads,
        kvHeads: params.nKvHeads,
        vocab,
        rmsEps: params.normEps,
        ropeTheta: params.ropeTheta,
        // Meta's params.json carries no context length: LLaMA 1 (norm_eps 1e-6) 2048, Llama 2 (1e-5) 4096.
        maxPositions: typeof params.raw.max_seq_len === "number" ? params.raw.max_seq_len : params.normEps < 5e-6 ? 2048 : 4096,
        tied: !tensors.some((t) => t.name === "lm_head.weight"),
        dtype: embed.dtype,
      },
      dir,
    );
    const label = (hf: string): string => {
      const m = metaNameOf.get(hf) ?? hfToMetaName(hf) ?? hf;
      return `tensor ${JSON.stringify(m)}`;
    };
    checkForeignShapes(dir, config, vocab, tensors, label, `params.json (dim ${params.dim}, n_heads ${params.nHeads}, n_kv_heads ${params.nKvHeads}, n_layers ${params.nLayers})`);

    const files = await findTokenizerFiles([dir, dirname(resolve(dir))], options.tokenizer);
    return {
      name: dir,
      config,
      configJson: json,
      tensors,
      // The shards are model-parallel slices, not a file layout to keep.
      shards: [],
      files,
      close: async () => {
        for (const f of opened) await f.close();
      },
    };
  } catch (error) {
    for (const f of opened) await f.close().catch(() => undefined);
    throw error;
  }
}
