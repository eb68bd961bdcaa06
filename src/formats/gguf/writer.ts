/**
 * Writing GGUF v3. The header is encoded in memory (it is small); tensor data is streamed
 * one tensor at a time from callbacks, so a writer never holds a whole model. Files are
 * written to a temporary name and renamed into place only when complete.
 */
import { InvalidArgumentError } from "../../errors.js";
import { GGMLType, ggmlByteSize, ggmlTypeName, GGML_TYPES } from "../ggml-types.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_LIMITS, GGUF_MAGIC, GGUF_WRITE_VERSION, GgufValueType, SPLIT_KEYS, splitFileName } from "./constants.js";
import type { GgufArrayType, GgufType, GgufValue } from "./header.js";
import { knownKeyType } from "./known-keys.js";
import { outputError, sweepStaleOutputs, trackTemporaryOutput } from "../temp-outputs.js";

export interface GgufTensorInput {
  name: string;
  type: GGMLType;
  /** ne[0] (row length) first, as GGUF stores it. */
  shape: number[];
  /**
   * The bytes, or a callback producing them when the writer reaches this tensor: all at once,
   * or as consecutive pieces (an async iterable), so a tensor larger than one buffer can hold
   * (4 GiB) streams through in slices.
   */
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>);
}

export interface GgufWriteSpec {
  metadata: Record<string, GgufValue>;
  /** Wire types; keys without one get llama.cpp's expected type or one inferred from the value. */
  metadataTypes?: Record<string, GgufType>;
  tensors: GgufTensorInput[];
}

export interface GgufWriteOptions {
  /** Called after each tensor with (tensors written, total, bytes written). */
  onProgress?: (done: number, total: number, bytes: number) => void;
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
  /** Also write PATH.sha256 so that it always matches PATH (see writeAtomically). */
  manifest?: boolean;
}

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number) { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number) { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number) { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number) { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number) { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number) { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number) { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: bigint) { this.reserve(8); this.view.setBigUint64(this.length, v, true); this.length += 8; }
  i64(v: bigint) { this.reserve(8); this.view.setBigInt64(this.length, v, true); this.length += 8; }
  bytes(b: Uint8Array) { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string) { const b = utf8.encode(s); this.u64(BigInt(b.length)); this.bytes(b); }
  pad(alignment: number) { const n = (alignment - (this.length % alignment)) % alignment; this.reserve(n); this.length += n; }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

/** The wire type a value gets when nobody says: gguf-py's rules (int -> i32, float -> f32). */
export function inferGgufType(value: GgufValue): GgufType {
  if (typeof value === "string") return GgufValueType.STRING;
  if (typeof value === "boolean") return GgufValueType.BOOL;
  if (typeof value === "bigint") return value >= 1n << 63n ? GgufValueType.UINT64 : GgufValueType.INT64;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) return GgufValueType.FLOAT32;
    return value >= -(2 ** 31) && value < 2 ** 31 ? GgufValueType.INT32 : GgufValueType.INT64;
  }
  if (value.length === 0) return { array: GgufValueType.UINT8 };
  if (value.every((v) => typeof v === "number")) {
    const nums = value as number[];
    if (nums.some((v) => !Number.isInteger(v))) return { array: GgufValueType.FLOAT32 };
    return { array: nums.every((v) => v >= -(2 ** 31) && v < 2 ** 31) ? GgufValueType.INT32 : GgufValueType.INT64 };
  }
  return { array: inferGgufType(value[0]!) };
}

