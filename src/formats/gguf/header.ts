/**
 * Parsing a GGUF header from bytes. The parser is synchronous over a buffer holding a prefix
 * of the file; when it needs bytes beyond the prefix it throws NeedMoreBytes and the caller
 * (reader.ts) reads a longer prefix and starts again, so most headers parse in one pass.
 * Every count, length and offset is checked against the file size before it is used.
 */
import { GGMLType, GGML_TYPES, ggmlByteSize, ggmlTypeName, isGGMLType } from "../ggml-types.js";
import { GgufFormatError, UnsupportedTensorTypeError } from "../errors.js";
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_LIMITS,
  GGUF_MAGIC,
  GGUF_READ_VERSIONS,
  GGUF_SCALAR_SIZE,
  GgufValueType,
  minEncodedSize,
} from "./constants.js";

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** The wire type of a metadata value: a scalar type, or an array of some item type. */
export type GgufType = GgufValueType | GgufArrayType;
export interface GgufArrayType {
  array: GgufType;
  /** Only for arrays of arrays whose inner arrays differ in type: one type per item. */
  itemTypes?: GgufType[];
}

export interface GgufTensorInfo {
  name: string;
  type: GGMLType;
  /** ne[0] (the fastest-varying, row length) first, as GGUF stores it. */
  shape: number[];
  elements: number;
  byteSize: number;
  /** Offset relative to its file's data section, as stored. */
  offset: bigint;
  /** Which file of a split model holds it (0 for single files). */
  fileIndex: number;
  /** Absolute byte offset of the data in that file. */
  dataOffset: number;
}

export interface GgufHeader {
  version: number;
  metadata: Record<string, GgufValue>;
  metadataTypes: Record<string, GgufType>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset where tensor data begins (the header end, aligned up). */
  dataStart: number;
  /** Bytes of header actually parsed (before padding). */
  headerBytes: number;
}

/** Thrown inside the parser when the buffered prefix is too short; never escapes reader.ts. */
export class NeedMoreBytes extends Error {
  constructor(readonly needed: number) {
    super(`need ${needed} bytes`);
  }
}

