/**
 * Requantizing a GGUF model, tensor by tensor, following llama.cpp's `llama-quantize`
 * conventions (llama_tensor_get_type in llama.cpp's llama-quant.cpp, read for behaviour):
 *
 * - 1-D tensors (norm weights, biases) stay F32; so does the MoE router `ffn_gate_inp`.
 * - The output projection (or the token embedding when it doubles as output) gets Q6_K when
 *   the target is a 4/5-bit or k-quant type, because the logits are sensitive to it; Q8_0
 *   when its rows are not a multiple of 256; `keepOutputF16` keeps it F16 instead.
 * - A tensor whose rows are not a whole number of the target's blocks falls back to a type
 *   that fits (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, ...), as llama.cpp does.
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

export interface QuantizeOptions {
  /** Keep the output projection in F16 (llama-quantize --leave-output-tensor keeps it as is). */
  keepOutputF16?: boolean;
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
  let type = target;
  if (isOutput) {
    if (options.keepOutputF16) return GGMLType.F16;
    if (!FLOAT_TYPES.has(target) && target !== GGMLType.Q8_0) type = info.shape[0]! % 256 === 0 ? GGMLType.Q6_K : GGMLType.Q8_0;
  }
  while (info.shape[0]! % GGML_TYPES[type].blockSize !== 0) {
    const next = ROW_FALLBACK[type] ?? (info.shape[0]! % 32 === 0 ? GGMLType.Q8_0 : GGMLType.F16);
    if (next === type) break;
    type = next;
  }
  return type;
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
  inputBytes: number;
  outputBytes: number;
}

/** Quantizes the model at `input` to `target`, writing `outPath` atomically. */
export async function quantizeGguf(input: ByteInput, outPath: string, target: GGMLType, options: QuantizeOptions = {}): Promise<QuantizeReport> {
  if (!canQuantize(target)) throw new UnsupportedTensorTypeError(`cannot quantize to ${ggmlTypeName(target)}`);
  const file = await openGguf(input);
  try {
    const plan = file.tensors.map((info) => {
      if (!canDequantize(info.type)) {
        throw new UnsupportedTensorTypeError(`${file.name}: tensor ${info.name} is ${ggmlTypeName(info.type)}, which zh-llama cannot dequantize`);
      }
      return { info, type: chooseTensorType(info, target, isOutputTensor(info.name, file), options) };
    });
    for (const { info, type } of plan) {
      if (!canQuantize(type) && type !== info.type) throw new UnsupportedTensorTypeError(`tensor ${info.name} would need ${ggmlTypeName(type)}, which zh-llama cannot quantize to`);
    }
    const metadata = { ...file.metadata };
    const metadataTypes = { ...file.metadataTypes };
    for (const key of Object.keys(metadata)) {
      if (key.startsWith("split.")) {
        delete metadata[key];
        delete metadataTypes[key];
      }
    }
    const fileType = FILE_TYPE[target];
    if (fileType === undefined) throw new InvalidArgumentError(`no llama.cpp file type for ${ggmlTypeName(target)}`);
    metadata["general.file_type"] = fileType;
    metadataTypes["general.file_type"] = GgufValueType.UINT32;
    metadata["general.quantization_version"] = 2;
    metadataTypes["general.quantization_version"] = GgufValueType.UINT32;
    const report: QuantizeReport = { tensors: [], inputBytes: file.fileSize, outputBytes: 0 };
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
