/**
 * Decode speed of the WebGPU backend on the ~125M-parameter benchmark model (src/eval/bench.ts's
 * shape: dim 768, 12 layers, GQA 12/4, ffn 2048, vocab 32000), for a machine with a GPU:
 *
 *   npx deno run -A --unstable-sloppy-imports test/web/webgpu-bench.ts [q4_0 q8_0 f16]
 *
 * Prints one JSON line per type: prompt and decode tokens/s (median of 3 runs after a warm-up),
 * the adapter, and the WASM backend's last-prompt-position logits difference as a sanity check.
 */
import { encodeGguf } from "../../src/formats/gguf/index.ts";
import { GGMLType } from "../../src/formats/ggml-types.ts";
import { LlamaModel } from "../../src/model/model.ts";
import { mulberry32, syntheticModel } from "../../src/convert/synthetic.ts";
import { setKernelBaseUrl } from "../../src/kernels/wasm/loader.ts";

// build/ is two folders up from here, and from the bundle a GPU machine runs (tmp/gpu-bench/).
setKernelBaseUrl(new URL("../../build/", import.meta.url));

const TYPES: Record<string, GGMLType> = { q4_0: GGMLType.Q4_0, q8_0: GGMLType.Q8_0, f16: GGMLType.F16 };
const names = Deno.args.length ? Deno.args : ["q4_0", "q8_0", "f16"];
const PROMPT = 128;
const DECODE = 64;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const name of names) {
  const type = TYPES[name]!;
  const bytes = await encodeGguf(syntheticModel({ name: `bench-125m-${name}`, dim: 768, layers: 12, heads: 12, kvHeads: 4, ffn: 2048, vocab: 32000, ctx: 2048, type, outputType: type, seed: 125 }));
  const random = mulberry32(42);
  const prompt = Array.from({ length: PROMPT }, () => 3 + Math.floor(random() * 31990));
  const gpu = await LlamaModel.load(bytes, { backend: "webgpu", nCtx: 512 });
  const pp: number[] = [];
  const tg: number[] = [];
  let firstLogits = new Float32Array(0);
  for (let run = 0; run < 4; run++) {
    gpu.reset();
    let t0 = performance.now();
    let logits = await gpu.evaluate(prompt);
    const promptMs = performance.now() - t0;
    if (run === 0) firstLogits = logits.slice();
    t0 = performance.now();
    for (let i = 0; i < DECODE; i++) logits = await gpu.evaluate([argmax(logits)]);
    const decodeMs = performance.now() - t0;
    if (run > 0) {
      pp.push((PROMPT / promptMs) * 1000);
      tg.push((DECODE / decodeMs) * 1000);
    }
  }
  const wasm = await LlamaModel.load(bytes, { backend: "wasm", threads: 1, nCtx: 512 });
  const ref = await wasm.evaluate(prompt);
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i]! - firstLogits[i]!));
  console.log(JSON.stringify({
    type: name, adapter: gpu.gpu?.description, promptTokens: PROMPT, decodeTokens: DECODE,
    promptTokensPerS: +median(pp).toFixed(1), decodeTokensPerS: +median(tg).toFixed(1),
    maxLogitDiffVsWasm: maxDiff, sameArgmax: argmax(ref) === argmax(firstLogits),
  }));
  await wasm.dispose();
  await gpu.dispose();
}
