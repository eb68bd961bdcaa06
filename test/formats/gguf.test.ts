import { describe, expect, it } from "vitest";
import { readFile, mkdtemp, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGguf, encodeGguf, writeGguf, writeGgufSplit, parseGgufHeader, GgufValueType, BlobSource, type GgufWriteSpec } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { GgufFormatError, UnsupportedTensorTypeError } from "../../src/formats/errors.js";
import { hasShared, sharedPath } from "../helpers/shared.js";

const referenceModels = [
  "reference/llama-d64-l2-h4kv1-synthvocab-f32.gguf",
  "reference/llama-d128-l4-h4kv2-tied-q4_0.gguf",
  "reference/mixtral-d128-l2-e8top2-q8_0.gguf",
  "tokenizer/llama.gguf",
];

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "zh-llama-gguf-"));
}

/** A small model-like spec with every metadata value type, nested arrays and two tensor types. */
function sampleSpec(): GgufWriteSpec {
  const f32 = new Float32Array(64 * 3).map((_, i) => Math.sin(i));
  return {
    metadata: {
      "general.architecture": "llama",
      "general.name": "中文 sample ✓",
      "llama.context_length": 4096,
      "llama.rope.freq_base": 10000.5,
      "test.u8": 250,
      "test.i8": -5,
      "test.u16": 65000,
      "test.i16": -30000,
      "test.i32": -2000000000,
      "test.f64": Math.PI,
      "test.u64": 2n ** 63n + 5n,
      "test.i64": -(2n ** 62n),
      "test.bool": true,
      "test.empty_string": "",
      "test.strings": ["▁the", "<0x0A>", "你好"],
      "test.nested": [[1, 2, 3], [4], []],
      "test.mixed_nested": [[1.5, 2.5], ["a", "b"]],
    },
    metadataTypes: {
      "test.u8": GgufValueType.UINT8,
      "test.i8": GgufValueType.INT8,
      "test.u16": GgufValueType.UINT16,
      "test.i16": GgufValueType.INT16,
      "test.i32": GgufValueType.INT32,
      "test.f64": GgufValueType.FLOAT64,
      "test.nested": { array: { array: GgufValueType.INT32 } },
      "test.mixed_nested": { array: { array: GgufValueType.FLOAT32 }, itemTypes: [{ array: GgufValueType.FLOAT32 }, { array: GgufValueType.STRING }] },
    },
    tensors: [
      { name: "a.weight", type: GGMLType.F32, shape: [64, 3], data: new Uint8Array(f32.buffer) },
      { name: "b.weight", type: GGMLType.Q8_0, shape: [32, 2], data: () => new Uint8Array(2 * 34).map((_, i) => i) },
      { name: "c.bias", type: GGMLType.F32, shape: [5], data: new Uint8Array(20).fill(7) },
    ],
  };
}

