/**
 * Requantizing a GGUF model, tensor by tensor, following llama.cpp's `llama-quantize`
 * conventions (llama_tensor_get_type in llama.cpp's llama-quant.cpp, read for behaviour):
 *
 * - 1-D tensors (norm weights, biases) stay F32; so does the MoE router `ffn_gate_inp`.
 * - The output projection (or the token embedding when it doubles as output) gets Q6_K when
 *   the target is a 4/5-bit or k-quant type, because the logits are sensitive to it; Q8_0
 *   when its rows are not a multiple of 256; `keepOutputF16` keeps it F16 instead.
 * - A tensor whose rows are not a whole number of the target's blocks falls back to a type
 *   that fits (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, ...), as llama.cpp does; each fallback
 *   is reported (onFallback, QuantizeReport.fallbacks).
 * - The llama-quantize mixes (Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M: QUANT_MIXES) give some
 *   tensors more bits: attn_v and ffn_down in the layers use_more_bits picks (the first and last
 *   eighth and every third between), attn_output, and the experts' attention in an 8-expert
 *   model, by llama_tensor_get_type's rules (chooseMixType).
 * - Requantizing an already-quantized tensor is refused when allowRequantize is false (the
 *   CLI's default, as llama-quantize's without --allow-requantize).
 *
 * Tensors stream one at a time in row slices, read, converted and written a slice at a time:
 * memory stays near one slice (about 4 MB of float32), whatever the tensor's size (a 13B's
 * token embedding, a Mixtral expert stack of several GB, a tensor past 4 GiB).
 */
import { InvalidArgumentError } from "../errors.js";
import { UnsupportedTensorTypeError } from "../formats/errors.js";
import { GGMLType, GGML_TYPES, ggmlByteSize, ggmlTypeName } from "../formats/ggml-types.js";
import { openGguf, writeGguf, type GgufFile, type GgufTensorInfo, GgufValueType, type ByteInput } from "../formats/gguf/index.js";
import { canDequantize, canQuantize, dequantize, quantize } from "../formats/quants/index.js";

/** llama.cpp's `llama_ftype` ids, stored as general.file_type. */
export const FILE_TYPE: Partial<Record<GGMLType, number>> = {
  [GGMLType.F32]: 0,
  [GGMLType.F16]: 1,
  [GGMLType.Q4_0]: 2,
  [GGMLType.Q4_1]: 3,
  [GGMLType.Q8_0]: 7,
  [GGMLType.Q5_0]: 8,
  [GGMLType.Q5_1]: 9,
  [GGMLType.Q2_K]: 10,
  [GGMLType.Q3_K]: 11, // Q3_K_S
  [GGMLType.Q4_K]: 14, // Q4_K_S
  [GGMLType.Q5_K]: 16, // Q5_K_S
  [GGMLType.Q6_K]: 18,
  [GGMLType.IQ4_NL]: 25,
  [GGMLType.IQ4_XS]: 30,
  [GGMLType.BF16]: 32,
};

/** Where a k-quant cannot tile a row, the type llama.cpp uses instead. */
const ROW_FALLBACK: Partial<Record<GGMLType, GGMLType>> = {
  [GGMLType.Q2_K]: GGMLType.Q4_0,
  [GGMLType.Q3_K]: GGMLType.Q4_0,
  [GGMLType.Q4_K]: GGMLType.Q5_0,
  [GGMLType.Q5_K]: GGMLType.Q5_1,
  [GGMLType.Q6_K]: GGMLType.Q8_0,
  [GGMLType.IQ4_XS]: GGMLType.IQ4_NL,
};

const FLOAT_TYPES = new Set([GGMLType.F32, GGMLType.F16, GGMLType.BF16]);

/**
 * llama-quantize's type mixes: the llama_ftype stored as general.file_type and the type most
 * weights get; chooseMixType gives the exceptions.
 */
export const QUANT_MIXES = {
  Q2_K: { ftype: 10, base: GGMLType.Q2_K },
  Q3_K_S: { ftype: 11, base: GGMLType.Q3_K },
  Q3_K_M: { ftype: 12, base: GGMLType.Q3_K },
  Q3_K_L: { ftype: 13, base: GGMLType.Q3_K },
  Q4_K_S: { ftype: 14, base: GGMLType.Q4_K },
  Q4_K_M: { ftype: 15, base: GGMLType.Q4_K },
  Q5_K_S: { ftype: 16, base: GGMLType.Q5_K },
  Q5_K_M: { ftype: 17, base: GGMLType.Q5_K },
} as const satisfies Record<string, { ftype: number; base: GGMLType }>;
export type QuantMix = keyof typeof QUANT_MIXES;

