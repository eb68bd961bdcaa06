/** The access log, /tokenize and /detokenize, /metrics, and the CLI's log and public-host warning. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { publicHostWarning } from "../../src/cli/serve.js";
import { callApp, FIXTURE, get, post, testServer, type TestServer } from "./helpers.js";

let t: TestServer;
const lines: string[] = [];
beforeAll(async () => {
  t = await testServer({ apiKey: "sk-test", log: (line) => lines.push(line) });
});
afterAll(async () => {
  await t?.model.dispose();
});

const auth = { authorization: "Bearer sk-test" };
const call = (r: Request) => callApp(t.app, r);

describe("access log", () => {
  it("one line per request: method, path, status, tokens where known, ms", async () => {
    lines.length = 0;
    const r = await call(post("/v1/completions", { prompt: "你好", max_tokens: 4, temperature: 0, logit_bias: { "2": -100 } }, auth));
    expect(r.status).toBe(200);
    await call(get("/nope?key=secret", auth));
    await call(get("/health"));
    const s = await call(post("/v1/chat/completions", { messages: "hi", max_tokens: 3, stream: true, logit_bias: { "2": -100 } }, auth));
    expect(s.status).toBe(200);
    expect(lines).toHaveLength(4);
    const prompt = t.tokenizer.encode("你好").length;
    expect(lines[0]).toMatch(new RegExp(`^POST /v1/completions 200 ${prompt}\\+4 tokens \\d+ ms$`));
    expect(lines[1]).toMatch(/^GET \/nope 404 \d+ ms$/); // no query string
    expect(lines[2]).toMatch(/^GET \/health 200 \d+ ms$/);
    expect(lines[3]).toMatch(/^POST \/v1\/chat\/completions 200 \d+\+3 tokens \d+ ms$/); // written when the stream ended
  });

  it("off by default", async () => {
    const quiet = await testServer();
    const original = console.error;
    const seen: unknown[] = [];
    console.error = (...a: unknown[]) => void seen.push(a);
    try {
      expect((await quiet.app.fetch(get("/health"))).status).toBe(200);
    } finally {
      console.error = original;
      await quiet.model.dispose();
    }
    expect(seen).toEqual([]);
  });
});

describe("/tokenize and /detokenize (llama-server's shapes)", () => {
  it("round-trips; add_special adds BOS", async () => {
    const r = await call(post("/tokenize", { content: "你好 world" }, auth));
    expect(r.status).toBe(200);
    expect(r.body!.tokens).toEqual(t.tokenizer.encode("你好 world", { addBos: false, addEos: false }));
    const withBos = await call(post("/tokenize", { content: "你好 world", add_special: true }, auth));
    expect(withBos.body!.tokens).toEqual([t.tokenizer.bosId, ...r.body!.tokens]);
    const d = await call(post("/detokenize", { tokens: r.body!.tokens }, auth));
    expect(d.body).toEqual({ content: t.tokenizer.decode(r.body!.tokens) }); // the tiny random fixture's vocabulary keeps its "▁"
    expect((await call(post("/detokenize", { tokens: [] }, auth))).body).toEqual({ content: "" });
  });

  it("bad input is a 400 naming the field; the key is required", async () => {
    const bad: Array<[string, unknown, string]> = [
      ["/tokenize", {}, "content"],
      ["/tokenize", { content: 5 }, "content"],
      ["/tokenize", { content: "x", add_special: "yes" }, "add_special"],
      ["/tokenize", { content: "x", with_pieces: true }, "with_pieces"],
      ["/detokenize", {}, "tokens"],
      ["/detokenize", { tokens: "1 2" }, "tokens"],
      ["/detokenize", { tokens: [1, 2.5] }, "tokens"],
      ["/detokenize", { tokens: [-1] }, "tokens"],
      ["/detokenize", { tokens: [t.tokenizer.vocabSize] }, "tokens"],
    ];
    for (const [path, body, param] of bad) {
      const r = await call(post(path, body, auth));
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body!.error.param).toBe(param);
    }
    expect((await call(post("/tokenize", "not json", auth))).status).toBe(400);
    expect((await call(post("/tokenize", { content: "x" }))).status).toBe(401);
    expect((await call(get("/tokenize", auth))).status).toBe(405);
  });
});

describe("/metrics", () => {
  it("Prometheus text: requests by endpoint and status class, tokens, queue, tok/s", async () => {
    const before = await call(get("/metrics", auth));
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const value = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}"/.]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
    const r = await call(post("/v1/completions", { prompt: "abc", max_tokens: 5, logit_bias: { "2": -100 } }, auth));
    expect(r.status).toBe(200);
    await call(post("/v1/completions", { prompt: 5 }, auth)); // a 400
    const m = await call(get("/metrics", auth));
    const text = m.text;
    for (const line of text.trimEnd().split("\n")) expect(line).toMatch(/^(# (HELP|TYPE) zh_llama_\w+ .+|zh_llama_\w+(\{[^}]*\})? [0-9.e+-]+)$/);
    expect(text).toContain("# TYPE zh_llama_requests_total counter");
    const ok = 'zh_llama_requests_total{endpoint="/v1/completions",status="2xx"}';
    const bad = 'zh_llama_requests_total{endpoint="/v1/completions",status="4xx"}';
    expect(value(text, ok) - value(before.text, ok)).toBe(1);
    expect(value(text, bad) - value(before.text, bad)).toBe(1);
    expect(value(text, 'zh_llama_requests_total{endpoint="/metrics",status="2xx"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, "zh_llama_prompt_tokens_total") - value(before.text, "zh_llama_prompt_tokens_total")).toBe(r.body!.usage.prompt_tokens);
    expect(value(text, "zh_llama_generated_tokens_total") - value(before.text, "zh_llama_generated_tokens_total")).toBe(5);
    expect(value(text, "zh_llama_decode_tokens_per_second")).toBeGreaterThan(0);
    expect(text).toMatch(/^zh_llama_queue_depth 0$/m);
    expect(text).toMatch(/^zh_llama_sessions_busy 0$/m);
    expect(text).toMatch(/^zh_llama_sessions 1$/m);
    expect((await call(get("/metrics"))).status).toBe(401);
  });
});

describe("zh-llama serve", () => {
  /** Runs `zh-llama serve ARGS` in process until it listens, makes `requests`, then stops it as SIGTERM would. */
  async function serveOnce(args: string[], requests: (base: string) => Promise<void>): Promise<string> {
    let stderr = "";
    const io: CliIo = { stdout: () => undefined, stderr: (s) => void (stderr += s), isTty: false };
    const before = { SIGINT: new Set(process.rawListeners("SIGINT")), SIGTERM: new Set(process.rawListeners("SIGTERM")) };
    const done = main(["serve", "-m", FIXTURE, "-c", "256", "--port", "0", ...args], io);
    const deadline = Date.now() + 20_000;
    let port: string | undefined;
    while (!(port = /listening on http:\/\/\S+:(\d+)/.exec(stderr)?.[1])) {
      if (Date.now() > deadline) throw new Error(`serve did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    try {
      await requests(`http://127.0.0.1:${port}`);
    } finally {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        for (const l of process.rawListeners(signal)) if (!before[signal].has(l)) (l as () => void)();
      }
    }
    expect(await done).toBe(0);
    return stderr;
  }

  it("logs each request on stderr; --quiet does not", async () => {
    const hit = async (base: string) => {
      expect((await fetch(`${base}/health`)).status).toBe(200);
      const r = await fetch(`${base}/tokenize`, { method: "POST", body: JSON.stringify({ content: "hi" }) });
      expect(r.status).toBe(200);
    };
    const loud = await serveOnce([], hit);
    expect(loud).toMatch(/^\S+Z GET \/health 200 \d+ ms$/m);
    expect(loud).toMatch(/^\S+Z POST \/tokenize 200 \d+ ms$/m);
    expect(loud).not.toContain("warning");
    const quiet = await serveOnce(["--quiet"], hit);
    expect(quiet).not.toMatch(/\/health/);
  }, 60_000);

  it("a non-loopback --host without --api-key prints a one-line warning", async () => {
    const warned = await serveOnce(["--host", "0.0.0.0", "--quiet"], async () => undefined);
    const warnings = warned.split("\n").filter((l) => l.includes("warning"));
    expect(warnings).toEqual(["zh-llama serve: warning: listening on 0.0.0.0 without --api-key: anyone who can reach this address can use the server (set --api-key KEY or ZH_LLAMA_API_KEY)"]);
    const keyed = await serveOnce(["--host", "0.0.0.0", "--quiet", "--api-key", "k"], async () => undefined);
    expect(keyed).not.toContain("warning");
    expect(publicHostWarning("127.0.0.1", undefined)).toBeUndefined();
    expect(publicHostWarning("localhost", undefined)).toBeUndefined();
    expect(publicHostWarning("[::1]", undefined)).toBeUndefined();
    expect(publicHostWarning("::", undefined)).toMatch(/^warning: listening on :: without --api-key/);
    expect(publicHostWarning("192.168.1.5", undefined)).toBeDefined();
    expect(publicHostWarning("192.168.1.5", "k")).toBeUndefined();
  }, 60_000);
});
