/**
 * End-to-end: the chat page in Debian's Chromium (playwright-core drives the system browser;
 * nothing is downloaded). Builds the bundle, serves web/ with web/serve.mjs, loads the bundled
 * model, sends a Chinese prompt, and checks that the reply streams and that the greedy reply is
 * the Node library's for the same prompt, template and sampling settings. Screenshots go to
 * test-artifacts/.
 *
 * Skips (with a message) where /usr/bin/chromium is missing: CI installs Debian's `chromium`.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { execFile } from "node:child_process";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { LlamaModel } from "../../src/model/model.js";
import { generate, type GenerateOptions, type GenerationResult } from "../../src/generate/index.js";
import { tokenizerFromGgufMetadata } from "../../src/tokenizer/index.js";
import { getTemplate } from "../../src/chat/templates.js";
import { DEFAULT_MODEL_FILE } from "../../web/default-model.js";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = join(import.meta.dirname, "..", "..");
const MODEL = join(ROOT, "fixtures", "models", DEFAULT_MODEL_FILE);
const ARTIFACTS = join(ROOT, "test-artifacts");
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

const havePlaywright = existsSync(join(ROOT, "node_modules", "playwright-core", "package.json"));
const haveChromium = existsSync(CHROMIUM) && havePlaywright;
if (!existsSync(CHROMIUM)) console.warn(`test/web: ${CHROMIUM} is missing, skipping the browser tests (apt-get install chromium)`);
else if (!havePlaywright) console.warn("test/web: playwright-core is missing, skipping the browser tests (tools/install-extras.sh playwright)");

/** What the page exposes as window.zhLlama (web/main.ts PageState), as far as the test reads it. */
interface PageState {
  status: string;
  backend: string;
  crossOriginIsolated: boolean;
  reply: string;
  tokenEvents: number;
  finishReason: string;
  generatedIds: number[];
  error: string;
  notices: string[];
  memories: number;
}

const PROMPT = "请用一句话介绍北京。";
const TEMPLATE = "alpaca-2";
const MAX_TOKENS = 24;

/** The same settings the test types into the page. */
function nodeOptions(stop: string[]): GenerateOptions {
  return { temperature: 0, topK: 40, topP: 0.9, repetitionPenalty: 1.1, maxTokens: MAX_TOKENS, stop };
}

async function nodeReply(): Promise<GenerationResult> {
  const model = await LlamaModel.load(MODEL, { threads: 1, nCtx: 256 });
  try {
    const tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
    const template = getTemplate(TEMPLATE);
    const prompt = template.render([{ role: "user", content: PROMPT }], tokenizer);
    for await (const event of generate(model, tokenizer, prompt, nodeOptions(template.stop))) {
      if (event.type === "done") return event.result;
    }
    throw new Error("generate() gave no result");
  } finally {
    await model.dispose();
  }
}

const pageState = (page: Page) => page.evaluate(() => (window as unknown as { zhLlama: PageState }).zhLlama);

async function waitLoaded(page: Page): Promise<PageState> {
  await page.waitForFunction(() => {
    const s = (window as unknown as { zhLlama?: PageState }).zhLlama;
    return s !== undefined && (s.status === "ready" || s.status === "error");
  }, null, { timeout: 60_000 });
  return pageState(page);
}

/** Sends PROMPT greedily; resolves with the page state and every text the reply bubble showed. */
async function chat(page: Page, maxTokens = MAX_TOKENS): Promise<{ state: PageState; shown: string[] }> {
  await page.selectOption("#template", TEMPLATE);
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", String(maxTokens));
  await page.fill("#prompt", PROMPT);
  // Record each text the reply bubble takes, to see it grow piece by piece.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { shown: string[] }).shown = seen;
    new MutationObserver(() => {
      const bubbles = document.querySelectorAll(".msg.assistant");
      const last = bubbles[bubbles.length - 1];
      if (last && last.textContent !== seen[seen.length - 1]) seen.push(last.textContent ?? "");
    }).observe(document.getElementById("log")!, { subtree: true, childList: true, characterData: true });
  });
  await page.click("#send");
  await page.waitForFunction(() => {
    const s = (window as unknown as { zhLlama: PageState }).zhLlama;
    return s.status !== "generating" && (s.finishReason !== "" || s.error !== "");
  }, null, { timeout: 240_000 });
  return { state: await pageState(page), shown: await page.evaluate(() => (window as unknown as { shown: string[] }).shown) };
}

