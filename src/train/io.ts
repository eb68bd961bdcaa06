/**
 * Model I/O for the trainer: a fresh model from a config (seeded), weights from and to GGUF F32
 * files that LlamaModel runs as they are, and the kernels the trainer computes with.
 */
import { newRowSources } from "./vocab-init.js";
import { GGMLType } from "../formats/ggml-types.js";
import { openGguf, writeGguf, type ByteInput, type GgufFile, type GgufTensorInput, type GgufValue } from "../formats/gguf/index.js";
import { InvalidArgumentError } from "../errors.js";
import { createKernels, KernelMemory, type KernelBackend, type Kernels } from "../kernels/index.js";
import { readHParams } from "../model/hparams.js";
import { tokenizerToGgufMetadata, type SentencePieceTokenizer } from "../tokenizer/index.js";
import { configFromHParams, configToGgufMetadata, type TrainModelConfig } from "./config.js";
import { TrainableLlama, type TrainModelOptions } from "./model.js";
import { initLlamaParams, llamaParamSpecs, type ParameterSet } from "./params.js";
import { TrainRng } from "./rng.js";
import { createMatmulTeam } from "./team.js";

export class TrainError extends InvalidArgumentError {}

/** Kernel memory sized for the model and micro-batch (it grows if the estimate is short). */
export async function createTrainKernels(cfg: TrainModelConfig, options: Pick<TrainModelOptions, "batch" | "seq">, backend: KernelBackend = "wasm"): Promise<Kernels> {
  const params = llamaParamSpecs(cfg).reduce((n, s) => n + s.rows * s.cols, 0);
  const N = options.batch * options.seq;
  const wide = Math.max(cfg.nEmbd, cfg.nFf, cfg.nHead * cfg.headDim);
  // values + grads + cached transposes, per-layer activations, head chunk and scratch.
  const floats = 3 * params + cfg.nLayer * N * (6 * wide + 6 * cfg.nEmbd) + 4 * N * wide + 2 * cfg.nVocab * cfg.nEmbd + 64 * cfg.nVocab;
  const mem = KernelMemory.create({ initialBytes: 4 * floats + (16 << 20) });
  return createKernels(mem, backend);
}

/** A model with deterministic random weights (initLlamaParams) from `seed`. */
export async function initModel(cfg: TrainModelConfig, options: TrainModelOptions, seed: number, load: Omit<LoadModelOptions, "nVocab"> = {}): Promise<TrainableLlama> {
  const k = await createTrainKernels(cfg, options, load.backend ?? "wasm");
  const rng = new TrainRng(seed);
  const engine = options.engine ?? (load.threads && load.threads > 1 ? await createMatmulTeam(k, load.threads) : undefined);
  const model = new TrainableLlama(k, cfg, { ...options, engine }, rng);
  initLlamaParams(model.base, cfg, rng);
  return model;
}

/** The trainable config of a GGUF model (tied when it has no output.weight). */
export function configFromGguf(file: GgufFile): TrainModelConfig {
  return configFromHParams(readHParams(file.metadata), !file.has("output.weight"));
}

export interface LoadModelOptions {
  /**
   * Grow the vocabulary to this many ids (a tokenizer extended with Chinese pieces, as upstream's
   * resize_token_embeddings): the new rows of the embeddings and lm_head start at the mean of the
   * old rows, or, given `pieces`, at the mean of the rows of the old pieces each new piece is
   * made of (vocab-init.ts).
   */
  nVocab?: number;
  /** The grown vocabulary's pieces, id order (the old ones first, as merge-tokenizer writes them). */
  pieces?: readonly string[];
  backend?: KernelBackend;
  /** Threads for the matrix products (createMatmulTeam; default 1). */
  threads?: number;
}

/** Loads a GGUF model (any tensor type; dequantized to F32) into a trainable model. */
export async function loadModel(input: ByteInput | GgufFile, options: TrainModelOptions, seed: number, load: LoadModelOptions = {}): Promise<{ model: TrainableLlama; metadata: Record<string, GgufValue> }> {
  const file = typeof input === "object" && "tensors" in input && "metadata" in input ? (input as GgufFile) : await openGguf(input as ByteInput);
  try {
    const fileCfg = configFromGguf(file);
    if (load.nVocab !== undefined && load.nVocab < fileCfg.nVocab) throw new TrainError(`${file.name}: cannot shrink the vocabulary from ${fileCfg.nVocab} to ${load.nVocab}`);
    const cfg = { ...fileCfg, nVocab: load.nVocab ?? fileCfg.nVocab };
    const k = await createTrainKernels(cfg, options, load.backend ?? "wasm");
    const engine = options.engine ?? (load.threads && load.threads > 1 ? await createMatmulTeam(k, load.threads) : undefined);
    const model = new TrainableLlama(k, cfg, { ...options, engine }, new TrainRng(seed));
    await loadWeightsInto(model.base, file, load.pieces);
    return { model, metadata: file.metadata };
  } finally {
    await file.close();
  }
}

