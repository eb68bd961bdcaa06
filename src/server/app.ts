/**
 * The OpenAI-compatible API as one web-standard function, `fetch(Request) -> Response`
 * (Hono's shape): the per-runtime adapters (node.ts, runtime.ts) only move bytes between a
 * socket and it, and tests call it directly, without a socket.
 *
 *   GET  /health                 {status, slots, queue}
 *   GET  /v1/models              the served model
 *   POST /v1/completions         prompt -> text (stream: server-sent events)
 *   POST /v1/chat/completions    messages -> reply through the chat template (stream: SSE)
 *   POST /v1/embeddings          mean-pooled, L2-normalised last hidden state
 *   POST /tokenize, /detokenize  text <-> token ids, as llama-server has them
 *   GET  /metrics                Prometheus text: requests, tokens, queue, decode tok/s
 *   GET  /                       a chat page that talks to /v1/chat/completions (page.ts)
 *   /api/...                     Ollama's API: tags, chat, generate, show, version (ollama.ts)
 *
 * Browsers: a request whose Host header is not an allowed name (default: localhost and the
 * loopback addresses) is refused, as is one from a web page whose Origin is not allowed
 * (default: pages on localhost): without both checks any page a user visits could drive the
 * server, directly or by DNS rebinding. Requests without an Origin (curl, SDKs) are not affected.
 *
 * Generation runs on a pool of `parallel` sessions (one KV cache each) in FIFO order with a
 * bounded queue (429 when full); the request's AbortSignal (the client hanging up) or the
 * response stream's cancellation stops its generation and frees its session.
 */
import type { ChatTemplate } from "../chat/index.js";
import { ZhLlamaError } from "../errors.js";
import { Grammar, GrammarConstraint, GrammarError, JSON_OBJECT_GBNF, JsonSchemaError, generateConstrained, jsonSchemaGrammar, tokenBytes } from "../grammar/index.js";
import type { LlamaModel, LlamaSession } from "../model/index.js";
import type { GenerationEvent, GenerationResult, TokenLogprob } from "../generate/index.js";
import { embed } from "../model/embed.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ApiError, badRequest } from "./errors.js";
import { ollamaRoutes } from "./ollama.js";
import { CHAT_PAGE } from "./page.js";
import { SessionPool } from "./pool.js";
import { isObject, parseChatRequest, parseCompletionRequest, parseEmbeddingRequest, type GenerationRequest, type Json, type JsonObject, type ResponseFormat } from "./requests.js";
import { parseToolCall, toolGrammar, toolMessages, type ToolCall } from "./tools.js";

export interface ServerOptions {
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
  /** How /v1/chat/completions turns messages into a prompt. */
  template: ChatTemplate;
  /** The id in /v1/models and responses (default: the GGUF general.name). */
  modelName?: string;
  /** Other names requests may use for the model (e.g. the upstream "chinese-llama-alpaca-2"). */
  aliases?: readonly string[];
  /** Required as `Authorization: Bearer KEY` when set. */
  apiKey?: string;
  /** Sequences generating at once, each with its own KV cache (default 1). */
  parallel?: number;
  /** Requests that may wait for a sequence before the server answers 429 (default 64). */
  maxQueue?: number;
  /** Largest request body in bytes (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Largest max_tokens a request may ask for (default: the context length). */
  maxTokensLimit?: number;
  /** max_tokens when a request gives none (default 512, the upstream server's), capped by the context left. */
  defaultMaxTokens?: number;
  /**
   * Web page origins allowed to call the server ("http://localhost:3000"; "*" for any). Pages on
   * localhost / 127.0.0.1 / [::1] (any port, http or https) are always allowed; a request with
   * any other Origin gets 403.
   */
  corsOrigins?: readonly string[];
  /**
   * Host header names accepted (besides localhost, *.localhost, 127.0.0.1 and [::1], which always
   * are); "*" accepts any (a server bound to a public address). Others get 403: the DNS-rebinding
   * protection. A malformed Host is always 400.
   */
  allowedHosts?: readonly string[] | "*";
  /**
   * One access-log line per request (method, path, status, prompt+completion tokens where known,
   * milliseconds): true writes it to stderr (console.error), a function receives it. Default off.
   * A stream's line is written when the stream ends.
   */
  log?: boolean | ((line: string) => void);
}

export interface ServerStats {
  parallel: number;
  busy: number;
  idle: number;
  queued: number;
  /** Streams still open. */
  streams: number;
  requests: number;
  /** Generations stopped early because their client went away. */
  cancelled: number;
}

export interface ServerApp {
  fetch(request: Request): Promise<Response>;
  readonly pool: SessionPool;
  readonly modelName: string;
  stats(): ServerStats;
}

