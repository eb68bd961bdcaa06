#!/usr/bin/env node
// Real-size models in CI: a 7B-shaped and a 13B-shaped Q4_0 GGUF (Chinese-LLaMA-2 shapes,
// vocabulary 55296; ~4.0 and ~7.5 GB of random blocks written on the fly, deleted afterwards)
// run 8 tokens at their default context (4096) with 1 thread and with 2, each run in a fresh
// process. Checks: the plan spreads the model over several wasm32 memories, the logits are
// finite, and the process's peak RSS lies between the weights' size and file size + KV cache +
// 300 MB (the loader reads straight into kernel memory; untouched KV pages cost nothing).
// The 7B file also runs under Deno and Bun (2 threads). Then Mixtral at scale: the 8x7B shape (8 experts of ffn 14336, top-2, vocabulary 32000; one
// layer's stacked experts are 792 MB in Q4_0) with 2 layers, where the wasm backend on 2 threads
// must match the reference backend (same greedy tokens; logits within 2e-3 of their magnitude).
// Prints "ok ..." / "FAIL ..." lines for .ci/run.   node test/smoke/big-models.mjs [7b 13b]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const tool = join(root, "tools/big-model.mjs");
const shapes = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["7b", "13b", "mixtral"];
const dir = mkdtempSync(join(tmpdir(), "zh-big-"));
const MB = 1e6;
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAIL"} ${what}`);
  if (!ok) failed++;
};
const RUNTIMES = {
  node: [process.execPath],
  deno: ["npx", "--no-install", "deno", "run", "--allow-read", "--allow-write", "--allow-env", "--allow-sys"],
  bun: ["npx", "--no-install", "bun"],
};
const run = (runtime, args) => {
  const [cmd, ...pre] = RUNTIMES[runtime];
  return JSON.parse(execFileSync(cmd, [...pre, tool, ...args], { encoding: "utf8", maxBuffer: 1 << 24, cwd: root }).trim().split("\n").pop());
};
const node = (args) => run("node", args);

try {
  const fs = statfsSync(tmpdir());
  const freeDisk = fs.bavail * fs.bsize;
  for (const shape of shapes) {
    const need = shape === "13b" ? 8e9 : shape === "mixtral" ? 2e9 : 4.2e9;
    if (freeDisk < need + 1e9 || totalmem() < 2 * need + 4e9) {
      console.log(`skip ${shape}: needs ${(need / 1e9).toFixed(1)} GB of disk and ${((2 * need + 4e9) / 1e9).toFixed(0)} GB of RAM`);
      continue;
    }
    const file = join(dir, `${shape}-q4_0.gguf`);
    const made = node(["make", "--shape", shape === "mixtral" ? "mixtral:2" : shape, "--type", "q4_0", "--out", file]);
    console.log(`# made ${file}: ${(made.bytes / 1e9).toFixed(2)} GB in ${made.seconds.toFixed(1)} s`);
    if (shape === "mixtral") {
      const c = node(["compare", file, "--threads", "2", "--tokens", "2"]);
      console.log(`# mixtral-shaped, 2 layers x 8 experts: wasm ${c.wasmS.toFixed(1)} s, reference ${c.referenceS.toFixed(1)} s, max |Δlogit| ${c.maxDiff.toExponential(2)} of max |logit| ${c.maxAbs.toFixed(1)}`);
      check(c.experts === 8 && c.finite, "mixtral: 8 experts, finite logits");
      check(c.sameArgmax, "mixtral: wasm and reference backends pick the same greedy tokens (prompt + 2 steps)");
      check(c.maxDiff <= 2e-3 * c.maxAbs, `mixtral: wasm logits within 2e-3 of their magnitude of the reference's (${(c.maxDiff / c.maxAbs).toExponential(2)})`);
      rmSync(file, { force: true });
      continue;
    }
    for (const threads of [1, 2]) {
      const r = node(["run", file, "--threads", String(threads), "--prompt", "8", "--tokens", "8"]);
      const p = r.plan;
      console.log(`# ${shape} q4_0, ${threads} thread(s), context ${r.nCtx}: load ${r.loadS.toFixed(1)} s, ${p.memories} memories, plan ${(p.totalBytes / MB).toFixed(0)} MB (weights ${(p.weightBytes / MB).toFixed(0)}, KV ${(p.kvBytes / MB).toFixed(0)}), peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB, prompt ${r.promptTokS.toFixed(2)} tok/s, decode ${r.decodeTokS.toFixed(2)} tok/s`);
      check(r.nCtx === 4096, `${shape} t${threads}: runs at the default (training) context ${r.nCtx}`);
      check(p.memories >= 2, `${shape} t${threads}: spread over ${p.memories} wasm32 memories`);
      check(r.finite, `${shape} t${threads}: finite logits after 8 prompt + 8 decoded tokens`);
      check(r.maxRssBytes >= 0.95 * p.weightBytes, `${shape} t${threads}: peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB holds the weights (${(p.weightBytes / MB).toFixed(0)} MB)`);
      const bound = r.fileBytes + p.kvBytes + 300 * MB;
      check(r.maxRssBytes <= bound, `${shape} t${threads}: peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB <= file + KV cache + 300 MB (${(bound / MB).toFixed(0)} MB)`);
      check(r.maxRssBytes <= p.totalBytes + 300 * MB, `${shape} t${threads}: peak RSS within the plan's ${(p.totalBytes / MB).toFixed(0)} MB + 300 MB`);
    }
    if (shape === "7b") {
      // The same file in Deno and Bun (Bun has no Memory64: the layer split is what lets it run).
      for (const runtime of ["deno", "bun"]) {
        try {
          const r = run(runtime, ["run", file, "--threads", "2", "--prompt", "8", "--tokens", "8"]);
          console.log(`# ${shape} q4_0 under ${runtime}, 2 threads: ${r.plan.memories} memories, peak RSS ${(r.maxRssBytes / MB).toFixed(0)} MB, decode ${r.decodeTokS.toFixed(2)} tok/s`);
          check(r.finite && r.plan.memories >= 2 && r.nCtx === 4096, `${shape} under ${runtime}: default context, ${r.plan.memories} memories, finite logits`);
        } catch (error) {
          check(false, `${shape} under ${runtime}: ${String(error.message ?? error).split("\n")[0]}`);
        }
      }
    }
    rmSync(file, { force: true });
  }
} catch (error) {
  check(false, `big models: ${error.stack ?? error}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed > 0 ? 1 : 0);