// ignoreBOM: a token may be exactly U+FEFF, which the default decoder would silently drop.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array, private readonly fileSize: number, private readonly fileName: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string, at = this.pos): never {
    throw new GgufFormatError(`${this.fileName}: at byte ${at}: ${message}`);
  }

  /** Makes sure `n` more bytes exist, naming `what` if the file ends first. */
  need(n: number, what: string): void {
    const end = this.pos + n;
    if (end > this.fileSize) {
      this.fail(`file truncated: ${what} needs ${n} bytes but the file ends at byte ${this.fileSize}`);
    }
    if (end > GGUF_LIMITS.maxHeaderBytes) {
      this.fail(`header larger than the ${GGUF_LIMITS.maxHeaderBytes}-byte limit while reading ${what}`);
    }
    if (end > this.bytes.length) throw new NeedMoreBytes(end);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A u64 count that must fit the remaining file at `minItemBytes` per item. */
  count(what: string, minItemBytes: number, limit: number): number {
    const at = this.pos;
    const n = this.u64(what);
    const remaining = BigInt(this.fileSize - this.pos);
    if (n > BigInt(limit)) this.fail(`${what} is ${n}, above the limit of ${limit}`, at);
    if (n * BigInt(minItemBytes) > remaining) {
      this.fail(`${what} is ${n}, which needs at least ${n * BigInt(minItemBytes)} bytes but only ${remaining} remain in the file`, at);
    }
    return Number(n);
  }

  string(what: string, maxBytes: number = GGUF_LIMITS.maxStringBytes): string {
    const length = this.count(`length of ${what}`, 1, maxBytes);
    this.need(length, what);
    const text = utf8.decode(this.bytes.subarray(this.pos, this.pos + length));
    this.pos += length;
    return text;
  }

  scalar(type: GgufValueType, what: string): number | bigint | boolean {
    const size = GGUF_SCALAR_SIZE[type as keyof typeof GGUF_SCALAR_SIZE];
    this.need(size, what);
    const p = this.pos;
    this.pos += size;
    const v = this.view;
    switch (type) {
      case GgufValueType.UINT8: return v.getUint8(p);
      case GgufValueType.INT8: return v.getInt8(p);
      case GgufValueType.UINT16: return v.getUint16(p, true);
      case GgufValueType.INT16: return v.getInt16(p, true);
      case GgufValueType.UINT32: return v.getUint32(p, true);
      case GgufValueType.INT32: return v.getInt32(p, true);
      case GgufValueType.FLOAT32: return v.getFloat32(p, true);
      case GgufValueType.BOOL: {
        const b = v.getUint8(p);
        if (b > 1) this.fail(`${what}: a bool must be 0 or 1, got ${b}`, p);
        return b === 1;
      }
      case GgufValueType.UINT64: return v.getBigUint64(p, true);
      case GgufValueType.INT64: return v.getBigInt64(p, true);
      case GgufValueType.FLOAT64: return v.getFloat64(p, true);
      default: return this.fail(`${what}: not a scalar type: ${type}`, p);
    }
  }

  valueType(what: string): GgufValueType {
    const at = this.pos;
    const t = this.u32(what);
    if (!(t in GgufValueType) || typeof GgufValueType[t] !== "string") {
      this.fail(`${what}: unknown GGUF value type ${t} (expected 0..12)`, at);
    }
    return t as GgufValueType;
  }

  /** Reads one value of `type`; returns it with its full wire type. */
  value(type: GgufValueType, what: string, depth: number): { value: GgufValue; type: GgufType } {
    if (type === GgufValueType.STRING) return { value: this.string(what), type };
    if (type !== GgufValueType.ARRAY) return { value: this.scalar(type, what), type };
    if (depth >= GGUF_LIMITS.maxArrayDepth) this.fail(`${what}: arrays nested deeper than ${GGUF_LIMITS.maxArrayDepth}`);
    const itemType = this.valueType(`item type of ${what}`);
    const n = this.count(`item count of ${what}`, minEncodedSize(itemType), GGUF_LIMITS.maxArrayLength);
    const items: GgufValue[] = new Array(n);
    if (itemType !== GgufValueType.ARRAY) {
      for (let i = 0; i < n; i++) items[i] = this.value(itemType, what, depth + 1).value;
      return { value: items, type: { array: itemType } };
    }
    const itemTypes: GgufType[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const inner = this.value(GgufValueType.ARRAY, `${what}[${i}]`, depth + 1);
      items[i] = inner.value;
      itemTypes[i] = inner.type;
    }
    const first = JSON.stringify(itemTypes[0] ?? { array: GgufValueType.UINT8 });
    const uniform = itemTypes.every((t) => JSON.stringify(t) === first);
    const arrayType: GgufArrayType = { array: itemTypes[0] ?? { array: GgufValueType.UINT8 } };
    if (!uniform) arrayType.itemTypes = itemTypes;
    return { value: items, type: arrayType };
  }
}

