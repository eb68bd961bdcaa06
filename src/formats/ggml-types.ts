/**
 * ggml tensor types: the wire ids GGUF stores, and each type's block layout, declared once.
 *
 * A quantized tensor is a sequence of blocks; each block packs `blockSize` consecutive values
 * of a row into `bytesPerBlock` bytes. Rows must be a whole number of blocks. The byte layouts
 * inside each block are drawn next to the code that reads them (src/formats/quants/).
 * Ids and sizes follow ggml's `enum ggml_type` and `ggml-common.h`; ids that ggml retired
 * (4, 5, 31-33, 36-38) are absent so that a file using one is rejected.
 *
 * This is the one table of these facts, as ggml keeps one traits table: the quantizers, the
 * reference kernels and the WGSL read their block sizes here, and the literals the
 * AssemblyScript kernels must write (type ids, block strides) are checked against it by
 * test/architecture/type-traits.test.ts.
 */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
}

export interface GGMLTypeTraits {
  /** Values per block (1 for plain element types). */
  blockSize: number;
  /** Bytes per block. */
  bytesPerBlock: number;
}

/** The k-quants' super-block: 256 values (ggml's QK_K). */
export const QK_K = 256;

/** Block layout of every type; `Record<GGMLType, …>` makes a missing entry a compile error. */
export const GGML_TYPES: Record<GGMLType, GGMLTypeTraits> = {
  [GGMLType.F32]: { blockSize: 1, bytesPerBlock: 4 },
  [GGMLType.F16]: { blockSize: 1, bytesPerBlock: 2 },
  [GGMLType.Q4_0]: { blockSize: 32, bytesPerBlock: 2 + 16 },
  [GGMLType.Q4_1]: { blockSize: 32, bytesPerBlock: 2 + 2 + 16 },
  [GGMLType.Q5_0]: { blockSize: 32, bytesPerBlock: 2 + 4 + 16 },
  [GGMLType.Q5_1]: { blockSize: 32, bytesPerBlock: 2 + 2 + 4 + 16 },
  [GGMLType.Q8_0]: { blockSize: 32, bytesPerBlock: 2 + 32 },
  [GGMLType.Q8_1]: { blockSize: 32, bytesPerBlock: 2 + 2 + 32 },
  [GGMLType.Q2_K]: { blockSize: QK_K, bytesPerBlock: QK_K / 16 + QK_K / 4 + 2 + 2 },
  [GGMLType.Q3_K]: { blockSize: QK_K, bytesPerBlock: QK_K / 8 + QK_K / 4 + 12 + 2 },
  [GGMLType.Q4_K]: { blockSize: QK_K, bytesPerBlock: 2 + 2 + 12 + QK_K / 2 },
  [GGMLType.Q5_K]: { blockSize: QK_K, bytesPerBlock: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  [GGMLType.Q6_K]: { blockSize: QK_K, bytesPerBlock: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  [GGMLType.Q8_K]: { blockSize: QK_K, bytesPerBlock: 4 + QK_K + (QK_K / 16) * 2 },
  [GGMLType.IQ2_XXS]: { blockSize: QK_K, bytesPerBlock: 2 + QK_K / 4 },
  [GGMLType.IQ2_XS]: { blockSize: QK_K, bytesPerBlock: 2 + QK_K / 4 + QK_K / 32 },
  [GGMLType.IQ3_XXS]: { blockSize: QK_K, bytesPerBlock: 2 + (3 * QK_K) / 8 },
  [GGMLType.IQ1_S]: { blockSize: QK_K, bytesPerBlock: 2 + QK_K / 8 + QK_K / 16 },
  [GGMLType.IQ4_NL]: { blockSize: 32, bytesPerBlock: 2 + 16 },
  [GGMLType.IQ3_S]: { blockSize: QK_K, bytesPerBlock: 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64 },
  [GGMLType.IQ2_S]: { blockSize: QK_K, bytesPerBlock: 2 + QK_K / 4 + QK_K / 16 },
  [GGMLType.IQ4_XS]: { blockSize: QK_K, bytesPerBlock: 2 + 2 + QK_K / 64 + QK_K / 2 },
  [GGMLType.I8]: { blockSize: 1, bytesPerBlock: 1 },
  [GGMLType.I16]: { blockSize: 1, bytesPerBlock: 2 },
  [GGMLType.I32]: { blockSize: 1, bytesPerBlock: 4 },
  [GGMLType.I64]: { blockSize: 1, bytesPerBlock: 8 },
  [GGMLType.F64]: { blockSize: 1, bytesPerBlock: 8 },
  [GGMLType.IQ1_M]: { blockSize: QK_K, bytesPerBlock: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  [GGMLType.BF16]: { blockSize: 1, bytesPerBlock: 2 },
  [GGMLType.TQ1_0]: { blockSize: QK_K, bytesPerBlock: 2 + 4 * 13 },
  [GGMLType.TQ2_0]: { blockSize: QK_K, bytesPerBlock: 2 + 64 },
  [GGMLType.MXFP4]: { blockSize: 32, bytesPerBlock: 1 + 16 },
};

/** True when `id` is a ggml type this build knows the layout of. */
export function isGGMLType(id: number): id is GGMLType {
  return Number.isInteger(id) && Object.prototype.hasOwnProperty.call(GGML_TYPES, id);
}

/** "Q4_K" for GGMLType.Q4_K. */
export function ggmlTypeName(type: GGMLType): string {
  return GGMLType[type];
}

/** GGMLType.Q4_K for "q4_k" or "Q4_K"; undefined for an unknown name. */
export function ggmlTypeFromName(name: string): GGMLType | undefined {
  const value = (GGMLType as unknown as Record<string, number | undefined>)[name.toUpperCase()];
  return typeof value === "number" ? (value as GGMLType) : undefined;
}

/**
 * Bytes taken by `elements` values of `type`, or undefined when `elements` is not a whole
 * number of blocks. bigint so that 10+ GB tensors stay exact.
 */
export function ggmlByteSize(type: GGMLType, elements: bigint): bigint | undefined {
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  const size = BigInt(blockSize);
  if (elements % size !== 0n) return undefined;
  return (elements / size) * BigInt(bytesPerBlock);
}
