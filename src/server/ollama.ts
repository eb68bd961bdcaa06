/**
 * Ollama's API (github.com/ollama/ollama, docs/api.md) over the same session pool and generation
 * as the OpenAI endpoints, for the clients that speak only Ollama's dialect:
 *
 *   GET  /api/tags       the served model, as one entry
 *   POST /api/chat       messages -> reply through the chat template (stream, default: NDJSON)
 *   POST /api/generate   prompt (+ system, or raw) -> text (stream, default: NDJSON)
 *   POST /api/show       the model's details
 *   GET  /api/version    {version}
 *
 * The routes are a Hono app of their own, mounted at /api by app.ts (behind its Host/Origin guard
 * and accounting, like the OpenAI routes), so that their errors keep Ollama's shape.
 *
 * A streamed reply is one JSON object a line (application/x-ndjson): `done: false` per token,
 * then one `done: true` with done_reason and the counts and durations (nanoseconds) Ollama
 * reports. Errors are `{"error": "..."}` with the status Ollama gives them (400 bad request,
 * 404 unknown model); one during a stream is a last `{"error"}` line.
 *
 * `options` maps onto the sampler: temperature, top_k, top_p, min_p, repeat_penalty,
 * presence_penalty, frequency_penalty, seed, num_predict, stop. Options that size the runtime
 * (num_ctx, num_thread, num_gpu, ...) are fixed when the server starts and are ignored, as Ollama
 * ignores them for a loaded model; any other option is a 400 naming it. Ollama's sampling
 * defaults apply (temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1).
 */
import { Hono, type Context } from "hono";
import type { ChatMessage, ChatTemplate } from "../chat/index.js";
import { ZhLlamaError } from "../errors.js";
import { summarizeGguf } from "../formats/gguf/index.js";
import type { GenerationEvent, GenerationResult } from "../generate/index.js";
import type { LlamaModel } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ApiError, badRequest } from "./errors.js";
import { isObject, type GenerationRequest, type Json, type JsonObject, type ResponseFormat } from "./requests.js";

/** The version /api/version reports: zh-llama's (test/server/ollama.test.ts keeps it package.json's). */
export const SERVER_VERSION = "0.1.0";

/** What the Ollama routes use of the app (src/server/app.ts hands them over). */
export interface OllamaContext {
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
  template: ChatTemplate;
  modelName: string;
  names: ReadonlySet<string>;
  /** Unix seconds the server started (modified_at). */
  created: number;
  checkAuth(request: Request): void;
  readJson(request: Request): Promise<JsonObject>;
  /** A generation on a pooled session (the app's, as /v1/chat/completions runs it). */
  startGeneration(req: GenerationRequest & { minP?: number }, promptIds: number[], param: string, signal: AbortSignal, extraStop: readonly string[]): Promise<{ events: AsyncGenerator<GenerationEvent>; abort: () => void; release: () => void }>;
  /** A finished generation, for the access log and /metrics. */
  noteResult(request: Request, result: GenerationResult): void;
  /** A stream opened for `request`; call the function it returns when the stream ends. */
  streamOpened(request: Request): () => void;
}

const NDJSON_HEADERS = { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" };
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });

/** Options set when the model loads: accepted and ignored, as Ollama ignores them for a loaded model. */
const RUNTIME_OPTIONS = new Set(["num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap", "use_mlock", "numa", "low_vram", "vocab_only", "f16_kv", "num_keep"]);

/**
 * Ollama's API as a Hono app, to mount at /api: each route with its method (HEAD too for GET, as
 * Hono answers it) and the API key (except /api/version), 405 for another method, 404 for a path
 * Ollama's API lacks; every error `{"error": "..."}` with its status.
 */
