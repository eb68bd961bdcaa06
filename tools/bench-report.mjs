#!/usr/bin/env node
// Regenerates docs/benchmarks.md and docs/benchmarks.svg: zh-llama against llama.cpp native
// (npm node-llama-cpp, prebuilt CPU build) and llama.cpp's WebAssembly build (npm
// @wllama/wllama in headless Chromium, tools/wllama-peer.mjs) on the ~125M-parameter benchmark
// shape of ../shared/BENCHMARKS.md, for Q4_0, Q8_0 and F16 at 1 and 2 threads, runs alternating.
// wllama is skipped, with the reason printed, where Chromium or the package is missing.
//
//   npm run build && tools/install-llama-cpp.sh && node tools/bench-report.mjs [options]
//     -r N          runs per measurement after a warm-up (default 3; medians are reported)
//     -p N / -n N   prompt tokens (default 128) / decode steps (default 64)
//     --types LIST  e.g. Q4_0,Q8_0 (default Q4_0,Q8_0,F16); --threads LIST e.g. 1 (default 1,2)
//     --no-wllama   leave wllama out
//     --big LIST    real-size rows beside the 125M ones (tools/big-model-report.mjs; default
//                   7b:q4_0,7b:q4_k_m,7b:q8_0; "none" leaves them out); --big-rounds N (default 2)
//     -o DIR        write benchmarks.md and benchmarks.svg to DIR instead of docs/
import { mkdtempSync, rmSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const zh = await import(join(root, "dist/internals.js"));
const { values: args } = parseArgs({
  options: {
    r: { type: "string", short: "r", default: "3" },
    p: { type: "string", short: "p", default: "128" },
    n: { type: "string", short: "n", default: "64" },
    types: { type: "string", default: "Q4_0,Q8_0,F16" },
    threads: { type: "string", default: "1,2" },
    "no-wllama": { type: "boolean", default: false },
    big: { type: "string", default: "7b:q4_0,7b:q4_k_m,7b:q8_0" },
    "big-rounds": { type: "string", default: "2" },
    o: { type: "string", short: "o" },
  },
});
const positive = (s, what) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: expected a positive integer, got ${s}`);
  return v;
};
const repetitions = positive(args.r, "-r");
const promptTokens = positive(args.p, "-p");
const genTokens = positive(args.n, "-n");
const types = args.types.split(",").map((t) => t.trim().toUpperCase());
for (const t of types) if (zh.GGMLType[t] === undefined) throw new Error(`--types: unknown type ${t}`);
const threadCounts = args.threads.split(",").map((t) => positive(t.trim(), "--threads"));
const outDir = args.o ? resolve(args.o) : join(root, "docs");
const bigConfigs = args.big === "none" ? [] : args.big.split(",").map((c) => c.trim()).filter(Boolean);
const bigRounds = positive(args["big-rounds"], "--big-rounds");
const big = await import(join(root, "tools/big-model-report.mjs"));

// The benchmark model gets LLaMA's real 32000-piece vocabulary (rebuilt from npm
// llama-tokenizer-js) so that wllama, which only takes text, has a meaningful prompt; zh-llama and
// llama.cpp native are fed random token ids as before, and the weights are the same bytes.
let wllama;
let vocab;
let wllamaSkipped = args["no-wllama"] ? "--no-wllama" : undefined;
const wl = await import(join(root, "tools/wllama-peer.mjs"));
if (!wllamaSkipped) {
  wllamaSkipped = wl.wllamaUnavailableReason();
  if (!wllamaSkipped) {
    try {
      vocab = wl.llamaVocabulary(zh);
    } catch (e) {
      wllamaSkipped = `LLaMA vocabulary unavailable (npm llama-tokenizer-js): ${e.message}`;
    }
  }
}
const dir = mkdtempSync(join(tmpdir(), "zh-bench-report-"));
const load0 = loadavg()[0];
const rows = [];
let promptText;
try {
  if (!wllamaSkipped) {
    promptText = wl.benchPromptText(vocab.tokenizer, promptTokens);
    try {
      wllama = await wl.startWllama(dir, (l) => console.error(l));
    } catch (e) {
      wllamaSkipped = e.message;
    }
  }
  if (wllamaSkipped) console.error(`bench-report: wllama skipped: ${wllamaSkipped}`);
  for (const type of types) {
    const shape = zh.benchmarkModelShape(zh.GGMLType[type]);
    const path = join(dir, `${shape.name}.gguf`);
    const spec = zh.syntheticModel(shape);
    if (vocab) Object.assign(spec.metadata, vocab.metadata);
    await zh.writeGguf(path, spec);
    for (const threads of threadCounts) {
      let extraPeer, opened;
      if (wllama) {
        try {
          opened = await wllama.open(path, threads, promptTokens + genTokens + 8);
          extraPeer = { name: "wllama", version: `${wllama.version} in headless ${wllama.chromium}`, run: () => opened.run(promptText, genTokens) };
        } catch (e) {
          console.error(`bench-report: wllama could not load ${type} with ${threads} thread(s): ${e.message}`);
          extraPeer = { name: "wllama", version: `${wllama.version} in headless ${wllama.chromium}`, run: () => Promise.reject(new Error(`load failed: ${e.message}`)) };
        }
      }
      try {
        rows.push(await zh.compareWithLlamaCpp(path, type, { threads, promptTokens, genTokens, repetitions, extraPeer }, (l) => console.error(l)));
      } finally {
        await opened?.dispose().catch(() => {});
      }
    }
    rmSync(path, { force: true });
  }
} finally {
  await wllama?.close();
  rmSync(dir, { recursive: true, force: true });
}
// Real-size rows: each model made on the fly, run by zh-llama and llama.cpp native alternating.
const bigRows = bigConfigs.length ? await big.bigModelRows(bigConfigs, { rounds: bigRounds }) : [];
const kernelPath = (await zh.kernels.createKernels(zh.kernels.KernelMemory.create({ initialBytes: 1 << 20 }), "wasm")).path;
const peer = rows[0]?.peer ?? "node-llama-cpp";
const extra = rows.find((r) => r.extra)?.extra;
const wllamaLibllama = wllama?.libllama ?? "unknown";
const failures = rows.filter((r) => r.extra?.error).map((r) => `${r.model} at ${r.threads} thread(s): ${r.extra.error.split("\n")[0]}`);
const command = `node tools/bench-report.mjs${process.argv.slice(2).length ? " " + process.argv.slice(2).join(" ") : ""}`;
const wllamaText = extra
  ? `llama.cpp's WebAssembly build: ${extra.version} (libllama ${wllamaLibllama}), loaded with
\`loadModelFromUrl\` from a local server that sends COOP/COEP headers (so the page is cross-origin
isolated and wllama can run threads), WebGPU off, KV cache F16, flash attention off. wllama takes
text only: its prompt is the start of README.md cut to at most ${promptTokens} LLaMA tokens, BOS
included (the count wllama reports is the one used; shown in brackets where it differs), then
${genTokens} greedy decode steps with EOS ignored and the 256 byte pieces banned (wllama aborts on a
sampled byte that is not valid UTF-8). Its prompt and decode times are its own llama-server
timings. It runs third in each round, after zh-llama and llama.cpp native; its ratio = zh-llama /
wllama.${failures.length ? `\n\nwllama failed for: ${failures.join("; ")}.` : ""}`
  : `llama.cpp's WebAssembly build (wllama in Chromium) was not measured in this run: ${wllamaSkipped ?? "no result"}.`;
const md = `# Speed: zh-llama against llama.cpp

Generated by \`${command}\` (after \`npm run build\` and \`tools/install-llama-cpp.sh\`)
on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, load average ${load0.toFixed(2)} at the start;
${process.release.name} ${process.version}, zh-llama kernel path: ${kernelPath}.

Model: LLaMA-shaped with random weights, 124.7M parameters (dim 768, 12 layers, 12 q / 4 kv heads,
ffn 2048, vocab 32000${vocab ? " (LLaMA's pieces)" : ""}, untied), every 2-D tensor in the named type, the same GGUF file for
every engine. Prompt processing (pp) = one batch of ${promptTokens} random token ids from an empty cache;
decode (tg) = ${genTokens} single-token greedy steps after it; KV cache F16; medians of ${repetitions} runs after a
warm-up, zh-llama and llama.cpp native (${peer}) alternating. Ratio = zh-llama / llama.cpp.

${wllamaText}

${zh.compareMarkdown(rows)}
${bigRows.length ? `
### Real-size models

Chinese-LLaMA-2 shapes (vocabulary 55296), random blocks with the scale magnitudes llama.cpp's
quantizers give, written on the fly by tools/big-model.mjs and deleted after
(\`tools/big-model-report.mjs\`, called by this report). zh-llama at its default context (f16 KV
cache), llama.cpp at context 512; prompt 100 tokens, decode 16 greedy tokens; the two alternate
for ${bigRounds} rounds and the best round of each is shown.

${big.bigModelTable(bigRows)}
` : ""}
![ratios](benchmarks.svg)

The machine is shared and noisy: compare ratios measured in the same run, not absolute figures
across runs.
`;
mkdirSync(outDir, { recursive: true });
const shapes = bigRows.length ? "125M LLaMA shape and 7B-scale models" : "125M LLaMA shape";
const title = extra ? `speed relative to llama.cpp native, ${shapes} (1.0 = llama.cpp)` : `zh-llama / llama.cpp, ${shapes} (1.0 = llama.cpp)`;
for (const [file, text] of [["benchmarks.md", md], ["benchmarks.svg", zh.compareSvg([...rows, ...big.bigModelCompareRows(bigRows)], title)]]) {
  writeFileSync(join(outDir, file) + ".tmp", text);
  renameSync(join(outDir, file) + ".tmp", join(outDir, file));
}
console.log(md);
