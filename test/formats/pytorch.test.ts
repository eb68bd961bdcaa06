/**
 * torch zip checkpoints: files written by Python's own pickle + zipfile (stand-in torch
 * classes, exactly the opcodes torch.save emits), read by zh-llama; files written by zh-llama,
 * read by a restricted Python unpickler. No torch on either side.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openTorchCheckpoint, writeTorchCheckpoint, torchStateDictPickle } from "../../src/formats/pytorch.js";
import { ZipFormatError, ZipWriter } from "../../src/formats/pytorch-zip.js";
import { FormatError } from "../../src/formats/errors.js";
import { fixtureScript, tempDir } from "../lora/helpers.js";

function python(code: string, ...args: string[]): string {
  const prelude = `import importlib.util, sys, json, numpy as np
spec = importlib.util.spec_from_file_location("fx", ${JSON.stringify(fixtureScript)}); fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)
`;
  return execFileSync("python3", ["-c", prelude + code, ...args], { encoding: "utf8" });
}

describe("PyTorch zip checkpoints", () => {
  for (const compress of [false, true]) {
    it(`reads what Python writes (${compress ? "deflated with fflate" : "stored"}; F32, F16, BF16)`, async () => {
      const dir = tempDir("zh-pt-");
      const path = join(dir, "pytorch_model.bin");
      const expected = JSON.parse(python(`
a = (np.arange(12, dtype=np.float32) / 7).reshape(3, 4)
b = np.array([1.5, -2, 65504, 0.1], dtype=np.float32)
c = np.array([[3.140625, -1e30], [7, 0]], dtype=np.float32)
fx.write_torch(sys.argv[1], [("model.a", "F32", [3, 4], fx.encode(a, "F32")), ("model.b", "F16", [4], fx.encode(b, "F16")), ("c", "BF16", [2, 2], fx.encode(c, "BF16"))], ${compress ? "True" : "False"})
print(json.dumps({"a": a.ravel().tolist(), "b": fx.round_to(b, "F16").tolist(), "c": fx.round_to(c, "BF16").ravel().tolist()}))
`, path));
      const ckpt = await openTorchCheckpoint(path);
      expect(ckpt.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([["model.a", "F32", [3, 4]], ["model.b", "F16", [4]], ["c", "BF16", [2, 2]]]);
      expect(Array.from(await ckpt.readTensorF32("model.a"))).toEqual(expected.a.map(Math.fround));
      expect(Array.from(await ckpt.readTensorF32("model.b"))).toEqual(expected.b);
      expect(Array.from(await ckpt.readTensorF32("c"))).toEqual(expected.c);
      await ckpt.close();
    });
  }

  it("writes what a restricted Python unpickler reads back", async () => {
    const dir = tempDir("zh-pt-");
    const path = join(dir, "consolidated.00.pth");
    const values = new Float32Array([0.5, -1.25, 3, 1e-3, 7, 8]);
    await writeTorchCheckpoint(path, [
      { name: "tok_embeddings.weight", dtype: "F32", shape: [2, 3], data: new Uint8Array(values.buffer) },
      { name: "norm.weight", dtype: "F16", shape: [2], data: new Uint8Array([0x00, 0x3c, 0x00, 0xc0]) },
    ]);
    const got = JSON.parse(python(`
sd = fx.read_torch(sys.argv[1])
print(json.dumps({k: [d, v.shape, v.ravel().tolist()] for k, (d, v) in sd.items()}, default=list))
`, path));
    expect(got["tok_embeddings.weight"]).toEqual(["F32", [2, 3], Array.from(values)]);
    expect(got["norm.weight"]).toEqual(["F16", [2], [1, -2]]);
    // And Python's zipfile agrees on the archive (CRCs, names, alignment padding).
    expect(python(`import zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip())`, path).trim()).toBe("None");
    await expect(writeTorchCheckpoint(path, [])).rejects.toThrow(/already exists/);
  });

  it("gathers strided views (a transposed tensor saved without .contiguous())", async () => {
    const dir = tempDir("zh-pt-");
    const path = join(dir, "strided.bin");
    // Storage [0..5] viewed as shape [3, 2] with strides [1, 3]: the transpose of [[0,1,2],[3,4,5]].
    const data = torchStateDictPickle([{ name: "w", dtype: "F32", shape: [3, 2] }]);
    // Patch the stride tuple (2, 1) -> (1, 3): BININT1 2, BININT1 1 -> BININT1 1, BININT1 3.
    const text = Buffer.from(data);
    const at = text.indexOf(Buffer.from([0x28, 0x4b, 0x02, 0x4b, 0x01, 0x74]));
    expect(at).toBeGreaterThan(0);
    text[at + 2] = 1;
    text[at + 4] = 3;
    const fs = await import("node:fs/promises");
    const handle = await fs.open(path, "w");
    const zip = new ZipWriter(handle);
    await zip.add("strided/data.pkl", text);
    await zip.add("strided/data/0", new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer));
    await zip.finish();
    await handle.close();
    const ckpt = await openTorchCheckpoint(path);
    expect(Array.from(await ckpt.readTensorF32("w"))).toEqual([0, 3, 1, 4, 2, 5]);
    await ckpt.close();
  });

  it("refuses truncated archives, missing storages and legacy checkpoints", async () => {
    const dir = tempDir("zh-pt-");
    const path = join(dir, "m.bin");
    python(`fx.write_torch(sys.argv[1], [("w", "F32", [256], fx.encode(np.ones(256, np.float32), "F32"))])`, path);
    const whole = readFileSync(path);
    for (const cut of [whole.length - 10, Math.floor(whole.length / 2), 30]) {
      writeFileSync(join(dir, "cut.bin"), whole.subarray(0, cut));
      await expect(openTorchCheckpoint(join(dir, "cut.bin"))).rejects.toThrow(ZipFormatError);
    }
    await expect(openTorchCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a]))).rejects.toThrow(/legacy/);
    // A pickle naming a storage the archive lacks.
    const fs = await import("node:fs/promises");
    const handle = await fs.open(join(dir, "nostorage.bin"), "w");
    const zip = new ZipWriter(handle);
    await zip.add("x/data.pkl", torchStateDictPickle([{ name: "w", dtype: "F16", shape: [4] }]));
    await zip.finish();
    await handle.close();
    await expect(openTorchCheckpoint(join(dir, "nostorage.bin"))).rejects.toThrow(FormatError);
    await expect(openTorchCheckpoint(join(dir, "nostorage.bin"))).rejects.toThrow(/storage 0/);
  });
});