function typeFor(key: string, value: GgufValue, given?: GgufType): GgufType {
  if (given !== undefined) return given;
  const known = knownKeyType(key);
  // A known scalar key given an array (e.g. per-layer head counts) keeps the array shape.
  if (known !== undefined && (typeof known === "object") === Array.isArray(value)) return known;
  return inferGgufType(value);
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function writeValue(w: ByteWriter, key: string, type: GgufType, value: GgufValue, depth: number): void {
  const bad = (expected: string): never => {
    throw new InvalidArgumentError(`GGUF metadata ${JSON.stringify(key)}: expected ${expected}, got ${typeof value === "bigint" ? `${value}n` : JSON.stringify(value)?.slice(0, 80)}`);
  };
  if (typeof type === "object") {
    if (!Array.isArray(value)) return bad("an array");
    if (depth >= GGUF_LIMITS.maxArrayDepth) return bad(`arrays nested at most ${GGUF_LIMITS.maxArrayDepth} deep`);
    const arrayType = type as GgufArrayType;
    const itemWireType = typeof arrayType.array === "object" ? GgufValueType.ARRAY : arrayType.array;
    w.u32(itemWireType);
    w.u64(BigInt(value.length));
    value.forEach((item, i) => writeValue(w, key, arrayType.itemTypes?.[i] ?? arrayType.array, item, depth + 1));
    return;
  }
  const range = INT_RANGES[type];
  if (range) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      return bad(`an integer in [${range[0]}, ${range[1]}] (${GgufValueType[type]})`);
    }
  }
  switch (type) {
    case GgufValueType.UINT8: return w.u8(value as number);
    case GgufValueType.INT8: return w.i8(value as number);
    case GgufValueType.UINT16: return w.u16(value as number);
    case GgufValueType.INT16: return w.i16(value as number);
    case GgufValueType.UINT32: return w.u32(value as number);
    case GgufValueType.INT32: return w.i32(value as number);
    case GgufValueType.FLOAT32:
      return typeof value === "number" ? w.f32(value) : bad("a number (FLOAT32)");
    case GgufValueType.FLOAT64:
      return typeof value === "number" ? w.f64(value) : bad("a number (FLOAT64)");
    case GgufValueType.BOOL:
      return typeof value === "boolean" ? w.u8(value ? 1 : 0) : bad("a boolean");
    case GgufValueType.STRING:
      return typeof value === "string" ? w.string(value) : bad("a string");
    case GgufValueType.UINT64: {
      const v = typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value;
      return typeof v === "bigint" && v >= 0n && v < 1n << 64n ? w.u64(v) : bad("an integer in [0, 2^64) (UINT64)");
    }
    case GgufValueType.INT64: {
      const v = typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : value;
      return typeof v === "bigint" && v >= -(1n << 63n) && v < 1n << 63n ? w.i64(v) : bad("an integer in [-2^63, 2^63) (INT64)");
    }
    default:
      return bad(`a valid GGUF value type (got ${type})`);
  }
}

export interface GgufLayout {
  header: Uint8Array;
  alignment: number;
  /** Absolute offset of each tensor's data, in spec order. */
  dataOffsets: number[];
  byteSizes: number[];
  /** Total file size. */
  fileSize: number;
}

/** Encodes the header and computes where every tensor's data goes. */
export function layoutGguf(spec: GgufWriteSpec): GgufLayout {
  const metadata = spec.metadata;
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata["general.alignment"] !== undefined) {
    const a = metadata["general.alignment"];
    if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
      throw new InvalidArgumentError(`general.alignment must be a power of two, got ${String(a)}`);
    }
    alignment = a;
  }
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_WRITE_VERSION);
  w.u64(BigInt(spec.tensors.length));
  const keys = Object.keys(metadata);
  w.u64(BigInt(keys.length));
  for (const key of keys) {
    const value = metadata[key]!;
    const type = typeFor(key, value, spec.metadataTypes?.[key]);
    w.string(key);
    w.u32(typeof type === "object" ? GgufValueType.ARRAY : type);
    writeValue(w, key, type, value, 0);
  }

  const names = new Set<string>();
  const byteSizes: number[] = [];
  const relative: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    if (names.has(t.name)) throw new InvalidArgumentError(`duplicate tensor name ${JSON.stringify(t.name)}`);
    names.add(t.name);
    if (new TextEncoder().encode(t.name).length > GGUF_LIMITS.maxTensorNameBytes) {
      throw new InvalidArgumentError(`tensor name ${JSON.stringify(t.name)} is longer than ${GGUF_LIMITS.maxTensorNameBytes} bytes`);
    }
    if (t.shape.length < 1 || t.shape.length > GGUF_LIMITS.maxDims || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new InvalidArgumentError(`tensor ${JSON.stringify(t.name)}: shape [${t.shape.join(", ")}] must have 1..4 non-negative integer dimensions`);
    }
    if (!(t.type in GGML_TYPES)) throw new InvalidArgumentError(`tensor ${JSON.stringify(t.name)}: unknown ggml type ${t.type}`);
    const elements = t.shape.reduce((a, b) => a * BigInt(b), 1n);
    const size = ggmlByteSize(t.type, elements);
    if (size === undefined || t.shape[0]! % GGML_TYPES[t.type].blockSize !== 0) {
      throw new InvalidArgumentError(`tensor ${JSON.stringify(t.name)}: rows of ${t.shape[0]} values are not a whole number of ${ggmlTypeName(t.type)} blocks (${GGML_TYPES[t.type].blockSize})`);
    }
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(offset));
    relative.push(offset);
    byteSizes.push(Number(size));
    offset += Math.ceil(Number(size) / alignment) * alignment;
  }
  w.pad(alignment);
  const header = w.result();
  const dataOffsets = relative.map((r) => header.length + r);
  // gguf-py pads the last tensor too, so the file is a whole number of alignment units.
  return { header, alignment, dataOffsets, byteSizes, fileSize: header.length + offset };
}

