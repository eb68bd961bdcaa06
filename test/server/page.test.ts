/**
 * The chat page at `/` (src/server/page.ts): served as one self-contained document, and driven
 * in Debian's Chromium (playwright-core; nothing is downloaded): type a prompt, and the streamed
 * reply is the non-streamed greedy /v1/chat/completions reply for the same prompt.
 *
 * The browser part skips, with a message, where /usr/bin/chromium or playwright-core is missing.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServedHandle } from "../../src/server/index.js";
import { repoRoot } from "../helpers/shared.js";
import { get, testServer, type TestServer } from "./helpers.js";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const havePlaywright = existsSync(join(repoRoot, "node_modules", "playwright-core", "package.json"));
const haveChromium = existsSync(CHROMIUM) && havePlaywright;
if (!existsSync(CHROMIUM)) console.warn(`test/server/page: ${CHROMIUM} is missing, skipping the browser test (apt-get install chromium)`);
else if (!havePlaywright) console.warn("test/server/page: playwright-core is missing, skipping the browser test (tools/install-extras.sh playwright)");

const KEY = "sk-page-test";
let t: TestServer;

beforeAll(async () => {
  t = await testServer({ apiKey: KEY });
});
afterAll(async () => {
  await t?.model.dispose();
});

describe("GET /", () => {
  it("is one self-contained HTML page that may only call this server, without the API key", async () => {
    const res = await t.app.fetch(get("/"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("/v1/chat/completions");
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
  });
});

describe.skipIf(!haveChromium)("the chat page in Chromium", () => {
  let handle: ServedHandle;
  let base = "";
  let context: BrowserContext;
  let profile = "";

  beforeAll(async () => {
    handle = await serve(t.app.fetch, { hostname: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${handle.port}`;
    profile = await mkdtemp(join(tmpdir(), "zh-llama-chromium-"));
    const { chromium } = await import("playwright-core");
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    await handle?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it("a typed prompt gets a streamed reply equal to the non-streamed greedy reply", async () => {
    const prompt = "请用一句话介绍北京。";
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ messages: [{ role: "user", content: prompt }], temperature: 0, max_tokens: 24 }),
    });
    const expected = ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content;
    expect(expected.length).toBeGreaterThan(0);

    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/`);
    await page.fill("#key", KEY);
    await page.dispatchEvent("#key", "change");
    await page.fill("#temperature", "0");
    await page.fill("#max-tokens", "24");
    await page.fill("#prompt", prompt);
    await page.press("#prompt", "Enter");
    await page.waitForFunction(() => (window as unknown as { zhLlamaChat: { status: string } }).zhLlamaChat.status !== "generating" && (window as unknown as { zhLlamaChat: { status: string } }).zhLlamaChat.status !== "ready", undefined, { timeout: 30_000 });
    const state = await page.evaluate(() => (window as unknown as { zhLlamaChat: { status: string; reply: string; chunks: number; error: string; messages: unknown[] } }).zhLlamaChat);
    expect(state.error).toBe("");
    expect(state.status).toBe("done");
    expect(state.reply).toBe(expected);
    expect(await page.textContent(".msg.assistant")).toBe(expected);
    expect(await page.textContent(".msg.user")).toBe(prompt);
    expect(state.messages).toEqual([{ role: "user", content: prompt }, { role: "assistant", content: expected }]);
    // The reply came as a stream: one SSE chunk per token.
    expect(state.chunks).toBeGreaterThan(3);
    expect(await page.isEnabled("#send")).toBe(true);
    expect(await page.isDisabled("#stop")).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("a wrong API key shows the server's error", async () => {
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.fill("#key", "wrong");
    await page.fill("#prompt", "你好");
    await page.click("#send");
    await page.waitForFunction(() => (window as unknown as { zhLlamaChat: { status: string } }).zhLlamaChat.status === "error", undefined, { timeout: 30_000 });
    expect(await page.textContent(".msg.error")).toMatch(/Incorrect API key/);
    await page.close();
  }, 60_000);
});
