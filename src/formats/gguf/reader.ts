/**
 * Opening GGUF models lazily: the header (metadata + tensor infos) is parsed from the first
 * bytes of the file; tensor data is read on demand, one tensor at a time. Split models
 * (`name-00001-of-00003.gguf`) open as one model whose tensors live in several files.
 */
import { GgufFormatError } from "../errors.js";
import { ggmlTypeName } from "../ggml-types.js";
import { dequantize } from "../quants/index.js";
import { GGUF_LIMITS, SPLIT_FILE_PATTERN, SPLIT_KEYS, splitFileName } from "./constants.js";
import { NeedMoreBytes, parseGgufHeader, type GgufHeader, type GgufTensorInfo, type GgufType, type GgufValue } from "./header.js";
import { openByteSource, readBytesInto, type ByteInput, type ByteSource } from "./source.js";

/** Most headers fit in the first read; bigger ones (large vocabularies) take a second. */
const FIRST_READ_BYTES = 1 << 20;

/** Reads just enough of `source` to parse its GGUF header. */
export async function readGgufHeader(source: ByteSource, fileIndex = 0): Promise<GgufHeader> {
  let length = Math.min(source.size, FIRST_READ_BYTES);
  for (;;) {
    const prefix = await source.read(0, length);
    try {
      return parseGgufHeader(prefix, source.size, source.name, fileIndex);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      // Grow geometrically so a header needs O(log size) re-parses at most.
      length = Math.min(source.size, GGUF_LIMITS.maxHeaderBytes, Math.max(error.needed, length * 4));
    }
  }
}

export interface GgufFileOptions {
  /**
   * For split models opened from Blobs or buffers: the other parts, in order. Paths find
   * their siblings by name.
   */
  parts?: ByteInput[];
}

export class GgufFile {
  private constructor(
    /** One source per split part (one for ordinary files). */
    readonly sources: ByteSource[],
    readonly headers: GgufHeader[],
    readonly tensors: GgufTensorInfo[],
    private readonly byName: Map<string, GgufTensorInfo>,
  ) {}

  /** GGUF version of the (first) file. */
  get version(): number {
    return this.headers[0]!.version;
  }
  /** Metadata of the first file (in split models the other parts hold only split.* keys). */
  get metadata(): Record<string, GgufValue> {
    return this.headers[0]!.metadata;
  }
  get metadataTypes(): Record<string, GgufType> {
    return this.headers[0]!.metadataTypes;
  }
  get alignment(): number {
    return this.headers[0]!.alignment;
  }
  /** Total bytes over all parts. */
  get fileSize(): number {
    return this.sources.reduce((sum, s) => sum + s.size, 0);
  }
  get name(): string {
    return this.sources[0]!.name;
  }

