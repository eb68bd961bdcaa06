/**
 * Ollama's API (src/server/ollama.ts) over a real socket on 127.0.0.1, driven by the `ollama`
 * client from npm, and by raw fetch for the NDJSON framing and the error shapes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServedHandle } from "../../src/server/index.js";
import { SERVER_VERSION } from "../../src/server/ollama.js";
import { repoRoot } from "../helpers/shared.js";
import { testServer, type TestServer } from "./helpers.js";

let t: TestServer;
let handle: ServedHandle;
let host = "";
const MODEL = "tiny-random-q8_0";
/** Greedy; Ollama's default repeat_penalty (1.1) applies, as it does to openaiReply below. */
const GREEDY = { temperature: 0, num_predict: 10 };

beforeAll(async () => {
  t = await testServer({ parallel: 2 });
  handle = await serve(t.app.fetch, { hostname: "127.0.0.1", port: 0 });
  host = `http://127.0.0.1:${handle.port}`;
});
afterAll(async () => {
  await handle?.close();
  await t?.model.dispose();
});

const client = () => new Ollama({ host });

/** The reply /v1/chat/completions gives for the same prompt, greedily. */
async function openaiReply(content: string, maxTokens: number): Promise<string> {
  const res = await fetch(`${host}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages: [{ role: "user", content }], max_tokens: maxTokens, temperature: 0, repetition_penalty: 1.1 }) });
  const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
  return body.choices[0]!.message.content;
}

/** NDJSON lines as objects; every line must be one JSON object ended by "\n". */
function ndjson(text: string): Array<Record<string, unknown>> {
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the ollama client", () => {
  it("lists the served model", async () => {
    const { models } = await client().list();
    expect(models).toHaveLength(1);
    const m = models[0]!;
    expect(m.name).toBe(`${MODEL}:latest`);
    expect(m.model).toBe(`${MODEL}:latest`);
    expect(m.size).toBe(t.model.file.fileSize);
    expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(m.modified_at).getTime()).toBeGreaterThan(0);
    expect(m.details).toMatchObject({ format: "gguf", family: "llama", quantization_level: "Q8_0" });
    expect(m.details.parameter_size).toMatch(/^\d+(\.\d)?[KMB]?$/);
  });

  it("chat, not streamed: the greedy reply is /v1/chat/completions' reply", async () => {
    const r = await client().chat({ model: MODEL, messages: [{ role: "user", content: "你好" }], stream: false, options: GREEDY });
    expect(r.model).toBe(MODEL);
    expect(r.done).toBe(true);
    expect(r.message.role).toBe("assistant");
    expect(["stop", "length"]).toContain(r.done_reason);
    expect(r.prompt_eval_count).toBeGreaterThan(0);
    expect(r.eval_count).toBeGreaterThan(0);
    expect(r.total_duration).toBeGreaterThan(0);
    expect(r.message.content).toBe(await openaiReply("你好", 10));
  });

  it("chat, streamed: the pieces add up to the non-streamed reply", async () => {
    const params = { model: `${MODEL}:latest`, messages: [{ role: "user", content: "hello" }], options: GREEDY };
    const stream = await client().chat({ ...params, stream: true });
    let text = "";
    const parts: Array<{ done: boolean; done_reason?: string; eval_count?: number }> = [];
    for await (const part of stream) {
      text += part.message.content;
      parts.push(part);
    }
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.slice(0, -1).every((p) => !p.done)).toBe(true);
    const last = parts[parts.length - 1]!;
    expect(last.done).toBe(true);
    expect(["stop", "length"]).toContain(last.done_reason);
    expect(last.eval_count).toBeGreaterThan(0);
    const whole = await client().chat({ ...params, stream: false });
    expect(text).toBe(whole.message.content);
  });

  it("generate, streamed and not, through the template and raw", async () => {
    const params = { model: MODEL, prompt: "北京", options: GREEDY };
    const whole = await client().generate({ ...params, stream: false });
    expect(whole.done).toBe(true);
    expect(typeof whole.response).toBe("string");
    let text = "";
    for await (const part of await client().generate({ ...params, stream: true })) text += part.response;
    expect(text).toBe(whole.response);
    // Without raw the prompt goes through the chat template: the same as chatting it.
    expect(whole.response).toBe(await openaiReply("北京", 10));
    const raw = await client().generate({ ...params, raw: true, stream: false });
    const withSystem = await client().generate({ ...params, system: "你是一个助手。", stream: false });
    expect(withSystem.prompt_eval_count).toBeGreaterThan(raw.prompt_eval_count);
  });

  it("options reach the sampler: num_predict, seed", async () => {
    const r = await client().generate({ model: MODEL, prompt: "hello", raw: true, stream: false, options: { num_predict: 3, seed: 7, temperature: 1, top_k: 50, min_p: 0.05 } });
    expect(r.eval_count).toBeLessThanOrEqual(3);
    const again = await client().generate({ model: MODEL, prompt: "hello", raw: true, stream: false, options: { num_predict: 3, seed: 7, temperature: 1, top_k: 50, min_p: 0.05 } });
    expect(again.response).toBe(r.response);
  });

  it("errors: an unknown model is the client's ResponseError with status 404", async () => {
    await expect(client().chat({ model: "llama3", messages: [{ role: "user", content: "hi" }], stream: false })).rejects.toMatchObject({ status_code: 404, error: "model 'llama3' not found" });
  });

  it("version and show", async () => {
    expect((await client().version()).version).toBe(SERVER_VERSION);
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
    expect(SERVER_VERSION).toBe(pkg.version);
    const s = await client().show({ model: MODEL });
    expect(s.details.format).toBe("gguf");
    expect(s.model_info["general.architecture"]).toBe("llama");
  });
});

describe("raw fetch: NDJSON framing and errors", () => {
  const post = (path: string, body: unknown) => fetch(`${host}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  it("/api/chat streams by default: one JSON object a line, done last", async () => {
    const res = await post("/api/chat", { model: MODEL, messages: [{ role: "user", content: "hi" }], options: { num_predict: 4, temperature: 0 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const lines = ndjson(await res.text());
    for (const l of lines.slice(0, -1)) {
      expect(l).toMatchObject({ model: MODEL, done: false, message: { role: "assistant" } });
      expect(typeof l.created_at).toBe("string");
    }
    const last = lines[lines.length - 1]!;
    expect(Object.keys(last).sort()).toEqual(["created_at", "done", "done_reason", "eval_count", "eval_duration", "load_duration", "message", "model", "prompt_eval_count", "prompt_eval_duration", "total_duration"].sort());
    expect(last.done_reason).toBe("length");
    expect(last.eval_count).toBe(4);
  });

  it("/api/generate with stream:false answers one object", async () => {
    const res = await post("/api/generate", { model: MODEL, prompt: "hi", stream: false, options: { num_predict: 2 } });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ model: MODEL, done: true, done_reason: "length", eval_count: 2 });
    expect(typeof body.response).toBe("string");
  });

  it("an empty prompt or no messages: done_reason load, as Ollama answers it", async () => {
    expect(await (await post("/api/generate", { model: MODEL })).json()).toMatchObject({ model: MODEL, response: "", done: true, done_reason: "load" });
    expect(await (await post("/api/chat", { model: MODEL, messages: [] })).json()).toMatchObject({ done: true, done_reason: "load" });
  });

  it("errors are {error} with Ollama's statuses", async () => {
    const cases: Array<[Response, number, RegExp]> = [
      [await post("/api/chat", { messages: [] }), 400, /^model is required$/],
      [await post("/api/generate", { model: "nope", prompt: "x" }), 404, /^model 'nope' not found$/],
      [await fetch(`${host}/api/chat`, { method: "POST", body: "{not json" }), 400, /not valid JSON/],
      [await post("/api/chat", { model: MODEL, messages: [{ role: "user", content: "x" }], options: { mirostat: 2 } }), 400, /option 'mirostat' is not supported/],
      [await post("/api/chat", { model: MODEL, messages: [{ role: "user", content: "x" }], options: { temperature: "hot" } }), 400, /temperature must be a number/],
      [await post("/api/chat", { model: MODEL, messages: [{ role: "robot", content: "x" }] }), 400, /role/],
      [await post("/api/chat", { model: MODEL, messages: [{ role: "user", content: "x", images: ["aGk="] }] }), 400, /'images' is not supported/],
      [await post("/api/generate", { model: MODEL, prompt: "x".repeat(2000), stream: false }), 400, /context length/],
      [await fetch(`${host}/api/chat`), 405, /takes POST/],
      [await fetch(`${host}/api/pull`, { method: "POST" }), 404, /not part of the Ollama API/],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: unknown };
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).toMatch(message);
    }
  });

  it("runtime options (num_ctx, num_thread) are accepted and ignored", async () => {
    const res = await post("/api/generate", { model: MODEL, prompt: "hi", stream: false, keep_alive: "5m", options: { num_ctx: 4096, num_thread: 8, num_predict: 1 } });
    expect(res.status).toBe(200);
  });

  it("a client hanging up mid-stream frees the session", async () => {
    const controller = new AbortController();
    const res = await fetch(`${host}/api/generate`, { method: "POST", body: JSON.stringify({ model: MODEL, prompt: "hello", raw: true, options: { num_predict: 200 } }), signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    for (let i = 0; i < 200 && t.app.pool.busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.app.pool.busy).toBe(0);
  });
});

describe("the /api routes in the server's Hono app", () => {
  it("the API key (except /api/version), HEAD for GET routes, 404 and 405 in Ollama's shape, /api itself included", async () => {
    const s = await testServer({ apiKey: "k" });
    try {
      const call = async (method: string, path: string, auth = false) => {
        const res = await s.app.fetch(new Request(`http://test${path}`, { method, headers: auth ? { authorization: "Bearer k" } : {} }));
        const text = await res.text();
        return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
      };
      expect(await call("GET", "/api/tags")).toMatchObject({ status: 401, body: { error: expect.stringMatching(/API key/) } });
      expect((await call("GET", "/api/tags", true)).status).toBe(200);
      expect(await call("GET", "/api/version")).toEqual({ status: 200, body: { version: SERVER_VERSION } });
      expect(await call("HEAD", "/api/version")).toEqual({ status: 200, body: undefined });
      expect(await call("POST", "/api/tags", true)).toEqual({ status: 405, body: { error: "/api/tags takes GET, not POST" } });
      expect(await call("GET", "/api")).toEqual({ status: 404, body: { error: "GET /api is not part of the Ollama API this server has" } });
      expect(await call("GET", "/api/pull/x")).toEqual({ status: 404, body: { error: "GET /api/pull/x is not part of the Ollama API this server has" } });
      // Outside /api, the OpenAI-shaped errors.
      expect((await call("GET", "/apix")).body).toMatchObject({ error: { code: "unknown_url" } });
    } finally {
      await s.model.dispose();
    }
  });
});