/** Fills a parameter set from a GGUF file's tensors of the same names and shapes. */
export async function loadWeightsInto(set: ParameterSet, file: GgufFile, pieces?: readonly string[]): Promise<void> {
  for (const p of set.params) {
    if (!file.has(p.name)) throw new TrainError(`${file.name}: missing tensor ${JSON.stringify(p.name)}`);
    const info = file.tensor(p.name);
    const want = p.rows === 1 ? [p.cols] : [p.cols, p.rows];
    const grows = p.kind === "embedding" && info.shape.length === 2 && info.shape[0] === p.cols && info.shape[1]! < p.rows;
    if (!grows && (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i]))) {
      throw new TrainError(`${file.name}: tensor ${p.name} has shape [${info.shape.join(", ")}], the config needs [${want.join(", ")}]`);
    }
    const values = await file.readTensorF32(info);
    p.value.data.set(values);
    if (grows) {
      // New vocabulary rows start at the mean of the old pieces they are made of, else of all old rows.
      const oldRows = info.shape[1]!;
      const mean = new Float64Array(p.cols);
      for (let r = 0; r < oldRows; r++) for (let j = 0; j < p.cols; j++) mean[j] += values[r * p.cols + j]! / oldRows;
      const sources = pieces ? newRowSources(pieces, oldRows) : () => [];
      const data = p.value.data;
      for (let r = oldRows; r < p.rows; r++) {
        const from = sources(r);
        for (let j = 0; j < p.cols; j++) {
          let sum = 0;
          for (const s of from) sum += values[s * p.cols + j]!;
          data[r * p.cols + j] = from.length > 0 ? sum / from.length : mean[j]!;
        }
      }
    }
  }
}

/** GGUF tensors (F32) of a parameter set: ne[0] = cols first, vectors 1-D. */
export function ggufTensors(set: ParameterSet, transform?: (name: string, values: Float32Array) => Float32Array): GgufTensorInput[] {
  return set.params.map((p) => ({
    name: p.name,
    type: GGMLType.F32,
    shape: p.rows === 1 ? [p.cols] : [p.cols, p.rows],
    data: () => new Uint8Array((transform ? transform(p.name, p.value.data.slice()) : p.value.data.slice()).buffer),
  }));
}

/** W + (alpha / r) B A for a weight with an adapter (GGUF row order, as trained). */
export function mergedWeight(model: TrainableLlama, name: string, values: Float32Array): Float32Array {
  const lora = model.lora;
  const settings = model.loraSettings;
  if (!lora || !settings || !name.endsWith(".weight")) return values;
  const stem = name.slice(0, -".weight".length);
  const a = lora.byName.get(`${stem}.lora_a`);
  const b = lora.byName.get(`${stem}.lora_b`);
  if (!a || !b) return values;
  const s = settings.alpha / settings.rank;
  const r = settings.rank;
  const rows = b.rows, cols = a.cols;
  const A = a.value.data, B = b.value.data;
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < r; k++) {
      const bik = s * B[i * r + k]!;
      if (bik === 0) continue;
      for (let j = 0; j < cols; j++) values[i * cols + j] += bik * A[k * cols + j]!;
    }
  }
  return values;
}

export interface SaveGgufOptions {
  name?: string;
  tokenizer?: SentencePieceTokenizer;
  /** Extra metadata (e.g. training notes); overrides nothing the format needs. */
  metadata?: Record<string, GgufValue>;
  overwrite?: boolean;
  /** Write W + s B A for the adapted weights (a merged model that runs without the adapter). */
  mergeLora?: boolean;
}

/** Writes the model as an F32 GGUF (atomically) that LlamaModel.load and llama.cpp read. */
export async function saveModelGguf(path: string, model: TrainableLlama, options: SaveGgufOptions = {}): Promise<void> {
  const metadata: Record<string, GgufValue> = {
    ...options.metadata,
    ...configToGgufMetadata(model.cfg, options.name ?? "zh-llama-trained"),
    ...(options.tokenizer ? tokenizerToGgufMetadata(options.tokenizer) : {}),
  };
  await writeGguf(path, { metadata, tensors: ggufTensors(model.base, options.mergeLora ? (name, v) => mergedWeight(model, name, v) : undefined) }, { overwrite: options.overwrite ?? true });
}
