/**
 * safetensors: the Hugging Face tensor container.
 *
 *   [u64 LE n] [n bytes of JSON header, space padded] [tensor data ...]
 *   header = { "__metadata__"?: {str: str}, NAME: { dtype, shape, data_offsets: [begin, end] } }
 *
 * Offsets are relative to the first byte after the header. Reading is lazy: opening touches
 * only the header, every tensor is read by range when asked for. Every offset is checked
 * against the file size before it is trusted (the rules of the reference implementation:
 * tensors tile the data area exactly, in offset order, with no holes and nothing after them),
 * so a truncated download fails on open with the number of missing bytes.
 *
 * Writing is streaming and atomic: the header is computed from shapes alone, then each
 * tensor's bytes are produced, written and dropped, and the file is renamed into place only
 * when complete. Sharded checkpoints get `model.safetensors.index.json` as transformers writes.
 */
import { FormatError } from "./errors.js";
import { InvalidArgumentError } from "../errors.js";
import { GGMLType } from "./ggml-types.js";
import { dequantize, quantize } from "./quants/index.js";
import { openByteSource, type ByteInput, type ByteSource } from "./gguf/source.js";
import { writeAll, writeAtomically } from "./gguf/writer.js";

/** Every dtype string of the format, with its element size in bytes. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** The dtypes zh-llama writes and reads as floats (checkpoints of this model family use these). */
export type SafetensorsFloatDtype = "F32" | "F16" | "BF16";

/** Limits against hostile headers (the reference implementation caps the header at 100 MB). */
export const SAFETENSORS_LIMITS = { maxHeaderBytes: 100_000_000, maxDims: 8 } as const;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) relative to the start of the data area, as stored. */
  dataOffsets: [number, number];
  /** Absolute position of the first byte in the file. */
  offset: number;
  byteLength: number;
  /** Number of elements (product of the shape; 1 for a scalar). */
  elements: number;
}

export interface SafetensorsFile {
  readonly name: string;
  /** Tensor infos in offset order. */
  readonly tensors: SafetensorsTensorInfo[];
  readonly metadata: Record<string, string>;
  /** The tensor's raw little-endian bytes. */
  readTensor(name: string): Promise<Uint8Array>;
  /** F32 / F16 / BF16 / F64 tensors widened (or narrowed) to float32. */
  readTensorF32(name: string): Promise<Float32Array>;
  tensor(name: string): SafetensorsTensorInfo | undefined;
  close(): Promise<void>;
}

function fail(source: string, message: string): never {
  throw new FormatError(`${source}: ${message}`);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_BYTES, value);
}

/** Parses and validates a header against the size of the file it came from. */
export function parseSafetensorsHeader(
  name: string,
  json: string,
  headerBytes: number,
  fileSize: number,
): { tensors: SafetensorsTensorInfo[]; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    fail(name, `header at offset 8 is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) fail(name, "header is not a JSON object");
  const dataStart = 8 + headerBytes;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) fail(name, "__metadata__ must be an object of strings");
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(name, `__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof value !== "object" || value === null) fail(name, `tensor ${JSON.stringify(key)}: entry is not an object`);
    const entry = value as Record<string, unknown>;
    if (!isDtype(entry.dtype)) fail(name, `tensor ${JSON.stringify(key)}: unknown dtype ${JSON.stringify(entry.dtype)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || shape.length > SAFETENSORS_LIMITS.maxDims || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(name, `tensor ${JSON.stringify(key)}: shape ${JSON.stringify(shape)} is not a list of at most ${SAFETENSORS_LIMITS.maxDims} non-negative integers`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      fail(name, `tensor ${JSON.stringify(key)}: data_offsets ${JSON.stringify(offsets)} must be [begin, end] with 0 <= begin <= end`);
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    const byteLength = elements * SAFETENSORS_DTYPE_BYTES[entry.dtype];
    const [begin, end] = offsets as [number, number];
    if (end - begin !== byteLength) {
      fail(name, `tensor ${JSON.stringify(key)}: ${entry.dtype} ${JSON.stringify(shape)} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    tensors.push({ name: key, dtype: entry.dtype, shape: shape as number[], dataOffsets: [begin, end], offset: dataStart + begin, byteLength, elements });
  }
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let expected = 0;
  for (const t of tensors) {
    if (t.dataOffsets[0] !== expected) {
      fail(name, `tensor ${JSON.stringify(t.name)} starts at data offset ${t.dataOffsets[0]}, expected ${expected} (tensors overlap or leave a hole)`);
    }
    expected = t.dataOffsets[1];
  }
  if (expected > dataSize) {
    fail(name, `truncated: the header describes ${expected} bytes of tensor data after offset ${dataStart}, the file has ${dataSize} (${expected - dataSize} bytes missing)`);
  }
  if (expected < dataSize) fail(name, `${dataSize - expected} unexpected bytes after the last tensor (file ${fileSize} bytes, tensors end at ${dataStart + expected})`);
  return { tensors, metadata };
}

