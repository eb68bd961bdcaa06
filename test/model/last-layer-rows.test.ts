/**
 * The last layer's feed-forward runs only for the rows whose logits are returned (llama.cpp's
 * inp_out_ids), unless the caller wants every row's hidden state (embed.ts): src/model/llama.ts.
 * The logits must not move by a bit, for every weight type (F16 sums in another order for one
 * row than for several, which the split must respect), with a prompt in one call or in chunks
 * (a chunk before the last skips the feed-forward whole).
 */
import { describe, expect, it } from "vitest";
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { forwardProgram, LlamaModel } from "../../src/model/index.js";
import type { Op } from "../../src/kernels/program.js";
import { syntheticModel } from "../../src/convert/synthetic.js";

const PROMPT = [1, 260, 17, 99, 203, 5, 150, 42, 7, 11, 299];
const bits = (a: Float32Array) => Array.from(new Uint32Array(Float32Array.from(a).buffer));

async function logits(bytes: Uint8Array, hiddenStates: boolean, batchSize: number): Promise<number[][]> {
  const model = await LlamaModel.load(bytes, { backend: "wasm", nCtx: 32, kvCacheType: "f32", threads: 1, batchSize });
  try {
    const out = [bits(await model.evaluate(PROMPT, { hiddenStates }))];
    // a decode step after it reads the cache the prompt left
    out.push(bits(await model.evaluate([9], { hiddenStates })));
    return out;
  } finally {
    await model.dispose();
  }
}

describe("last layer: feed-forward only for the rows with logits", () => {
  for (const type of [GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.F16, GGMLType.F32]) {
    it(`${GGMLType[type]}: the same logits bits as with every row's hidden state`, async () => {
      const bytes = await encodeGguf(syntheticModel({ dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512, vocab: 300, type, seed: 40 + type }));
      for (const batchSize of [64, 4]) {
        expect(await logits(bytes, false, batchSize), `batch ${batchSize}`).toEqual(await logits(bytes, true, batchSize));
      }
    });
  }

  it("the program: the last layer's feed-forward products take only the logits' rows", async () => {
    const bytes = await encodeGguf(syntheticModel({ dim: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, type: GGMLType.Q8_0, seed: 7 }));
    const model = await LlamaModel.load(bytes, { backend: "reference", nCtx: 32, threads: 1 });
    try {
      const { hp, weights } = model;
      const { state } = model.session;
      const gate = weights.layers[hp.nLayer - 1]!.ffn!.gate.addr;
      const gateRows = (ops: Op[]) => ops.filter((o) => o.op === "matmul" && o.w === gate).map((o) => (o as { nTok: number }).nTok);
      expect(gateRows(forwardProgram(hp, weights, state, { nTok: 9, logitsFrom: 8 }))).toEqual([1]);
      expect(gateRows(forwardProgram(hp, weights, state, { nTok: 9, logitsFrom: 9 }))).toEqual([]);
      expect(gateRows(forwardProgram(hp, weights, state, { nTok: 9, logitsFrom: 0 }))).toEqual([9]);
      expect(gateRows(forwardProgram(hp, weights, state, { nTok: 9, logitsFrom: 8, hiddenStates: true }))).toEqual([9]);
      // the earlier layer's run for every row
      const gate0 = weights.layers[0]!.ffn!.gate.addr;
      expect(forwardProgram(hp, weights, state, { nTok: 9, logitsFrom: 8 }).filter((o) => o.op === "matmul" && o.w === gate0).map((o) => (o as { nTok: number }).nTok)).toEqual([9]);
    } finally {
      await model.dispose();
    }
  });
});
