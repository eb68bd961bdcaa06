/** Last-position logits of a model file, and the largest difference of two logit vectors. */
import { expect } from "vitest";
import { LlamaModel } from "../../src/model/index.js";

/** f32 KV cache, 32 tokens of context, one thread: what the converter tests compare with numpy. */
export async function lastLogits(path: string, ids: number[], backend: "reference" | "wasm" = "reference"): Promise<Float32Array> {
  const model = await LlamaModel.load(path, { backend, kvCacheType: "f32", nCtx: 32, threads: 1 });
  try {
    return await model.evaluate(ids);
  } finally {
    await model.dispose();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
