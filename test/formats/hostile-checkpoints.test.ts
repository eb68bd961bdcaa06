/**
 * Issue 19: tiny checkpoints that claim huge things. Each hostile file is a few KB and must be
 * refused with a FormatError naming what is wrong, quickly and without allocating what it
 * claims: a 512 KiB pickle integer (was quadratic: > 60 s), dicts that contain themselves or
 * nest 200000 deep (was a stack overflow), zero-stride / oversized views, zip entries whose
 * declared sizes lie, and zip bombs (inflated only as far as the tensor read needs).
 */
import { deflateSync } from "fflate";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/formats/errors.js";
import { PICKLE_LIMITS, unpickle } from "../../src/formats/pickle.js";
import { openTorchCheckpoint, torchStateDictPickle } from "../../src/formats/pytorch.js";
import { crc32 } from "../../src/formats/pytorch-zip.js";

interface RawEntry {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** Lie about the uncompressed size in the directory. */
  declaredSize?: number;
}

/** A zip archive in memory (stored or deflated entries, sizes as given). */
function zip(entries: RawEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.deflate ? deflateSync(e.data, { level: 1 }) : e.data;
    const size = e.declaredSize ?? e.data.length;
    const local = new Uint8Array(30 + name.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, e.deflate ? 8 : 0, true);
    l.setUint32(14, crc32(e.data), true);
    l.setUint32(18, body.length, true);
    l.setUint32(22, size, true);
    l.setUint16(26, name.length, true);
    local.set(name, 30);
    const c = new Uint8Array(46 + name.length);
    const d = new DataView(c.buffer);
    d.setUint32(0, 0x02014b50, true);
    d.setUint16(4, 20, true);
    d.setUint16(6, 20, true);
    d.setUint16(10, e.deflate ? 8 : 0, true);
    d.setUint32(16, crc32(e.data), true);
    d.setUint32(20, body.length, true);
    d.setUint32(24, size, true);
    d.setUint16(28, name.length, true);
    d.setUint32(42, offset, true);
    c.set(name, 46);
    central.push(c);
    parts.push(local, body);
    offset += local.length + body.length;
  }
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, cdSize, true);
  v.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const bytes = (...b: number[]) => Uint8Array.from(b);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const u32 = (v: number) => bytes(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
/** BINUNICODE */
const str = (s: string) => {
  const b = new TextEncoder().encode(s);
  return concat(bytes(0x58), u32(b.length), b);
};
/** An int as BININT (32-bit) or LONG1 (8 bytes). */
const int = (v: number) => {
  if (v < 2 ** 31) return concat(bytes(0x4a), u32(v));
  const b = new Uint8Array(9);
  new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
  return concat(bytes(0x8a, 8), b.subarray(0, 8));
};

/**
 * data.pkl of one tensor with a hand-written view: OrderedDict-free {name: _rebuild_tensor_v2(
 * storage, offset, shape, stride)}, the storage ('storage', FloatStorage, '0', 'cpu', numel).
 */
function tensorPickle(numel: number, shape: number[], stride: number[], offset = 0): Uint8Array {
  return concat(
    bytes(0x80, 2, 0x7d), // PROTO 2, EMPTY_DICT
    str("w"),
    bytes(0x63), new TextEncoder().encode("torch._utils\n_rebuild_tensor_v2\n"),
    bytes(0x28), // MARK: the args tuple
    bytes(0x28), str("storage"), bytes(0x63), new TextEncoder().encode("torch\nFloatStorage\n"), str("0"), str("cpu"), int(numel), bytes(0x74, 0x51), // persistent id
    int(offset),
    bytes(0x28), ...shape.map(int), bytes(0x74),
    bytes(0x28), ...stride.map(int), bytes(0x74),
    bytes(0x89), // requires_grad False
    bytes(0x74, 0x52), // TUPLE, REDUCE
    bytes(0x73, 0x2e), // SETITEM, STOP
  );
}

async function refused(file: Uint8Array, why: RegExp): Promise<void> {
  const t0 = performance.now();
  let error: unknown;
  try {
    const c = await openTorchCheckpoint(file);
    // Opening may succeed when only reading is hostile: read every tensor.
    try {
      for (const t of c.tensors) await c.readTensor(t.name);
    } finally {
      await c.close();
    }
  } catch (e) {
    error = e;
  }
  expect(error, "expected a refusal").toBeInstanceOf(FormatError);
  expect((error as Error).message).toMatch(why);
  expect(performance.now() - t0).toBeLessThan(5000);
}

describe("pickle integers", () => {
  it("a 512 KiB LONG4 integer is refused at once (was quadratic)", () => {
    const n = 512 << 10;
    const data = concat(bytes(0x80, 2, 0x8b), u32(n), new Uint8Array(n).fill(0x7f), bytes(0x2e));
    const t0 = performance.now();
    expect(() => unpickle(data, { globals: {} })).toThrow(/integer of 524288 bytes exceeds the 1024-byte limit/);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it("integers up to the limit are read exactly, in linear time", () => {
    const n = PICKLE_LIMITS.maxLongBytes;
    const raw = new Uint8Array(n).fill(0xff); // -1
    expect(unpickle(concat(bytes(0x80, 2, 0x8b), u32(n), raw, bytes(0x2e)), { globals: {} })).toBe(-1);
    raw[n - 1] = 0x7f; // 2^(8n-1) - 1
    expect(unpickle(concat(bytes(0x80, 2, 0x8b), u32(n), raw, bytes(0x2e)), { globals: {} })).toBe((1n << BigInt(8 * n - 1)) - 1n);
    expect(unpickle(concat(bytes(0x80, 2, 0x8a, 3), bytes(0x01, 0x02, 0x83), bytes(0x2e)), { globals: {} })).toBe(0x830201 - 0x1000000);
    const digits = "9".repeat(3000);
    expect(() => unpickle(concat(bytes(0x80, 2, 0x4c), new TextEncoder().encode(`${digits}L\n`), bytes(0x2e)), { globals: {} })).toThrow(/3000 digits/);
  });
});

describe("state dicts that are not trees", () => {
  it("a dict that contains itself is a FormatError, not a stack overflow", async () => {
    // {}: MEMOIZE; then d["self"] = d
    const pkl = concat(bytes(0x80, 4, 0x7d, 0x94), str("self"), bytes(0x68, 0), bytes(0x73, 0x2e));
    await refused(zip([{ name: "m/data.pkl", data: pkl }]), /refers to itself at "self"/);
  });

  it("dicts nested 200000 deep are a FormatError, not a stack overflow", async () => {
    const depth = 200_000;
    const open = concat(str("a"), bytes(0x7d));
    const parts: Uint8Array[] = [bytes(0x80, 2, 0x7d)];
    for (let i = 0; i < depth; i++) parts.push(open);
    for (let i = 0; i < depth; i++) parts.push(bytes(0x73));
    parts.push(bytes(0x2e));
    const pkl = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      pkl.set(p, at);
      at += p.length;
    }
    await refused(zip([{ name: "m/data.pkl", data: pkl }]), /nested more than 64 deep/);
  });

  it("a cyclic list inside a tensor's arguments is described, not stringified", async () => {
    // shape = a list that contains itself
    const pkl = concat(
      bytes(0x80, 2, 0x7d), str("w"),
      bytes(0x63), new TextEncoder().encode("torch._utils\n_rebuild_tensor_v2\n"),
      bytes(0x28),
      bytes(0x28), str("storage"), bytes(0x63), new TextEncoder().encode("torch\nFloatStorage\n"), str("0"), str("cpu"), int(1), bytes(0x74, 0x51),
      int(0),
      bytes(0x5d, 0x94, 0x68, 0, 0x61), // EMPTY_LIST, MEMOIZE, GET 0, APPEND: l = [l]
      bytes(0x29), bytes(0x89), bytes(0x74, 0x52, 0x73, 0x2e),
    );
    await refused(zip([{ name: "m/data.pkl", data: pkl }, { name: "m/data/0", data: new Uint8Array(4) }]), /tensor size \[\[\[…\]\]\] is not a tuple/);
  });
});

describe("views that claim more than their storage", () => {
  it("a zero-stride [2^31, 2^31] view over one element", async () => {
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(1, [2 ** 31, 2 ** 31], [0, 0]) }, { name: "m/data/0", data: new Uint8Array(4) }]), /claims more than 1099511627776 elements|claims 4611686018427387904 elements/);
  });

  it("a zero-stride [1000, 1000] view over one element (no overflow to hide behind)", async () => {
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(1, [1000, 1000], [0, 0]) }, { name: "m/data/0", data: new Uint8Array(4) }]), /claims 1000000 elements over a storage of 1/);
  });

  it("[2^15, 2^15] F32 over a 4-byte stored entry", async () => {
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(2 ** 30, [2 ** 15, 2 ** 15], [2 ** 15, 1]) }, { name: "m/data/0", data: new Uint8Array(4) }]), /claims 1073741824 F32 values \(4294967296 bytes\); its archive entry holds 4/);
  });

  it("a stored entry whose directory claims more than it holds", async () => {
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(2 ** 28, [2 ** 14, 2 ** 14], [2 ** 14, 1]) }, { name: "m/data/0", data: new Uint8Array(4), declaredSize: 2 ** 30 }]), /declares 1073741824 bytes but holds 4/);
  });

  it("a view past the end of its storage, and mismatched strides", async () => {
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(4, [2, 2], [2, 1], 1) }, { name: "m/data/0", data: new Uint8Array(16) }]), /reaches element 4 of a 4-element storage/);
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(4, [2, 2], [1]) }, { name: "m/data/0", data: new Uint8Array(16) }]), /1 strides for 2 dimensions/);
  });
});

