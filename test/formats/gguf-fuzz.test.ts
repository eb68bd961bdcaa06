/**
 * Mutation fuzzing of the GGUF reader: random byte flips, overwritten length fields and
 * truncations of real files. Every outcome must be either a parsed file whose tensors can all
 * be read, or a typed ZhLlamaError; never another exception, a hang or a huge allocation.
 */
import { describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { encodeGguf, openGguf, type GgufFile } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { ZhLlamaError } from "../../src/errors.js";
import { hasShared, sharedPath } from "../helpers/shared.js";

/** xorshift32: deterministic, so a failure is reproducible from its seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

function mutate(original: Uint8Array, headerBytes: number, random: () => number): Uint8Array {
  const b = original.slice();
  const view = new DataView(b.buffer);
  const at = Math.floor(random() * headerBytes);
  switch (Math.floor(random() * 5)) {
    case 0: b[at] = Math.floor(random() * 256); break;
    case 1: b[at] ^= 1 << Math.floor(random() * 8); break;
    case 2: // a huge or boundary value where a u64 length/count may sit
      if (at + 8 <= b.length) view.setBigUint64(at, [2n ** 64n - 1n, 2n ** 32n, BigInt(b.length), 0n][Math.floor(random() * 4)]!, true);
      break;
    case 3: return b.subarray(0, at);
    default: if (at + 4 <= b.length) view.setUint32(at, Math.floor(random() * 16), true); // a plausible type id / dim count
  }
  return b;
}

async function exercise(bytes: Uint8Array): Promise<"ok" | "refused"> {
  let file: GgufFile | undefined;
  try {
    file = await openGguf(bytes);
    for (const t of file.tensors) await file.readTensorBytes(t);
    return "ok";
  } catch (error) {
    if (error instanceof ZhLlamaError) return "refused";
    throw error;
  } finally {
    await file?.close();
  }
}

async function fuzz(original: Uint8Array, iterations: number, seed: number) {
  const header = await openGguf(original);
  const headerBytes = header.headers[0]!.dataStart;
  const random = rng(seed);
  const outcomes = { ok: 0, refused: 0 };
  for (let i = 0; i < iterations; i++) {
    const mutated = mutate(original, headerBytes, random);
    try {
      outcomes[await exercise(mutated)]++;
    } catch (error) {
      throw new Error(`seed ${seed}, iteration ${i}: untyped failure ${String(error)}`);
    }
  }
  return outcomes;
}

describe("GGUF reader under mutation", () => {
  it("a small model with every value type", async () => {
    const bytes = await encodeGguf({
      metadata: {
        "general.architecture": "llama",
        "llama.block_count": 1,
        "tokenizer.ggml.tokens": ["a", "b", "c"],
        "tokenizer.ggml.scores": [0, -1, -2],
        "x.nested": [[1, 2], [3]],
        "x.i64": -5n,
        "x.bool": false,
      },
      tensors: [
        { name: "w", type: GGMLType.Q4_0, shape: [32, 4], data: new Uint8Array(72) },
        { name: "n", type: GGMLType.F32, shape: [32], data: new Uint8Array(128) },
      ],
    });
    const outcomes = await fuzz(bytes, 3000, 1234);
    expect(outcomes.refused).toBeGreaterThan(1000);
    expect(outcomes.ok + outcomes.refused).toBe(3000);
  });

  it.skipIf(!hasShared)("a llama.cpp-written model with a 480-piece vocabulary", async () => {
    const bytes = new Uint8Array(await readFile(sharedPath("reference/llama-d64-l2-h4kv1-synthvocab-f32.gguf")));
    const outcomes = await fuzz(bytes, 400, 99);
    expect(outcomes.ok + outcomes.refused).toBe(400);
  });
});
