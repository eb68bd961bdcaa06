/**
 * logprobs / top_logprobs (chat and legacy completions, streamed and not) and tool calling
 * (tools + tool_choice, arguments constrained to each tool's JSON Schema), through the official
 * `openai` client on a real socket; refusals of parameters this server does not implement.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServedHandle } from "../../src/server/index.js";
import { post, testServer, type TestServer } from "./helpers.js";

let t: TestServer;
let handle: ServedHandle;
let client: OpenAI;

beforeAll(async () => {
  t = await testServer({}, 4096);
  handle = await serve(t.app.fetch, { hostname: "127.0.0.1", port: 0 });
  client = new OpenAI({ apiKey: "none", baseURL: `http://127.0.0.1:${handle.port}/v1`, maxRetries: 0, timeout: 120_000 });
});
afterAll(async () => {
  await handle?.close();
  await t?.model.dispose();
});

const MODEL = "tiny-random-q8_0";
const msgs = [{ role: "user" as const, content: "你好" }];

describe("logprobs", () => {
  it("chat: one entry per token of the reply, OpenAI's shape, top_logprobs sorted and including the greedy choice", async () => {
    // No repetition penalty: greedy then draws the raw distribution's most likely token.
    const r = await client.chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3, repetition_penalty: 1 } as never);
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp.length).toBeGreaterThan(0);
    expect(lp.length).toBeLessThanOrEqual(r.usage!.completion_tokens);
    for (const e of lp) {
      expect(e.logprob).toBeLessThanOrEqual(0);
      for (const x of [e, ...e.top_logprobs]) if (!x.token.includes("\ufffd")) expect(x.bytes).toEqual(Array.from(new TextEncoder().encode(x.token)));
      expect(e.top_logprobs).toHaveLength(3);
      const tops = e.top_logprobs.map((x) => x.logprob);
      expect([...tops].sort((a, b) => b - a)).toEqual(tops);
      // Greedy: the chosen token is the most likely of the raw distribution.
      expect(e.logprob).toBeCloseTo(tops[0]!, 5);
    }
    // The tokens' bytes are the reply's (a stray byte of the random model decodes to U+FFFD in both).
    expect(new TextDecoder().decode(Uint8Array.from(lp.flatMap((e) => e.bytes!)))).toBe(r.choices[0]!.message.content);
  });

  it("are the softmax of the raw logits (before temperature and penalties), as llama-server's default", async () => {
    const a = await client.chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 5 });
    const b = await client.chat.completions.create({ model: MODEL, messages: msgs, max_tokens: 1, temperature: 1.7, top_k: 2, seed: 4, logprobs: true, top_logprobs: 5 } as never);
    expect(b.choices[0]!.logprobs!.content![0]!.top_logprobs).toEqual(a.choices[0]!.logprobs!.content![0]!.top_logprobs);
  });

  it("chat streaming: the chunks' logprobs add up to the non-streamed ones", async () => {
    const params = { model: MODEL, messages: msgs, max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 2 };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    const got: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const c of stream) got.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(got).toEqual(whole.choices[0]!.logprobs!.content);
  });

  it("completions: the legacy shape, streamed and not; logprobs 0 gives the chosen tokens only", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "从前", max_tokens: 8, temperature: 0, logprobs: 2 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens!.length).toBeGreaterThan(0);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    expect(lp.top_logprobs).toHaveLength(lp.tokens!.length);
    expect(lp.text_offset![0]).toBe(0);
    expect(lp.tokens!.join("")).toBe(r.choices[0]!.text);
    lp.tokens!.forEach((tok, i) => expect(lp.text_offset![i]).toBe(lp.tokens!.slice(0, i).join("").length));
    for (const top of lp.top_logprobs!) expect(Object.keys(top).length).toBeGreaterThanOrEqual(1);
    const stream = await client.completions.create({ model: MODEL, prompt: "从前", max_tokens: 8, temperature: 0, logprobs: 2, stream: true });
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const c of stream) {
      tokens.push(...(c.choices[0]?.logprobs?.tokens ?? []));
      offsets.push(...(c.choices[0]?.logprobs?.text_offset ?? []));
    }
    expect(tokens).toEqual(lp.tokens);
    expect(offsets).toEqual(lp.text_offset);
    const zero = await client.completions.create({ model: MODEL, prompt: "从前", max_tokens: 3, temperature: 0, logprobs: 0 });
    expect(zero.choices[0]!.logprobs!.top_logprobs!.every((x) => Object.keys(x).length === 0)).toBe(true);
  });

  it("refusals: top_logprobs above 20 or without logprobs, logprobs with echo", async () => {
    const bad = async (path: string, body: object) => {
      const r = await t.app.fetch(post(path, body));
      expect(r.status).toBe(400);
      return ((await r.json()) as { error: { param: string } }).error.param;
    };
    expect(await bad("/v1/chat/completions", { messages: msgs, logprobs: true, top_logprobs: 21 })).toBe("top_logprobs");
    expect(await bad("/v1/chat/completions", { messages: msgs, top_logprobs: 2 })).toBe("top_logprobs");
    expect(await bad("/v1/completions", { prompt: "x", logprobs: 2, echo: true })).toBe("logprobs");
    expect(await bad("/v1/completions", { prompt: "x", logprobs: 21 })).toBe("logprobs");
  });
});

const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { enum: ["北京", "上海"] }, unit: { $ref: "#/$defs/unit" }, days: { type: "integer", minimum: 0, maximum: 9 } }, required: ["city", "unit"], $defs: { unit: { enum: ["c", "f"] } } },
  },
};
const clock: OpenAI.ChatCompletionTool = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { utc: { type: "boolean" } }, required: ["utc"] } } };

describe("tool calling", () => {
  it("tool_choice required: a tool_calls reply whose arguments follow the tool's schema", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "北京天气?" }], tools: [weather, clock], tool_choice: "required", max_tokens: 400, temperature: 0.8, seed });
      const c = r.choices[0]!;
      expect(c.finish_reason).toBe("tool_calls");
      expect(c.message.content).toBeNull();
      const call = c.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.type).toBe("function");
      expect(call.id).toMatch(/^call_/);
      const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
      if (call.function.name === "get_weather") {
        expect(["北京", "上海"]).toContain(args.city);
        expect(["c", "f"]).toContain(args.unit);
      } else {
        expect(call.function.name).toBe("get_time");
        expect(typeof args.utc).toBe("boolean");
      }
    }
  });

  it("a named tool_choice calls that tool; streamed, the client assembles the same call", async () => {
    const params = { model: MODEL, messages: [{ role: "user" as const, content: "几点了" }], tools: [weather, clock], tool_choice: { type: "function" as const, function: { name: "get_time" } }, max_tokens: 100, temperature: 0 };
    const r = await client.chat.completions.create(params);
    const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("get_time");
    expect(JSON.parse(call.function.arguments)).toEqual({ utc: expect.any(Boolean) });
    const stream = client.chat.completions.stream({ ...params, stream: true });
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]!.finish_reason).toBe("tool_calls");
    const streamed = done.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(streamed.function).toEqual(call.function);
  });

  it("tool_choice auto: either text or a well-formed call; none: text; tool results go back to the model", async () => {
    let calls = 0;
    let texts = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "天气" }], tools: [weather], max_tokens: 60, temperature: 1, seed });
      const c = r.choices[0]!;
      if (c.message.tool_calls?.length) {
        calls++;
        expect(c.finish_reason).toBe("tool_calls");
        const call = c.message.tool_calls[0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
        expect(["北京", "上海"]).toContain((JSON.parse(call.function.arguments) as { city: string }).city);
      } else {
        texts++;
        // Plain text never opens with "{"; a call cut short by max_tokens comes back as its text.
        if (c.message.content!.startsWith("{")) expect(c.finish_reason).toBe("length");
      }
    }
    expect(calls + texts).toBe(6);
    const none = await client.chat.completions.create({ model: MODEL, messages: msgs, tools: [weather], tool_choice: "none", max_tokens: 5, temperature: 0 });
    expect(none.choices[0]!.message.tool_calls ?? []).toEqual([]);
    const back = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "user", content: "北京天气?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"北京","unit":"c"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: "晴, 20度" },
      ],
      tools: [weather],
      tool_choice: "none",
      max_tokens: 5,
    });
    expect(back.choices[0]!.message.role).toBe("assistant");
  });

  it("the tools are described to the model in a system message", async () => {
    const r = await t.app.fetch(post("/v1/chat/completions", { messages: msgs, tools: [weather], tool_choice: "none", max_tokens: 1 }));
    const withNone = ((await r.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    const r2 = await t.app.fetch(post("/v1/chat/completions", { messages: msgs, tools: [weather], tool_choice: "required", max_tokens: 1 }));
    const withTools = ((await r2.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
    expect(withTools).toBeGreaterThan(withNone + 20);
  });

  it("refusals name the parameter", async () => {
    const bad = async (body: object, path = "/v1/chat/completions") => {
      const r = await t.app.fetch(post(path, path === "/v1/completions" ? body : { messages: msgs, ...body }));
      expect(r.status).toBe(400);
      return ((await r.json()) as { error: { param: string } }).error.param;
    };
    expect(await bad({ tool_choice: "required" })).toBe("tool_choice");
    expect(await bad({ tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } })).toBe("tool_choice");
    expect(await bad({ tools: [{ type: "code_interpreter" }] })).toBe("tools");
    expect(await bad({ tools: [{ type: "function", function: { name: "x", parameters: { type: "string", pattern: "a+" } } }] })).toBe("tools");
    expect(await bad({ tools: [weather], response_format: { type: "json_object" } })).toBe("response_format");
    expect(await bad({ functions: [{ name: "f" }] })).toBe("functions");
    expect(await bad({ modalities: ["text", "audio"] })).toBe("modalities");
    expect(await bad({ store: true })).toBe("store");
    expect(await bad({ mirostat: 2 })).toBe("mirostat");
    expect(await bad({ prompt: "x", suffix: "y" }, "/v1/completions")).toBe("suffix");
    // null is as good as absent; so are the defaults clients send.
    const ok = await t.app.fetch(post("/v1/chat/completions", { messages: msgs, max_tokens: 1, functions: null, store: false, parallel_tool_calls: true, n: 1 }));
    expect(ok.status).toBe(200);
  });
});