/** A generation on a pooled session: its events, a way to stop it, and the session's return. */
interface Generation {
  events: AsyncGenerator<GenerationEvent>;
  abort: () => void;
  release: () => void;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" };

/** What the access log and /metrics learn about one request while it is answered. */
interface Exchange {
  start: number;
  promptTokens?: number;
  completionTokens?: number;
  /** The response is a stream: log it when the stream ends. */
  streaming: boolean;
  done: boolean;
  onEnd?: () => void;
}

/** The chat page: its script and style are inline, and it may only call this server. */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
};
const METRICS_HEADERS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
const errorResponse = (e: ApiError): Response => json(e.body(), e.status);

/** Longest stretch of generation work between two turns of the event loop. */
const EVENT_LOOP_TURN_MS = 5;

const nextMacrotask = (): Promise<void> => new Promise((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));

/**
 * A forward pass resolves as a microtask: without a turn of the event loop now and then, one
 * generation would hold off every socket (new requests, hang-ups). This gives one every
 * EVENT_LOOP_TURN_MS of work.
 */
function eventLoopTurns(): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < EVENT_LOOP_TURN_MS) return;
    await nextMacrotask();
    last = performance.now();
  };
}

/** Grammars compiled for response_format, kept for repeated schemas. */
const GRAMMAR_CACHE_SIZE = 32;