  static async open(input: ByteInput, options: GgufFileOptions = {}): Promise<GgufFile> {
    const first = await openByteSource(input);
    const sources: ByteSource[] = [first];
    try {
      const headers = [await readGgufHeader(first)];
      const count = splitCount(headers[0]!, first.name);
      if (count > 1) {
        const rest = options.parts ?? siblingPaths(first.name, count);
        if (rest.length !== count - 1) {
          throw new GgufFormatError(`${first.name}: split model of ${count} parts, but ${rest.length + 1} were given`);
        }
        for (let i = 1; i < count; i++) {
          const source = await openByteSource(rest[i - 1]!);
          sources.push(source);
          const header = await readGgufHeader(source, i);
          const no = header.metadata[SPLIT_KEYS.no];
          if (Number(no) !== i) throw new GgufFormatError(`${source.name}: expected ${SPLIT_KEYS.no} = ${i}, found ${String(no)}`);
          if (splitCount(header, source.name) !== count) throw new GgufFormatError(`${source.name}: ${SPLIT_KEYS.count} disagrees with the first part's ${count}`);
          headers.push(header);
        }
      }
      const tensors = headers.flatMap((h) => h.tensors);
      const byName = new Map<string, GgufTensorInfo>();
      for (const t of tensors) {
        if (byName.has(t.name)) throw new GgufFormatError(`${sources[t.fileIndex]!.name}: tensor ${JSON.stringify(t.name)} appears in two split parts`);
        byName.set(t.name, t);
      }
      const expected = headers[0]!.metadata[SPLIT_KEYS.tensorsCount];
      if (count > 1 && expected !== undefined && Number(expected) !== tensors.length) {
        throw new GgufFormatError(`${first.name}: ${SPLIT_KEYS.tensorsCount} says ${String(expected)} tensors, the parts hold ${tensors.length}`);
      }
      return new GgufFile(sources, headers, tensors, byName);
    } catch (error) {
      await Promise.all(sources.map((s) => s.close()));
      throw error;
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  tensor(name: string): GgufTensorInfo {
    const info = this.byName.get(name);
    if (!info) throw new GgufFormatError(`${this.name}: no tensor named ${JSON.stringify(name)}`);
    return info;
  }

  /** The tensor's raw bytes, exactly as stored (quantized blocks for quantized types). */
  async readTensorBytes(nameOrInfo: string | GgufTensorInfo): Promise<Uint8Array> {
    const info = typeof nameOrInfo === "string" ? this.tensor(nameOrInfo) : nameOrInfo;
    return this.sources[info.fileIndex]!.read(info.dataOffset, info.byteSize);
  }

  /**
   * The tensor's raw bytes straight into `target` (exactly byteSize long), in pieces of
   * `chunk` bytes with `onBytes(n)` after each: how a model streams into kernel memory.
   */
  async readTensorInto(nameOrInfo: string | GgufTensorInfo, target: Uint8Array, onBytes?: (n: number) => void, chunk = 16 << 20): Promise<void> {
    const info = typeof nameOrInfo === "string" ? this.tensor(nameOrInfo) : nameOrInfo;
    if (target.length !== info.byteSize) throw new GgufFormatError(`${this.name}: tensor ${JSON.stringify(info.name)} has ${info.byteSize} bytes, the target ${target.length}`);
    const source = this.sources[info.fileIndex]!;
    for (let done = 0; done < info.byteSize; ) {
      const n = Math.min(chunk, info.byteSize - done);
      await readBytesInto(source, info.dataOffset + done, target.subarray(done, done + n));
      done += n;
      onBytes?.(n);
    }
  }

  /** Bytes of rows [firstRow, firstRow + rowCount) of a tensor, rows being ne[0] values long. */
  async readTensorRows(nameOrInfo: string | GgufTensorInfo, firstRow: number, rowCount: number): Promise<Uint8Array> {
    const info = typeof nameOrInfo === "string" ? this.tensor(nameOrInfo) : nameOrInfo;
    const rows = info.elements / info.shape[0]!;
    if (!Number.isInteger(firstRow) || !Number.isInteger(rowCount) || firstRow < 0 || rowCount < 0 || firstRow + rowCount > rows) {
      throw new GgufFormatError(`${this.name}: rows ${firstRow}..${firstRow + rowCount} outside tensor ${JSON.stringify(info.name)} of ${rows} rows`);
    }
    const rowBytes = info.byteSize / rows;
    return this.sources[info.fileIndex]!.read(info.dataOffset + firstRow * rowBytes, rowCount * rowBytes);
  }

  /** The tensor dequantized to float32, in GGUF's order (ne[0] fastest). */
  async readTensorF32(nameOrInfo: string | GgufTensorInfo): Promise<Float32Array> {
    const info = typeof nameOrInfo === "string" ? this.tensor(nameOrInfo) : nameOrInfo;
    return dequantize(info.type, await this.readTensorBytes(info), info.elements);
  }

  describeTensor(info: GgufTensorInfo): string {
    return `${info.name} ${ggmlTypeName(info.type)} [${info.shape.join(", ")}]`;
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
  }
}

function splitCount(header: GgufHeader, name: string): number {
  const raw = header.metadata[SPLIT_KEYS.count];
  if (raw === undefined) return 1;
  const count = Number(raw);
  if (!Number.isInteger(count) || count < 1 || count > 99999) throw new GgufFormatError(`${name}: ${SPLIT_KEYS.count} is ${String(raw)}, expected 1..99999`);
  return count;
}

/** The other parts' paths, from the first part's `name-00001-of-0000N.gguf` path. */
function siblingPaths(firstName: string, count: number): string[] {
  const slash = Math.max(firstName.lastIndexOf("/"), firstName.lastIndexOf("\\"));
  const dir = firstName.slice(0, slash + 1);
  const match = SPLIT_FILE_PATTERN.exec(firstName.slice(slash + 1));
  if (!match || Number(match[2]) !== 1 || Number(match[3]) !== count) {
    throw new GgufFormatError(`${firstName}: a split model of ${count} parts must be opened from its first part, named like NAME-00001-of-${String(count).padStart(5, "0")}.gguf`);
  }
  return Array.from({ length: count - 1 }, (_, i) => dir + splitFileName(match[1]!, i + 1, count));
}

/** Opens a GGUF model (file path, URL, Blob/File, bytes) lazily. Call `close()` when done. */
export function openGguf(input: ByteInput, options?: GgufFileOptions): Promise<GgufFile> {
  return GgufFile.open(input, options);
}
