/** The fetch core, in process (no socket): every endpoint and the bad-input cases. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getTemplate } from "../../src/chat/index.js";
import { callApp, get, parseSse, post, testServer, type TestServer } from "./helpers.js";

let t: TestServer;
beforeAll(async () => {
  t = await testServer({ apiKey: "sk-test", parallel: 2, maxQueue: 4, maxBodyBytes: 64 * 1024, maxTokensLimit: 128 });
});
afterAll(async () => {
  await t?.model.dispose();
});

const auth = { authorization: "Bearer sk-test" };
const call = (r: Request) => callApp(t.app, r);
const chat = (body: Record<string, unknown>) => call(post("/v1/chat/completions", { model: "tiny-random-q8_0", max_tokens: 8, seed: 1, ...body }, auth));

describe("endpoints", () => {
  it("GET /health needs no key and reports the slots", async () => {
    const r = await call(get("/health"));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "ok", model: "tiny-random-q8_0", parallel: 2, busy: 0, idle: 2, queued: 0 });
  });

  it("GET /v1/models lists the model", async () => {
    const r = await call(get("/v1/models", auth));
    expect(r.body).toEqual({ object: "list", data: [{ id: "tiny-random-q8_0", object: "model", created: expect.any(Number), owned_by: "zh-llama" }] });
    expect((await call(get("/v1/models/tiny-random-q8_0", auth))).status).toBe(200);
    expect((await call(get("/v1/models/gpt-4", auth))).body!.error.code).toBe("model_not_found");
  });

  it("POST /v1/chat/completions answers with usage and finish_reason", async () => {
    const r = await chat({ messages: [{ role: "user", content: "你好" }], temperature: 0 });
    expect(r.status).toBe(200);
    const b = r.body!;
    expect(b).toMatchObject({ object: "chat.completion", model: "tiny-random-q8_0", choices: [{ index: 0, message: { role: "assistant" }, finish_reason: expect.stringMatching(/^(stop|length)$/) }] });
    expect(b.id).toMatch(/^chatcmpl-/);
    expect(b.usage.prompt_tokens).toBe(t.tokenizer.encode("你好").length);
    expect(b.usage.total_tokens).toBe(b.usage.prompt_tokens + b.usage.completion_tokens);
    expect(b.usage.completion_tokens).toBeLessThanOrEqual(8);
    // Greedy is deterministic, and the same text as the /v1/completions endpoint gives.
    const again = await chat({ messages: [{ role: "user", content: "你好" }], temperature: 0 });
    expect(again.body!.choices[0].message.content).toBe(b.choices[0].message.content);
    const plain = await call(post("/v1/completions", { prompt: "你好", max_tokens: 8, temperature: 0 }, auth));
    expect(plain.body!.choices[0].text).toBe(b.choices[0].message.content);
    expect(plain.body!.object).toBe("text_completion");
  });

  it("max_tokens gives finish_reason length; a stop string gives stop", async () => {
    const r = await chat({ messages: "hello", max_tokens: 3, logit_bias: { "2": -100 } });
    expect(r.body!.choices[0].finish_reason).toBe("length");
    expect(r.body!.usage.completion_tokens).toBe(3);
    // Find a text the model produces, then stop on its second character.
    const probe = await call(post("/v1/completions", { prompt: "abc", max_tokens: 12, temperature: 0, logit_bias: { "2": -100 } }, auth));
    const text = probe.body!.choices[0].text as string;
    if (text.length >= 2) {
      const stopped = await call(post("/v1/completions", { prompt: "abc", max_tokens: 12, temperature: 0, stop: [text.slice(1, 2)], logit_bias: { "2": -100 } }, auth));
      expect(stopped.body!.choices[0].finish_reason).toBe("stop");
      expect(stopped.body!.choices[0].text).toBe(text.slice(0, text.indexOf(text.slice(1, 2))));
    }
  });

  it("stream: SSE chunks in OpenAI's shape, ending in [DONE]", async () => {
    const r = await chat({ messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true }, temperature: 0 });
    expect(r.status).toBe(200);
    expect(r.type).toContain("text/event-stream");
    const events = parseSse(r.text);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1) as Array<Record<string, any>>;
    for (const c of chunks) {
      expect(c).toMatchObject({ id: expect.stringMatching(/^chatcmpl-/), object: "chat.completion.chunk", created: expect.any(Number), model: "tiny-random-q8_0" });
    }
    expect(chunks[0]!.choices[0]).toEqual({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null });
    const final = chunks.findLast((c) => c.choices.length > 0)!;
    expect(final.choices[0].delta).toEqual({});
    expect(["stop", "length"]).toContain(final.choices[0].finish_reason);
    expect(chunks.at(-1)!.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
    const streamed = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    const whole = await chat({ messages: [{ role: "user", content: "hi" }], temperature: 0 });
    expect(streamed).toBe(whole.body!.choices[0].message.content);
  });

  it("completions stream too", async () => {
    const r = await call(post("/v1/completions", { prompt: [1, 300 - 1, 5], max_tokens: 4, stream: true }, auth));
    const events = parseSse(r.text);
    expect(events.at(-1)).toBe("[DONE]");
    expect((events[0] as Record<string, any>).object).toBe("text_completion");
  });

  it("POST /v1/embeddings: unit vectors, float and base64", async () => {
    const r = await call(post("/v1/embeddings", { input: ["你好", "hello world"], model: "tiny-random-q8_0" }, auth));
    expect(r.status).toBe(200);
    expect(r.body!.object).toBe("list");
    const [a, b] = r.body!.data as Array<{ embedding: number[]; index: number }>;
    expect(a!.embedding.length).toBe(t.model.hp.nEmbd);
    expect(Math.hypot(...a!.embedding)).toBeCloseTo(1, 5);
    expect(b!.index).toBe(1);
    expect(a!.embedding).not.toEqual(b!.embedding);
    const b64 = await call(post("/v1/embeddings", { input: "你好", encoding_format: "base64" }, auth));
    const bytes = Uint8Array.from(atob(b64.body!.data[0].embedding as string), (c) => c.charCodeAt(0));
    expect(Array.from(new Float32Array(bytes.buffer))).toEqual(a!.embedding.map((x) => Math.fround(x)));
    expect(r.body!.usage.prompt_tokens).toBe(t.tokenizer.encode("你好").length + t.tokenizer.encode("hello world").length);
  });

  it("the embedded state is the one the output layer reads: W_out * e is parallel to the logits", async () => {
    const w = await t.model.file.readTensorF32("output.weight");
    const nEmbd = t.model.hp.nEmbd;
    for (const id of [1, 100, 280]) {
      const r = await call(post("/v1/embeddings", { input: [[id]] }, auth));
      const e = r.body!.data[0].embedding as number[];
      const session = t.model.createSession();
      const logits = await session.evaluate([id]);
      session.release();
      const projected = Array.from({ length: logits.length }, (_, row) => e.reduce((sum, x, i) => sum + x * w[row * nEmbd + i]!, 0));
      const dot = projected.reduce((sum, p, i) => sum + p * logits[i]!, 0);
      const cosine = dot / (Math.hypot(...projected) * Math.hypot(...logits));
      expect(cosine).toBeGreaterThan(0.999);
    }
  });

  it("embeddings of a long input pool rows from several forward micro-batches", async () => {
    const text = "长".repeat(40);
    const ids = t.tokenizer.encode(text);
    expect(ids.length).toBeGreaterThan(64);
    const r = await call(post("/v1/embeddings", { input: text }, auth));
    const same = await call(post("/v1/embeddings", { input: [ids] }, auth));
    expect(r.body!.data[0].embedding).toEqual(same.body!.data[0].embedding);
    expect(r.body!.usage.prompt_tokens).toBe(ids.length);
    expect(Math.hypot(...(r.body!.data[0].embedding as number[]))).toBeCloseTo(1, 5);
  });

  it("response_format json_object / json_schema give parseable JSON", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" }, n: { type: "integer" } }, required: ["ok", "n"] };
    for (let seed = 1; seed <= 3; seed++) {
      const r = await chat({ messages: [{ role: "user", content: "json" }], max_tokens: 100, seed, temperature: 1, response_format: { type: "json_schema", json_schema: { name: "x", schema } } });
      expect(r.status).toBe(200);
      if (r.body!.choices[0].finish_reason === "stop") {
        const v = JSON.parse(r.body!.choices[0].message.content);
        expect(typeof v.ok).toBe("boolean");
        expect(Number.isInteger(v.n)).toBe(true);
      }
    }
    const o = await chat({ messages: [{ role: "user", content: "json" }], max_tokens: 30, response_format: { type: "json_object" } });
    expect(o.status).toBe(200);
    expect(o.body!.choices[0].message.content.startsWith("{")).toBe(true);
  });

  it("uses the chat template (alpaca-2 wraps the message in [INST])", async () => {
    const other = await testServer({ template: getTemplate("alpaca-2") }, 512);
    try {
      const r = await other.app.fetch(post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 1 }));
      const body = (await r.json()) as Record<string, any>;
      const expected = getTemplate("alpaca-2").render([{ role: "user", content: "hi" }], other.tokenizer).length;
      expect(body.usage.prompt_tokens).toBe(expected);
    } finally {
      await other.model.dispose();
    }
  });
});

describe("bad input: OpenAI error bodies with the right status, and the server keeps serving", () => {
  const cases: Array<[string, () => Request, number, string | null, RegExp]> = [
    ["malformed JSON", () => post("/v1/chat/completions", "{not json", auth), 400, null, /not valid JSON/],
    ["a JSON array body", () => post("/v1/chat/completions", "[1]", auth), 400, null, /must be a JSON object/],
    ["messages of the wrong type", () => post("/v1/chat/completions", { messages: 42 }, auth), 400, "messages", /'messages' must be an array/],
    ["empty messages", () => post("/v1/chat/completions", { messages: [] }, auth), 400, "messages", /must not be empty/],
    ["no messages", () => post("/v1/chat/completions", {}, auth), 400, "messages", /required/],
    ["a bad role", () => post("/v1/chat/completions", { messages: [{ role: "wizard", content: "x" }] }, auth), 400, "messages[0].role", /"wizard"/],
    ["temperature as a string", () => post("/v1/chat/completions", { messages: "x", temperature: "hot" }, auth), 400, "temperature", /must be a number, got string "hot"/],
    ["temperature out of range", () => post("/v1/chat/completions", { messages: "x", temperature: 7 }, auth), 400, "temperature", /between 0 and 2/],
    ["n = 2", () => post("/v1/chat/completions", { messages: "x", n: 2 }, auth), 400, "n", /'n' must be 1/],
    ["stream not a boolean", () => post("/v1/chat/completions", { messages: "x", stream: "yes" }, auth), 400, "stream", /boolean/],
    ["a bad stop", () => post("/v1/chat/completions", { messages: "x", stop: [1] }, auth), 400, "stop", /'stop\[0\]' must be a string/],
    ["a bad logit_bias", () => post("/v1/chat/completions", { messages: "x", logit_bias: { "5": 300 } }, auth), 400, "logit_bias", /\[-100, 100\]/],
    ["logit_bias beyond the vocabulary", () => post("/v1/chat/completions", { messages: "x", logit_bias: { "99999": 1 } }, auth), 400, "logit_bias", /outside the vocabulary/],
    ["unknown model", () => post("/v1/chat/completions", { model: "gpt-4", messages: "x" }, auth), 404, "model", /'gpt-4' does not exist/],
    ["max_tokens beyond the limit", () => post("/v1/chat/completions", { messages: "x", max_tokens: 100000 }, auth), 400, "max_tokens", /above this server's limit of 128/],
    ["max_tokens beyond the context left", () => post("/v1/completions", { prompt: "x".repeat(200), max_tokens: 100 }, auth), 400, "max_tokens", /maximum context length is 256/],
    ["a prompt longer than the context", () => post("/v1/completions", { prompt: "长".repeat(200) }, auth), 400, "prompt", /maximum context length is 256 tokens; the prompt has/],
    ["a prompt token outside the vocabulary", () => post("/v1/completions", { prompt: [1, 5000] }, auth), 400, "prompt", /outside the vocabulary/],
    ["a bad json_schema", () => post("/v1/chat/completions", { messages: "x", response_format: { type: "json_schema", json_schema: { schema: { type: "wat" } } } }, auth), 400, "response_format", /unknown type "wat"/],
    ["a schema nested too deep", () => post("/v1/chat/completions", { messages: "x", response_format: { type: "json_schema", json_schema: { schema: JSON.parse('{"type":"array","items":'.repeat(1000) + "{}" + "}".repeat(1000)) } } }, auth), 400, "response_format", /nested more than 64 deep/],
    ["a grammar nested too deep", () => post("/v1/chat/completions", { messages: "x", grammar: "root ::= " + "(".repeat(5000) + '"a"' + ")".repeat(5000) }, auth), 400, "grammar", /nested more than 128 deep at line 1/],
    ["a bad response_format type", () => post("/v1/chat/completions", { messages: "x", response_format: { type: "xml" } }, auth), 400, "response_format.type", /"xml"/],
    ["a bad grammar", () => post("/v1/chat/completions", { messages: "x", grammar: 'root ::= "a' }, auth), 400, "grammar", /unterminated string literal at line 1/],
    ["embeddings without input", () => post("/v1/embeddings", { model: "tiny-random-q8_0" }, auth), 400, "input", /'input' is required/],
    ["embeddings with an empty string", () => post("/v1/embeddings", { input: [""] }, auth), 400, "input", /empty/],
    ["a missing API key", () => post("/v1/chat/completions", { messages: "x" }, {}), 401, null, /didn't provide an API key/],
    ["a wrong API key", () => post("/v1/chat/completions", { messages: "x" }, { authorization: "Bearer nope" }), 401, null, /Incorrect API key/],
    ["a body over the limit", () => post("/v1/chat/completions", { messages: "x".repeat(70 * 1024) }, auth), 413, null, /limit of 65536/],
    ["an unknown path", () => get("/v2/whatever", auth), 404, null, /Unknown request URL: GET \/v2\/whatever/],
    ["a wrong method", () => get("/v1/chat/completions", auth), 405, null, /takes POST/],
  ];
  it.each(cases)("%s", async (_name, request, status, param, message) => {
    const r = await call(request());
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ error: { message: expect.stringMatching(message), type: expect.any(String), param, code: expect.toSatisfy((c: unknown) => c === null || typeof c === "string") } });
    const health = await call(get("/health"));
    expect(health.body).toMatchObject({ status: "ok", busy: 0, idle: 2, queued: 0 });
  });

  it("a schema nested deeper than JSON.stringify can go is a 400", async () => {
    const body = '{"messages":"x","response_format":{"type":"json_schema","json_schema":{"schema":' + '{"items":'.repeat(60000) + "{}" + "}".repeat(60000) + "}}}";
    const roomy = await testServer({ maxBodyBytes: 2 << 20 });
    try {
      const res = await roomy.app.fetch(post("/v1/chat/completions", body));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toBe("response_format");
      const deepMessages = '{"messages":[' + "[".repeat(200000) + "]".repeat(200000) + "]}";
      const res2 = await roomy.app.fetch(post("/v1/chat/completions", deepMessages));
      expect(res2.status).toBe(400);
      expect(((await res2.json()) as { error: { message: string } }).error.message).toMatch(/nested too deeply to show/);
    } finally {
      await roomy.model.dispose();
    }
  });

  it("a body without content-length over the limit is cut off with 413", async () => {
    const big = new TextEncoder().encode(JSON.stringify({ messages: "x".repeat(100 * 1024) }));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < big.length; i += 8192) c.enqueue(big.subarray(i, i + 8192));
        c.close();
      },
    });
    const request = new Request("http://test/v1/chat/completions", { method: "POST", headers: auth, body: stream, duplex: "half" } as RequestInit);
    const r = await call(request);
    expect(r.status).toBe(413);
  });
});

describe("concurrency", () => {
  it("queues fairly, refuses with 429 when the queue is full, and frees everything", async () => {
    // 2 sequences + 4 queue places: of 10 simultaneous requests, 4 are refused.
    const requests = Array.from({ length: 10 }, (_, i) => t.app.fetch(post("/v1/completions", { prompt: `q${i}`, max_tokens: 6, temperature: 0, logit_bias: { "2": -100 } }, auth)));
    const responses = await Promise.all(requests);
    const statuses = responses.map((r) => r.status);
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<Record<string, any>>));
    expect(statuses.filter((s) => s === 200).length).toBe(6);
    expect(statuses.filter((s) => s === 429).length).toBe(4);
    // The refused ones are the last four: first come, first served.
    expect(statuses.slice(6)).toEqual([429, 429, 429, 429]);
    expect(bodies[9]!.error.type).toBe("rate_limit_error");
    expect(t.app.stats()).toMatchObject({ busy: 0, idle: 2, queued: 0 });
  });

  it("a client that goes away cancels its generation (queued or running)", async () => {
    const controllers = Array.from({ length: 4 }, () => new AbortController());
    const started = controllers.map((c, i) => t.app.fetch(post("/v1/completions", { prompt: `c${i}`, max_tokens: 100, stream: i % 2 === 0, logit_bias: { "2": -100 } }, auth, c.signal)));
    // Abort all: the running ones stop at their next token, the queued ones leave the queue.
    await new Promise((r) => setTimeout(r, 5));
    controllers.forEach((c) => c.abort());
    const responses = await Promise.allSettled(started);
    for (const r of responses) if (r.status === "fulfilled" && r.value.body) await r.value.body.cancel().catch(() => undefined);
    for (let i = 0; i < 50 && t.app.stats().busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.app.stats()).toMatchObject({ busy: 0, idle: 2, queued: 0, streams: 0 });
  });

  it("a stream cancelled before its first read frees its sequence", async () => {
    const res = await t.app.fetch(post("/v1/chat/completions", { messages: "x", max_tokens: 50, stream: true }, auth));
    expect(t.app.stats().busy).toBe(1);
    await res.body!.cancel();
    expect(t.app.stats()).toMatchObject({ busy: 0, idle: 2, streams: 0 });
  });

  it("a cancelled stream frees its sequence", async () => {
    const res = await t.app.fetch(post("/v1/completions", { prompt: "s", max_tokens: 120, stream: true, logit_bias: { "2": -100 } }, auth));
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    expect(t.app.stats().busy).toBe(1);
    await reader.cancel();
    for (let i = 0; i < 50 && t.app.stats().busy > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.app.stats()).toMatchObject({ busy: 0, idle: 2, streams: 0 });
  });
});
