/**
 * ggml tensor types <-> float32: dequantize any supported type, quantize to the types ggml has
 * a deterministic reference quantizer for, bit for bit as ggml does (ggml-quants.c
 * dequantize_row_* and quantize_row_*_ref). One file per format, each starting with its block
 * layout; this file is the dispatch table and the size checks.
 *
 * How the float32 arithmetic is replayed is explained in common.ts. Float32Array views are
 * read and written in the host's byte order, which is little-endian on every JS engine in use,
 * as GGUF is.
 */
import { GGML_TYPES, GGMLType, ggmlTypeName, isGGMLType } from "../ggml-types.js";
import { FormatError, UnsupportedTensorTypeError } from "../errors.js";
import { InvalidArgumentError } from "../../errors.js";
import type { BlockDequantizer, BlockQuantizer } from "./common.js";
import { dequantizeBF16, dequantizeF16, dequantizeF32, quantizeBF16, quantizeF16, quantizeF32 } from "./floats.js";
import { dequantizeQ4_0, quantizeQ4_0 } from "./q4_0.js";
import { dequantizeQ4_1, quantizeQ4_1 } from "./q4_1.js";
import { dequantizeQ5_0, quantizeQ5_0 } from "./q5_0.js";
import { dequantizeQ5_1, quantizeQ5_1 } from "./q5_1.js";
import { dequantizeQ8_0, quantizeQ8_0 } from "./q8_0.js";
import { dequantizeQ2_K, quantizeQ2_K } from "./q2_k.js";
import { dequantizeQ3_K, quantizeQ3_K } from "./q3_k.js";
import { dequantizeQ4_K, quantizeQ4_K } from "./q4_k.js";
import { dequantizeQ5_K, quantizeQ5_K } from "./q5_k.js";
import { dequantizeQ6_K, quantizeQ6_K } from "./q6_k.js";
import { dequantizeQ8_K, quantizeQ8_K } from "./q8_k.js";
import { dequantizeIQ4_NL, dequantizeIQ4_XS, quantizeIQ4_NL, quantizeIQ4_XS } from "./iq4.js";
import { dequantizeTQ1_0, dequantizeTQ2_0, quantizeTQ1_0, quantizeTQ2_0 } from "./tq.js";
import { dequantizeMXFP4, quantizeMXFP4 } from "./mxfp4.js";

export { f32ToF16, f16ToF32, f32ToBf16, bf16ToF32 } from "./half.js";

const DEQUANTIZERS: Partial<Record<GGMLType, BlockDequantizer>> = {
  [GGMLType.F32]: dequantizeF32,
  [GGMLType.F16]: dequantizeF16,
  [GGMLType.BF16]: dequantizeBF16,
  [GGMLType.Q4_0]: dequantizeQ4_0,
  [GGMLType.Q4_1]: dequantizeQ4_1,
  [GGMLType.Q5_0]: dequantizeQ5_0,
  [GGMLType.Q5_1]: dequantizeQ5_1,
  [GGMLType.Q8_0]: dequantizeQ8_0,
  [GGMLType.Q2_K]: dequantizeQ2_K,
  [GGMLType.Q3_K]: dequantizeQ3_K,
  [GGMLType.Q4_K]: dequantizeQ4_K,
  [GGMLType.Q5_K]: dequantizeQ5_K,
  [GGMLType.Q6_K]: dequantizeQ6_K,
  [GGMLType.Q8_K]: dequantizeQ8_K,
  [GGMLType.IQ4_NL]: dequantizeIQ4_NL,
  [GGMLType.IQ4_XS]: dequantizeIQ4_XS,
  [GGMLType.TQ1_0]: dequantizeTQ1_0,
  [GGMLType.TQ2_0]: dequantizeTQ2_0,
  [GGMLType.MXFP4]: dequantizeMXFP4,
};

