/**
 * Loading a GGUF model's weights into kernel memory, once, checking every tensor's shape
 * against the hyper-parameters. Each tensor goes to the memory the plan (plan.ts) gives its
 * layer, read from the file straight into that memory (no second copy in JS memory).
 * Matrices keep their ggml block layout (the kernels read it directly); a matrix in a type the
 * kernels have no product for is converted at load time, a few rows at a time, to the nearest
 * type they do have (the plan names each conversion and what it costs).
 */
import { GGML_TYPES, GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import type { GgufFile, GgufTensorInfo } from "../formats/gguf/index.js";
import { formatPlanBytes, type MemoryPlan } from "./plan.js";
import { dequantize, quantize } from "../formats/quants/index.js";
import { MATMUL_TYPES, releasePanelScratch, rowBytes, type KernelMemory, type Kernels, type MatmulType } from "../kernels/index.js";
import { ModelError } from "./errors.js";
import type { LlamaHParams } from "./hparams.js";

/** A weight matrix in kernel memory: `rows` rows of `cols` inputs (ggml: ne[1] x ne[0]). */
export interface Matrix {
  addr: number;
  type: MatmulType;
  rows: number;
  cols: number;
  /** Bytes from one row to the next. */
  rowBytes: number;
}

/** Stacked experts: expert e's matrix starts at addr + e * expertBytes. */
export interface ExpertMatrices extends Matrix {
  experts: number;
  expertBytes: number;
}

export interface LayerWeights {
  attnNorm: number; // f32[nEmbd]
  wq: Matrix; // nHead*headDim x nEmbd
  wk: Matrix; // nHeadKv*headDim x nEmbd
  wv: Matrix; // nHeadKv*headDim x nEmbd
  wo: Matrix; // nEmbd x nHead*headDim
  ffnNorm: number; // f32[nEmbd]
  ffn?: { gate: Matrix; up: Matrix; down: Matrix }; // nFf x nEmbd, nFf x nEmbd, nEmbd x nFf
  moe?: { router: Matrix; gate: ExpertMatrices; up: ExpertMatrices; down: ExpertMatrices }; // router: nExpert x nEmbd
}

export interface LlamaWeights {
  /** Token embeddings, one row per token (nVocab x nEmbd), read row by row. */
  tokEmbd: { addr: number; type: GGMLType; rowBytes: number; rows: number };
  layers: LayerWeights[];
  outputNorm: number; // f32[nEmbd]
  /** lm_head (nVocab x nEmbd); the embedding matrix itself when the model ties them. */
  output: Matrix;
  /** Matrices converted at load because the kernels lack their type: "name: Q4_1 -> Q8_0". */
  conversions: string[];
  /** Which memory (index into the model's memories) holds each layer, the embeddings, the output. */
  layerMemory: number[];
  embeddingMemory: number;
  outputMemory: number;
}

/** The type a matrix is converted to when the kernels have no product for its own type. */
export function kernelTypeFor(type: GGMLType): MatmulType {
  if ((MATMUL_TYPES as readonly GGMLType[]).includes(type)) return type as MatmulType;
  // 16-bit floats keep their precision in F16; every quantized type fits in Q8_0's 8 bits.
  return type === GGMLType.BF16 || type === GGMLType.F64 ? GGMLType.F16 : GGMLType.Q8_0;
}

/** Rows converted per piece: a few MiB of float32 at a time, whatever the tensor's size. */
const CONVERT_VALUES = 1 << 20;

class WeightLoader {
  readonly conversions: string[] = [];
  /** The kernels over the memory tensors go to now (the loader walks the plan's memories in order). */
  kernels: Kernels;
  constructor(private readonly file: GgufFile, kernels: readonly Kernels[], private readonly onBytes: (n: number) => void) {
    this.kernels = kernels[0]!;
  }

  get mem(): KernelMemory {
    return this.kernels.memory;
  }

  info(name: string, shape: number[]): GgufTensorInfo {
    if (!this.file.has(name)) throw new ModelError(`${this.file.name}: missing tensor ${JSON.stringify(name)} (expected shape [${shape.join(", ")}])`);
    const info = this.file.tensor(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelError(`${this.file.name}: tensor ${JSON.stringify(name)} has shape [${info.shape.join(", ")}], but the hyper-parameters need [${shape.join(", ")}]`);
    }
    return info;
  }

  /** Reads failures (a file truncated or changed under us) name the tensor. */
  private async reading<T>(info: GgufTensorInfo, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ModelError) throw error;
      throw new ModelError(`${this.file.name}: cannot read tensor ${JSON.stringify(info.name)} (${formatPlanBytes(info.byteSize)} at offset ${info.dataOffset}): ${(error as Error).message}`, { cause: error });
    }
  }

  /** A 1-D f32 vector (norm weights), dequantized if stored otherwise. */
  async vector(name: string, n: number): Promise<number> {
    const info = this.info(name, [n]);
    const values = await this.reading(info, () => this.file.readTensorF32(info));
    this.onBytes(info.byteSize);
    return this.mem.put(values);
  }

  /** The tensor's bytes in kernel memory as `type`: read in place, or converted piece by piece. */
  async place(info: GgufTensorInfo, type: GGMLType): Promise<number> {
    if (type === info.type) {
      const addr = this.mem.alloc(info.byteSize);
      await this.reading(info, () => this.file.readTensorInto(info, this.mem.u8(addr, info.byteSize), this.onBytes));
      return addr;
    }
    this.conversions.push(`${info.name}: ${ggmlTypeName(info.type)} -> ${ggmlTypeName(type)}`);
    const cols = info.shape[0]!;
    const rows = info.elements / cols;
    const out = rowBytes(type as MatmulType, cols);
    const addr = this.mem.alloc(out * rows);
    const step = Math.max(1, Math.floor(CONVERT_VALUES / cols));
    for (let r = 0; r < rows; r += step) {
      const n = Math.min(step, rows - r);
      const raw = await this.reading(info, () => this.file.readTensorRows(info, r, n));
      this.mem.u8(addr + r * out, n * out).set(quantize(type, dequantize(info.type, raw, n * cols)));
      this.onBytes(raw.length);
    }
    return addr;
  }

  /**
   * place(), then the kernels' layout for a matrix of `rows` rows (kernels/layout.ts); `count`
   * stacked matrices (experts) each get it.
   */
  async placeMatrix(info: GgufTensorInfo, type: GGMLType, rows: number, count = 1): Promise<number> {
    const addr = await this.place(info, type);
    const { blockSize, bytesPerBlock } = GGML_TYPES[type];
    const bytes = (info.shape[0]! / blockSize) * bytesPerBlock * rows;
    for (let e = 0; e < count; e++) this.kernels.layMatrix(type, addr + e * bytes, rows, info.shape[0]!);
    return addr;
  }

  async matrix(name: string, rows: number, cols: number): Promise<Matrix> {
    const info = this.info(name, [cols, rows]);
    const type = kernelTypeFor(info.type);
    const addr = await this.placeMatrix(info, type, rows);
    return { addr, type, rows, cols, rowBytes: rowBytes(type, cols) };
  }

  async experts(name: string, rows: number, cols: number, experts: number): Promise<ExpertMatrices> {
    const info = this.info(name, [cols, rows, experts]);
    const type = kernelTypeFor(info.type);
    const addr = await this.placeMatrix(info, type, rows, experts);
    const rb = rowBytes(type, cols);
    return { addr, type, rows, cols, rowBytes: rb, experts, expertBytes: rb * rows };
  }
}

