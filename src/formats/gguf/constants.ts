/**
 * GGUF wire constants and the limits a reader enforces before it trusts a header.
 * Format: ggml docs/gguf.md. All integers are little-endian.
 *
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x   { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32)
 *   tensor data, each tensor at data_start + offset, offsets aligned
 *
 *   string = u64 byte length + UTF-8 bytes (no NUL); array = u32 item type + u64 count + items
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_WRITE_VERSION = 3;
export const GGUF_READ_VERSIONS: readonly number[] = [2, 3];

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Bytes of a fixed-size scalar; strings and arrays are variable. */
export const GGUF_SCALAR_SIZE: Record<Exclude<GgufValueType, GgufValueType.STRING | GgufValueType.ARRAY>, number> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** Smallest encoding of one item of each type: what a count must at least cost in file bytes. */
export function minEncodedSize(type: GgufValueType): number {
  if (type === GgufValueType.STRING) return 8;
  if (type === GgufValueType.ARRAY) return 4 + 8;
  return GGUF_SCALAR_SIZE[type];
}

/**
 * Limits. Real headers are a few MB (a 256K-token vocabulary with merges is ~15 MB), so
 * anything beyond these is a broken or hostile file, refused before allocating.
 */
export const GGUF_LIMITS = {
  /** The whole header (metadata + tensor infos) must fit in this many bytes. */
  maxHeaderBytes: 256 * 1024 * 1024,
  /** Items in one metadata array. */
  maxArrayLength: 16 * 1024 * 1024,
  /** Nesting of arrays inside arrays. */
  maxArrayDepth: 8,
  /** Bytes of one string. */
  maxStringBytes: 64 * 1024 * 1024,
  /** ggml tensors have at most 4 dimensions (GGML_MAX_DIMS). */
  maxDims: 4,
  /** Tensor names are at most 63 bytes in ggml (GGML_MAX_NAME 64 including the NUL). */
  maxTensorNameBytes: 63,
} as const;

/** Split-model keys written by llama.cpp's gguf-split. */
export const SPLIT_KEYS = {
  no: "split.no",
  count: "split.count",
  tensorsCount: "split.tensors.count",
} as const;

/** `name-00001-of-00003.gguf`: llama.cpp's split file naming. */
export const SPLIT_FILE_PATTERN = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

export function splitFileName(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}
