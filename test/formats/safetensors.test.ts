import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import {
  encodeSafetensors,
  openSafetensors,
  planSafetensorsShards,
  writeSafetensors,
  writeSafetensorsShards,
  type SafetensorsLazyTensor,
} from "../../src/formats/safetensors.js";
import { FormatError } from "../../src/formats/errors.js";

function header(json: object, extra = 0): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + text.length + extra);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

describe("safetensors", () => {
  it("round-trips F32, F16 and BF16 in memory", async () => {
    const values = new Float32Array([1, -2.5, 0.1, 65504, 3.140625, -0]);
    const bytes = encodeSafetensors(
      {
        a: { dtype: "F32", shape: [2, 3], data: values },
        b: { dtype: "F16", shape: [6], data: values },
        c: { dtype: "BF16", shape: [3, 2], data: values },
      },
      { format: "pt" },
    );
    expect((bytes.length - 8) % 8).toBe(0);
    const file = await openSafetensors(bytes);
    expect(file.metadata).toEqual({ format: "pt" });
    expect(file.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([["a", "F32", [2, 3]], ["b", "F16", [6]], ["c", "BF16", [3, 2]]]);
    expect(Array.from(await file.readTensorF32("a"))).toEqual(Array.from(values));
    const f16 = await file.readTensorF32("b");
    expect(f16[0]).toBe(1);
    expect(f16[2]).toBeCloseTo(0.1, 3);
    expect(f16[3]).toBe(65504);
    const bf16 = await file.readTensorF32("c");
    expect(bf16[4]).toBe(3.140625);
    expect(bf16[1]).toBe(-2.5);
    await file.close();
  });

  it("reads a file written by Python (struct + json, the format's own rules)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "st-"));
    try {
      const path = join(dir, "py.safetensors");
      execFileSync("python3", ["-c", `
import json, struct, numpy as np, sys
a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
b = (np.arange(5, dtype=np.float32) - 2).astype(np.float16)
h = {"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
     "b": {"dtype": "F16", "shape": [5], "data_offsets": [48, 58]}}
j = json.dumps(h).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(j)) + j + a.tobytes() + b.tobytes())
`, path]);
      const file = await openSafetensors(path);
      const a = await file.readTensorF32("a");
      expect(a.length).toBe(12);
      expect(a[5]).toBe(Math.fround(5 / 7));
      expect(Array.from(await file.readTensorF32("b"))).toEqual([-2, -1, 0, 1, 2]);
      await file.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses truncated files, bad headers, holes and overlaps", async () => {
    const good = encodeSafetensors({ w: { dtype: "F32", shape: [4], data: new Float32Array(4) } });
    await expect(openSafetensors(good.subarray(0, good.length - 1))).rejects.toThrow(/truncated.*1 bytes missing/);
    await expect(openSafetensors(good.subarray(0, 5))).rejects.toThrow(FormatError);
    await expect(openSafetensors(good.subarray(0, 12))).rejects.toThrow(/truncated: header/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    await expect(openSafetensors(huge)).rejects.toThrow(/limit/);
    await expect(openSafetensors(header({ w: { dtype: "F32", shape: [4], data_offsets: [0, 12] } }, 12))).rejects.toThrow(/needs 16 bytes/);
    await expect(openSafetensors(header({ w: { dtype: "Q4", shape: [4], data_offsets: [0, 16] } }, 16))).rejects.toThrow(/unknown dtype/);
    await expect(openSafetensors(header({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4))).rejects.toThrow(/shape/);
    await expect(
      openSafetensors(header({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, 12)),
    ).rejects.toThrow(/hole/);
    await expect(openSafetensors(header({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 8))).rejects.toThrow(/unexpected bytes/);
    const notJson = header({});
    notJson[8] = 0x7b;
    notJson[9] = 0x7b;
    await expect(openSafetensors(notJson)).rejects.toThrow(/not valid JSON/);
  });

  it("writes atomically, refuses to overwrite, and shards with an index", async () => {
    const dir = await mkdtemp(join(tmpdir(), "st-"));
    try {
      const path = join(dir, "one.safetensors");
      await writeSafetensors(path, { x: { dtype: "BF16", shape: [2], data: new Float32Array([1, 2]) } }, { format: "pt" });
      await expect(writeSafetensors(path, { x: { dtype: "F32", shape: [1], data: new Float32Array(1) } })).rejects.toThrow(/already exists/);
      const tensors: SafetensorsLazyTensor[] = [0, 1, 2, 3].map((i) => ({
        name: `t${i}`,
        dtype: "F32",
        shape: [8],
        data: () => new Uint8Array(new Float32Array(8).fill(i).buffer),
      }));
      const shards = planSafetensorsShards(tensors, 64);
      expect(shards.map((s) => s.fileName)).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
      const out = join(dir, "sharded");
      await import("node:fs/promises").then((fs) => fs.mkdir(out));
      await writeSafetensorsShards(out, shards);
      const index = JSON.parse(await readFile(join(out, "model.safetensors.index.json"), "utf8"));
      expect(index.metadata.total_size).toBe(128);
      expect(index.weight_map.t3).toBe("model-00002-of-00002.safetensors");
      const second = await openSafetensors(join(out, "model-00002-of-00002.safetensors"));
      expect(Array.from(await second.readTensorF32("t3"))).toEqual(new Array(8).fill(3));
      await second.close();

      // A failure mid-write (a full disk, here a throwing callback) leaves nothing behind.
      const failing: SafetensorsLazyTensor[] = [tensors[0]!, { ...tensors[1]!, data: () => { throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }); } }];
      await expect(writeSafetensors(join(dir, "x.safetensors"), {}, undefined)).resolves.toBeUndefined();
      const { writeSafetensorsLazy } = await import("../../src/formats/safetensors.js");
      await expect(writeSafetensorsLazy(join(dir, "fail.safetensors"), failing)).rejects.toThrow(/ENOSPC/);
      const left = await readdir(dir);
      expect(left.filter((n) => n.startsWith("fail"))).toEqual([]);
      await writeFile(join(dir, "dummy"), "");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
