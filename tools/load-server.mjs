#!/usr/bin/env node
// Bounded loopback load test of `zh-llama serve` (the compiled dist/): a few hundred requests
// at a fixed concurrency, some malformed, some cancelled mid-stream; then checks that the
// server still answers /health with no sequence busy or queued. Prints requests/s and the
// p50/p99 time to the first streamed token.
//
//   node tools/load-server.mjs [--requests 300] [--concurrency 8] [--parallel 2] [--max-tokens 16] [--model FILE]
//
// Without --model it serves the committed tiny random model. The server runs in this process
// on 127.0.0.1 with a random port; the clients are plain fetch() calls.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { runLoad } from "./load-server-lib.mjs";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "300" },
    concurrency: { type: "string", default: "8" },
    parallel: { type: "string", default: "2" },
    "max-tokens": { type: "string", default: "16" },
    model: { type: "string" },
    synthetic: { type: "boolean" },
    json: { type: "boolean" },
  },
});
const zh = await import("../dist/internals.js");
const modelPath = values.model ?? fileURLToPath(new URL("../fixtures/models/tiny-random-q8_0.gguf", import.meta.url));
const source = values.synthetic
  ? await zh.encodeGguf(zh.syntheticModel({ name: "synthetic-d512-l8", dim: 512, layers: 8, heads: 8, ffn: 1376, vocab: 8000, ctx: 512, type: zh.GGMLType.Q8_0 }))
  : modelPath;
const model = await zh.LlamaModel.load(source, { nCtx: 256 });
const tokenizer = zh.tokenizerFromGgufMetadata(model.file.metadata, modelPath);
const app = zh.createServer({ model, tokenizer, template: zh.getTemplate("plain"), parallel: Number(values.parallel), maxQueue: 256 });
const handle = await zh.serve(app.fetch, { hostname: "127.0.0.1", port: 0 });
try {
  const report = await runLoad({
    baseUrl: `http://127.0.0.1:${handle.port}`,
    requests: Number(values.requests),
    concurrency: Number(values.concurrency),
    maxTokens: Number(values["max-tokens"]),
  });
  const stats = app.stats();
  const ok = report.healthy && stats.busy === 0 && stats.queued === 0 && stats.streams === 0 && stats.idle === stats.parallel;
  if (values.json) console.log(JSON.stringify({ ...report, stats, ok }));
  else {
    console.log(`${report.requests} requests (${report.counts.ok} ok, ${report.counts.malformed} malformed -> 4xx, ${report.counts.cancelled} cancelled mid-stream, ${report.counts.failed} unexpected) in ${report.seconds.toFixed(2)} s`);
    console.log(`${report.requestsPerSecond.toFixed(1)} requests/s; first token p50 ${report.ttft.p50.toFixed(1)} ms, p99 ${report.ttft.p99.toFixed(1)} ms (${report.ttft.n} streams, ${model.file.metadata["general.name"]}, --parallel ${values.parallel}, concurrency ${values.concurrency})`);
    console.log(`${ok ? "ok" : "FAIL"}: server healthy after the run; sequences busy ${stats.busy}, idle ${stats.idle}/${stats.parallel}, queued ${stats.queued}, open streams ${stats.streams}`);
  }
  process.exitCode = ok && report.counts.failed === 0 ? 0 : 1;
} finally {
  await handle.close();
  await model.dispose();
}
