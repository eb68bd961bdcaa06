/**
 * Loading a GGUF model's weights into kernel memory, once, checking every tensor's shape
 * against the hyper-parameters. Matrices keep their ggml block layout (the kernels read it
 * directly); a matrix in a type the kernels have no product for is converted at load time
 * to the nearest type they do have (and the conversion is reported).
 */
import { GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import type { GgufFile, GgufTensorInfo } from "../formats/gguf/index.js";
import { dequantize, quantize } from "../formats/quants/index.js";
import { MATMUL_TYPES, rowBytes, type KernelMemory, type MatmulType } from "../kernels/index.js";
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
  tokEmbd: { addr: number; type: GGMLType; rowBytes: number };
  layers: LayerWeights[];
  outputNorm: number; // f32[nEmbd]
  /** lm_head (nVocab x nEmbd); the embedding matrix itself when the model ties them. */
  output: Matrix;
  /** Matrices converted at load because the kernels lack their type: "name: Q4_1 -> Q8_0". */
  conversions: string[];
}

/** The type a matrix is converted to when the kernels have no product for its own type. */
function kernelTypeFor(type: GGMLType): MatmulType {
  if ((MATMUL_TYPES as readonly GGMLType[]).includes(type)) return type as MatmulType;
  // 16-bit floats keep their precision in F16; every quantized type fits in Q8_0's 8 bits.
  return type === GGMLType.BF16 || type === GGMLType.F64 ? GGMLType.F16 : GGMLType.Q8_0;
}

class WeightLoader {
  readonly conversions: string[] = [];
  constructor(private readonly file: GgufFile, private readonly mem: KernelMemory, private readonly onTensor?: () => void) {}

  info(name: string, shape: number[]): GgufTensorInfo {
    if (!this.file.has(name)) throw new ModelError(`${this.file.name}: missing tensor ${JSON.stringify(name)} (expected shape [${shape.join(", ")}])`);
    const info = this.file.tensor(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelError(`${this.file.name}: tensor ${JSON.stringify(name)} has shape [${info.shape.join(", ")}], but the hyper-parameters need [${shape.join(", ")}]`);
    }
    return info;
  }

  /** A 1-D f32 vector (norm weights), dequantized if stored otherwise. */
  async vector(name: string, n: number): Promise<number> {
    const info = this.info(name, [n]);
    const values = await this.file.readTensorF32(info);
    this.onTensor?.();
    return this.mem.put(values);
  }

  async bytesIn(info: GgufTensorInfo, type: GGMLType): Promise<Uint8Array> {
    const raw = await this.file.readTensorBytes(info);
    if (type === info.type) return raw;
    this.conversions.push(`${info.name}: ${ggmlTypeName(info.type)} -> ${ggmlTypeName(type)}`);
    return quantize(type, dequantize(info.type, raw, info.elements));
  }

  async matrix(name: string, rows: number, cols: number): Promise<Matrix> {
    const info = this.info(name, [cols, rows]);
    const type = kernelTypeFor(info.type);
    const addr = this.mem.put(await this.bytesIn(info, type));
    this.onTensor?.();
    return { addr, type, rows, cols, rowBytes: rowBytes(type, cols) };
  }

  async experts(name: string, rows: number, cols: number, experts: number): Promise<ExpertMatrices> {
    const info = this.info(name, [cols, rows, experts]);
    const type = kernelTypeFor(info.type);
    const addr = this.mem.put(await this.bytesIn(info, type));
    this.onTensor?.();
    const rb = rowBytes(type, cols);
    return { addr, type, rows, cols, rowBytes: rb, experts, expertBytes: rb * rows };
  }
}

/** Loads every weight of `hp`'s graph from `file` into `mem`. */
export async function loadWeights(file: GgufFile, hp: LlamaHParams, mem: KernelMemory, onProgress?: (done: number, total: number) => void): Promise<LlamaWeights> {
  let done = 0;
  const total = file.tensors.length;
  const load = new WeightLoader(file, mem, () => onProgress?.(++done, total));
  const qDim = hp.nHead * hp.headDim;
  const kvDim = hp.nHeadKv * hp.headDim;

  const embdInfo = load.info("token_embd.weight", [hp.nEmbd, hp.nVocab]);
  // Embedding rows are dequantized one token at a time, which works for every ggml type.
  const tokEmbd = { addr: mem.put(await file.readTensorBytes(embdInfo)), type: embdInfo.type, rowBytes: embdInfo.byteSize / hp.nVocab };
  onProgress?.(++done, total);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < hp.nLayer; l++) {
    const p = `blk.${l}.`;
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
  const outputNorm = await load.vector("output_norm.weight", hp.nEmbd);
  let output: Matrix;
  if (file.has("output.weight")) {
    output = await load.matrix("output.weight", hp.nVocab, hp.nEmbd);
  } else {
    // Tied embeddings: the output projection is the embedding matrix (llama.cpp does the same).
    const type = kernelTypeFor(embdInfo.type);
    const addr = type === embdInfo.type ? tokEmbd.addr : mem.put(await load.bytesIn(embdInfo, type));
    output = { addr, type, rows: hp.nVocab, cols: hp.nEmbd, rowBytes: rowBytes(type, hp.nEmbd) };
  }
  return { tokEmbd, layers, outputNorm, output, conversions: load.conversions };
}

/** Bytes the weights will take in kernel memory (before any type conversion), for sizing it. */
export function weightBytes(file: GgufFile): number {
  return file.tensors.reduce((sum, t) => sum + t.byteSize + 64, 0);
}
