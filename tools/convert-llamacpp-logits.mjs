#!/usr/bin/env node
// llama.cpp's last-position logits for a GGUF and a token-id prompt, as the independent check of
// `zh-llama convert` (test/convert). Uses the prebuilt CPU build installed by
// tools/install-llama-cpp.sh (npm node-llama-cpp), 1 thread, F32 KV cache, no flash attention.
//
//   node tools/convert-llamacpp-logits.mjs MODEL.gguf 1,100,7   ->  {"n_vocab":..,"logits_f32le_base64":".."}
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "tools/.llama-cpp/package.json"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));
const [modelPath, idsText] = process.argv.slice(2);
const ids = idsText.split(",").map(Number);
const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, logLevel: "error" });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: 64, batchSize: 64, threads: 1, flashAttention: false,
  experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const items = ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { logits: true } }] : t));
const [result] = (await sequence.controlledEvaluate(items)).slice(-1);
const map = result.next.logits;
let size = 0;
for (const [token] of map) size = Math.max(size, token + 1);
const logits = new Float32Array(size);
for (const [token, value] of map) logits[token] = value;
process.stdout.write(JSON.stringify({ n_vocab: size, logits_f32le_base64: Buffer.from(logits.buffer).toString("base64") }) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
