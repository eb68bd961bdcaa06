/**
 * The ZIP container of PyTorch checkpoints (torch.save since 1.6): random-access reading
 * from the central directory, and streaming writing of STORED entries.
 *
 *   [local header][data] ... [central directory] [zip64 EOCD + locator]? [EOCD]
 *
 * Reading never loads the whole archive: only the end records and the central directory are
 * parsed, and each entry is read by range when asked for. torch stores entries uncompressed
 * (so a tensor read is one range read); deflated entries (a checkpoint re-zipped by hand) are
 * inflated with fflate. Every offset and size is checked against the file before use, so a
 * truncated download fails with the entry it lost. Zip64 is read and written (checkpoints over
 * 4 GiB need it).
 *
 * Declared sizes are not trusted with memory: a stored entry's two sizes must agree, a deflated
 * one may not claim more than deflate can expand its bytes to (1032:1), and inflating streams
 * into a buffer of the bytes asked for (a tensor's range), never one of the declared size, so
 * a zip bomb costs what its tensor declares and no more.
 */
import { Inflate } from "fflate";
import { FormatError } from "./errors.js";
import type { ByteSource } from "./gguf/source.js";
import { writeAll } from "./gguf/writer.js";

export class ZipFormatError extends FormatError {}

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  /** Offset of the local header. */
  localOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;