export function createServer(options: ServerOptions): ServerApp {
  const { model, tokenizer, template } = options;
  const nameMeta = model.file.metadata["general.name"];
  const modelName = options.modelName ?? (typeof nameMeta === "string" && nameMeta ? nameMeta : "zh-llama");
  const names = new Set([modelName, ...(options.aliases ?? [])]);
  const parallel = options.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new ApiError(500, `parallel must be a positive integer, got ${parallel}`, "server_error");
  const pool = new SessionPool(model, parallel, options.maxQueue ?? 64);
  const nCtx = model.session.nCtx;
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const maxTokensLimit = options.maxTokensLimit ?? nCtx;
  const defaultMaxTokens = options.defaultMaxTokens ?? 512;
  const created = Math.floor(Date.now() / 1000);
  const grammars = new Map<string, Grammar>();
  const corsAny = options.corsOrigins?.includes("*") ?? false;
  const corsOrigins = new Set((options.corsOrigins ?? []).filter((o) => o !== "*").map(normaliseOrigin));
  const hostsAny = options.allowedHosts === "*";
  const allowedHosts = new Set(options.allowedHosts === "*" ? [] : (options.allowedHosts ?? []).map((h) => normaliseHostName(h)));
  let streams = 0;
  let requests = 0;
  let cancelled = 0;
  const exchanges = new WeakMap<Request, Exchange>();
  const requestCounts = new Map<string, number>();
  let promptTokensTotal = 0;
  let generatedTokensTotal = 0;
  let lastDecodeTokensPerS = 0;
  const logLine = options.log === true ? (line: string) => console.error(line) : typeof options.log === "function" ? options.log : undefined;

  /** A finished generation's tokens, for the access log and the counters. */
  function noteResult(ex: Exchange | undefined, r: GenerationResult): void {
    const u = usage(r);
    promptTokensTotal += u.prompt_tokens;
    generatedTokensTotal += u.completion_tokens;
    if (r.timings.generatedTokens > 0 && Number.isFinite(r.timings.decodeTokensPerS)) lastDecodeTokensPerS = r.timings.decodeTokensPerS;
    if (ex) {
      ex.promptTokens = u.prompt_tokens;
      ex.completionTokens = u.completion_tokens;
    }
  }

  function checkModel(name: string | undefined): void {
    if (name !== undefined && !names.has(name)) {
      throw new ApiError(404, `The model '${name}' does not exist; this server serves '${modelName}'`, "invalid_request_error", "model", "model_not_found");
    }
  }

  function checkAuth(request: Request): void {
    if (options.apiKey === undefined) return;
    const header = request.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m) throw new ApiError(401, "You didn't provide an API key: send it as 'Authorization: Bearer KEY'", "authentication_error", null, "missing_api_key");
    if (!timingSafeEqual(m[1]!.trim(), options.apiKey)) throw new ApiError(401, "Incorrect API key provided", "authentication_error", null, "invalid_api_key");
  }

  async function readJson(request: Request): Promise<JsonObject> {
    const declared = Number(request.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > maxBodyBytes) throw new ApiError(413, `the request body is ${declared} bytes; the limit is ${maxBodyBytes}`, "invalid_request_error", null, "request_too_large");
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (request.body) {
      const reader = request.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBodyBytes) {
          await reader.cancel().catch(() => undefined);
          throw new ApiError(413, `the request body is over the limit of ${maxBodyBytes} bytes`, "invalid_request_error", null, "request_too_large");
        }
        chunks.push(value);
      }
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    let body: Json;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
    } catch (error) {
      throw badRequest(`the request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, null, "invalid_json");
    }
    if (!isObject(body)) throw badRequest("the request body must be a JSON object", null, "invalid_json");
    return body;
  }

  function grammarFor(format: ResponseFormat): Grammar | undefined {
    if (format.type === "text") return undefined;
    let key: string;
    try {
      key = format.type === "json_schema" ? `s${JSON.stringify(format.schema)}` : format.type === "grammar" ? `g${format.grammar}` : "json_object";
    } catch (error) {
      // JSON.stringify recurses: a schema nested hundreds of thousands deep overflows the stack.
      if (error instanceof RangeError) throw badRequest("'response_format.json_schema.schema' is nested too deeply", "response_format");
      throw error;
    }
    let g = grammars.get(key);
    if (!g) {
      try {
        g = format.type === "json_object" ? Grammar.parse(JSON_OBJECT_GBNF) : format.type === "json_schema" ? jsonSchemaGrammar(format.schema) : Grammar.parse(format.grammar);
      } catch (error) {
        if (error instanceof GrammarError || error instanceof JsonSchemaError) throw badRequest(error.message, format.type === "grammar" ? "grammar" : "response_format");
        throw error;
      }
      if (grammars.size >= GRAMMAR_CACHE_SIZE) grammars.delete(grammars.keys().next().value!);
      grammars.set(key, g);
    }
    return g;
  }

  /** Runs one generation on a pooled session; the session goes back when the events end. */
  async function startGeneration(req: GenerationRequest & { minP?: number }, promptIds: number[], param: string, signal: AbortSignal, extraStop: readonly string[], toolsGrammar?: Grammar): Promise<Generation> {
    if (promptIds.length >= nCtx) {
      throw badRequest(`This model's maximum context length is ${nCtx} tokens; the prompt has ${promptIds.length}. Please shorten it.`, param, "context_length_exceeded");
    }
    for (const id of promptIds) if (id >= tokenizer.vocabSize) throw badRequest(`token id ${id} is outside the vocabulary (0..${tokenizer.vocabSize - 1})`, param);
    for (const id of req.logitBias.keys()) if (id >= tokenizer.vocabSize) throw badRequest(`'logit_bias' token id ${id} is outside the vocabulary (0..${tokenizer.vocabSize - 1})`, "logit_bias");
    const room = nCtx - promptIds.length;
    if (req.maxTokens !== undefined && req.maxTokens > room) {
      throw badRequest(
        `This model's maximum context length is ${nCtx} tokens. However, you requested ${promptIds.length + req.maxTokens} tokens (${promptIds.length} in the prompt, ${req.maxTokens} for the completion). Please reduce the prompt or max_tokens.`,
        "max_tokens",
        "context_length_exceeded",
      );
    }
    const maxTokens = req.maxTokens ?? Math.min(defaultMaxTokens, room);
    const grammar = toolsGrammar ?? grammarFor(req.responseFormat);
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let session: LlamaSession;
    try {
      session = await pool.acquire(controller.signal, promptIds);
    } catch (error) {
      signal.removeEventListener("abort", onAbort);
      throw error;
    }
    const topP = req.topP === 0 ? undefined : req.topP;
    const topK = req.topP === 0 ? 1 : req.topK;
    let inner: AsyncGenerator<GenerationEvent>;
    try {
      inner = generateConstrained(session, tokenizer, promptIds, {
        maxTokens,
        temperature: req.temperature,
        topP,
        topK,
        minP: req.minP,
        repetitionPenalty: req.repetitionPenalty,
        presencePenalty: req.presencePenalty,
        frequencyPenalty: req.frequencyPenalty,
        seed: req.seed === undefined ? undefined : req.seed >>> 0,
        logitBias: req.logitBias,
        stop: [...req.stop, ...extraStop],
        signal: controller.signal,
        constraint: grammar ? new GrammarConstraint(grammar, tokenizer) : undefined,
        logprobs: req.logprobs,
        pause: eventLoopTurns(),
      });
    } catch (error) {
      pool.release(session);
      signal.removeEventListener("abort", onAbort);
      throw error;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (controller.signal.aborted) cancelled++;
      signal.removeEventListener("abort", onAbort);
      pool.release(session);
    };
    async function* leased(): AsyncGenerator<GenerationEvent> {
      try {
        yield* inner;
      } finally {
        release();
      }
    }
    // release() again on cancel: a generator never started skips its finally on return().
    return { events: leased(), abort: onAbort, release };
  }

  async function collect(events: AsyncGenerator<GenerationEvent>, ex: Exchange | undefined, logprobs?: TokenLogprob[]): Promise<GenerationResult> {
    for await (const e of events) {
      if (e.logprobs) logprobs?.push(...e.logprobs);
      if (e.type === "done") {
        noteResult(ex, e.result);
        return e.result;
      }
    }
    throw new ApiError(500, "generation ended without a result", "server_error");
  }

  /**
   * Token text and bytes for logprobs, in generation order: the first piece's leading space is
   * dropped where the decoder drops it, so the tokens add up to the text.
   */
  function tokenNamer(): (lp: TokenLogprob[]) => Array<TokenLogprob & { token: string; bytes: number[]; topNamed: Array<{ token: string; logprob: number; bytes: number[] }> }> {
    let atStart = true;
    const decoder = new TextDecoder("utf-8", { fatal: false });
    const name = (id: number, start: boolean) => {
      const bytes = Array.from(tokenBytes(tokenizer, id, start && !tokenizer.decode([id]).startsWith(" ")));
      return { token: decoder.decode(Uint8Array.from(bytes)), bytes };
    };
    return (lp) =>
      // EOS ends the reply: it is no part of the text, as in usage.
      lp
        .filter((t) => t.id !== tokenizer.eosId)
        .map((t) => {
          const start = atStart;
          const chosen = name(t.id, start);
          if (chosen.bytes.length > 0) atStart = false;
          return { ...t, ...chosen, topNamed: t.top.map((a) => ({ ...name(a.id, start), logprob: a.logprob })) };
        });
  }

  /** Chat's shape: {content: [{token, logprob, bytes, top_logprobs}]}; null when not asked. */
  function chatLogprobs(named: ReturnType<ReturnType<typeof tokenNamer>> | undefined) {
    if (!named) return null;
    return { content: named.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.topNamed })), refusal: null };
  }

  /** The legacy completions shape: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. */
  function legacyLogprobs(named: ReturnType<ReturnType<typeof tokenNamer>> | undefined, offset: { at: number }) {
    if (!named) return null;
    const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Array<Record<string, number>>, text_offset: [] as number[] };
    for (const t of named) {
      out.tokens.push(t.token);
      out.token_logprobs.push(t.logprob);
      const top: Record<string, number> = {};
      for (const a of t.topNamed) if (!Object.hasOwn(top, a.token)) top[a.token] = a.logprob;
      out.top_logprobs.push(top);
      out.text_offset.push(offset.at);
      offset.at += t.token.length;
    }
    return out;
  }

  const finishReason = (r: GenerationResult): "stop" | "length" => (r.finishReason === "length" ? "length" : "stop");
  const usage = (r: GenerationResult) => {
    const last = r.generatedIds[r.generatedIds.length - 1];
    const completion = r.generatedIds.length - (r.finishReason === "stop" && last === tokenizer.eosId ? 1 : 0);
    return { prompt_tokens: r.promptIds.length, completion_tokens: completion, total_tokens: r.promptIds.length + completion };
  };

  /** Server-sent events from generation events; `chunk(text | null, result?)` shapes each one. */
  function sse(run: Generation, first: unknown | undefined, chunk: (text: string | null, result?: GenerationResult, logprobs?: TokenLogprob[]) => unknown, includeUsage: boolean, ex: Exchange | undefined): Response {
    const encoder = new TextEncoder();
    const line = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
    let finished = false;
    streams++;
    if (ex) ex.streaming = true;
    const finish = () => {
      if (!finished) {
        finished = true;
        streams--;
        if (ex) {
          ex.done = true;
          ex.onEnd?.();
        }
      }
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (first !== undefined) controller.enqueue(line(first));
      },
      async pull(controller) {
        try {
          // A chunk function may hold a piece back (undefined) or send several (an array); a
          // pull that enqueues nothing would not be called again, so it reads on until one does.
          let sent = 0;
          const send = (data: unknown) => {
            for (const d of Array.isArray(data) ? data : data === undefined ? [] : [data]) {
              controller.enqueue(line(d));
              sent++;
            }
          };
          while (sent === 0) {
            const next = await run.events.next();
            if (next.done) {
              finish();
              controller.close();
              return;
            }
            const e = next.value;
            if (e.type === "token") {
              send(chunk(e.text, undefined, e.logprobs));
            } else {
              noteResult(ex, e.result);
              send(chunk(null, e.result, e.logprobs));
              if (includeUsage) send({ ...(chunk(null) as object), choices: [], usage: usage(e.result) });
              controller.enqueue(encoder.encode("data: [DONE]\n\n"));
              sent++;
            }
          }
        } catch (error) {
          const apiError = toApiError(error);
          controller.enqueue(line(apiError.body()));
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          finish();
          controller.close();
        }
      },
      async cancel() {
        run.abort();
        await run.events.return(undefined).catch(() => undefined);
        run.release();
        finish();
      },
    });
    return new Response(body, { status: 200, headers: SSE_HEADERS });
  }

  async function chatCompletions(request: Request): Promise<Response> {
    const req = parseChatRequest(await readJson(request), maxTokensLimit);
    checkModel(req.model);
    let promptIds: number[];
    try {
      // A model's own Jinja template renders on a worker thread, with limits (src/chat/jinja.ts).
      const messages = toolMessages(req.messages, req.tools, req.toolChoice);
      promptIds = template.renderAsync ? await template.renderAsync(messages, tokenizer) : template.render(messages, tokenizer);
    } catch (error) {
      if (error instanceof ZhLlamaError) throw badRequest(error.message, "messages");
      throw error;
    }
    const tools = req.toolChoice !== "none";
    const run = await startGeneration(req, promptIds, "messages", request.signal, template.stop, toolGrammar(req.tools, req.toolChoice));
    const id = `chatcmpl-${randomId()}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const base = { id, object: "chat.completion.chunk", created: createdAt, model: modelName, system_fingerprint: null };
    const name = req.logprobs === undefined ? undefined : tokenNamer();
    const callOf = (text: string): ToolCall | undefined => (tools ? parseToolCall(text, req.tools) : undefined);
    const toolCallJson = (call: ToolCall) => ({ id: `call_${randomId()}`, type: "function" as const, function: { name: call.name, arguments: call.arguments } });
    if (req.stream) {
      const first = { ...base, choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] };
      const choice = (delta: object, lp: TokenLogprob[] | undefined, finish: string | null) => ({ ...base, choices: [{ index: 0, delta, logprobs: name && lp ? chatLogprobs(name(lp)) : null, finish_reason: finish }] });
      // With tools, a reply that opens with "{" is a call: it is held back and sent whole at the end.
      let mode: "unknown" | "text" | "call" = tools ? "unknown" : "text";
      let held = "";
      const heldLogprobs: TokenLogprob[] = [];
      return sse(
        run,
        first,
        (text, result, lp) => {
          if (text === null && !result) return { ...base, choices: [] };
          if (mode === "unknown" && text) mode = text.trimStart().startsWith("{") ? "call" : text.trim() ? "text" : "unknown";
          if (mode !== "text") {
            held += text ?? "";
            if (lp) heldLogprobs.push(...lp);
            if (!result) return undefined;
            const call = callOf(held);
            if (call) return [choice({ tool_calls: [{ index: 0, ...toolCallJson(call) }] }, heldLogprobs, null), choice({}, undefined, "tool_calls")];
            return choice(held ? { content: held } : {}, heldLogprobs, finishReason(result));
          }
          if (held) {
            text = held + (text ?? "");
            held = "";
            lp = [...heldLogprobs.splice(0), ...(lp ?? [])];
          }
          return choice(text === null ? {} : { content: text }, lp, result ? finishReason(result) : null);
        },
        req.includeUsage,
        exchanges.get(request),
      );
    }
    const logprobs: TokenLogprob[] = [];
    const r = await collect(run.events, exchanges.get(request), logprobs);
    const call = callOf(r.text);
    return json({
      id,
      object: "chat.completion",
      created: createdAt,
      model: modelName,
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: call ? { role: "assistant", content: null, tool_calls: [toolCallJson(call)] } : { role: "assistant", content: r.text },
          logprobs: name ? chatLogprobs(name(logprobs)) : null,
          finish_reason: call ? "tool_calls" : finishReason(r),
        },
      ],
      usage: usage(r),
    });
  }

  async function completions(request: Request): Promise<Response> {
    const req = parseCompletionRequest(await readJson(request), maxTokensLimit);
    checkModel(req.model);
    const promptIds = typeof req.prompt === "string" ? tokenizer.encode(req.prompt) : req.prompt;
    if (promptIds.length === 0) throw badRequest("'prompt' gives no tokens", "prompt");
    const run = await startGeneration(req, promptIds, "prompt", request.signal, []);
    const id = `cmpl-${randomId()}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const base = { id, object: "text_completion", created: createdAt, model: modelName, system_fingerprint: null };
    const echo = req.echo ? (typeof req.prompt === "string" ? req.prompt : tokenizer.decode(req.prompt)) : "";
    const name = req.logprobs === undefined ? undefined : tokenNamer();
    const offset = { at: echo.length };
    const lps = (lp: TokenLogprob[] | undefined) => (name ? legacyLogprobs(name(lp ?? []), offset) : null);
    if (req.stream) {
      const first = echo ? { ...base, choices: [{ index: 0, text: echo, logprobs: null, finish_reason: null }] } : undefined;
      return sse(run, first, (text, result, lp) => ({ ...base, choices: text === null && !result ? [] : [{ index: 0, text: text ?? "", logprobs: lps(lp), finish_reason: result ? finishReason(result) : null }] }), req.includeUsage, exchanges.get(request));
    }
    const logprobs: TokenLogprob[] = [];
    const r = await collect(run.events, exchanges.get(request), logprobs);
    return json({ ...base, choices: [{ index: 0, text: echo + r.text, logprobs: lps(logprobs), finish_reason: finishReason(r) }], usage: usage(r) });
  }

  async function embeddings(request: Request): Promise<Response> {
    const req = parseEmbeddingRequest(await readJson(request));
    checkModel(req.model);
    const idLists = req.inputs.map((input, i) => {
      const ids = typeof input === "string" ? tokenizer.encode(input) : input;
      if (ids.length > nCtx) throw badRequest(`'input[${i}]' has ${ids.length} tokens; the context holds ${nCtx}`, "input", "context_length_exceeded");
      for (const id of ids) if (id >= tokenizer.vocabSize) throw badRequest(`'input[${i}]': token id ${id} is outside the vocabulary (0..${tokenizer.vocabSize - 1})`, "input");
      return ids;
    });
    const session = await pool.acquire(request.signal);
    const data: Array<{ object: "embedding"; index: number; embedding: number[] | string }> = [];
    let tokens = 0;
    try {
      for (const [index, ids] of idLists.entries()) {
        if (request.signal.aborted) throw new ApiError(499, "the client closed the request", "invalid_request_error", null, "client_closed");
        const v = await embed(session, ids);
        await nextMacrotask();
        tokens += ids.length;
        data.push({ object: "embedding", index, embedding: req.encodingFormat === "base64" ? base64(v) : Array.from(v) });
      }
    } finally {
      session.reset();
      pool.release(session);
    }
    promptTokensTotal += tokens;
    const ex = exchanges.get(request);
    if (ex) ex.promptTokens = tokens;
    return json({ object: "list", data, model: modelName, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  /** POST /tokenize {content, add_special?, parse_special?} -> {tokens}, as llama-server's. */
  async function tokenize(request: Request): Promise<Response> {
    const body = await readJson(request);
    const content = body.content;
    if (typeof content !== "string") throw badRequest(`'content' must be a string, got ${content === undefined ? "nothing" : Array.isArray(content) ? "an array" : content === null ? "null" : typeof content}`, "content");
    const flag = (name: string, fallback: boolean): boolean => {
      const v = body[name];
      if (v === undefined) return fallback;
      if (typeof v !== "boolean") throw badRequest(`'${name}' must be a boolean`, name);
      return v;
    };
    const addSpecial = flag("add_special", false);
    const parseSpecial = flag("parse_special", true);
    if (flag("with_pieces", false)) throw badRequest("'with_pieces' is not supported", "with_pieces", "unsupported_parameter");
    const tokens = tokenizer.encode(content, addSpecial ? { parseSpecial } : { addBos: false, addEos: false, parseSpecial });
    return json({ tokens });
  }

  /** POST /detokenize {tokens} -> {content}, as llama-server's. */
  async function detokenize(request: Request): Promise<Response> {
    const body = await readJson(request);
    const tokens = body.tokens;
    if (!Array.isArray(tokens)) throw badRequest("'tokens' must be an array of token ids", "tokens");
    tokens.forEach((id, i) => {
      if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
        throw badRequest(`'tokens[${i}]' is not a token id (an integer in 0..${tokenizer.vocabSize - 1})`, "tokens");
      }
    });
    return json({ content: tokenizer.decode(tokens as number[]) });
  }

  /** GET /metrics: Prometheus text exposition format 0.0.4. */
  function metrics(): Response {
    const out: string[] = [];
    const metric = (name: string, type: "counter" | "gauge", help: string, samples: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
    };
    const requestSamples: Array<[string, number]> = [...requestCounts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, n]) => {
      const [endpoint, status] = key.split("\t") as [string, string];
      return [`{endpoint="${endpoint}",status="${status}"}`, n];
    });
    metric("zh_llama_requests_total", "counter", "HTTP requests answered, by endpoint and status class.", requestSamples);
    metric("zh_llama_prompt_tokens_total", "counter", "Prompt tokens of finished generations and embeddings.", [["", promptTokensTotal]]);
    metric("zh_llama_generated_tokens_total", "counter", "Tokens generated.", [["", generatedTokensTotal]]);
    metric("zh_llama_requests_cancelled_total", "counter", "Generations stopped because their client went away.", [["", cancelled]]);
    metric("zh_llama_queue_depth", "gauge", "Requests waiting for a sequence.", [["", pool.queued]]);
    metric("zh_llama_sessions_busy", "gauge", "Sequences generating now.", [["", pool.busy]]);
    metric("zh_llama_sessions", "gauge", "Sequences (--parallel).", [["", parallel]]);
    metric("zh_llama_streams_open", "gauge", "Server-sent event streams open.", [["", streams]]);
    metric("zh_llama_decode_tokens_per_second", "gauge", "Decode speed of the last finished generation (tokens/s).", [["", lastDecodeTokensPerS]]);
    return new Response(out.join("\n") + "\n", { status: 200, headers: METRICS_HEADERS });
  }

  /** Ollama's API (ollama.ts) on this app's pool, generation and accounting. */
  const ollama = ollamaRoutes({
    model, tokenizer, template, modelName, names, created, checkAuth, readJson, startGeneration,
    noteResult: (request, r) => noteResult(exchanges.get(request), r),
    streamOpened(request) {
      const ex = exchanges.get(request);
      streams++;
      if (ex) ex.streaming = true;
      return () => {
        streams--;
        if (ex) {
          ex.done = true;
          ex.onEnd?.();
        }
      };
    },
  });

  const modelCard = () => ({ id: modelName, object: "model", created, owned_by: "zh-llama" });

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = request.method.toUpperCase();
    if (method === "OPTIONS") {
      // A CORS preflight; the origin was checked in fetch(), which adds allow-origin.
      return new Response(null, { status: 204, headers: { allow: "GET, HEAD, POST, OPTIONS", "access-control-allow-methods": "GET, POST, OPTIONS", "access-control-allow-headers": "authorization, content-type", "access-control-max-age": "86400" } });
    }
    const api = ollama(path, method);
    if (api) return api(request);
    const routes: Record<string, { method: "GET" | "POST"; auth: boolean; handle: () => Promise<Response> | Response }> = {
      "/": { method: "GET", auth: false, handle: () => new Response(CHAT_PAGE, { status: 200, headers: PAGE_HEADERS }) },
      "/health": { method: "GET", auth: false, handle: () => json({ status: "ok", model: modelName, ...stats() }) },
      "/v1/models": { method: "GET", auth: true, handle: () => json({ object: "list", data: [modelCard()] }) },
      "/v1/completions": { method: "POST", auth: true, handle: () => completions(request) },
      "/v1/chat/completions": { method: "POST", auth: true, handle: () => chatCompletions(request) },
      "/v1/embeddings": { method: "POST", auth: true, handle: () => embeddings(request) },
      "/tokenize": { method: "POST", auth: true, handle: () => tokenize(request) },
      "/detokenize": { method: "POST", auth: true, handle: () => detokenize(request) },
      "/metrics": { method: "GET", auth: true, handle: () => metrics() },
    };
    const r = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!r) {
      const modelPath = /^\/v1\/models\/(.+)$/.exec(path);
      if (modelPath && method === "GET") {
        checkAuth(request);
        let name: string;
        try {
          name = decodeURIComponent(modelPath[1]!);
        } catch {
          throw badRequest(`the model name in ${JSON.stringify(path)} is not valid percent-encoding`, "model", "invalid_url");
        }
        checkModel(name);
        return json({ ...modelCard(), id: name });
      }
      throw new ApiError(404, `Unknown request URL: ${method} ${path}`, "invalid_request_error", null, "unknown_url");
    }
    if (method !== r.method && !(method === "HEAD" && r.method === "GET")) {
      throw new ApiError(405, `${path} takes ${r.method}, not ${method}`, "invalid_request_error", null, "method_not_allowed");
    }
    if (r.auth) checkAuth(request);
    return r.handle();
  }

  /** 400 for a malformed Host header, 403 for a name this server does not answer to. */
  function checkHost(request: Request): void {
    const host = request.headers.get("host");
    if (host === null || host === "") return; // HTTP/1.0, or no authority: no browser sends this
    const name = parseHostHeader(host);
    if (name === undefined) throw new ApiError(400, `invalid Host header ${JSON.stringify(host.slice(0, 100))}`, "invalid_request_error", null, "invalid_host");
    if (hostsAny || isLocalHostName(name) || allowedHosts.has(name)) return;
    throw new ApiError(403, `Host ${JSON.stringify(name)} is not allowed: this server answers to localhost (start it with --allowed-host NAME, or --host on a public address)`, "invalid_request_error", null, "host_not_allowed");
  }

  /** The CORS headers for the request's Origin (none without one); 403 for an origin not allowed. */
  function corsFor(request: Request): Record<string, string> {
    const origin = request.headers.get("origin");
    if (origin === null) return {};
    if (corsAny) return { "access-control-allow-origin": "*" };
    const normal = normaliseOrigin(origin);
    // The page at / calling back to the host it came from is same-origin, whatever that host
    // is (the Host header was checked already: a rebinding attacker's name is refused there).
    const host = request.headers.get("host");
    const sameOrigin = host !== null && (normal === `http://${host.toLowerCase()}` || normal === `https://${host.toLowerCase()}`);
    if (sameOrigin || isLocalOrigin(normal) || corsOrigins.has(normal)) return { "access-control-allow-origin": origin, vary: "origin" };
    throw new ApiError(403, `cross-origin requests from ${JSON.stringify(origin.slice(0, 100))} are not allowed (start the server with --cors-origin ORIGIN to allow them)`, "invalid_request_error", null, "origin_not_allowed");
  }

  function stats(): ServerStats {
    return { parallel, busy: pool.busy, idle: pool.idleCount, queued: pool.queued, streams, requests, cancelled };
  }

  return {
    pool,
    modelName,
    stats,
    async fetch(request: Request): Promise<Response> {
      requests++;
      const ex: Exchange = { start: performance.now(), streaming: false, done: false };
      exchanges.set(request, ex);
      let cors: Record<string, string> = {};
      let response: Response;
      try {
        checkHost(request);
        cors = corsFor(request);
        response = await route(request);
      } catch (error) {
        response = errorResponse(toApiError(error));
      }
      for (const [k, v] of Object.entries(cors)) response.headers.set(k, v);
      const { status } = response;
      const key = `${endpointLabel(request)}\t${Math.floor(status / 100)}xx`;
      requestCounts.set(key, (requestCounts.get(key) ?? 0) + 1);
      if (logLine) {
        const write = () => logLine(accessLogLine(request, status, ex));
        if (ex.streaming && !ex.done) ex.onEnd = write;
        else write();
      }
      return response;
    },
  };
}