export function isQuantMix(name: string): name is QuantMix {
  return Object.hasOwn(QUANT_MIXES, name);
}

/** What chooseMixType needs to know about the model. */
export interface MixContext {
  /** block_count */
  layers: number;
  /** head_count / head_count_kv */
  gqa: number;
  /** expert_count (0 or 1: dense) */
  experts: number;
  /** attn_v tensors in the file */
  attnV: number;
  /** llama.cpp's LLM_TYPE_70B: 80 layers with grouped-query attention */
  is70B: boolean;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between. */
export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

function layerOf(name: string): number | undefined {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The type a 2-D weight gets in `mix` before any row fallback, by llama_tensor_get_type's rules
 * for LLaMA-family models. `iAttnV` counts the attn_v tensors before this one.
 */
export function chooseMixType(name: string, rowLength: number, mix: QuantMix, ctx: MixContext, isOutput: boolean, iAttnV = layerOf(name) ?? 0): GGMLType {
  const base: GGMLType = QUANT_MIXES[mix].base;
  const K = GGMLType;
  if (isOutput) return rowLength % GGML_TYPES[base].blockSize !== 0 ? K.Q8_0 : K.Q6_K;
  if (name === "token_embd.weight") return base;
  if (name.includes("attn_v.weight")) {
    let type: GGMLType = base;
    if (mix === "Q2_K") type = ctx.gqa >= 4 ? K.Q4_K : K.Q3_K;
    else if (mix === "Q3_K_M") type = iAttnV < 2 ? K.Q5_K : K.Q4_K;
    else if (mix === "Q3_K_L") type = K.Q5_K;
    else if ((mix === "Q4_K_M" || mix === "Q5_K_M") && useMoreBits(iAttnV, ctx.attnV)) type = K.Q6_K;
    else if (mix === "Q4_K_S" && iAttnV < 4) type = K.Q5_K;
    if (ctx.is70B && (type === K.Q3_K || type === K.Q4_K)) type = K.Q5_K;
    if (ctx.experts === 8) type = K.Q8_0;
    return type;
  }
  if (name.includes("attn_k.weight")) return ctx.experts === 8 ? K.Q8_0 : base;
  if (name.includes("ffn_down")) {
    const i = layerOf(name) ?? 0;
    const n = ctx.layers;
    if (mix === "Q2_K") return K.Q3_K;
    if (mix === "Q3_K_M") return i < Math.trunc(n / 16) ? K.Q5_K : K.Q4_K;
    if (mix === "Q3_K_L") return K.Q5_K;
    if ((mix === "Q4_K_M" || mix === "Q5_K_M") && useMoreBits(i, n)) return K.Q6_K;
    if (mix === "Q4_K_S" && i < Math.trunc(n / 8)) return K.Q5_K;
    return base;
  }
  if (name.includes("attn_output.weight")) {
    if (ctx.experts === 8) return mix === "Q2_K" || mix === "Q3_K_S" || mix === "Q3_K_M" || mix === "Q4_K_S" || mix === "Q4_K_M" ? K.Q5_K : base;
    if (mix === "Q2_K") return K.Q3_K;
    if (mix === "Q3_K_M") return K.Q4_K;
    if (mix === "Q3_K_L") return K.Q5_K;
  }
  return base;
}

/** The model facts chooseMixType needs, from the GGUF header. */
export function mixContext(file: GgufFile): MixContext {
  const arch = String(file.metadata["general.architecture"] ?? "llama");
  const num = (key: string, fallback: number) => {
    const v = file.metadata[`${arch}.${key}`];
    return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : fallback;
  };
  const layers = num("block_count", 1);
  const heads = num("attention.head_count", 1);
  const kvHeads = num("attention.head_count_kv", heads);
  return {
    layers,
    gqa: kvHeads > 0 ? heads / kvHeads : 1,
    experts: num("expert_count", 0),
    attnV: file.tensors.filter((t) => t.name.includes("attn_v.weight")).length,
    is70B: arch === "llama" && layers === 80 && heads !== kvHeads,
  };
}

/** A weight whose rows the wanted type cannot tile, and the type it got instead. */
export interface QuantFallback {
  name: string;
  rowLength: number;
  wanted: string;
  used: string;
}

/** `wanted`, or the type llama.cpp falls back to when a row is not a whole number of its blocks. */
export function rowFallback(rowLength: number, wanted: GGMLType): GGMLType {
  let type = wanted;
  while (rowLength % GGML_TYPES[type].blockSize !== 0) {
    const next = ROW_FALLBACK[type] ?? (rowLength % 32 === 0 ? GGMLType.Q8_0 : GGMLType.F16);
    if (next === type) break;
    type = next;
  }
  return type;
}

export interface QuantizeOptions {
  /** Keep the output projection in F16. */
  keepOutputF16?: boolean;
  /** Leave output.weight in the type it has (llama-quantize --leave-output-tensor). */
  leaveOutputTensor?: boolean;
  /**
   * Requantize tensors that are already quantized (Q4_0 -> Q4_K ...). Default true in the
   * library; the CLI passes false unless --allow-requantize, as llama-quantize does, since each
   * requantization adds its error to the first one's.
   */
  allowRequantize?: boolean;
  /** Called once per weight that falls back to another type (quantizeGguf: before anything is written). */
  onFallback?: (fallback: QuantFallback) => void;
  /** Replace the output file if it exists. */
  overwrite?: boolean;
  /** Called as each tensor is written. */
  onProgress?: (done: number, total: number, tensor: string) => void;
}

function isOutputTensor(name: string, file: GgufFile): boolean {
  return name === "output.weight" || (name === "token_embd.weight" && !file.has("output.weight"));
}

/** The type `info` gets when a model is quantized to `target`. */
export function chooseTensorType(info: Pick<GgufTensorInfo, "name" | "shape">, target: GGMLType, isOutput: boolean, options: QuantizeOptions = {}): GGMLType {
  if (info.shape.length < 2 || info.name.includes("ffn_gate_inp")) return GGMLType.F32;
  return rowFallback(info.shape[0]!, preferredType(info, target, isOutput, options));
}

function preferredType(info: Pick<GgufTensorInfo, "name" | "shape">, target: GGMLType, isOutput: boolean, options: QuantizeOptions): GGMLType {
  if (isOutput) {
    if (options.keepOutputF16) return GGMLType.F16;
    if (!FLOAT_TYPES.has(target) && target !== GGMLType.Q8_0) return info.shape[0]! % 256 === 0 ? GGMLType.Q6_K : GGMLType.Q8_0;
  }
  return target;
}

/** Each tensor's type when `file` is quantized to `target`, with the fallbacks taken. */
export function planQuantization(file: GgufFile, target: GGMLType | QuantMix, options: QuantizeOptions = {}): { plan: Array<{ info: GgufTensorInfo; type: GGMLType }>; fallbacks: QuantFallback[] } {
  const mix = typeof target === "string" ? target : undefined;
  const ctx = mix ? mixContext(file) : undefined;
  const fallbacks: QuantFallback[] = [];
  let iAttnV = 0;
  const plan = file.tensors.map((info) => {
    const isOutput = isOutputTensor(info.name, file);
    if (options.leaveOutputTensor && info.name === "output.weight") return { info, type: info.type };
    if (info.shape.length < 2 || info.name.includes("ffn_gate_inp") || info.name.endsWith("_norm.weight")) return { info, type: GGMLType.F32 };
    let wanted: GGMLType;
    if (mix) {
      wanted = isOutput && options.keepOutputF16 ? GGMLType.F16 : chooseMixType(info.name, info.shape[0]!, mix, ctx!, isOutput, iAttnV);
      if (info.name.includes("attn_v.weight")) iAttnV++;
    } else {
      wanted = preferredType(info, target as GGMLType, isOutput, options);
    }
    const type = rowFallback(info.shape[0]!, wanted);
    if (type !== wanted) {
      const fallback = { name: info.name, rowLength: info.shape[0]!, wanted: ggmlTypeName(wanted), used: ggmlTypeName(type) };
      fallbacks.push(fallback);
    }
    return { info, type };
  });
  return { plan, fallbacks };
}

/** Rows are converted in slices of about this many values. */
const SLICE_VALUES = 1 << 20;

/**
 * A tensor converted to `type` as consecutive row slices of about `sliceValues` values (the
 * bytes as stored when the type stays): never the whole tensor in one buffer.
 */
export async function* convertTensorSlices(file: GgufFile, info: GgufTensorInfo, type: GGMLType, sliceValues = SLICE_VALUES): AsyncGenerator<Uint8Array> {
  const rowLength = info.shape[0]!;
  const rows = info.elements / rowLength;
  const outRowBytes = Number(ggmlByteSize(type, BigInt(rowLength)));
  const rowsPerSlice = Math.max(1, Math.floor(sliceValues / rowLength));
  for (let row = 0; row < rows; row += rowsPerSlice) {
    const count = Math.min(rowsPerSlice, rows - row);
    const raw = await file.readTensorRows(info, row, count);
    if (type === info.type) {
      yield raw;
      continue;
    }
    yield quantize(type, dequantize(info.type, raw, count * rowLength), new Uint8Array(count * outRowBytes));
  }
}

export interface QuantizeReport {
  tensors: Array<{ name: string; from: string; to: string; bytes: number }>;
  /** Weights whose rows the wanted type could not tile. */
  fallbacks: QuantFallback[];
  inputBytes: number;
  outputBytes: number;
}

/**
 * Quantizes the model at `input` to `target` (a ggml type: every weight in it, by the rules
 * above; or a llama-quantize mix such as "Q4_K_M"), writing `outPath` atomically.
 */
export async function quantizeGguf(input: ByteInput, outPath: string, target: GGMLType | QuantMix, options: QuantizeOptions = {}): Promise<QuantizeReport> {
  const mix = typeof target === "string" ? target : undefined;
  if (mix !== undefined && !Object.hasOwn(QUANT_MIXES, mix)) throw new InvalidArgumentError(`unknown quantization mix ${JSON.stringify(mix)}; choose one of ${Object.keys(QUANT_MIXES).join(", ")}`);
  if (mix === undefined && !canQuantize(target as GGMLType)) throw new UnsupportedTensorTypeError(`cannot quantize to ${ggmlTypeName(target as GGMLType)}`);
  const file = await openGguf(input);
  try {
    for (const info of file.tensors) {
      if (!canDequantize(info.type)) {
        throw new UnsupportedTensorTypeError(`${file.name}: tensor ${info.name} is ${ggmlTypeName(info.type)}, which zh-llama cannot dequantize`);
      }
    }
    const { plan, fallbacks } = planQuantization(file, target, options);
    for (const { info, type } of plan) {
      if (!canQuantize(type) && type !== info.type) throw new UnsupportedTensorTypeError(`tensor ${info.name} would need ${ggmlTypeName(type)}, which zh-llama cannot quantize to`);
    }
    if (options.allowRequantize === false) {
      const requantized = plan.find(({ info, type }) => type !== info.type && !FLOAT_TYPES.has(info.type) && !FLOAT_TYPES.has(type));
      if (requantized) {
        throw new InvalidArgumentError(
          `${file.name} is already quantized (${requantized.info.name} is ${ggmlTypeName(requantized.info.type)}); requantizing adds a second rounding error to the first: quantize from the F16/F32 model, or pass --allow-requantize`,
        );
      }
    }
    for (const fallback of fallbacks) options.onFallback?.(fallback);
    const metadata = { ...file.metadata };
    const metadataTypes = { ...file.metadataTypes };
    for (const key of Object.keys(metadata)) {
      if (key.startsWith("split.")) {
        delete metadata[key];
        delete metadataTypes[key];
      }
    }
    const fileType = mix ? QUANT_MIXES[mix].ftype : FILE_TYPE[target as GGMLType];
    if (fileType === undefined) throw new InvalidArgumentError(`no llama.cpp file type for ${ggmlTypeName(target as GGMLType)}`);
    metadata["general.file_type"] = fileType;
    metadataTypes["general.file_type"] = GgufValueType.UINT32;
    metadata["general.quantization_version"] = 2;
    metadataTypes["general.quantization_version"] = GgufValueType.UINT32;
    const report: QuantizeReport = { tensors: [], fallbacks, inputBytes: file.fileSize, outputBytes: 0 };
    let done = 0;
    await writeGguf(
      outPath,
      {
        metadata,
        metadataTypes,
        tensors: plan.map(({ info, type }) => ({
          name: info.name,
          type,
          shape: info.shape,
          data: async function* () {
            let bytes = 0;
            for await (const slice of convertTensorSlices(file, info, type)) {
              bytes += slice.length;
              yield slice;
            }
            report.tensors.push({ name: info.name, from: ggmlTypeName(info.type), to: ggmlTypeName(type), bytes });
            options.onProgress?.(++done, plan.length, info.name);
          },
        })),
      },
      { overwrite: options.overwrite },
    );
    const { stat } = await import("node:fs/promises");
    report.outputBytes = (await stat(outPath)).size;
    return report;
  } finally {
    await file.close();
  }
}
