#!/usr/bin/env node
// Golden outputs from llama.cpp itself for the synthetic conformance models.
//
//   npm run build && tools/install-llama-cpp.sh && node tools/golden-llama.mjs [CASE...]
//
// For every case in test/model/golden-cases.json: generate the model with zh-llama's own
// deterministic generator (dist/convert/synthetic.js) and GGUF writer, load it in llama.cpp's
// prebuilt CPU build (npm node-llama-cpp 3.22.1, 1 thread, F32, F16 or Q8_0 KV cache as the case
// says; flash attention off unless the case says "flash": true, which a Q8_0 V cache needs),
// evaluate the prompt, and record the last position's full logits and a
// greedy continuation with each step's top-1/top-2 logit gap. Output: fixtures/golden/llama/<case>.json.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { syntheticModel, encodeGguf, GGMLType } = await import(join(root, "dist/internals.js"));
const require = createRequire(join(root, "tools/.llama-cpp/package.json"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));
const nlcVersion = JSON.parse(readFileSync(join(root, "tools/.llama-cpp/node_modules/node-llama-cpp/package.json"), "utf8")).version;
const build = JSON.parse(readFileSync(join(root, "tools/.llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/_nlcBuildMetadata.json"), "utf8"));

const cases = JSON.parse(readFileSync(join(root, "test/model/golden-cases.json"), "utf8"));
const wanted = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, logLevel: "error" });
const dir = mkdtempSync(join(tmpdir(), "zh-golden-"));

function argmaxAndGap(logits) {
  let best = 0, second = -1;
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > logits[best]) { second = best; best = i; }
    else if (second < 0 || logits[i] > logits[second]) second = i;
  }
  return { best, gap: logits[best] - logits[second] };
}

for (const c of cases) {
  if (wanted.length > 0 && !wanted.includes(c.name)) continue;
  const options = { ...c.model, type: GGMLType[c.model.type], outputType: c.model.outputType ? GGMLType[c.model.outputType] : undefined };
  const bytes = await encodeGguf(syntheticModel(options));
  const path = join(dir, `${c.name}.gguf`);
  writeFileSync(path, bytes);
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: c.ctx, batchSize: c.ctx, threads: 1, flashAttention: c.flash === true,
    experimentalKvCacheKeyType: c.kv, experimentalKvCacheValueType: c.kv,
  });
  const sequence = context.getSequence();
  const vocab = c.model.vocab;
  const logitsOf = (result) => {
    const map = result.next.logits;
    const out = new Float32Array(vocab);
    for (const [token, value] of map) out[token] = value;
    return out;
  };
  const prompt = c.prompt;
  const items = prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { logits: true } }] : t));
  let [result] = (await sequence.controlledEvaluate(items)).slice(-1);
  let logits = logitsOf(result);
  const first = Buffer.from(logits.buffer).toString("base64");
  const greedy = [];
  for (let step = 0; step < c.steps; step++) {
    const { best, gap } = argmaxAndGap(logits);
    greedy.push({ token: best, gap });
    if (step === c.steps - 1) break;
    [result] = await sequence.controlledEvaluate([[best, { generateNext: { logits: true } }]]);
    logits = logitsOf(result);
  }
  // Perplexity by llama.cpp's method (chunks of c.perplexity.ctx starting with BOS, second
  // half scored), computed here in float64 from llama.cpp's logits at every position.
  let ppl;
  if (c.perplexity) {
    const { ctx: pctx, tokens } = c.perplexity;
    let nll = 0, scored = 0;
    for (let chunkStart = 0; chunkStart + pctx <= tokens.length; chunkStart += pctx) {
      const chunk = tokens.slice(chunkStart, chunkStart + pctx);
      chunk[0] = 1;
      await sequence.clearHistory();
      const results = await sequence.controlledEvaluate(chunk.map((t) => [t, { generateNext: { logits: true } }]));
      for (let j = pctx / 2; j < pctx - 1; j++) {
        const row = logitsOf(results[j]);
        let max = -Infinity;
        for (const v of row) max = Math.max(max, v);
        let sum = 0;
        for (const v of row) sum += Math.exp(v - max);
        nll -= row[chunk[j + 1]] - max - Math.log(sum);
        scored++;
      }
    }
    ppl = { ctx: pctx, tokens, ppl: Math.exp(nll / scored), tokens_scored: scored };
  }
  const golden = {
    made_by: `tools/golden-llama.mjs with llama.cpp ${build.buildOptions.llamaCpp.release} (npm node-llama-cpp ${nlcVersion}, prebuilt CPU build), 1 thread, KV cache ${c.kv}, flash attention ${c.flash ? "on" : "off"}`,
    case: c.name,
    gguf_sha256: createHash("sha256").update(bytes).digest("hex"),
    gguf_bytes: bytes.length,
    prompt,
    first_logits_f32le_base64: first,
    greedy,
    perplexity: ppl,
  };
  const out = join(root, "fixtures/golden/llama", `${c.name}.json`);
  writeFileSync(out + ".tmp", JSON.stringify(golden, null, 1) + "\n");
  renameSync(out + ".tmp", out);
  console.log(`${c.name}: ${bytes.length} bytes, greedy ${greedy.map((g) => g.token).join(" ")}, min gap ${Math.min(...greedy.map((g) => g.gap)).toFixed(4)}`);
  await context.dispose();
  await model.dispose();
}
rmSync(dir, { recursive: true, force: true });
await llama.dispose();
