// Cross-runtime smoke test: run with node, deno and bun against the compiled library (dist/).
// It writes a small GGUF with the library, reads it back from disk lazily, checks metadata,
// tensors and a Q8_0 round trip, and prints one line per check; exit status 1 on failure.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zh from "../../dist/internals.js";

const runtime = typeof Deno !== "undefined" ? `deno ${Deno.version.deno}` : typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.version}`;
let failed = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${runtime}: ${name}${detail ? ` (${detail})` : ""}`);
  if (!ok) failed++;
}

const dir = mkdtempSync(join(tmpdir(), "zh-llama-smoke-"));
try {
  const values = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i) * 3);
  const path = join(dir, "smoke.gguf");
  await zh.writeGguf(path, {
    metadata: { "general.architecture": "llama", "llama.context_length": 2048, "tokenizer.ggml.tokens": ["<unk>", "你好"] },
    tensors: [
      { name: "w.q8_0", type: zh.GGMLType.Q8_0, shape: [32, 2], data: zh.quantize(zh.GGMLType.Q8_0, values) },
      { name: "w.f32", type: zh.GGMLType.F32, shape: [64], data: new Uint8Array(values.buffer) },
    ],
  });
  const file = await zh.openGguf(path);
  check("metadata read back", file.metadata["llama.context_length"] === 2048 && file.metadata["tokenizer.ggml.tokens"][1] === "你好");
  check("tensor infos", file.tensors.length === 2 && file.tensor("w.q8_0").shape.join() === "32,2");
  const f32 = await file.readTensorF32("w.f32");
  check("f32 tensor bytes", f32.every((v, i) => v === values[i]));
  const q = await file.readTensorF32("w.q8_0");
  const maxErr = Math.max(...q.map((v, i) => Math.abs(v - values[i])));
  check("q8_0 round trip", maxErr < 0.03, `max error ${maxErr.toFixed(4)}`);
  await file.close();
  let typed = false;
  try {
    await zh.openGguf(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  } catch (error) {
    typed = error instanceof zh.GgufFormatError;
  }
  check("bad input gives GgufFormatError", typed);

  // The committed fixture model: parse it, then run the forward pass on the WASM kernels,
  // on the calling thread and on a 2-worker pool; both must give the same logits.
  const fixture = new URL("../../fixtures/models/tiny-random-q8_0.gguf", import.meta.url);
  const gguf = await zh.openGguf(fixture);
  check("fixture GGUF parses", gguf.tensors.length === 21 && gguf.metadata["general.name"] === "tiny-random-q8_0");
  await gguf.close();
  const logits = [];
  for (const threads of [1, 2]) {
    const model = await zh.LlamaModel.load(fixture, { threads, nCtx: 32 });
    logits.push(await model.evaluate([1, 5, 6, 7]));
    await model.dispose();
  }
  check("forward pass on 1 and 2 threads agrees", logits[0].length === 300 && logits[0].every((v, i) => Number.isFinite(v) && v === logits[1][i]));
  // A model spread over several wasm32 memories (one layer each), as 7B/13B models are: the
  // same logits on 1 and 2 threads in this runtime.
  for (const threads of [1, 2]) {
    const model = await zh.LlamaModel.load(fixture, { threads, nCtx: 32, memoryLimit: 16 << 20, layersPerMemory: 1 });
    const spread = await model.evaluate([1, 5, 6, 7]);
    const memories = model.plan.memories.length;
    await model.dispose();
    check(`layers over ${memories} memories, ${threads} thread(s), agrees with one memory`, memories >= 2 && spread.every((v, i) => v === logits[0][i]));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (failed > 0) process.exit(1);
