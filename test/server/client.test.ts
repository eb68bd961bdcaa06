/**
 * Over a real socket on 127.0.0.1: the official `openai` client, plain curl, a client that
 * hangs up mid-stream, and a small bounded load test (tools/load-server.mjs runs a bigger one).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServedHandle } from "../../src/server/index.js";
import { runLoad } from "../../tools/load-server-lib.mjs";
import { testServer, type TestServer } from "./helpers.js";

let t: TestServer;
let handle: ServedHandle;
let baseUrl = "";
const KEY = "sk-zh-llama-test";

beforeAll(async () => {
  t = await testServer({ apiKey: KEY, parallel: 2, maxQueue: 64, aliases: ["chinese-llama-alpaca-2"] });
  handle = await serve(t.app.fetch, { hostname: "127.0.0.1", port: 0 });
  baseUrl = `http://127.0.0.1:${handle.port}`;
});
afterAll(async () => {
  await handle?.close();
  await t?.model.dispose();
});

const client = () => new OpenAI({ apiKey: KEY, baseURL: `${baseUrl}/v1`, maxRetries: 0, timeout: 60_000 });

describe("the official openai client", () => {
  it("lists models", async () => {
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual(["tiny-random-q8_0"]);
  });

  it("chat completion, non-streaming", async () => {
    const r = await client().chat.completions.create({ model: "tiny-random-q8_0", messages: [{ role: "user", content: "你好" }], max_tokens: 8, temperature: 0, seed: 1 });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message.role).toBe("assistant");
    expect(typeof r.choices[0]!.message.content).toBe("string");
    expect(["stop", "length"]).toContain(r.choices[0]!.finish_reason);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it("chat completion, streaming, equals the non-streamed text", async () => {
    const params = { model: "chinese-llama-alpaca-2", messages: [{ role: "user" as const, content: "hello" }], max_tokens: 10, temperature: 0 };
    const stream = await client().chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(["stop", "length"]).toContain(finish);
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    const whole = await client().chat.completions.create(params);
    expect(text).toBe(whole.choices[0]!.message.content);
  });

  it("completions and embeddings (the client asks for base64 and decodes it)", async () => {
    const c = await client().completions.create({ model: "tiny-random-q8_0", prompt: "从前", max_tokens: 5 });
    expect(c.choices[0]!.text).toEqual(expect.any(String));
    const e = await client().embeddings.create({ model: "tiny-random-q8_0", input: ["你好", "世界"] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]!.embedding).toHaveLength(t.model.hp.nEmbd);
    expect(Math.hypot(...e.data[0]!.embedding)).toBeCloseTo(1, 5);
    const floats = await client().embeddings.create({ model: "tiny-random-q8_0", input: "你好", encoding_format: "float" });
    expect(floats.data[0]!.embedding.map((x) => Math.fround(x))).toEqual(e.data[0]!.embedding.map((x) => Math.fround(x)));
  });

  it("json_schema response_format parses", async () => {
    const r = await client().chat.completions.create({
      model: "tiny-random-q8_0",
      messages: [{ role: "user", content: "a colour" }],
      max_tokens: 60,
      temperature: 0.7,
      seed: 3,
      response_format: { type: "json_schema", json_schema: { name: "c", schema: { type: "object", properties: { colour: { enum: ["red", "green"] }, n: { type: "integer", minimum: 0 } }, required: ["colour", "n"] } } },
    });
    if (r.choices[0]!.finish_reason === "stop") expect(JSON.parse(r.choices[0]!.message.content!)).toMatchObject({ colour: expect.stringMatching(/^(red|green)$/) });
  });

  it("errors arrive as the client's typed errors", async () => {
    await expect(client().chat.completions.create({ model: "gpt-4", messages: [{ role: "user", content: "x" }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(new OpenAI({ apiKey: "wrong", baseURL: `${baseUrl}/v1`, maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const bad = await client().chat.completions.create({ model: "tiny-random-q8_0", messages: [] }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");
  });
});

describe("over the socket", () => {
  it("curl receives a streamed chat completion ending in [DONE]", async (ctx) => {
    if (!existsSync("/usr/bin/curl") && !existsSync("/bin/curl")) ctx.skip();
    const body = JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 6, stream: true });
    const out = await new Promise<string>((resolve, reject) =>
      execFile("curl", ["-sS", "-N", "--max-time", "60", "-H", `Authorization: Bearer ${KEY}`, "-H", "Content-Type: application/json", "-d", body, `${baseUrl}/v1/chat/completions`], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    const lines = out.split("\n").filter((l) => l.startsWith("data: "));
    expect(lines.at(-1)).toBe("data: [DONE]");
    expect(JSON.parse(lines[0]!.slice(6))).toMatchObject({ object: "chat.completion.chunk", choices: [{ delta: { role: "assistant" } }] });
  });

  it("a client that hangs up mid-stream stops its generation and frees its sequence", async () => {
    // A long context and budget, so the generation is still running when the client leaves.
    const long = await testServer({ parallel: 1 }, 4096);
    const server = await serve(long.app.fetch, { hostname: "127.0.0.1", port: 0 });
    try {
      const controller = new AbortController();
      const r = await fetch(`http://127.0.0.1:${server.port}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "long", max_tokens: 4000, stream: true, logit_bias: { "2": -100 } }),
        signal: controller.signal,
      });
      const reader = r.body!.getReader();
      await reader.read();
      await reader.read();
      controller.abort();
      for (let i = 0; i < 500 && long.app.stats().busy > 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(long.app.stats()).toMatchObject({ busy: 0, idle: 1, streams: 0, cancelled: 1 });
    } finally {
      await server.close();
      await long.model.dispose();
    }
  });

  it("a bounded load test (malformed and cancelled requests among them) leaves the server healthy", async () => {
    const report = await runLoad({ baseUrl, requests: 60, concurrency: 6, maxTokens: 6, headers: { authorization: `Bearer ${KEY}` } });
    expect(report.failures).toEqual([]);
    expect(report.counts.malformed).toBe(6);
    expect(report.counts.cancelled).toBeGreaterThan(0);
    expect(report.healthy).toBe(true);
    expect(t.app.stats()).toMatchObject({ busy: 0, idle: 2, queued: 0, streams: 0 });
    console.log(`[load] ${report.requests} requests, ${report.requestsPerSecond.toFixed(1)} req/s, first token p50 ${report.ttft.p50.toFixed(1)} ms, p99 ${report.ttft.p99.toFixed(1)} ms`);
  });
});