export function ollamaApi(ctx: OllamaContext): Hono {
  const { tokenizer, template, modelName } = ctx;
  const tagged = modelName.includes(":") ? modelName : `${modelName}:latest`;
  let details: { size: number; digest: string; parameterSize: string; quantization: string; parameters: number } | undefined;

  async function modelDetails() {
    if (details) return details;
    const s = summarizeGguf(ctx.model.file);
    const main = [...s.types].sort((a, b) => b.bytes - a.bytes)[0];
    // An identity for the loaded file from its header (hashing gigabytes of weights would stall startup).
    const identity = JSON.stringify([s.fileSize, s.name, ctx.model.file.tensors.map((t) => [t.name, t.type, t.shape])]);
    const hash = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity)));
    details = {
      size: s.fileSize,
      digest: Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join(""),
      parameterSize: formatParameters(s.parameters),
      quantization: (main?.type ?? "unknown").toUpperCase(),
      parameters: s.parameters,
    };
    return details;
  }

  const detailsBlock = (d: { parameterSize: string; quantization: string }) => ({ parent_model: "", format: "gguf", family: "llama", families: ["llama"], parameter_size: d.parameterSize, quantization_level: d.quantization });
  const modifiedAt = () => new Date(ctx.created * 1000).toISOString();

  /** The model name a request gives: required, as Ollama requires it; "NAME" and "NAME:latest" both match. */
  function requestModel(body: JsonObject): string {
    const v = body.model ?? body.name;
    if (v === undefined || v === null || v === "") throw new ApiError(400, "model is required", "invalid_request_error");
    if (typeof v !== "string") throw new ApiError(400, `model must be a string, got ${JSON.stringify(v)}`, "invalid_request_error");
    const bare = v.endsWith(":latest") ? v.slice(0, -":latest".length) : v;
    if (!ctx.names.has(v) && !ctx.names.has(bare)) throw new ApiError(404, `model '${v}' not found`, "invalid_request_error");
    return v;
  }

  function flag(body: JsonObject, key: string, fallback: boolean): boolean {
    const v = body[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw badRequest(`${key} must be a boolean, got ${JSON.stringify(v)}`, key);
    return v;
  }

  function optionalString(body: JsonObject, key: string): string | undefined {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw badRequest(`${key} must be a string, got ${JSON.stringify(v)}`, key);
    return v;
  }

  /** Fields zh-llama does not implement: a 400 naming the field when set, never ignored. */
  function refuse(body: JsonObject, keys: readonly string[]): void {
    for (const key of keys) {
      const v = body[key];
      if (v === undefined || v === null || v === false || v === "" || (Array.isArray(v) && v.length === 0)) continue;
      throw badRequest(`'${key}' is not supported by this server`, key);
    }
  }

  function format(body: JsonObject): ResponseFormat {
    const v = body.format;
    if (v === undefined || v === null || v === "") return { type: "text" };
    if (v === "json") return { type: "json_object" };
    if (isObject(v)) return { type: "json_schema", schema: v };
    throw badRequest(`format must be "json" or a JSON schema, got ${JSON.stringify(v)}`, "format");
  }

  /** `options` (and `format`) as the generation request the app's generation takes. */
  function generationRequest(body: JsonObject, model: string, stream: boolean): GenerationRequest & { minP?: number } {
    const o = body.options ?? {};
    if (!isObject(o)) throw badRequest(`options must be an object, got ${JSON.stringify(o)}`, "options");
    const num = (key: string, min: number, max: number, integer = false): number | undefined => {
      const v = o[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) throw badRequest(`option ${key} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(v)}`, key);
      if (v < min || v > max) throw badRequest(`option ${key} must be between ${min} and ${max}, got ${v}`, key);
      return v;
    };
    const known = new Set(["temperature", "top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "seed", "num_predict", "stop"]);
    for (const key of Object.keys(o)) {
      if (!known.has(key) && !RUNTIME_OPTIONS.has(key)) throw badRequest(`option '${key}' is not supported by this server`, key);
    }
    let stop: string[] = [];
    if (o.stop !== undefined && o.stop !== null) {
      const s = o.stop;
      if (typeof s === "string") stop = [s];
      else if (Array.isArray(s) && s.every((x): x is string => typeof x === "string")) stop = s;
      else throw badRequest(`option stop must be a string or an array of strings, got ${JSON.stringify(s)}`, "stop");
    }
    const numPredict = num("num_predict", -2, 1 << 24, true);
    const topK = num("top_k", 0, 1 << 20, true);
    return {
      model,
      // -1 (no limit) and -2 (fill the context): the app's default, capped by the context left.
      maxTokens: numPredict === undefined || numPredict < 0 ? undefined : numPredict,
      temperature: num("temperature", 0, 100) ?? 0.8,
      topK: topK === 0 ? undefined : (topK ?? 40),
      topP: num("top_p", 0, 1) ?? 0.9,
      minP: num("min_p", 0, 1),
      repetitionPenalty: num("repeat_penalty", 0, 100) ?? 1.1,
      presencePenalty: num("presence_penalty", -2, 2),
      frequencyPenalty: num("frequency_penalty", -2, 2),
      seed: num("seed", -(2 ** 53), 2 ** 53, true),
      stop,
      stream,
      includeUsage: false,
      logitBias: new Map(),
      responseFormat: format(body),
    };
  }

  function messagesOf(body: JsonObject): ChatMessage[] {
    const v = body.messages;
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw badRequest(`messages must be an array, got ${JSON.stringify(v)}`, "messages");
    return v.map((m, i) => {
      if (!isObject(m)) throw badRequest(`messages[${i}] must be an object`, "messages");
      const role = m.role;
      if (role !== "system" && role !== "user" && role !== "assistant") throw badRequest(`messages[${i}].role must be "system", "user" or "assistant", got ${JSON.stringify(role)}`, "messages");
      const content = m.content ?? "";
      if (typeof content !== "string") throw badRequest(`messages[${i}].content must be a string`, "messages");
      refuse(m, ["images", "tool_calls"]);
      return { role, content };
    });
  }

  async function render(messages: ChatMessage[]): Promise<number[]> {
    try {
      return template.renderAsync ? await template.renderAsync(messages, tokenizer) : template.render(messages, tokenizer);
    } catch (error) {
      if (error instanceof ZhLlamaError) throw badRequest(error.message, "messages");
      throw error;
    }
  }

  const nanos = (ms: number) => Math.max(0, Math.round(ms * 1e6));

  /** The closing fields of a reply: why it stopped, the counts, and the durations in nanoseconds. */
  function doneFields(r: GenerationResult, startMs: number) {
    const completion = r.generatedIds.length - (r.finishReason === "stop" && r.generatedIds[r.generatedIds.length - 1] === tokenizer.eosId ? 1 : 0);
    return {
      done: true,
      done_reason: r.finishReason === "length" ? "length" : "stop",
      total_duration: nanos(performance.now() - startMs),
      load_duration: 0,
      prompt_eval_count: r.promptIds.length,
      prompt_eval_duration: nanos(r.timings.promptMs),
      eval_count: completion,
      eval_duration: nanos(r.timings.decodeMs),
    };
  }

  /** Runs the generation; streams NDJSON lines, or answers one object. */
  async function reply(request: Request, req: GenerationRequest & { minP?: number }, promptIds: number[], param: string, extraStop: readonly string[], piece: (text: string) => object, startMs: number): Promise<Response> {
    const run = await ctx.startGeneration(req, promptIds, param, request.signal, extraStop);
    const head = () => ({ model: req.model, created_at: new Date().toISOString() });
    if (!req.stream) {
      try {
        for await (const e of run.events) {
          if (e.type === "done") {
            ctx.noteResult(request, e.result);
            return json({ ...head(), ...piece(e.result.text), ...doneFields(e.result, startMs) });
          }
        }
      } finally {
        run.release();
      }
      throw new ApiError(500, "generation ended without a result", "server_error");
    }
    const encoder = new TextEncoder();
    const line = (data: unknown) => encoder.encode(JSON.stringify(data) + "\n");
    const finish = ctx.streamOpened(request);
    let ended = false;
    const end = () => {
      if (!ended) {
        ended = true;
        finish();
      }
    };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await run.events.next();
          if (next.done) {
            end();
            controller.close();
            return;
          }
          const e = next.value;
          if (e.type === "token") {
            if (e.text) controller.enqueue(line({ ...head(), ...piece(e.text), done: false }));
          } else {
            ctx.noteResult(request, e.result);
            controller.enqueue(line({ ...head(), ...piece(""), ...doneFields(e.result, startMs) }));
          }
        } catch (error) {
          controller.enqueue(line({ error: toApiError(error).message }));
          end();
          controller.close();
        }
      },
      async cancel() {
        run.abort();
        await run.events.return(undefined).catch(() => undefined);
        run.release();
        end();
      },
    });
    return new Response(body, { status: 200, headers: NDJSON_HEADERS });
  }

  /** Nothing to generate (no messages, or an empty prompt): Ollama's "the model is loaded" answer. */
  const loaded = (model: string, piece: object) => json({ model, created_at: new Date().toISOString(), ...piece, done: true, done_reason: "load" });

  async function chat(request: Request): Promise<Response> {
    const startMs = performance.now();
    const body = await ctx.readJson(request);
    const model = requestModel(body);
    refuse(body, ["tools", "think"]);
    const messages = messagesOf(body);
    const req = generationRequest(body, model, flag(body, "stream", true));
    const piece = (content: string) => ({ message: { role: "assistant", content } });
    if (messages.length === 0) return loaded(model, piece(""));
    return reply(request, req, await render(messages), "messages", template.stop, piece, startMs);
  }

  async function generate(request: Request): Promise<Response> {
    const startMs = performance.now();
    const body = await ctx.readJson(request);
    const model = requestModel(body);
    refuse(body, ["images", "suffix", "template", "context", "think"]);
    const prompt = optionalString(body, "prompt") ?? "";
    const system = optionalString(body, "system");
    const raw = flag(body, "raw", false);
    const req = generationRequest(body, model, flag(body, "stream", true));
    const piece = (response: string) => ({ response });
    if (prompt === "") return loaded(model, piece(""));
    if (raw) {
      if (system !== undefined) throw badRequest("system cannot be used with raw: the prompt is sent as it is", "system");
      return reply(request, req, tokenizer.encode(prompt), "prompt", [], piece, startMs);
    }
    const messages: ChatMessage[] = [...(system ? [{ role: "system" as const, content: system }] : []), { role: "user", content: prompt }];
    return reply(request, req, await render(messages), "prompt", template.stop, piece, startMs);
  }

  async function tags(): Promise<Response> {
    const d = await modelDetails();
    return json({ models: [{ name: tagged, model: tagged, modified_at: modifiedAt(), size: d.size, digest: d.digest, details: detailsBlock(d) }] });
  }

  async function show(request: Request): Promise<Response> {
    requestModel(await ctx.readJson(request));
    const d = await modelDetails();
    const meta = ctx.model.file.metadata;
    const modelInfo: Record<string, Json> = { "general.architecture": "llama", "general.parameter_count": d.parameters };
    for (const key of ["general.name", "llama.context_length", "llama.embedding_length", "llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv", "llama.vocab_size"]) {
      const v = meta[key];
      if (typeof v === "number" || typeof v === "string") modelInfo[key] = v;
    }
    return json({ modelfile: "", parameters: "", template: template.name, details: detailsBlock(d), model_info: modelInfo, capabilities: ["completion"], modified_at: modifiedAt() });
  }

  const api = new Hono();
  api.onError((error) => {
    const e = toApiError(error);
    return json({ error: e.message }, e.status);
  });
  const method = (c: Context) => c.req.raw.method.toUpperCase();
  function route(verb: "GET" | "POST", path: string, handle: (request: Request) => Promise<Response>, { auth = true } = {}): void {
    api.on(verb, path, (c) => {
      if (auth) ctx.checkAuth(c.req.raw);
      return handle(c.req.raw);
    });
    api.all(path, (c) => {
      throw new ApiError(405, `${c.req.path} takes ${verb}, not ${method(c)}`, "invalid_request_error");
    });
  }
  route("GET", "/tags", tags);
  route("GET", "/version", async () => json({ version: SERVER_VERSION }), { auth: false });
  route("POST", "/chat", chat);
  route("POST", "/generate", generate);
  route("POST", "/show", show);
  const unknown = (c: Context) => {
    throw new ApiError(404, `${method(c)} ${c.req.path} is not part of the Ollama API this server has`, "invalid_request_error");
  };
  api.all("/", unknown);
  api.all("*", unknown);
  return api;
}

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ZhLlamaError) return badRequest(error.message);
  return new ApiError(500, `internal error: ${error instanceof Error ? error.message : String(error)}`, "server_error");
}

/** 6738415616 -> "6.7B", 124000000 -> "124M", as Ollama writes parameter_size. */
function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}