/** Parses the header of one GGUF file from `bytes`, a prefix of a file of `fileSize` bytes. */
export function parseGgufHeader(bytes: Uint8Array, fileSize: number, fileName: string, fileIndex = 0): GgufHeader {
  const c = new Cursor(bytes, fileSize, fileName);
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) {
    c.fail(`not a GGUF file: magic is 0x${magic.toString(16).padStart(8, "0")}, expected 0x${GGUF_MAGIC.toString(16)} ("GGUF")`, 0);
  }
  const version = c.u32("version");
  if (!GGUF_READ_VERSIONS.includes(version)) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    const hint = GGUF_READ_VERSIONS.includes(swapped >>> 0) ? " (this looks like a big-endian GGUF, which is not supported)" : "";
    c.fail(`unsupported GGUF version ${version}; supported: ${GGUF_READ_VERSIONS.join(", ")}${hint}`, 4);
  }
  const tensorCount = c.count("tensor count", 8 + 4 + 4 + 8, Number.MAX_SAFE_INTEGER);
  const kvCount = c.count("metadata key/value count", 8 + 4 + 1, Number.MAX_SAFE_INTEGER);

  const metadata: Record<string, GgufValue> = Object.create(null);
  const metadataTypes: Record<string, GgufType> = Object.create(null);
  for (let i = 0; i < kvCount; i++) {
    const at = c.pos;
    const key = c.string(`key of metadata entry ${i}`);
    if (key in metadata) c.fail(`duplicate metadata key ${JSON.stringify(key)}`, at);
    const type = c.valueType(`type of ${JSON.stringify(key)}`);
    const { value, type: fullType } = c.value(type, `value of ${JSON.stringify(key)}`, 0);
    metadata[key] = value;
    metadataTypes[key] = fullType;
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if ("general.alignment" in metadata) {
    const a = metadata["general.alignment"];
    if (metadataTypes["general.alignment"] !== GgufValueType.UINT32 || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      c.fail(`general.alignment must be a u32 power of two, got ${String(a)}`);
    }
    alignment = a as number;
  }

  const names = new Set<string>();
  const raw: Array<{ name: string; type: GGMLType; shape: number[]; elements: bigint; offset: bigint; at: number }> = [];
  for (let i = 0; i < tensorCount; i++) {
    const at = c.pos;
    const name = c.string(`name of tensor ${i}`, GGUF_LIMITS.maxTensorNameBytes);
    if (names.has(name)) c.fail(`duplicate tensor name ${JSON.stringify(name)}`, at);
    names.add(name);
    const dimsAt = c.pos;
    const nDims = c.u32(`dimension count of tensor ${JSON.stringify(name)}`);
    if (nDims < 1 || nDims > GGUF_LIMITS.maxDims) c.fail(`tensor ${JSON.stringify(name)} has ${nDims} dimensions; expected 1..${GGUF_LIMITS.maxDims}`, dimsAt);
    const shape: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const dimAt = c.pos;
      const ne = c.u64(`dimension ${d} of tensor ${JSON.stringify(name)}`);
      if (ne > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor ${JSON.stringify(name)} dimension ${d} is ${ne}, absurdly large`, dimAt);
      elements *= ne;
      if (elements > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor ${JSON.stringify(name)} has more than 2^53 elements`, dimAt);
      shape.push(Number(ne));
    }
    const typeAt = c.pos;
    const typeId = c.u32(`type of tensor ${JSON.stringify(name)}`);
    if (!isGGMLType(typeId)) {
      throw new UnsupportedTensorTypeError(`${fileName}: at byte ${typeAt}: tensor ${JSON.stringify(name)} has unknown ggml type ${typeId}`);
    }
    const blockSize = GGML_TYPES[typeId].blockSize;
    if (shape[0]! % blockSize !== 0) {
      c.fail(`tensor ${JSON.stringify(name)} of type ${ggmlTypeName(typeId)} has rows of ${shape[0]} values, not a multiple of the block size ${blockSize}`, dimsAt);
    }
    const offsetAt = c.pos;
    const offset = c.u64(`data offset of tensor ${JSON.stringify(name)}`);
    if (offset % BigInt(alignment) !== 0n) {
      c.fail(`tensor ${JSON.stringify(name)} data offset ${offset} is not a multiple of the alignment ${alignment}`, offsetAt);
    }
    raw.push({ name, type: typeId, shape, elements, offset, at });
  }

  const headerBytes = c.pos;
  const dataStart = Math.ceil(headerBytes / alignment) * alignment;
  if (raw.length > 0 && dataStart > fileSize) c.fail(`tensor data should start at byte ${dataStart} but the file has only ${fileSize} bytes`);

  const tensors: GgufTensorInfo[] = raw.map((t) => {
    const byteSize = ggmlByteSize(t.type, t.elements)!;
    const end = BigInt(dataStart) + t.offset + byteSize;
    if (end > BigInt(fileSize)) {
      c.fail(`tensor ${JSON.stringify(t.name)} (${ggmlTypeName(t.type)} [${t.shape.join(", ")}], ${byteSize} bytes at data offset ${t.offset}) ends at byte ${end}, past the end of the file (${fileSize} bytes)`, t.at);
    }
    return {
      name: t.name,
      type: t.type,
      shape: t.shape,
      elements: Number(t.elements),
      byteSize: Number(byteSize),
      offset: t.offset,
      fileIndex,
      dataOffset: dataStart + Number(t.offset),
    };
  });

  // Overlapping tensors mean a corrupt offset table: two tensors would share bytes.
  const byOffset = [...tensors].sort((a, b) => a.dataOffset - b.dataOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (cur.dataOffset < prev.dataOffset + prev.byteSize) {
      c.fail(`tensors ${JSON.stringify(prev.name)} and ${JSON.stringify(cur.name)} overlap (data offsets ${prev.offset} and ${cur.offset})`);
    }
  }

  return { version, metadata, metadataTypes, tensors, alignment, dataStart, headerBytes };
}