describe("GGUF round trip", () => {
  it("writes every value type and reads it back identically", async () => {
    const spec = sampleSpec();
    const bytes = await encodeGguf(spec);
    const file = await openGguf(bytes);
    expect(file.version).toBe(3);
    for (const [key, value] of Object.entries(spec.metadata)) {
      if (key === "llama.rope.freq_base") expect(file.metadata[key]).toBeCloseTo(10000.5);
      else expect(file.metadata[key]).toEqual(value);
    }
    expect(file.metadataTypes["llama.context_length"]).toBe(GgufValueType.UINT32);
    expect(file.metadataTypes["test.mixed_nested"]).toEqual(spec.metadataTypes!["test.mixed_nested"]);
    expect(file.tensors.map((t) => [t.name, t.type, t.shape])).toEqual([
      ["a.weight", GGMLType.F32, [64, 3]],
      ["b.weight", GGMLType.Q8_0, [32, 2]],
      ["c.bias", GGMLType.F32, [5]],
    ]);
    for (const t of file.tensors) expect(t.dataOffset % 32).toBe(0);
    expect([...(await file.readTensorBytes("b.weight"))]).toEqual([...new Uint8Array(68).map((_, i) => i)]);
    // Re-encoding what was read gives the same bytes.
    const again = await encodeGguf({
      metadata: file.metadata,
      metadataTypes: file.metadataTypes,
      tensors: await Promise.all(file.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await file.readTensorBytes(t) }))),
    });
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });

  it("honours general.alignment", async () => {
    const spec = sampleSpec();
    spec.metadata["general.alignment"] = 64;
    const file = await openGguf(await encodeGguf(spec));
    expect(file.alignment).toBe(64);
    for (const t of file.tensors) expect(t.dataOffset % 64).toBe(0);
  });

  it.skipIf(!hasShared)("re-encodes llama.cpp gguf-py files byte for byte", async () => {
    for (const rel of referenceModels) {
      const original = await readFile(sharedPath(rel));
      const file = await openGguf(sharedPath(rel));
      const encoded = await encodeGguf({
        metadata: file.metadata,
        metadataTypes: file.metadataTypes,
        tensors: await Promise.all(file.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await file.readTensorBytes(t) }))),
      });
      await file.close();
      expect(Buffer.from(encoded).equals(original), rel).toBe(true);
    }
  });

  it.skipIf(!hasShared)("reads the reference models' hyper-parameters", async () => {
    const file = await openGguf(sharedPath("reference/mixtral-d128-l2-e8top2-q8_0.gguf"));
    expect(file.metadata["general.architecture"]).toBeTypeOf("string");
    const arch = file.metadata["general.architecture"] as string;
    expect(file.metadata[`${arch}.expert_count`]).toBe(8);
    expect(file.metadata[`${arch}.expert_used_count`]).toBe(2);
    expect(file.tensor("blk.0.ffn_gate_exps.weight").shape.length).toBe(3);
    const tokens = file.metadata["tokenizer.ggml.tokens"] as string[];
    expect(tokens.length).toBe(32000);
    await file.close();
  });
});