describe.skipIf(!haveChromium)("web page in Chromium", () => {
  let server: Server;
  let base: string;
  let plainServer: Server;
  let plainBase: string;
  let context: BrowserContext;
  let profile: string;
  let expected: GenerationResult;

  beforeAll(async () => {
    await promisify(execFile)(process.execPath, [join(ROOT, "tools", "build-web.mjs")], { cwd: ROOT });
    const { createWebServer } = (await import(join(ROOT, "web", "serve.mjs"))) as {
      createWebServer(o?: { isolation?: boolean }): Server;
    };
    const listen = async (s: Server) => {
      await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}/`;
    };
    server = createWebServer();
    base = await listen(server);
    plainServer = createWebServer({ isolation: false });
    plainBase = await listen(plainServer);
    await mkdir(ARTIFACTS, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), "zh-llama-chromium-"));
    const { chromium } = await import("playwright-core");
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    expected = await nodeReply();
  });

  afterAll(async () => {
    await context?.close();
    server?.close();
    plainServer?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it("loads the bundled model on worker threads, streams a Chinese reply, greedy = the Node library", async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const modelReads: Array<{ method: string; range: string | undefined; status: number }> = [];
    page.on("response", (r) => {
      if (r.url().endsWith(".gguf")) modelReads.push({ method: r.request().method(), range: r.request().headers()["range"], status: r.status() });
    });
    await page.goto(base);
    const loaded = await waitLoaded(page);
    // The model is read lazily by URL: a HEAD for the size, then range requests only.
    const gets = modelReads.filter((r) => r.method === "GET");
    expect(gets.length).toBeGreaterThan(0);
    for (const r of gets) expect([r.range, r.status]).toEqual([expect.stringMatching(/^bytes=\d+-\d+$/), 206]);
    expect(loaded.error).toBe("");
    expect(loaded.crossOriginIsolated).toBe(true);
    expect(loaded.backend).toMatch(/^WASM .*, \d+ threads? /);
    // "auto" looked for WebGPU first (none with --disable-gpu) and said why it uses WASM.
    expect(loaded.notices.join("\n")).toMatch(/WebGPU .*using WASM/);
    const { state, shown } = await chat(page);
    await page.screenshot({ path: join(ARTIFACTS, "web-chat.png"), fullPage: true });
    expect(state.error).toBe("");
    expect(state.tokenEvents).toBeGreaterThan(1);
    // Streaming: the bubble showed growing prefixes of the final reply, more than one of them.
    expect(shown.length).toBeGreaterThan(1);
    for (const s of shown) expect(state.reply.startsWith(s)).toBe(true);
    expect(state.generatedIds).toEqual(expected.generatedIds);
    expect(state.reply).toBe(expected.text);
    expect(await page.textContent("#speed")).toMatch(/tok\/s/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("WebGPU backend (Chromium's SwiftShader adapter): greedy reply = the Node library's WASM one", async () => {
    const gpuProfile = await mkdtemp(join(tmpdir(), "zh-llama-chromium-"));
    const { chromium } = await import("playwright-core");
    const gpuContext = await chromium.launchPersistentContext(gpuProfile, { executablePath: CHROMIUM, headless: true, args: [...ARGS, "--enable-unsafe-webgpu"] });
    try {
      const page = await gpuContext.newPage();
      await page.goto(`${base}?backend=webgpu`);
      const loaded = await waitLoaded(page);
      expect(loaded.error).toBe("");
      if (!/^WebGPU/.test(loaded.backend)) {
        console.warn(`test/web: Chromium gave no WebGPU adapter here (${loaded.notices.join("; ")}); WebGPU page check skipped`);
        return;
      }
      const { state, shown } = await chat(page);
      await page.screenshot({ path: join(ARTIFACTS, "web-webgpu.png"), fullPage: true });
      expect(shown.length).toBeGreaterThan(1);
      expect(state.generatedIds).toEqual(expected.generatedIds);
      expect(state.reply).toBe(expected.text);
      // "auto" passes a software adapter over, and says so.
      await page.goto(`${base}?backend=auto`);
      const auto = await waitLoaded(page);
      expect(auto.backend).toMatch(/^WASM/);
      expect(auto.notices.join("\n")).toMatch(/software renderer/);
    } finally {
      await gpuContext.close();
      await rm(gpuProfile, { recursive: true, force: true });
    }
  }, 300_000); // a software GPU: about 2 s per token of the bundled model

  it("a model spread over 3 wasm32 memories (forced small limit) answers with the same tokens", async () => {
    const page = await context.newPage();
    // 64 MiB memories, at most 3 of the bundled model's 8 layers each: embeddings and layers 0-2,
    // layers 3-5, then layers 6-7 with the output projection.
    await page.goto(`${base}?backend=wasm&memoryLimit=${64 << 20}&layersPerMemory=3`);
    const loaded = await waitLoaded(page);
    expect(loaded.error).toBe("");
    expect(loaded.memories).toBe(3);
    const { state } = await chat(page);
    expect(state.error).toBe("");
    expect(state.generatedIds).toEqual(expected.generatedIds);
    expect(state.reply).toBe(expected.text);
    await page.close();
  });

  it("a chat longer than the context drops its oldest turns instead of failing (ChatSession)", async () => {
    const page = await context.newPage();
    await page.goto(base);
    await waitLoaded(page);
    // Reload with a 128-token context, then hold a conversation several times that long.
    await page.fill("#ctx", "128");
    await page.click("#reload");
    await waitLoaded(page);
    for (let turn = 0; turn < 5; turn++) {
      const { state } = await chat(page, 40);
      expect(state.error, `turn ${turn}`).toBe("");
      expect(state.generatedIds.length).toBeGreaterThan(0);
    }
    await page.close();
  });

  it("stops on the stop button", async () => {
    const page = await context.newPage();
    await page.goto(base);
    await waitLoaded(page);
    await page.fill("#temperature", "0");
    await page.fill("#max-tokens", "200");
    await page.fill("#ctx", "2048");
    await page.fill("#prompt", PROMPT);
    // The tiny model fills its context in well under a second: press Stop from inside the page,
    // as soon as the first piece of the reply shows, rather than racing it from here.
    await page.evaluate(() => {
      new MutationObserver((_, observer) => {
        if (document.querySelector(".msg.assistant")?.textContent) {
          observer.disconnect();
          (document.getElementById("stop") as HTMLButtonElement).click();
        }
      }).observe(document.getElementById("log")!, { subtree: true, childList: true, characterData: true });
    });
    await page.click("#send");
    await page.waitForFunction(() => (window as unknown as { zhLlama: PageState }).zhLlama.status !== "generating", null, { timeout: 60_000 });
    const state = await pageState(page);
    expect(state.finishReason).toBe("abort");
    expect(state.generatedIds.length).toBeLessThan(200);
    await page.close();
  });

  it("says so when the picked file is not GGUF", async () => {
    const page = await context.newPage();
    await page.goto(base);
    await waitLoaded(page);
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("这不是模型文件\n") });
    await page.waitForFunction(() => (window as unknown as { zhLlama: PageState }).zhLlama.status === "error", null, { timeout: 30_000 });
    const state = await pageState(page);
    expect(state.error).toMatch(/notes\.txt is not a GGUF model file/);
    expect(await page.textContent("#notices")).toMatch(/not a GGUF model file/);
    await page.screenshot({ path: join(ARTIFACTS, "web-not-gguf.png") });
    await page.close();
  });

  it("without COOP/COEP: announces the one-thread fallback and still answers the same", async () => {
    const page = await context.newPage();
    await page.goto(plainBase);
    const loaded = await waitLoaded(page);
    expect(loaded.crossOriginIsolated).toBe(false);
    expect(loaded.notices.join("\n")).toMatch(/not cross-origin isolated/);
    expect(loaded.error).toBe("");
    expect(loaded.backend).toMatch(/1 thread/);
    const { state } = await chat(page);
    expect(state.generatedIds).toEqual(expected.generatedIds);
    await page.screenshot({ path: join(ARTIFACTS, "web-no-isolation.png"), fullPage: true });
    await page.close();
  });
});