const MAX_ENTRIES = 1 << 20;
/** Deflate's largest expansion: 258 bytes from about 2 bits (zlib's "1032:1"). */
const MAX_DEFLATE_RATIO = 1032;
/** Compressed bytes fed to the inflater at a time (bounds one step's output to ~66 MB). */
const INFLATE_SLICE = 64 << 10;

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE), continuing from `crc` for chunked input. */
export function crc32(data: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export class ZipReader {
  private readonly byName = new Map<string, ZipEntry>();
  private constructor(private readonly source: ByteSource, readonly entries: ZipEntry[]) {
    for (const e of entries) this.byName.set(e.name, e);
  }

  get name(): string {
    return this.source.name;
  }

  static async open(source: ByteSource): Promise<ZipReader> {
    const fail = (message: string): never => {
      throw new ZipFormatError(`${source.name}: ${message}`);
    };
    if (source.size < 22) fail(`truncated or not a zip archive (${source.size} bytes, no end-of-central-directory record)`);
    const tailLength = Math.min(source.size, 22 + MAX_COMMENT + 20);
    const tailStart = source.size - tailLength;
    const tail = await source.read(tailStart, tailLength);
    const t = dv(tail);
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (t.getUint32(i, true) === SIG_EOCD && i + 22 + t.getUint16(i + 20, true) <= tail.length) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) fail("truncated or not a zip archive: no end-of-central-directory record (an incomplete download?)");
    let count = t.getUint16(eocd + 10, true);
    let cdSize = t.getUint32(eocd + 12, true);
    let cdOffset = t.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || t.getUint32(loc, true) !== SIG_LOCATOR64) fail("zip64 end record expected but its locator is missing");
      const eocd64At = Number(t.getBigUint64(loc + 8, true));
      if (eocd64At + 56 > source.size) fail(`zip64 end record at ${eocd64At} lies outside the file`);
      const e64 = dv(await source.read(eocd64At, 56));
      if (e64.getUint32(0, true) !== SIG_EOCD64) fail(`no zip64 end record at offset ${eocd64At}`);
      count = Number(e64.getBigUint64(32, true));
      cdSize = Number(e64.getBigUint64(40, true));
      cdOffset = Number(e64.getBigUint64(48, true));
    }
    if (count > MAX_ENTRIES) fail(`${count} entries exceeds the limit of ${MAX_ENTRIES}`);
    if (cdOffset + cdSize > source.size) fail(`truncated: central directory [${cdOffset}, ${cdOffset + cdSize}) lies outside the file (${source.size} bytes)`);
    const cd = await source.read(cdOffset, cdSize);
    const c = dv(cd);
    const entries: ZipEntry[] = [];
    let p = 0;
    const decoder = new TextDecoder();
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || c.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} at ${cdOffset + p} is damaged`);
      const method = c.getUint16(p + 10, true);
      const crc = c.getUint32(p + 16, true);
      let compressedSize = c.getUint32(p + 20, true);
      let size = c.getUint32(p + 24, true);
      const nameLength = c.getUint16(p + 28, true);
      const extraLength = c.getUint16(p + 30, true);
      const commentLength = c.getUint16(p + 32, true);
      let localOffset = c.getUint32(p + 42, true);
      if (p + 46 + nameLength + extraLength + commentLength > cd.length) fail(`central directory entry ${i} runs past the directory`);
      const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLength));
      // Zip64 extra field: the 64-bit values present for each 32-bit field set to 0xFFFFFFFF.
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = c.getUint16(e, true);
        const len = c.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          const next = (): number => {
            if (q + 8 > e + 4 + len) fail(`entry ${JSON.stringify(name)}: zip64 extra field too short`);
            const v = Number(c.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
        }
        e += 4 + len;
      }
      if (method !== 0 && method !== 8) fail(`entry ${JSON.stringify(name)} uses compression method ${method}; only stored (0) and deflate (8) are supported`);
      if (method === 0 && compressedSize !== size) fail(`stored entry ${JSON.stringify(name)} declares ${size} bytes but holds ${compressedSize}`);
      if (method === 8 && size > compressedSize * MAX_DEFLATE_RATIO + 1024) {
        fail(`deflated entry ${JSON.stringify(name)} declares ${size} bytes, more than deflate can make of its ${compressedSize} (a zip bomb or a damaged directory)`);
      }
      if (localOffset + 30 + compressedSize > cdOffset) fail(`truncated: entry ${JSON.stringify(name)} (${compressedSize} bytes at ${localOffset}) runs into the central directory`);
      entries.push({ name, method, crc32: crc, compressedSize, size, localOffset });
      p += 46 + nameLength + extraLength + commentLength;
    }
    return new ZipReader(source, entries);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Absolute offset of a stored entry's first data byte (reads its local header). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const local = dv(await this.source.read(entry.localOffset, 30));
    if (local.getUint32(0, true) !== SIG_LOCAL) throw new ZipFormatError(`${this.source.name}: no local header for ${JSON.stringify(entry.name)} at ${entry.localOffset}`);
    const start = entry.localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (start + entry.compressedSize > this.source.size) {
      throw new ZipFormatError(`${this.source.name}: truncated: entry ${JSON.stringify(entry.name)} needs bytes up to ${start + entry.compressedSize}, the file has ${this.source.size}`);
    }
    return start;
  }

  /** Bytes [offset, offset+length) of an entry's uncompressed content. */
  async readRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > entry.size) {
      throw new ZipFormatError(`${this.source.name}: read of ${length} bytes at ${offset} outside entry ${JSON.stringify(entry.name)} (${entry.size} bytes)`);
    }
    if (entry.method === 0) return this.source.read((await this.dataOffset(entry)) + offset, length);
    return this.inflate(entry, offset, length);
  }

  /** The whole entry, CRC-checked; `maxBytes` refuses a larger one before reading it. */
  async read(entry: ZipEntry, maxBytes = Infinity): Promise<Uint8Array> {
    if (entry.size > maxBytes) throw new ZipFormatError(`${this.source.name}: entry ${JSON.stringify(entry.name)} is ${entry.size} bytes; at most ${maxBytes} are expected`);
    const data = entry.method === 0 ? await this.source.read(await this.dataOffset(entry), entry.compressedSize) : await this.inflate(entry, 0, entry.size);
    if (data.length !== entry.size) throw new ZipFormatError(`${this.source.name}: entry ${JSON.stringify(entry.name)} is ${data.length} bytes, the directory says ${entry.size}`);
    if (crc32(data) !== entry.crc32) throw new ZipFormatError(`${this.source.name}: entry ${JSON.stringify(entry.name)} fails its CRC-32 check (corrupt file)`);
    return data;
  }

  /**
   * Inflates a deflated entry as a stream, keeping only [offset, offset+length): the buffer is
   * the size asked for, and inflating stops once it is full. Output beyond the declared size,
   * or a stream that ends short of it, is an error.
   */
  private async inflate(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    const where = `${this.source.name}: entry ${JSON.stringify(entry.name)}`;
    const out = new Uint8Array(length);
    const end = offset + length;
    let produced = 0;
    let failure: string | undefined;
    const inflater = new Inflate((chunk) => {
      const from = produced;
      produced += chunk.length;
      if (produced > entry.size) {
        failure ??= `inflates to more than the ${entry.size} bytes its directory declares`;
        return;
      }
      const a = Math.max(from, offset);
      const b = Math.min(produced, end);
      if (a < b) out.set(chunk.subarray(a - from, b - from), a - offset);
    });
    const start = await this.dataOffset(entry);
    let at = 0;
    while (at < entry.compressedSize && produced < end && failure === undefined) {
      const n = Math.min(INFLATE_SLICE, entry.compressedSize - at);
      const slice = await this.source.read(start + at, n);
      at += n;
      try {
        inflater.push(slice, at >= entry.compressedSize);
      } catch (error) {
        throw new ZipFormatError(`${where} does not inflate (${error instanceof Error ? error.message : String(error)})`);
      }
    }
    if (failure !== undefined) throw new ZipFormatError(`${where} ${failure}`);
    if (produced < end) throw new ZipFormatError(`${where} inflates to ${produced} bytes, the directory says ${entry.size}`);
    return out;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/**
 * Streams STORED entries into an open file handle. torch aligns each entry's data to 64
 * bytes (padding in the local extra field) so loaders can map tensors in place; so do we.
 */
export class ZipWriter {
  private offset = 0;
  private readonly central: { name: Uint8Array; crc: number; size: number; localOffset: number }[] = [];
  constructor(private readonly handle: import("node:fs/promises").FileHandle, private readonly alignment = 64) {}

  async add(name: string, data: Uint8Array): Promise<void> {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data);
    const big = data.length >= 0xffffffff;
    const zip64Extra = big ? 20 : 0;
    const headerEnd = this.offset + 30 + nameBytes.length + zip64Extra + 4;
    const pad = (this.alignment - (headerEnd % this.alignment)) % this.alignment;
    const header = new Uint8Array(30 + nameBytes.length + zip64Extra + 4 + pad);
    const h = dv(header);
    h.setUint32(0, SIG_LOCAL, true);
    h.setUint16(4, big ? 45 : 20, true);
    h.setUint16(6, 0x0800, true); // UTF-8 names
    h.setUint16(8, 0, true);
    h.setUint32(14, crc, true);
    h.setUint32(18, big ? 0xffffffff : data.length, true);
    h.setUint32(22, big ? 0xffffffff : data.length, true);
    h.setUint16(26, nameBytes.length, true);
    h.setUint16(28, zip64Extra + 4 + pad, true);
    header.set(nameBytes, 30);
    let e = 30 + nameBytes.length;
    if (big) {
      h.setUint16(e, 0x0001, true);
      h.setUint16(e + 2, 16, true);
      h.setBigUint64(e + 4, BigInt(data.length), true);
      h.setBigUint64(e + 12, BigInt(data.length), true);
      e += 20;
    }
    h.setUint16(e, 0x4246, true); // "FB": torch's alignment padding field
    h.setUint16(e + 2, pad, true);
    await writeAll(this.handle, header, this.offset);
    this.central.push({ name: nameBytes, crc, size: data.length, localOffset: this.offset });
    this.offset += header.length;
    await writeAll(this.handle, data, this.offset);
    this.offset += data.length;
  }

  /** Writes the central directory and end records. */
  async finish(): Promise<void> {
    const parts: Uint8Array[] = [];
    const cdOffset = this.offset;
    for (const c of this.central) {
      const needs64 = c.size >= 0xffffffff || c.localOffset >= 0xffffffff;
      const extra = needs64 ? 28 : 0;
      const b = new Uint8Array(46 + c.name.length + extra);
      const d = dv(b);
      d.setUint32(0, SIG_CENTRAL, true);
      d.setUint16(4, 45, true);
      d.setUint16(6, needs64 ? 45 : 20, true);
      d.setUint16(8, 0x0800, true);
      d.setUint32(16, c.crc, true);
      d.setUint32(20, needs64 ? 0xffffffff : c.size, true);
      d.setUint32(24, needs64 ? 0xffffffff : c.size, true);
      d.setUint16(28, c.name.length, true);
      d.setUint16(30, extra, true);
      d.setUint32(42, needs64 ? 0xffffffff : c.localOffset, true);
      b.set(c.name, 46);
      if (needs64) {
        const e = 46 + c.name.length;
        d.setUint16(e, 0x0001, true);
        d.setUint16(e + 2, 24, true);
        d.setBigUint64(e + 4, BigInt(c.size), true);
        d.setBigUint64(e + 12, BigInt(c.size), true);
        d.setBigUint64(e + 20, BigInt(c.localOffset), true);
      }
      parts.push(b);
    }
    const cdSize = parts.reduce((a, b) => a + b.length, 0);
    const zip64 = cdOffset + cdSize >= 0xffffffff || this.central.length >= 0xffff;
    if (zip64) {
      const r = new Uint8Array(56 + 20);
      const d = dv(r);
      d.setUint32(0, SIG_EOCD64, true);
      d.setBigUint64(4, 44n, true);
      d.setUint16(12, 45, true);
      d.setUint16(14, 45, true);
      d.setBigUint64(24, BigInt(this.central.length), true);
      d.setBigUint64(32, BigInt(this.central.length), true);
      d.setBigUint64(40, BigInt(cdSize), true);
      d.setBigUint64(48, BigInt(cdOffset), true);
      d.setUint32(56, SIG_LOCATOR64, true);
      d.setBigUint64(64, BigInt(cdOffset + cdSize), true);
      d.setUint32(72, 1, true);
      parts.push(r);
    }
    const end = new Uint8Array(22);
    const d = dv(end);
    d.setUint32(0, SIG_EOCD, true);
    d.setUint16(8, zip64 ? 0xffff : this.central.length, true);
    d.setUint16(10, zip64 ? 0xffff : this.central.length, true);
    d.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
    d.setUint32(16, zip64 ? 0xffffffff : cdOffset, true);
    parts.push(end);
    for (const p of parts) {
      await writeAll(this.handle, p, this.offset);
      this.offset += p.length;
    }
  }
}