/** A tensor's bytes piece by piece (one piece unless its callback streams), `expected` in all. */
async function* tensorPieces(t: GgufTensorInput, expected: number): AsyncGenerator<Uint8Array> {
  const data = typeof t.data === "function" ? await t.data() : t.data;
  const wrong = (got: string) => new InvalidArgumentError(`tensor ${JSON.stringify(t.name)} (${ggmlTypeName(t.type)} [${t.shape.join(", ")}]) needs ${expected} bytes, got ${got}`);
  if (data instanceof Uint8Array) {
    if (data.length !== expected) throw wrong(`${data.length}`);
    yield data;
    return;
  }
  let n = 0;
  for await (const piece of data) {
    n += piece.length;
    if (n > expected) throw wrong(`more`);
    yield piece;
  }
  if (n !== expected) throw wrong(`${n}`);
}

/** The whole file in memory (for browsers, tests and small models). */
export async function encodeGguf(spec: GgufWriteSpec): Promise<Uint8Array> {
  const layout = layoutGguf(spec);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header, 0);
  for (let i = 0; i < spec.tensors.length; i++) {
    let at = layout.dataOffsets[i]!;
    for await (const piece of tensorPieces(spec.tensors[i]!, layout.byteSizes[i]!)) {
      out.set(piece, at);
      at += piece.length;
    }
  }
  return out;
}

/**
 * Writes `path` atomically: everything goes to a temporary file beside it, which is flushed
 * and renamed over `path` only once complete. A failure (bad tensor, full disk) removes the
 * temporary file and leaves any earlier `path` untouched.
 */
export async function writeGguf(path: string, spec: GgufWriteSpec, options: GgufWriteOptions = {}): Promise<void> {
  const layout = layoutGguf(spec);
  await writeAtomically(path, options.overwrite ?? false, async (handle) => {
    await writeAll(handle, layout.header, 0);
    let bytes = layout.header.length;
    for (let i = 0; i < spec.tensors.length; i++) {
      bytes = layout.dataOffsets[i]!;
      for await (const piece of tensorPieces(spec.tensors[i]!, layout.byteSizes[i]!)) {
        await writeAll(handle, piece, bytes);
        bytes += piece.length;
      }
      options.onProgress?.(i + 1, spec.tensors.length, bytes);
    }
    // Padding after the last tensor: extend the file to its full, aligned length.
    await handle.truncate(layout.fileSize);
  }, { manifest: options.manifest });
}

export interface GgufSplitOptions extends GgufWriteOptions {
  /** At most this many tensors per part (llama.cpp gguf-split --split-max-tensors). */
  maxTensorsPerPart?: number;
  /** At most about this many data bytes per part (a single larger tensor gets a part of its own). */
  maxBytesPerPart?: number;
}

/**
 * Writes a split model `prefix-00001-of-0000N.gguf` ... as llama.cpp's gguf-split does: the
 * first part carries all metadata, every part carries split.no / split.count /
 * split.tensors.count. Returns the paths written.
 */