describe("zip bombs", () => {
  it("a deflated entry declaring more than deflate can produce is refused before inflating", async () => {
    const data = new Uint8Array(1 << 20);
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(4, [4], [1]) }, { name: "m/data/0", data, deflate: true, declaredSize: 0xfffffff0 }]), /declares 4294967280 bytes, more than deflate can make of its/);
  });

  it("a real 128 MB bomb behind a 16-byte tensor costs 16 bytes: only what the tensor needs is inflated", async () => {
    const size = 128 << 20;
    const bomb = new Uint8Array(size);
    bomb.set([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40], 0); // 1.0, 2.0
    const file = zip([{ name: "m/data.pkl", data: tensorPickle(4, [4], [1]) }, { name: "m/data/0", data: bomb, deflate: true }]);
    expect(file.length).toBeLessThan(1 << 20);
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const ckpt = await openTorchCheckpoint(file);
    expect(Array.from(await ckpt.readTensorF32("w"))).toEqual([1, 2, 0, 0]);
    await ckpt.close();
    // Memory is the measure (the whole bomb would be 128 MB of buffers); time only has to stay
    // bounded on a loaded machine.
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(100 << 20);
  });

  it("an entry that inflates past its declared size is refused", async () => {
    const data = new Uint8Array(1 << 16).fill(7);
    await refused(zip([{ name: "m/data.pkl", data: tensorPickle(4, [4], [1]) }, { name: "m/data/0", data, deflate: true, declaredSize: 16 }]), /CRC-32|inflates to more than/);
  });

  it("deflated storages still read, whole and strided, CRC-checked", async () => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    const pkl = torchStateDictPickle([{ name: "w", dtype: "F32", shape: [2, 3] }]);
    const ckpt = await openTorchCheckpoint(zip([{ name: "m/data.pkl", data: pkl, deflate: true }, { name: "m/data/0", data: new Uint8Array(values.buffer), deflate: true }]));
    expect(Array.from(await ckpt.readTensorF32("w"))).toEqual([0, 1, 2, 3, 4, 5]);
    await ckpt.close();
    const strided = await openTorchCheckpoint(zip([{ name: "m/data.pkl", data: tensorPickle(6, [3, 2], [1, 3]) }, { name: "m/data/0", data: new Uint8Array(values.buffer), deflate: true }]));
    expect(Array.from(await strided.readTensorF32("w"))).toEqual([0, 3, 1, 4, 2, 5]);
    await strided.close();
  });
});
