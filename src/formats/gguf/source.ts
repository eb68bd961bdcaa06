/**
 * Random-access byte sources: the one thing a GGUF reader needs from a file. Reading is
 * always by range, so a 10 GB model is inspected by touching only its header.
 */
import { FormatError } from "../errors.js";

export interface ByteSource {
  /** For error messages: a path, a File's name, or "<buffer>". */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`; the range must lie inside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: reads target.length bytes at `offset` straight into `target` (a view of a model's
   * WebAssembly memory, say), so loading a model needs no second copy of it in JS memory.
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Reads into `target` with the source's readInto where it has one, else read and copy. */
export async function readBytesInto(source: ByteSource, offset: number, target: Uint8Array): Promise<void> {
  if (source.readInto) return source.readInto(offset, target);
  target.set(await source.read(offset, target.length));
}

function checkRange(source: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new FormatError(`${source.name}: read of ${length} bytes at offset ${offset} lies outside the file (${source.size} bytes)`);
  }
}

/** An in-memory buffer. Reads return views, not copies. */
export class BufferSource implements ByteSource {
  readonly size: number;
  private readonly bytes: Uint8Array;
  constructor(data: ArrayBuffer | SharedArrayBuffer | Uint8Array, readonly name = "<buffer>") {
    this.bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    this.size = this.bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

/** A browser `Blob` / `File`: each read slices the blob, so nothing is loaded whole. */
export class BlobSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  constructor(private readonly blob: Blob, name?: string) {
    this.size = blob.size;
    this.name = name ?? ("name" in blob && typeof blob.name === "string" ? blob.name : "<blob>");
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
  async close(): Promise<void> {}
}

/** A file on disk through a Node (or Deno/Bun) `fs.promises` file handle. */
export class FileSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: import("node:fs/promises").FileHandle,
  ) {}

  static async open(path: string): Promise<FileSource> {
    // Imported lazily so that browser bundles of this module never pull in node:fs.
    const fs = await import("node:fs/promises");
    const handle = await fs.open(path, "r");
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new FormatError(`${path}: not a regular file`);
      return new FileSource(path, stat.size, handle);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, target: Uint8Array): Promise<void> {
    const length = target.length;
    checkRange(this, offset, length);
    let done = 0;
    while (done < length) {
      // At most 1 GiB per call: Node caps a single read below 2 GiB.
      const { bytesRead } = await this.handle.read(target, done, Math.min(length - done, 1 << 30), offset + done);
      if (bytesRead === 0) throw new FormatError(`${this.name}: file shrank while reading at offset ${offset + done}`);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * A URL served with HTTP range requests (`Accept-Ranges: bytes`), for models hosted next to
 * a web page. The size comes from a HEAD request.
 */
export class UrlSource implements ByteSource {
  private constructor(readonly name: string, readonly size: number, private readonly url: string) {}

  static async open(url: string): Promise<UrlSource> {
    const head = await fetch(url, { method: "HEAD" });
    if (!head.ok) throw new FormatError(`${url}: HTTP ${head.status} on HEAD`);
    const size = Number(head.headers.get("content-length"));
    if (!Number.isSafeInteger(size) || size < 0) throw new FormatError(`${url}: the server sent no usable Content-Length`);
    return new UrlSource(url, size, url);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    if (length === 0) return new Uint8Array(0);
    const response = await fetch(this.url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (response.status !== 206 && !(response.status === 200 && offset === 0 && length === this.size)) {
      throw new FormatError(`${this.url}: expected a 206 range response for bytes ${offset}-${offset + length - 1}, got HTTP ${response.status}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length !== length) throw new FormatError(`${this.url}: asked for ${length} bytes at ${offset}, got ${bytes.length}`);
    return bytes;
  }

  async close(): Promise<void> {}
}

/** What `openGguf` and friends accept as a file. */
export type ByteInput = string | URL | Blob | ArrayBuffer | SharedArrayBuffer | Uint8Array | ByteSource;

function isByteSource(input: unknown): input is ByteSource {
  return typeof input === "object" && input !== null && "read" in input && "size" in input && "close" in input;
}

/** Opens any ByteInput: a path (or file: URL) on disk, an http(s) URL, a Blob, or bytes. */
export async function openByteSource(input: ByteInput): Promise<ByteSource> {
  if (isByteSource(input)) return input;
  if (typeof input === "string" || input instanceof URL) {
    const text = input.toString();
    if (/^https?:\/\//.test(text)) return UrlSource.open(text);
    if (input instanceof URL || text.startsWith("file:")) {
      const { fileURLToPath } = await import("node:url");
      return FileSource.open(fileURLToPath(input));
    }
    return FileSource.open(text);
  }
  if (typeof Blob !== "undefined" && input instanceof Blob) return new BlobSource(input);
  return new BufferSource(input as ArrayBuffer | SharedArrayBuffer | Uint8Array);
}