class SafetensorsReader implements SafetensorsFile {
  private readonly byName = new Map<string, SafetensorsTensorInfo>();
  constructor(
    private readonly source: ByteSource,
    readonly tensors: SafetensorsTensorInfo[],
    readonly metadata: Record<string, string>,
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
  }
  get name(): string {
    return this.source.name;
  }
  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }
  private info(name: string): SafetensorsTensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new InvalidArgumentError(`${this.source.name}: no tensor named ${JSON.stringify(name)}`);
    return info;
  }
  async readTensor(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return this.source.read(info.offset, info.byteLength);
  }
  async readTensorF32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    return toFloat32(info.dtype, await this.readTensor(name), info.elements, `${this.source.name}: tensor ${JSON.stringify(name)}`);
  }
  close(): Promise<void> {
    return this.source.close();
  }
}

/** Little-endian bytes of a float dtype as float32 (copies; never aliases the input). */
export function toFloat32(dtype: string, bytes: Uint8Array, elements: number, what = "tensor"): Float32Array {
  switch (dtype) {
    case "F32": {
      const out = new Float32Array(elements);
      new Uint8Array(out.buffer).set(bytes.subarray(0, elements * 4));
      return out;
    }
    case "F16":
      return dequantize(GGMLType.F16, bytes, elements);
    case "BF16":
      return dequantize(GGMLType.BF16, bytes, elements);
    case "F64": {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(elements);
      for (let i = 0; i < elements; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    default:
      throw new InvalidArgumentError(`${what}: dtype ${dtype} is not a floating-point type`);
  }
}

/** float32 values as little-endian bytes of a float dtype (round to nearest even). */
export function fromFloat32(dtype: SafetensorsFloatDtype, values: Float32Array): Uint8Array {
  if (dtype === "F32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return quantize(dtype === "F16" ? GGMLType.F16 : GGMLType.BF16, values);
}

/**
 * Opens a safetensors file (path, URL, Blob or bytes), reading and validating only its header.
 * Close it when done (it holds a file handle when given a path).
 */
export async function openSafetensors(input: string | Uint8Array | ByteInput): Promise<SafetensorsFile> {
  const source = await openByteSource(input);
  try {
    if (source.size < 8) fail(source.name, `truncated: ${source.size} bytes, too short for the 8-byte header length`);
    const lengthBytes = await source.read(0, 8);
    const n = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
    if (n > BigInt(SAFETENSORS_LIMITS.maxHeaderBytes)) fail(source.name, `header length ${n} exceeds the ${SAFETENSORS_LIMITS.maxHeaderBytes}-byte limit (not a safetensors file?)`);
    const headerBytes = Number(n);
    if (8 + headerBytes > source.size) fail(source.name, `truncated: header of ${headerBytes} bytes but only ${source.size - 8} bytes follow the length`);
    const json = new TextDecoder("utf-8", { fatal: false }).decode(await source.read(8, headerBytes));
    const { tensors, metadata } = parseSafetensorsHeader(source.name, json, headerBytes, source.size);
    return new SafetensorsReader(source, tensors, metadata);
  } catch (error) {
    await source.close();
    throw error;
  }
}

/** One tensor to write: bytes (or float32 values converted to `dtype`). */
export interface SafetensorsTensorInput {
  dtype: SafetensorsFloatDtype;
  shape: number[];
  data: Uint8Array | Float32Array;
}

/** A tensor whose bytes are produced only when the writer reaches it. */
export interface SafetensorsLazyTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

export interface SafetensorsWriteOptions {
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
  /** Called after each tensor is written; throwing aborts the write and removes the partial file. */
  onTensor?: (name: string, bytesWritten: number) => void;
}

const HEADER_ALIGNMENT = 8;

/** The encoded header (length prefix included, padded so tensor data starts 8-aligned). */
export function encodeSafetensorsHeader(
  tensors: readonly { name: string; dtype: SafetensorsDtype; shape: number[] }[],
  metadata?: Record<string, string>,
): { header: Uint8Array; offsets: number[]; sizes: number[]; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name in header) throw new InvalidArgumentError(`safetensors: duplicate or reserved tensor name ${JSON.stringify(t.name)}`);
    if (!isDtype(t.dtype)) throw new InvalidArgumentError(`safetensors: tensor ${JSON.stringify(t.name)} has unknown dtype ${JSON.stringify(t.dtype)}`);
    if (t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InvalidArgumentError(`safetensors: tensor ${JSON.stringify(t.name)} has a bad shape [${t.shape.join(", ")}]`);
    const size = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offsets.push(offset);
    sizes.push(size);
    offset += size;
  }
  // Spaces pad the JSON so tensor data starts 8-aligned, as the reference writer does.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return { header: out, offsets, sizes, dataBytes: offset };
}

function inputBytes(t: SafetensorsTensorInput): Uint8Array {
  return t.data instanceof Float32Array ? fromFloat32(t.dtype, t.data) : t.data;
}

function toLazy(tensors: Record<string, SafetensorsTensorInput>): SafetensorsLazyTensor[] {
  return Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: () => inputBytes(t) }));
}

