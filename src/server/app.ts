/**
 * The OpenAI-compatible API as one web-standard function, `fetch(Request) -> Response`: a Hono
 * app, so the per-runtime adapters (node.ts, runtime.ts) only move bytes between a socket and it,
 * and tests call it directly, without a socket. This file wires the parts together:
 *
 *   guard.ts       Host and Origin checks (403s), CORS headers and preflights (Hono's cors())
 *   http.ts        JSON responses and errors, the API key, the request body with its size limit
 *   requests.ts    the OpenAI request bodies, checked field by field
 *   leasing.ts     generation on a session leased from the pool (pool.ts), freed on hang-up
 *   sse.ts         server-sent event streams
 *   accounting.ts  the access log, /metrics, the counters /health reports
 *   openai.ts      /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models
 *   tokens.ts      /tokenize, /detokenize (llama-server's)
 *   ollama.ts      Ollama's API under /api/; page.ts the chat page at /
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
 * Generation runs on a pool of `parallel` sessions (one KV cache each) in FIFO order with a
 * bounded queue (429 when full); the request's AbortSignal (the client hanging up) or the
 * response stream's cancellation stops its generation and frees its session.
 */
import { Hono, type Context, type Handler } from "hono";
import type { ChatTemplate } from "../chat/index.js";
import type { LlamaModel } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { Accounting } from "./accounting.js";
import { ApiError } from "./errors.js";
import { browserGuard } from "./guard.js";
import { checkAuth, errorResponse, json, readJson, toApiError } from "./http.js";
import { generationLeasing } from "./leasing.js";
import { ollamaApi } from "./ollama.js";
import { openAiRoutes } from "./openai.js";
import { CHAT_PAGE } from "./page.js";
import { SessionPool } from "./pool.js";
import { tokenRoutes } from "./tokens.js";

export { parseHostHeader } from "./guard.js";

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

/** The chat page: its script and style are inline, and it may only call this server. */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
};

/** The path routes match: the URL's, without trailing slashes ("/v1/models/" is "/v1/models"). */
const routePath = (request: Request): string => new URL(request.url).pathname.replace(/\/+$/, "") || "/";

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
  const created = Math.floor(Date.now() / 1000);
  const logLine = options.log === true ? (line: string) => console.error(line) : typeof options.log === "function" ? options.log : undefined;
  const accounting = new Accounting(tokenizer.eosId, logLine);
  const auth = (request: Request) => checkAuth(request, options.apiKey);
  const body = (request: Request) => readJson(request, maxBodyBytes);
  const startGeneration = generationLeasing({ pool, tokenizer, nCtx, defaultMaxTokens: options.defaultMaxTokens ?? 512, onCancelled: () => accounting.cancelled++ });
  const openai = openAiRoutes({ tokenizer, template, modelName, names, created, nCtx, maxTokensLimit: options.maxTokensLimit ?? nCtx, pool, accounting, readJson: body, startGeneration });
  const tokens = tokenRoutes(tokenizer, body);
  /** Ollama's API (ollama.ts) on this app's pool, generation and accounting. */
  const ollama = ollamaApi({
    model, tokenizer, template, modelName, names, created, checkAuth: auth, readJson: body, startGeneration,
    noteResult: (request, r) => accounting.noteResult(request, r),
    streamOpened: (request) => accounting.streamOpened(request),
  });

  function stats(): ServerStats {
    return { parallel, busy: pool.busy, idle: pool.idleCount, queued: pool.queued, streams: accounting.streams, requests: accounting.requests, cancelled: accounting.cancelled };
  }

  const app = new Hono({ getPath: routePath });
  app.use(...browserGuard(options));
  app.onError((error) => errorResponse(toApiError(error)));
  app.notFound((c) => errorResponse(new ApiError(404, `Unknown request URL: ${c.req.raw.method.toUpperCase()} ${routePath(c.req.raw)}`, "invalid_request_error", null, "unknown_url")));

  /** One endpoint: its method (HEAD too for GET, as Hono answers it), the API key unless public, 405 for other methods. */
  function route(method: "GET" | "POST", path: string, handle: (request: Request, c: Context) => Response | Promise<Response>, { auth: needsAuth = true } = {}): void {
    const handler: Handler = (c) => {
      if (needsAuth) auth(c.req.raw);
      return handle(c.req.raw, c);
    };
    app.on(method, path, handler);
    app.all(path, (c) => {
      throw new ApiError(405, `${path} takes ${method}, not ${c.req.raw.method.toUpperCase()}`, "invalid_request_error", null, "method_not_allowed");
    });
  }
  route("GET", "/", () => new Response(CHAT_PAGE, { status: 200, headers: PAGE_HEADERS }), { auth: false });
  route("GET", "/health", () => json({ status: "ok", model: modelName, ...stats() }), { auth: false });
  route("GET", "/v1/models", openai.models);
  app.get("/v1/models/*", (c) => {
    auth(c.req.raw);
    return openai.model(routePath(c.req.raw));
  });
  route("POST", "/v1/completions", openai.completions);
  route("POST", "/v1/chat/completions", openai.chatCompletions);
  route("POST", "/v1/embeddings", openai.embeddings);
  route("POST", "/tokenize", tokens.tokenize);
  route("POST", "/detokenize", tokens.detokenize);
  route("GET", "/metrics", () => accounting.metrics(pool, parallel));
  // Ollama's routes, a Hono app of their own: they answer their errors in Ollama's shape ({"error": "..."}).
  app.route("/api", ollama);

  return {
    pool,
    modelName,
    stats,
    async fetch(request: Request): Promise<Response> {
      const ex = accounting.begin(request);
      let response: Response;
      try {
        response = await app.fetch(request);
      } catch (error) {
        response = errorResponse(toApiError(error));
      }
      accounting.end(request, ex, response.status);
      return response;
    },
  };
}
