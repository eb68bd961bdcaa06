#!/usr/bin/env node
// The real-size table: 7B-shaped Q4_0, Q4_K_M-style and Q8_0, and 13B-shaped Q4_0 (made on the
// fly by tools/big-model.mjs, deleted after), each run by zh-llama at its default context with
// 1 and 2 threads (file size, load time, peak RSS, time to first token for a 100-token prompt,
// decode tok/s) and by llama.cpp native (node-llama-cpp's prebuilt CPU build) on the same file
// in the same run (prompt and decode tok/s at the same threads).
//
//   npm run build && tools/install-llama-cpp.sh && node tools/big-model-report.mjs [-o docs/big-models.md] [7b:q4_0 ...]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tool = join(root, "tools/big-model.mjs");
const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: "string", short: "o" }, prompt: { type: "string" }, tokens: { type: "string" } } });
const configs = positionals.length > 0 ? positionals : ["7b:q4_0", "7b:q4_k_m", "7b:q8_0", "13b:q4_0"];
const PROMPT = Number(values.prompt ?? 100);
const TOKENS = Number(values.tokens ?? 16);
const zh = await import(pathToFileURL(join(root, "dist/internals.js")).href);
const dir = mkdtempSync(join(tmpdir(), "zh-big-report-"));
const node = (args) => JSON.parse(execFileSync(process.execPath, [tool, ...args], { encoding: "utf8", maxBuffer: 1 << 24 }).trim().split("\n").pop());
const GB = 1e9;
const rows = [];
try {
  for (const config of configs) {
    const [shape, type] = config.split(":");
    const file = join(dir, `${shape}-${type}.gguf`);
    const made = node(["make", "--shape", shape, "--type", type, "--out", file]);
    console.error(`${config}: ${(made.bytes / GB).toFixed(2)} GB written`);
    for (const threads of [1, 2]) {
      const r = node(["run", file, "--threads", String(threads), "--prompt", String(PROMPT), "--tokens", String(TOKENS)]);
      let peer = { promptTokS: NaN, decodeTokS: NaN, version: "unavailable" };
      try {
        const p = await zh.openLlamaCppPeer(file, { threads, ctx: 512, vocab: zh.SHAPES?.[shape]?.vocab ?? (shape === "mixtral" ? 32000 : 55296) });
        await p.run(8, 2); // warm-up
        const run = await p.run(PROMPT, TOKENS);
        peer = { promptTokS: (PROMPT / run.promptMs) * 1000, decodeTokS: (TOKENS / run.decodeMs) * 1000, version: p.version };
        await p.dispose();
      } catch (error) {
        console.error(`llama.cpp: ${error.message}`);
      }
      const row = { config, threads, fileGB: r.fileBytes / GB, loadS: r.loadS, memories: r.plan.memories, nCtx: r.nCtx, rssGB: r.maxRssBytes / GB, ttftS: r.ttftS, promptTokS: r.promptTokS, decodeTokS: r.decodeTokS, peer };
      rows.push(row);
      console.error(JSON.stringify(row));
    }
    rmSync(file, { force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const lines = [
  "# Real-size models: zh-llama and llama.cpp on the same files",
  "",
  `Made by \`node tools/big-model-report.mjs\` on ${new Date().toISOString().slice(0, 10)} (${process.version}, ${rows[0]?.peer.version ?? "llama.cpp unavailable"}). Models: Chinese-LLaMA-2 shapes (vocabulary 55296) with random blocks, written on the fly (tools/big-model.mjs). zh-llama runs at the default context (${rows[0]?.nCtx ?? 4096}, f16 KV cache), llama.cpp at context 512 (its speed does not depend on the context size at these lengths). Prompt: ${PROMPT} tokens; decode: ${TOKENS} greedy tokens. One run each on the shared 2-core machine: noisy, compare within a row.`,
  "",
  "| model | file GB | threads | load s | memories | peak RSS GB | time to first token s (100 tokens) | zh prompt tok/s | llama.cpp prompt tok/s | ratio | zh decode tok/s | llama.cpp decode tok/s | ratio |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.config} | ${f(r.fileGB)} | ${r.threads} | ${f(r.loadS, 1)} | ${r.memories} | ${f(r.rssGB)} | ${f(r.ttftS, 1)} | ${f(r.promptTokS)} | ${f(r.peer.promptTokS)} | ${f(r.promptTokS / r.peer.promptTokS)} | ${f(r.decodeTokS)} | ${f(r.peer.decodeTokS)} | ${f(r.decodeTokS / r.peer.decodeTokS)} |`),
  "",
];
const text = lines.join("\n");
if (values.out) {
  writeFileSync(values.out + ".tmp", text);
  renameSync(values.out + ".tmp", values.out);
}
console.log(text);