/**
 * Loads every weight of `hp`'s graph from `file` into the plan's memories (`mems[i]` is the
 * plan's memory i). onProgress(bytes done, bytes total) follows the bytes read from the file.
 */
export async function loadWeights(
  file: GgufFile, hp: LlamaHParams, kernels: readonly Kernels[], plan: MemoryPlan,
  onProgress?: (done: number, total: number) => void,
): Promise<LlamaWeights> {
  let done = 0;
  const total = file.tensors.reduce((sum, t) => sum + t.byteSize, 0);
  const load = new WeightLoader(file, kernels, (n) => onProgress?.(Math.min((done += n), total), total));
  const qDim = hp.nHead * hp.headDim;
  const kvDim = hp.nHeadKv * hp.headDim;

  const embdInfo = load.info("token_embd.weight", [hp.nEmbd, hp.nVocab]);
  // Embedding rows are dequantized one token at a time, which works for every ggml type.
  load.kernels = kernels[plan.embeddingMemory]!;
  // They lie in the kernels' layout too (grouped rows for Q4_0), so a tied output can share them.
  const tokEmbd = { addr: await load.placeMatrix(embdInfo, embdInfo.type, hp.nVocab), type: embdInfo.type, rowBytes: embdInfo.byteSize / hp.nVocab, rows: hp.nVocab };

  const layers: LayerWeights[] = [];
  for (let l = 0; l < hp.nLayer; l++) {
    const p = `blk.${l}.`;
    load.kernels = kernels[plan.layerMemory[l]!]!;
    const layer: LayerWeights = {
      attnNorm: await load.vector(p + "attn_norm.weight", hp.nEmbd),
      wq: await load.matrix(p + "attn_q.weight", qDim, hp.nEmbd),
      wk: await load.matrix(p + "attn_k.weight", kvDim, hp.nEmbd),
      wv: await load.matrix(p + "attn_v.weight", kvDim, hp.nEmbd),
      wo: await load.matrix(p + "attn_output.weight", hp.nEmbd, qDim),
      ffnNorm: await load.vector(p + "ffn_norm.weight", hp.nEmbd),
    };
    if (hp.nExpert > 0) {
      if (file.has(p + "ffn_gate.0.weight")) {
        throw new ModelError(`${file.name}: per-expert tensors (${p}ffn_gate.0.weight) are the pre-2024 Mixtral GGUF layout; re-convert the model so experts are stacked (${p}ffn_gate_exps.weight)`);
      }
      layer.moe = {
        router: await load.matrix(p + "ffn_gate_inp.weight", hp.nExpert, hp.nEmbd),
        gate: await load.experts(p + "ffn_gate_exps.weight", hp.nFf, hp.nEmbd, hp.nExpert),
        up: await load.experts(p + "ffn_up_exps.weight", hp.nFf, hp.nEmbd, hp.nExpert),
        down: await load.experts(p + "ffn_down_exps.weight", hp.nEmbd, hp.nFf, hp.nExpert),
      };
    } else {
      layer.ffn = {
        gate: await load.matrix(p + "ffn_gate.weight", hp.nFf, hp.nEmbd),
        up: await load.matrix(p + "ffn_up.weight", hp.nFf, hp.nEmbd),
        down: await load.matrix(p + "ffn_down.weight", hp.nEmbd, hp.nFf),
      };
    }
    layers.push(layer);
  }
  load.kernels = kernels[plan.outputMemory]!;
  const outputNorm = await load.vector("output_norm.weight", hp.nEmbd);
  let output: Matrix;
  if (file.has("output.weight")) {
    output = await load.matrix("output.weight", hp.nVocab, hp.nEmbd);
  } else {
    // Tied embeddings: the output projection is the embedding matrix (llama.cpp does the same);
    // the plan put the embeddings in the output's memory unless they need a converted copy.
    const type = kernelTypeFor(embdInfo.type);
    const addr = type === embdInfo.type && plan.embeddingMemory === plan.outputMemory ? tokEmbd.addr : await load.placeMatrix(embdInfo, type, hp.nVocab);
    output = { addr, type, rows: hp.nVocab, cols: hp.nEmbd, rowBytes: rowBytes(type, hp.nEmbd) };
  }
  // the buffer the panel layout kept for the next long-row matrix (kernels/layout.ts)
  releasePanelScratch();
  return {
    tokEmbd, layers, outputNorm, output, conversions: load.conversions,
    layerMemory: plan.layerMemory, embeddingMemory: plan.embeddingMemory, outputMemory: plan.outputMemory,
  };
}
