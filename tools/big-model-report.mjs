#!/usr/bin/env node
// The real-size table: 7B-shaped Q4_0, Q4_K_M-style and Q8_0, and 13B-shaped Q4_0 (made on the
// fly by tools/big-model.mjs, deleted after), each run by zh-llama at its default context with
// 1 and 2 threads (file size, load time, peak RSS, time to first token for a 100-token prompt,
// decode tok/s) and by llama.cpp native (node-llama-cpp's prebuilt CPU build) on the same file
// in the same run (prompt and decode tok/s at the same threads), the two alternating for
// --rounds rounds; the best round of each is reported (on a shared machine a slow round is
// interference, not the engine).
//
//   npm run build && tools/install-llama-cpp.sh && node tools/big-model-report.mjs [-o docs/big-models.md] [--rounds 2] [7b:q4_0 ...]
//
// tools/bench-report.mjs imports bigModelRows / bigModelTable for its real-size section.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tool = join(root, "tools/big-model.mjs");
const GB = 1e9;
export const DEFAULT_CONFIGS = ["7b:q4_0", "7b:q4_k_m", "7b:q8_0", "13b:q4_0"];

/**
 * Runs each config ("7b:q4_0", ...) at 1 and 2 threads with zh-llama (tools/big-model.mjs run, in
 * a child of this same Node binary) and llama.cpp native, alternating for `rounds` rounds.
 */
export async function bigModelRows(configs, { prompt = 100, tokens = 16, rounds = 2, threads = [1, 2], log = (l) => console.error(l) } = {}) {
  const zh = await import(pathToFileURL(join(root, "dist/internals.js")).href);
  const node = (args) => JSON.parse(execFileSync(process.execPath, [tool, ...args], { encoding: "utf8", maxBuffer: 1 << 24 }).trim().split("\n").pop());
  const dir = mkdtempSync(join(tmpdir(), "zh-big-report-"));
  const rows = [];
  try {
    for (const config of configs) {
      // "7b:q4_0", or "7b:4:q4_0" for a 4-layer cut of the shape (tools/big-model.mjs)
      const shape = config.slice(0, config.lastIndexOf(":"));
      const type = config.slice(config.lastIndexOf(":") + 1);
      const file = join(dir, `${shape.replace(":", "-")}-${type}.gguf`);
      const made = node(["make", "--shape", shape, "--type", type, "--out", file]);
      log(`${config}: ${(made.bytes / GB).toFixed(2)} GB written`);
      for (const t of threads) {
        let best;
        let peer = { promptTokS: NaN, decodeTokS: NaN, version: "unavailable" };
        for (let round = 0; round < rounds; round++) {
          const r = node(["run", file, "--threads", String(t), "--prompt", String(prompt), "--tokens", String(tokens)]);
          if (!best) best = r;
          else for (const k of ["promptTokS", "decodeTokS"]) best[k] = Math.max(best[k], r[k]);
          try {
            const p = await zh.openLlamaCppPeer(file, { threads: t, ctx: 512, vocab: shape.startsWith("mixtral") ? 32000 : 55296 });
            await p.run(8, 2); // warm-up
            const run = await p.run(prompt, tokens);
            peer = {
              promptTokS: Math.max((prompt / run.promptMs) * 1000, round ? peer.promptTokS : 0),
              decodeTokS: Math.max((tokens / run.decodeMs) * 1000, round ? peer.decodeTokS : 0),
              version: p.version,
            };
            await p.dispose();
          } catch (error) {
            log(`llama.cpp: ${error.message}`);
          }
          log(`${config} t=${t} round ${round + 1}: zh-llama pp ${r.promptTokS.toFixed(2)} tg ${r.decodeTokS.toFixed(2)} | llama.cpp best so far pp ${peer.promptTokS.toFixed(2)} tg ${peer.decodeTokS.toFixed(2)}`);
        }
        const row = { config, threads: t, fileGB: best.fileBytes / GB, loadS: best.loadS, memories: best.plan.memories, nCtx: best.nCtx, rssGB: best.maxRssBytes / GB, ttftS: best.ttftS, promptTokS: best.promptTokS, decodeTokS: best.decodeTokS, kernelPath: best.kernelPath, peer };
        rows.push(row);
        log(JSON.stringify(row));
      }
      rmSync(file, { force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");

/** The markdown table of bigModelRows' rows. */
export function bigModelTable(rows) {
  return [
    "| model | file GB | threads | load s | memories | peak RSS GB | time to first token s | zh prompt tok/s | llama.cpp prompt tok/s | ratio | zh decode tok/s | llama.cpp decode tok/s | ratio |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.config} | ${f(r.fileGB)} | ${r.threads} | ${f(r.loadS, 1)} | ${r.memories} | ${f(r.rssGB)} | ${f(r.ttftS, 1)} | ${f(r.promptTokS)} | ${f(r.peer.promptTokS)} | ${f(r.promptTokS / r.peer.promptTokS)} | ${f(r.decodeTokS)} | ${f(r.peer.decodeTokS)} | ${f(r.decodeTokS / r.peer.decodeTokS)} |`),
  ].join("\n");
}

/** bigModelRows' rows as compareSvg rows (src/eval/compare.ts), for a chart beside the 125M ones. */
export function bigModelCompareRows(rows) {
  return rows.map((r) => ({
    model: r.config.replace(":", " ").toUpperCase(),
    threads: r.threads,
    promptTokens: 0,
    genTokens: 0,
    zh: { promptTokensPerS: r.promptTokS, decodeTokensPerS: r.decodeTokS },
    llamaCpp: { promptTokensPerS: r.peer.promptTokS, decodeTokensPerS: r.peer.decodeTokS },
    promptRatio: r.promptTokS / r.peer.promptTokS,
    decodeRatio: r.decodeTokS / r.peer.decodeTokS,
    peer: r.peer.version,
  }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: "string", short: "o" }, prompt: { type: "string" }, tokens: { type: "string" }, rounds: { type: "string" } } });
  const configs = positionals.length > 0 ? positionals : DEFAULT_CONFIGS;
  const prompt = Number(values.prompt ?? 100);
  const tokens = Number(values.tokens ?? 16);
  const rounds = Number(values.rounds ?? 2);
  const rows = await bigModelRows(configs, { prompt, tokens, rounds });
  const text = [
    "# Real-size models: zh-llama and llama.cpp on the same files",
    "",
    `Made by \`node tools/big-model-report.mjs${process.argv.slice(2).length ? " " + process.argv.slice(2).join(" ") : ""}\` on ${new Date().toISOString().slice(0, 10)} (${process.version}, ${rows[0]?.peer.version ?? "llama.cpp unavailable"}; zh-llama kernel path: ${rows[0]?.kernelPath ?? "unknown"}). Models: Chinese-LLaMA-2 shapes (vocabulary 55296) with random blocks whose scales have the magnitudes llama.cpp's quantizers give (tools/big-model.mjs), written on the fly. zh-llama runs at the default context (${rows[0]?.nCtx ?? 4096}, f16 KV cache), llama.cpp at context 512 (its speed does not depend on the context size at these lengths). Prompt: ${prompt} tokens; decode: ${tokens} greedy tokens; zh-llama and llama.cpp alternate for ${rounds} rounds and the best round of each is shown. Shared 2-core machine: compare within a row.`,
    "",
    bigModelTable(rows),
    "",
  ].join("\n");
  if (values.out) {
    writeFileSync(values.out + ".tmp", text);
    renameSync(values.out + ".tmp", values.out);
  }
  console.log(text);
}
