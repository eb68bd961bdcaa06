/**
 * Issue 19: quantize streams every tensor through the writer in row slices, so a tensor larger
 * than one buffer may be (4 GiB: a Mixtral expert stack, a 13B's F32 embedding) never needs
 * one; the bytes are the same as quantizing the tensor whole. The writer takes a tensor as
 * consecutive pieces and checks their total.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { convertTensorSlices } from "../../src/convert/quantize.js";
import { quantizeGguf } from "../../src/convert/index.js";
import { encodeGguf, openGguf, writeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize, quantize } from "../../src/formats/quants/index.js";
import { tempDir } from "../lora/helpers.js";

function randomF32(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2;
  }
  return out;
}

describe("quantize in row slices", () => {
  it("slices are bounded and together equal the whole tensor quantized at once", async () => {
    const rows = 96;
    const cols = 256;
    const w = randomF32(rows * cols);
    const file = await openGguf(await encodeGguf({ metadata: { "general.architecture": "llama" }, tensors: [{ name: "w", type: GGMLType.F16, shape: [cols, rows], data: quantize(GGMLType.F16, w) }] }));
    const info = file.tensor("w");
    for (const type of [GGMLType.Q4_K, GGMLType.Q8_0, GGMLType.F16]) {
      const slices: Uint8Array[] = [];
      for await (const s of convertTensorSlices(file, info, type, 10 * cols)) slices.push(s);
      expect(slices.length).toBe(Math.ceil(rows / 10));
      const bytes = new Uint8Array(slices.reduce((a, s) => a + s.length, 0));
      let at = 0;
      for (const s of slices) {
        bytes.set(s, at);
        at += s.length;
      }
      const whole = type === GGMLType.F16 ? await file.readTensorBytes(info) : quantize(type, dequantize(GGMLType.F16, await file.readTensorBytes(info), rows * cols));
      expect(bytes).toEqual(whole);
    }
    await file.close();
  });

  it("quantizeGguf writes the same file as before (slices streamed into the writer)", async () => {
    const dir = tempDir("zh-qslices-");
    const input = join(dir, "in.gguf");
    const w = randomF32(512 * 256, 7);
    await writeGguf(input, { metadata: { "general.architecture": "llama", "general.name": "t" }, tensors: [{ name: "blk.0.ffn_up.weight", type: GGMLType.F32, shape: [256, 512], data: new Uint8Array(w.buffer) }, { name: "blk.0.ffn_norm.weight", type: GGMLType.F32, shape: [256], data: new Uint8Array(new Float32Array(256).fill(1).buffer) }] });
    const report = await quantizeGguf(input, join(dir, "out.gguf"), GGMLType.Q8_0);
    expect(report.tensors.map((t) => [t.name, t.to, t.bytes])).toEqual([["blk.0.ffn_up.weight", "Q8_0", 512 * 8 * 34], ["blk.0.ffn_norm.weight", "F32", 1024]]);
    const out = await openGguf(join(dir, "out.gguf"));
    expect(await out.readTensorBytes("blk.0.ffn_up.weight")).toEqual(quantize(GGMLType.Q8_0, w));
    await out.close();
  });

  it("the writer checks a streamed tensor's total length", async () => {
    const dir = tempDir("zh-qslices-");
    const pieces = (sizes: number[]) => async function* () {
      for (const n of sizes) yield new Uint8Array(n);
    };
    const spec = (sizes: number[]) => ({ metadata: {}, tensors: [{ name: "w", type: GGMLType.F32, shape: [8], data: pieces(sizes) }] });
    await writeGguf(join(dir, "ok.gguf"), spec([16, 16]));
    await expect(writeGguf(join(dir, "short.gguf"), spec([16, 8]))).rejects.toThrow(/needs 32 bytes, got 24/);
    await expect(writeGguf(join(dir, "long.gguf"), spec([16, 16, 1]))).rejects.toThrow(/needs 32 bytes, got more/);
    expect((await encodeGguf(spec([8, 24]))).length).toBe((await encodeGguf(spec([32]))).length);
  });
});