describe("GGUF sources", () => {
  it("reads the same header from a path, a Blob and a buffer", async () => {
    const dir = await tempDir();
    const path = join(dir, "m.gguf");
    await writeGguf(path, sampleSpec());
    const bytes = await readFile(path);
    const fromPath = await openGguf(path);
    const fromBlob = await openGguf(new Blob([bytes]));
    const fromBuffer = await openGguf(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    for (const f of [fromBlob, fromBuffer]) {
      expect(f.metadata).toEqual(fromPath.metadata);
      expect(f.tensors).toEqual(fromPath.tensors);
      expect(await f.readTensorBytes("a.weight")).toEqual(await fromPath.readTensorBytes("a.weight"));
    }
    expect(fromBlob.sources[0]).toBeInstanceOf(BlobSource);
    await fromPath.close();
  });

  it("refuses to overwrite unless asked and leaves no temp file after a failure", async () => {
    const dir = await tempDir();
    const path = join(dir, "m.gguf");
    await writeGguf(path, sampleSpec());
    await expect(writeGguf(path, sampleSpec())).rejects.toThrow(/already exists/);
    const broken = sampleSpec();
    broken.tensors[1]!.data = () => new Uint8Array(3); // wrong size: fails mid-write
    await expect(writeGguf(path, broken, { overwrite: true })).rejects.toThrow(/needs 68 bytes, got 3/);
    expect(await readdir(dir)).toEqual(["m.gguf"]);
    const still = await openGguf(path);
    expect(still.tensors.length).toBe(3);
    await still.close();
  });
});

describe("split GGUF", () => {
  it("opens name-00001-of-0000N.gguf parts as one model", async () => {
    const dir = await tempDir();
    const spec = sampleSpec();
    const paths = await writeGgufSplit(join(dir, "model"), spec, { maxTensorsPerPart: 1 });
    expect(paths.map((p) => p.slice(dir.length + 1))).toEqual(["model-00001-of-00003.gguf", "model-00002-of-00003.gguf", "model-00003-of-00003.gguf"]);
    const file = await openGguf(paths[0]!);
    expect(file.sources.length).toBe(3);
    expect(file.metadata["general.name"]).toBe("中文 sample ✓");
    expect(file.metadata["split.count"]).toBe(3);
    expect(file.tensors.map((t) => [t.name, t.fileIndex])).toEqual([["a.weight", 0], ["b.weight", 1], ["c.bias", 2]]);
    expect([...(await file.readTensorBytes("c.bias"))]).toEqual(new Array(20).fill(7));
    await file.close();
    // Blobs: the other parts are passed explicitly.
    const blobs = await Promise.all(paths.map(async (p) => new Blob([await readFile(p)])));
    const fromBlobs = await openGguf(blobs[0]!, { parts: blobs.slice(1) });
    expect(fromBlobs.tensors.length).toBe(3);
  });

  it("names a missing part", async () => {
    const dir = await tempDir();
    const paths = await writeGgufSplit(join(dir, "model"), sampleSpec(), { maxTensorsPerPart: 2 });
    await writeFile(paths[1]!, "");
    await expect(openGguf(paths[0]!)).rejects.toThrow(/model-00002-of-00002\.gguf.*truncated/);
  });
});

describe("GGUF bad input", () => {
  const good = () => encodeGguf(sampleSpec());

  async function expectFormatError(bytes: Uint8Array, pattern: RegExp) {
    const error = await openGguf(bytes).then(() => undefined, (e: unknown) => e);
    expect(error, `expected an error matching ${pattern}`).toBeInstanceOf(Error);
    expect(error instanceof GgufFormatError || error instanceof UnsupportedTensorTypeError).toBe(true);
    expect((error as Error).message).toMatch(pattern);
  }

  it("wrong magic", async () => {
    const b = await good();
    b[0] = 0x47 ^ 0xff;
    await expectFormatError(b, /not a GGUF file.*magic/);
  });
  it("unknown and big-endian versions", async () => {
    const b = await good();
    new DataView(b.buffer).setUint32(4, 7, true);
    await expectFormatError(b, /unsupported GGUF version 7/);
    new DataView(b.buffer).setUint32(4, 3, false);
    await expectFormatError(b, /big-endian/);
  });
  it("truncated at every length gives a typed error, never a crash", async () => {
    const b = await good();
    for (let n = 0; n < b.length; n += Math.max(1, Math.floor(n / 16))) {
      await expectFormatError(b.subarray(0, n), /truncated|past the end|ends at byte|outside|should start|remain in the file/);
    }
  });
  it("a count or string length past the end of the file", async () => {
    const b = await good();
    new DataView(b.buffer).setBigUint64(8, 2n ** 40n, true); // tensor count
    await expectFormatError(b, /tensor count is 1099511627776, which needs at least/);
    const c = await good();
    new DataView(c.buffer).setBigUint64(24, 2n ** 50n, true); // length of the first key
    await expectFormatError(c, /at byte 24: .*length of key of metadata entry 0/);
  });
  it("unknown tensor type, misaligned offset, tensor outside the file, duplicate names", async () => {
    const bytes = await good();
    const header = parseGgufHeader(bytes, bytes.length, "x");
    // Find the tensor-info fields of "a.weight": name, n_dims, dims, type, offset.
    const nameAt = Buffer.from(bytes).indexOf("a.weight") ;
    const typeAt = nameAt + 8 + 4 + 16;
    const offsetAt = typeAt + 4;
    const t = bytes.slice();
    new DataView(t.buffer).setUint32(typeAt, 77, true);
    await expectFormatError(t, /unknown ggml type 77/);
    const m = bytes.slice();
    new DataView(m.buffer).setBigUint64(offsetAt, 3n, true);
    await expectFormatError(m, /not a multiple of the alignment 32/);
    const o = bytes.slice();
    new DataView(o.buffer).setBigUint64(offsetAt, BigInt(bytes.length), true);
    await expectFormatError(o, /past the end of the file/);
    const d = bytes.slice();
    d.set(Buffer.from("b.weight"), nameAt);
    await expectFormatError(d, /duplicate tensor name "b.weight"/);
    expect(header.tensors.length).toBe(3);
  });
  it("overlapping tensors and bad alignment values", async () => {
    const bytes = await good();
    const nameAt = Buffer.from(bytes).indexOf("b.weight");
    const offsetAt = nameAt + 8 + 4 + 16 + 4;
    const o = bytes.slice();
    new DataView(o.buffer).setBigUint64(offsetAt, 0n, true);
    await expectFormatError(o, /overlap/);
    const spec = sampleSpec();
    spec.metadata["general.alignment"] = 48;
    await expect(encodeGguf(spec)).rejects.toThrow(/power of two/);
  });
  it("writer rejects values that do not fit their declared type", async () => {
    const spec = sampleSpec();
    spec.metadata["llama.context_length"] = -1;
    await expect(encodeGguf(spec)).rejects.toThrow(/llama.context_length.*UINT32/);
  });
});
