/**
 * Sentence embeddings as the upstream OpenAI server computes them (openai_api_server.py):
 * the last hidden layer (the residual stream after the final RMSNorm, HF's
 * `last_hidden_state`), mean-pooled over the tokens and L2-normalised.
 *
 * The forward pass leaves each token's residual stream in x (in the scratch of the memory that
 * holds the output projection, where every step ends) for the micro-batch it just ran; feeding the input one micro-batch per evaluate() call lets us read every row
 * before the next batch overwrites it. The final norm is applied here, in plain TypeScript.
 */
import { InvalidArgumentError } from "../errors.js";
import type { LlamaSession } from "./model.js";

/** The mean-pooled, L2-normalised final hidden state of `ids` (the session's cache is reset). */
export async function embed(session: LlamaSession, ids: readonly number[]): Promise<Float32Array> {
  if (ids.length === 0) throw new InvalidArgumentError("embed() needs at least one token");
  const { hp, weights, memoryKernels } = session.model;
  const n = hp.nEmbd;
  const sum = new Float64Array(n);
  const mem = memoryKernels[weights.outputMemory]!.memory;
  const norm = mem.f32(weights.outputNorm, n).slice();
  session.reset();
  for (let start = 0; start < ids.length; start += session.state.maxTok) {
    const chunk = ids.slice(start, start + session.state.maxTok);
    await session.evaluate(chunk, { hiddenStates: true });
    const x = mem.f32(session.state.scratch[weights.outputMemory]!.x, chunk.length * n);
    for (let t = 0; t < chunk.length; t++) {
      let ss = 0;
      for (let i = 0; i < n; i++) ss += x[t * n + i]! * x[t * n + i]!;
      const scale = 1 / Math.sqrt(ss / n + hp.rmsEps);
      for (let i = 0; i < n; i++) sum[i]! += x[t * n + i]! * scale * norm[i]!;
    }
  }
  let length = 0;
  for (let i = 0; i < n; i++) {
    sum[i]! /= ids.length;
    length += sum[i]! * sum[i]!;
  }
  // torch.nn.functional.normalize: divide by max(||v||, 1e-12).
  const inv = 1 / Math.max(Math.sqrt(length), 1e-12);
  return Float32Array.from(sum, (v) => v * inv);
}