export async function writeGgufSplit(prefix: string, spec: GgufWriteSpec, options: GgufSplitOptions = {}): Promise<string[]> {
  const maxTensors = options.maxTensorsPerPart ?? Infinity;
  const maxBytes = options.maxBytesPerPart ?? Infinity;
  const groups: GgufTensorInput[][] = [[]];
  let bytes = 0;
  for (const t of spec.tensors) {
    const size = Number(ggmlByteSize(t.type, t.shape.reduce((a, b) => a * BigInt(b), 1n)) ?? 0n);
    const group = groups[groups.length - 1]!;
    if (group.length > 0 && (group.length >= maxTensors || bytes + size > maxBytes)) {
      groups.push([t]);
      bytes = size;
    } else {
      group.push(t);
      bytes += size;
    }
  }
  const count = groups.length;
  const paths = groups.map((_, i) => splitFileName(prefix, i, count));
  const splitTypes: Record<string, GgufType> = {
    [SPLIT_KEYS.no]: GgufValueType.UINT16,
    [SPLIT_KEYS.count]: GgufValueType.UINT16,
    [SPLIT_KEYS.tensorsCount]: GgufValueType.INT32,
  };
  for (let i = 0; i < count; i++) {
    const split = { [SPLIT_KEYS.no]: i, [SPLIT_KEYS.count]: count, [SPLIT_KEYS.tensorsCount]: spec.tensors.length };
    const metadata: Record<string, GgufValue> = i === 0 ? { ...spec.metadata, ...split } : { ...split };
    if (i > 0 && spec.metadata["general.alignment"] !== undefined) metadata["general.alignment"] = spec.metadata["general.alignment"];
    await writeGguf(paths[i]!, { metadata, metadataTypes: { ...spec.metadataTypes, ...splitTypes }, tensors: groups[i]! }, options);
  }
  return paths;
}

export async function writeAll(handle: import("node:fs/promises").FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

export interface AtomicWriteOptions {
  /**
   * Also write `PATH.sha256` ("HEX  NAME", as sha256sum): hashed from the finished temporary
   * file, staged as a temporary too, and renamed in right after the file, the old manifest
   * removed first; so a file is never paired with another file's manifest (an interruption
   * between the two renames leaves a file without one, which `verify` reports as such).
   */
  manifest?: boolean;
}

/**
 * Runs `fill` on a temporary file next to `path` (`PATH.PID.RAND.tmp`), then renames it to
 * `path`. Shared by every writer of model files so that no failure leaves a half-written file
 * under the real name: a thrown error removes the temporary file, so does SIGINT / SIGTERM,
 * and the next write of `path` sweeps those of processes killed outright (temp-outputs.ts).
 * A file-system failure (a full disk) is a one-line OutputError.
 */
export async function writeAtomically(
  path: string,
  overwrite: boolean,
  fill: (handle: import("node:fs/promises").FileHandle) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const fs = await import("node:fs/promises");
  await sweepStaleOutputs(path);
  if (!overwrite) {
    const exists = await fs.stat(path).then(() => true, () => false);
    if (exists) throw new InvalidArgumentError(`${path} already exists (pass --force / overwrite to replace it)`);
  }
  const suffix = `${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const temp = `${path}.${suffix}.tmp`;
  const manifest = `${path}.sha256`;
  const manifestTemp = `${manifest}.${suffix}.tmp`;
  const untrack = await trackTemporaryOutput(temp);
  const untrackManifest = options.manifest ? await trackTemporaryOutput(manifestTemp) : () => undefined;
  let handle: import("node:fs/promises").FileHandle | undefined;
  try {
    handle = await fs.open(temp, "wx");
    await fill(handle);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (options.manifest) {
      const { basename } = await import("node:path");
      await fs.writeFile(manifestTemp, `${await sha256OfFile(temp)}  ${basename(path)}\n`);
      await fs.rm(manifest, { force: true });
    }
    await fs.rename(temp, path);
    untrack();
    if (options.manifest) {
      await fs.rename(manifestTemp, manifest);
      untrackManifest();
    }
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temp, { force: true }).catch(() => undefined);
    if (options.manifest) await fs.rm(manifestTemp, { force: true }).catch(() => undefined);
    untrack();
    untrackManifest();
    throw outputError(path, error);
  }
}

/** SHA-256 of a file, streamed, as hex. */
async function sha256OfFile(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const { createReadStream } = await import("node:fs");
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Uint8Array);
  return hash.digest("hex");
}