async function lazyBytes(t: SafetensorsLazyTensor, expected: number): Promise<Uint8Array> {
  const bytes = typeof t.data === "function" ? await t.data() : t.data;
  if (bytes.length !== expected) {
    throw new InvalidArgumentError(`safetensors: tensor ${JSON.stringify(t.name)} (${t.dtype} [${t.shape.join(", ")}]) needs ${expected} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** The whole file in memory. */
export async function encodeSafetensorsLazy(tensors: readonly SafetensorsLazyTensor[], metadata?: Record<string, string>): Promise<Uint8Array> {
  const layout = encodeSafetensorsHeader(tensors, metadata);
  const out = new Uint8Array(layout.header.length + layout.dataBytes);
  out.set(layout.header, 0);
  for (let i = 0; i < tensors.length; i++) out.set(await lazyBytes(tensors[i]!, layout.sizes[i]!), layout.header.length + layout.offsets[i]!);
  return out;
}

/** The whole file in memory, from a name -> tensor record (insertion order kept). */
export function encodeSafetensors(tensors: Record<string, SafetensorsTensorInput>, metadata?: Record<string, string>): Uint8Array {
  const lazy = toLazy(tensors);
  const layout = encodeSafetensorsHeader(lazy, metadata);
  const out = new Uint8Array(layout.header.length + layout.dataBytes);
  out.set(layout.header, 0);
  lazy.forEach((t, i) => {
    const bytes = inputBytes(tensors[t.name]!);
    if (bytes.length !== layout.sizes[i]) throw new InvalidArgumentError(`safetensors: tensor ${JSON.stringify(t.name)} needs ${layout.sizes[i]} bytes, got ${bytes.length}`);
    out.set(bytes, layout.header.length + layout.offsets[i]!);
  });
  return out;
}

/** Streams tensors into `path` one at a time, atomically. Returns the file size. */
export async function writeSafetensorsLazy(
  path: string,
  tensors: readonly SafetensorsLazyTensor[],
  metadata?: Record<string, string>,
  options: SafetensorsWriteOptions = {},
): Promise<number> {
  const layout = encodeSafetensorsHeader(tensors, metadata);
  await writeAtomically(path, options.overwrite ?? false, async (handle) => {
    await writeAll(handle, layout.header, 0);
    for (let i = 0; i < tensors.length; i++) {
      const bytes = await lazyBytes(tensors[i]!, layout.sizes[i]!);
      const at = layout.header.length + layout.offsets[i]!;
      await writeAll(handle, bytes, at);
      options.onTensor?.(tensors[i]!.name, at + bytes.length);
    }
  });
  return layout.header.length + layout.dataBytes;
}

/** Writes `path` atomically from a name -> tensor record (insertion order kept). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
  options: SafetensorsWriteOptions = {},
): Promise<void> {
  await writeSafetensorsLazy(path, toLazy(tensors), metadata, options);
}

/** `model.safetensors.index.json` as transformers writes it. */
export interface SafetensorsIndex {
  metadata: { total_size: number; [key: string]: unknown };
  weight_map: Record<string, string>;
}

export interface SafetensorsShard {
  /** File name inside the output directory, e.g. model-00001-of-00002.safetensors. */
  fileName: string;
  tensors: SafetensorsLazyTensor[];
}

/** transformers' shard file name. */
export function safetensorsShardName(index: number, count: number, prefix = "model"): string {
  return `${prefix}-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.safetensors`;
}

/**
 * Groups tensors into shards of at most `maxShardBytes` data bytes (a larger tensor gets a
 * shard of its own), in order, named as transformers does; one shard is `model.safetensors`.
 */
export function planSafetensorsShards(tensors: SafetensorsLazyTensor[], maxShardBytes: number, prefix = "model"): SafetensorsShard[] {
  const groups: SafetensorsLazyTensor[][] = [[]];
  let bytes = 0;
  for (const t of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
    const group = groups[groups.length - 1]!;
    if (group.length > 0 && bytes + size > maxShardBytes) {
      groups.push([t]);
      bytes = size;
    } else {
      group.push(t);
      bytes += size;
    }
  }
  if (groups.length === 1) return [{ fileName: `${prefix}.safetensors`, tensors: groups[0]! }];
  return groups.map((g, i) => ({ fileName: safetensorsShardName(i, groups.length, prefix), tensors: g }));
}

/**
 * Writes shards into `dir` and, when there is more than one, `model.safetensors.index.json`
 * (total_size = sum of tensor data bytes, as transformers counts it). Each file is atomic;
 * callers wanting the whole directory atomic write into a staging directory first.
 * Returns the file names written.
 */
export async function writeSafetensorsShards(
  dir: string,
  shards: SafetensorsShard[],
  options: SafetensorsWriteOptions & { metadata?: Record<string, string>; indexName?: string; alwaysIndex?: boolean } = {},
): Promise<string[]> {
  const { join } = await import("node:path");
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const written: string[] = [];
  for (const shard of shards) {
    for (const t of shard.tensors) {
      weightMap[t.name] = shard.fileName;
      totalSize += t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
    }
    await writeSafetensorsLazy(join(dir, shard.fileName), shard.tensors, options.metadata ?? { format: "pt" }, options);
    written.push(shard.fileName);
  }
  if (shards.length > 1 || options.alwaysIndex) {
    const indexName = options.indexName ?? "model.safetensors.index.json";
    const index: SafetensorsIndex = { metadata: { total_size: totalSize }, weight_map: weightMap };
    const text = new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n");
    await writeAtomically(join(dir, indexName), options.overwrite ?? false, (handle) => writeAll(handle, text, 0));
    written.push(indexName);
  }
  return written;
}