const QUANTIZERS: Partial<Record<GGMLType, BlockQuantizer>> = {
  [GGMLType.F32]: quantizeF32,
  [GGMLType.F16]: quantizeF16,
  [GGMLType.BF16]: quantizeBF16,
  [GGMLType.Q4_0]: quantizeQ4_0,
  [GGMLType.Q4_1]: quantizeQ4_1,
  [GGMLType.Q5_0]: quantizeQ5_0,
  [GGMLType.Q5_1]: quantizeQ5_1,
  [GGMLType.Q8_0]: quantizeQ8_0,
  [GGMLType.Q2_K]: quantizeQ2_K,
  [GGMLType.Q3_K]: quantizeQ3_K,
  [GGMLType.Q4_K]: quantizeQ4_K,
  [GGMLType.Q5_K]: quantizeQ5_K,
  [GGMLType.Q6_K]: quantizeQ6_K,
  [GGMLType.Q8_K]: quantizeQ8_K,
  [GGMLType.IQ4_NL]: quantizeIQ4_NL,
  [GGMLType.IQ4_XS]: quantizeIQ4_XS,
  [GGMLType.TQ1_0]: quantizeTQ1_0,
  [GGMLType.TQ2_0]: quantizeTQ2_0,
  [GGMLType.MXFP4]: quantizeMXFP4,
};

function supported(table: Partial<Record<GGMLType, unknown>>): readonly GGMLType[] {
  return Object.freeze(Object.keys(table).map((k) => Number(k) as GGMLType));
}

/** Types `dequantize` accepts. */
export const DEQUANTIZE_TYPES: readonly GGMLType[] = supported(DEQUANTIZERS);
/** Types `quantize` produces. */
export const QUANTIZE_TYPES: readonly GGMLType[] = supported(QUANTIZERS);

export function canDequantize(type: GGMLType): boolean {
  return isGGMLType(type) && DEQUANTIZERS[type] !== undefined;
}

export function canQuantize(type: GGMLType): boolean {
  return isGGMLType(type) && QUANTIZERS[type] !== undefined;
}

function typeLabel(type: number): string {
  return isGGMLType(type) ? ggmlTypeName(type) : `unknown ggml type id ${type}`;
}

/**
 * Decode `count` values of `type` from `src` (exactly the bytes of count / blockSize blocks)
 * into float32. Writes to `out` when given (at least `count` long) and returns the `count`
 * values; allocates otherwise. Identical, bit for bit, to ggml's dequantize_row_<type>.
 */
export function dequantize(type: GGMLType, src: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const run = isGGMLType(type) ? DEQUANTIZERS[type] : undefined;
  if (run === undefined) throw new UnsupportedTensorTypeError(`cannot dequantize tensor type ${typeLabel(type)}`);
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  const name = ggmlTypeName(type);
  if (!Number.isSafeInteger(count) || count < 0 || count % blockSize !== 0) {
    throw new FormatError(`${name}: ${count} values is not a whole number of ${blockSize}-value blocks`);
  }
  const nBlocks = count / blockSize;
  if (src.length !== nBlocks * bytesPerBlock) {
    throw new FormatError(`${name}: ${count} values take ${nBlocks * bytesPerBlock} bytes, got ${src.length}`);
  }
  if (out !== undefined && out.length < count) {
    throw new InvalidArgumentError(`${name}: output holds ${out.length} floats, ${count} needed`);
  }
  const y = out === undefined ? new Float32Array(count) : out.length === count ? out : out.subarray(0, count);
  run(src, y, nBlocks);
  return y;
}

/**
 * Encode float32 values (a whole number of blocks) as `type`, exactly as ggml's reference
 * quantizer quantize_row_<type>_ref (F16/BF16: ggml_fp32_to_fp16_row / _bf16_row_ref).
 * Writes to `out` when given (at least the encoded size) and returns the encoded bytes.
 */
export function quantize(type: GGMLType, src: Float32Array, out?: Uint8Array): Uint8Array {
  const run = isGGMLType(type) ? QUANTIZERS[type] : undefined;
  if (run === undefined) throw new UnsupportedTensorTypeError(`cannot quantize to tensor type ${typeLabel(type)}`);
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  const name = ggmlTypeName(type);
  if (src.length % blockSize !== 0) {
    throw new FormatError(`${name}: ${src.length} values is not a whole number of ${blockSize}-value blocks`);
  }
  const nBlocks = src.length / blockSize;
  const bytes = nBlocks * bytesPerBlock;
  if (out !== undefined && out.length < bytes) {
    throw new InvalidArgumentError(`${name}: output holds ${out.length} bytes, ${bytes} needed`);
  }
  const q = out === undefined ? new Uint8Array(bytes) : out.length === bytes ? out : out.subarray(0, bytes);
  run(src, q, nBlocks);
  return q;
}
