#!/usr/bin/env node
/**
 * llama.cpp's WebAssembly build (npm @wllama/wllama) as a benchmark peer, run where it runs: in
 * headless Chromium. wllama needs a browser (Worker, OPFS, JSPI, wasm64), not Node.
 *
 * - Chromium is Debian's /usr/bin/chromium, driven by playwright-core; nothing is downloaded.
 * - The page, wllama's own files (node_modules/@wllama/wllama/esm: index.js with its worker
 *   inlined, wasm/wllama.wasm) and the GGUF come from web/serve.mjs's server with COOP/COEP, so
 *   the page is cross-origin isolated and wllama can use threads (SharedArrayBuffer).
 * - The model is loaded with loadModelFromUrl from that server; WebGPU is off (n_gpu_layers 0).
 * - One measurement = createCompletion on a text prompt (wllama takes no token ids) with greedy
 *   sampling, EOS ignored and byte pieces banned (a byte token that is not valid UTF-8 on its own
 *   aborts wllama's JSON layer). Prompt and decode times are wllama's own (llama-server)
 *   timings: prompt_ms covers the prompt batch and the first sampled token, predicted_ms the
 *   decode steps after it, so `genTokens` decode steps need max_tokens = genTokens + 1. The
 *   prompt's token count is the one wllama reports (prompt_n), BOS included.
 *
 * Standalone: node tools/wllama-peer.mjs MODEL.gguf [-t THREADS] [-r RUNS] [-p PROMPT_TOKENS] [-n GEN_TOKENS]
 * (MODEL needs a real vocabulary for the text prompt, e.g. the bench model of tools/bench-report.mjs).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

/** Why wllama cannot be benchmarked here, or undefined when it can. */
export function wllamaUnavailableReason() {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium)`;
  try {
    require.resolve("@wllama/wllama/package.json");
  } catch {
    return "npm package @wllama/wllama is not installed (tools/install-extras.sh wllama)";
  }
  try {
    require.resolve("playwright-core");
  } catch {
    return "npm package playwright-core is not installed (tools/install-extras.sh playwright)";
  }
  return undefined;
}

/**
 * LLaMA's 32000-piece vocabulary (rebuilt from npm llama-tokenizer-js) as GGUF tokenizer metadata
 * and as a zh-llama tokenizer: the benchmark model gets it so that text prompts mean something.
 */
export function llamaVocabulary(zh) {
  const llamaJs = require("llama-tokenizer-js");
  const proto = zh.buildLlamaTokenizerModel((llamaJs.default ?? llamaJs).vocabById);
  const tokenizer = zh.tokenizerFromSentencePieceBytes(zh.serializeSentencePieceModel(proto), "llama-tokenizer-js");
  const metadata = zh.tokenizerToGgufMetadata(tokenizer);
  return { tokenizer, metadata: { ...metadata, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0 } };
}

/** English text (this project's README, markup stripped) cut at a word so it is at most `tokens` tokens, BOS included. */
export function benchPromptText(tokenizer, tokens) {
  const words = readFileSync(join(root, "README.md"), "utf8")
    .replace(/```[\s\S]*?```/g, " ")
    .replace(/[^A-Za-z0-9.,;:()' -]+/g, " ")
    .split(/\s+/)
    .filter((w) => /^[A-Za-z][A-Za-z,.;:'()-]*$/.test(w));
  const count = (n) => tokenizer.encode(words.slice(0, n).join(" "), { addBos: true }).length;
  let lo = 1, hi = words.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (count(mid) <= tokens) lo = mid;
    else hi = mid - 1;
  }
  return words.slice(0, lo).join(" ");
}

// Runs in the page: one Wllama instance per (model, threads), kept on window between calls.
const PAGE = `<!doctype html><meta charset="utf-8"><title>wllama bench</title><link rel="icon" href="data:,">
<script type="module">
import { Wllama } from "/wllama/index.js";
const quiet = { debug() {}, log() {}, warn: (...a) => console.warn(...a), error: (...a) => console.error(...a) };
window.wllamaBench = {
  async load(url, threads, ctx) {
    await window.wllamaBench.exit().catch(() => {});
    window.wl = new Wllama({ default: "/wllama/wasm/wllama.wasm" }, { suppressNativeLog: true, logger: quiet });
    const t0 = performance.now();
    await window.wl.loadModelFromUrl(url, {
      n_threads: threads, n_ctx: ctx, n_batch: ctx, n_ubatch: ctx, n_parallel: 1, n_gpu_layers: 0,
      flash_attn: false, cache_type_k: "f16", cache_type_v: "f16", useCache: true,
    });
    return { loadMs: performance.now() - t0, threads: window.wl.getNumThreads(), multithread: window.wl.isMultithread(), isolated: self.crossOriginIsolated };
  },
  async run(prompt, maxTokens) {
    const t0 = performance.now();
    const r = await window.wl.createCompletion({
      prompt, max_tokens: maxTokens, temperature: 0, top_k: 1, ignore_eos: true, cache_prompt: false,
      logit_bias: Array.from({ length: 256 }, (_, i) => [3 + i, false]),
    });
    return { wallMs: performance.now() - t0, timings: r.timings, usage: r.usage, text: r.choices[0].text };
  },
  async exit() {
    if (window.wl) await window.wl.exit();
    window.wl = undefined;
  },
};
window.wllamaLibllama = Wllama.getLibllamaVersion();
window.wllamaReady = true;
</script>`;

/**
 * Starts the server and Chromium. `modelDir` holds the GGUF files to serve (at /models/).
 * Returns { version, libllama, chromium, open(file, threads, ctx), close() }; open() gives a peer with
 * run(promptText, genTokens) -> { promptTokens, promptMs, genTokens, decodeMs, wallMs } and dispose().
 * A call that fails or gives no answer in `callTimeoutS` throws, and the page is reloaded.
 */
export async function startWllama(modelDir, log = () => {}, callTimeoutS = 600) {
  const reason = wllamaUnavailableReason();
  if (reason) throw new Error(`wllama peer unavailable: ${reason}`);
  const pkgDir = dirname(require.resolve("@wllama/wllama/package.json"));
  const version = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
  const pageDir = mkdtempSync(join(tmpdir(), "zh-wllama-page-"));
  writeFileSync(join(pageDir, "index.html"), PAGE);
  const profile = mkdtempSync(join(tmpdir(), "zh-wllama-chromium-"));
  const { createWebServer } = await import(pathToFileURL(join(root, "web", "serve.mjs")).href);
  const server = createWebServer({
    roots: [
      { prefix: "/wllama/", dir: join(pkgDir, "esm") },
      { prefix: "/models/", dir: resolve(modelDir) },
      { prefix: "/", dir: pageDir },
    ],
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const base = `http://127.0.0.1:${server.address().port}`;
  let context;
  const cleanup = async () => {
    await context?.close().catch(() => {});
    server.close();
    rmSync(pageDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const { chromium } = await import("playwright-core");
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const browserVersion = context.browser()?.version() ?? "unknown";
    let page;
    let errors = [];
    // A fresh page: after a crash or a hung call the next model starts clean.
    const newPage = async () => {
      await page?.close().catch(() => {});
      errors = [];
      page = await context.newPage();
      page.on("pageerror", (e) => errors.push(e.message.split("\n")[0]));
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") log(`wllama page ${m.type()}: ${m.text()}`);
      });
      page.on("crash", () => errors.push("page crashed"));
      await page.goto(`${base}/`);
      await page.waitForFunction(() => window.wllamaReady === true, null, { timeout: 60_000 });
    };
    await newPage();
    const call = async (what, ...args) => {
      let timer;
      try {
        const timeout = new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${callTimeoutS} s`)), callTimeoutS * 1000);
        });
        return await Promise.race([page.evaluate(([w, a]) => window.wllamaBench[w](...a), [what, args]), timeout]);
      } catch (e) {
        const message = `wllama ${what}: ${e.message.split("\n")[0]}${errors.length ? ` (page: ${errors.join("; ")})` : ""}`;
        await newPage().catch(() => {});
        throw new Error(message);
      } finally {
        clearTimeout(timer);
      }
    };
    const libllama = await page.evaluate(() => window.wllamaLibllama);
    return {
      version: `wllama ${version}`,
      libllama,
      chromium: `Chromium ${browserVersion}`,
      async open(file, threads, ctx) {
        const info = await call("load", `/models/${encodeURIComponent(basename(file))}`, threads, ctx);
        if (info.threads !== threads) throw new Error(`wllama runs ${info.threads} thread(s), asked for ${threads} (cross-origin isolated: ${info.isolated})`);
        log(`wllama ${version}: ${basename(file)} loaded in ${(info.loadMs / 1000).toFixed(1)} s, ${info.threads} thread(s), isolated ${info.isolated}`);
        return {
          async run(promptText, genTokens) {
            const r = await call("run", promptText, genTokens + 1);
            const t = r.timings;
            if (!t || t.predicted_n !== genTokens + 1 || t.cache_n > 0) throw new Error(`wllama: unexpected timings ${JSON.stringify(t)}`);
            return { promptTokens: t.prompt_n, promptMs: t.prompt_ms, genTokens: t.predicted_n - 1, decodeMs: t.predicted_ms, wallMs: r.wallMs };
          },
          async dispose() {
            await call("exit");
          },
        };
      },
      close: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const model = process.argv[2];
  if (!model || !existsSync(model)) {
    console.error("usage: node tools/wllama-peer.mjs MODEL.gguf [-t THREADS] [-r RUNS] [-p PROMPT_TOKENS] [-n GEN_TOKENS]");
    process.exit(2);
  }
  const threads = arg("-t", 1), runs = arg("-r", 3), promptTokens = arg("-p", 128), genTokens = arg("-n", 64);
  const zh = await import(pathToFileURL(join(root, "dist/internals.js")).href);
  const prompt = benchPromptText(llamaVocabulary(zh).tokenizer, promptTokens);
  const wl = await startWllama(dirname(resolve(model)), (l) => console.error(l));
  try {
    const peer = await wl.open(model, threads, promptTokens + genTokens + 8);
    await peer.run(prompt, genTokens); // warm-up
    const rows = [];
    for (let r = 0; r < runs; r++) {
      const x = await peer.run(prompt, genTokens);
      rows.push(x);
      console.error(`run ${r + 1}: pp ${x.promptTokens} tokens ${((x.promptTokens / x.promptMs) * 1000).toFixed(1)} tok/s, tg ${x.genTokens} tokens ${((x.genTokens / x.decodeMs) * 1000).toFixed(1)} tok/s, wall ${(x.wallMs / 1000).toFixed(2)} s`);
    }
    await peer.dispose();
    console.log(JSON.stringify({
      peer: `${wl.version} in ${wl.chromium}`, threads,
      promptTokens: rows[0].promptTokens,
      promptTokensPerS: median(rows.map((x) => (x.promptTokens / x.promptMs) * 1000)),
      decodeTokensPerS: median(rows.map((x) => (x.genTokens / x.decodeMs) * 1000)),
    }));
  } finally {
    await wl.close();
  }
}