const KNOWN_ENDPOINTS = new Set(["/", "/api/tags", "/api/chat", "/api/generate", "/api/show", "/api/version", "/health", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize", "/metrics"]);

/** The /metrics label for a request's path: a known endpoint, or "other" (labels stay few). */
function endpointLabel(request: Request): string {
  let path: string;
  try {
    path = new URL(request.url).pathname.replace(/\/+$/, "") || "/";
  } catch {
    return "other";
  }
  if (path.startsWith("/v1/models/")) return "/v1/models";
  return KNOWN_ENDPOINTS.has(path) ? path : "other";
}

/** "POST /v1/chat/completions 200 12+8 tokens 153 ms" (no query string: it may carry secrets). */
function accessLogLine(request: Request, status: number, ex: Exchange): string {
  let path: string;
  try {
    path = new URL(request.url).pathname;
  } catch {
    path = "?";
  }
  if (path.length > 200) path = `${path.slice(0, 200)}...`;
  const tokens = ex.promptTokens === undefined ? "" : ex.completionTokens === undefined ? ` ${ex.promptTokens} tokens` : ` ${ex.promptTokens}+${ex.completionTokens} tokens`;
  return `${request.method} ${path} ${status}${tokens} ${Math.round(performance.now() - ex.start)} ms`;
}

/** Any failure as an API error: ours keep their status; the library's are the request's fault (400); the rest are 500. */
function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof GrammarError || error instanceof JsonSchemaError) return badRequest(error.message, "response_format");
  if (error instanceof ZhLlamaError) return badRequest(error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, `internal error: ${message}`, "server_error");
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** localhost, *.localhost, 127.0.0.0/8, [::1]. */
function isLocalHostName(name: string): boolean {
  return LOOPBACK_NAMES.has(name) || name.endsWith(".localhost") || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** "Host" as "name" or "name:port" (IPv6 in brackets) -> the lower-case name; undefined if malformed. */
export function parseHostHeader(host: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return undefined;
  if (m[2] !== undefined && Number(m[2]) > 65535) return undefined;
  return normaliseHostName(m[1]!);
}

function normaliseHostName(name: string): string {
  let n = name.trim().toLowerCase();
  if (n.endsWith(".")) n = n.slice(0, -1);
  if (n.includes(":") && !n.startsWith("[")) n = `[${n}]`;
  return n;
}

/** "HTTP://LocalHost:80/" -> "http://localhost:80"; other strings unchanged but for case. */
function normaliseOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, "");
}

/** An origin served from this machine: http(s) on localhost, *.localhost, 127.x or [::1], any port. */
function isLocalOrigin(origin: string): boolean {
  const m = /^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?$/.exec(origin);
  return m !== null && isLocalHostName(m[1]!);
}

function randomId(): string {
  return globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 24);
}

/** Float32 little-endian bytes in base64 (OpenAI's encoding_format "base64"). */
function base64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(4 * i, x, true));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i % Math.max(1, a.length)) || 0) ^ (b.charCodeAt(i % Math.max(1, b.length)) || 0);
  return diff === 0;
}
