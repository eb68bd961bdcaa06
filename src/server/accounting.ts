/**
 * What the server counts: one Exchange per request (for its access-log line), the totals
 * /metrics reports in Prometheus text format, and the open streams and cancelled generations
 * /health reports.
 */
import type { GenerationResult } from "../generate/index.js";
import type { SessionPool } from "./pool.js";

/** What the access log and /metrics learn about one request while it is answered. */
export interface Exchange {
  start: number;
  promptTokens?: number;
  completionTokens?: number;
  /** The response is a stream: log it when the stream ends. */
  streaming: boolean;
  done: boolean;
  onEnd?: () => void;
}

/** OpenAI's usage block; the EOS that ended a reply is no part of it. */
export function usage(r: GenerationResult, eosId: number) {
  const last = r.generatedIds[r.generatedIds.length - 1];
  const completion = r.generatedIds.length - (r.finishReason === "stop" && last === eosId ? 1 : 0);
  return { prompt_tokens: r.promptIds.length, completion_tokens: completion, total_tokens: r.promptIds.length + completion };
}

const METRICS_HEADERS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

const KNOWN_ENDPOINTS = new Set(["/", "/api/tags", "/api/chat", "/api/generate", "/api/show", "/api/version", "/health", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize", "/metrics"]);

export class Accounting {
  streams = 0;
  requests = 0;
  cancelled = 0;
  promptTokensTotal = 0;
  generatedTokensTotal = 0;
  lastDecodeTokensPerS = 0;
  private readonly exchanges = new WeakMap<Request, Exchange>();
  private readonly requestCounts = new Map<string, number>();

  constructor(
    private readonly eosId: number,
    private readonly logLine: ((line: string) => void) | undefined,
  ) {}

  /** A request arrives. */
  begin(request: Request): Exchange {
    this.requests++;
    const ex: Exchange = { start: performance.now(), streaming: false, done: false };
    this.exchanges.set(request, ex);
    return ex;
  }

  /** Its response is ready (a stream's log line waits for the stream's end). */
  end(request: Request, ex: Exchange, status: number): void {
    const key = `${endpointLabel(request)}\t${Math.floor(status / 100)}xx`;
    this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
    const logLine = this.logLine;
    if (logLine) {
      const write = () => logLine(accessLogLine(request, status, ex));
      if (ex.streaming && !ex.done) ex.onEnd = write;
      else write();
    }
  }

  exchange(request: Request): Exchange | undefined {
    return this.exchanges.get(request);
  }

  /** A finished generation's tokens, for the access log and the counters. */
  noteResult(request: Request, r: GenerationResult): void {
    const u = usage(r, this.eosId);
    this.promptTokensTotal += u.prompt_tokens;
    this.generatedTokensTotal += u.completion_tokens;
    if (r.timings.generatedTokens > 0 && Number.isFinite(r.timings.decodeTokensPerS)) this.lastDecodeTokensPerS = r.timings.decodeTokensPerS;
    const ex = this.exchanges.get(request);
    if (ex) {
      ex.promptTokens = u.prompt_tokens;
      ex.completionTokens = u.completion_tokens;
    }
  }

  /** Prompt tokens of a request that generates nothing (embeddings). */
  notePromptTokens(request: Request, tokens: number): void {
    this.promptTokensTotal += tokens;
    const ex = this.exchanges.get(request);
    if (ex) ex.promptTokens = tokens;
  }

  /** A stream opened for `request`; the function it returns is called once when the stream ends. */
  streamOpened(request: Request): () => void {
    const ex = this.exchanges.get(request);
    this.streams++;
    if (ex) ex.streaming = true;
    let finished = false;
    return () => {
      if (finished) return;
      finished = true;
      this.streams--;
      if (ex) {
        ex.done = true;
        ex.onEnd?.();
      }
    };
  }

  /** GET /metrics: Prometheus text exposition format 0.0.4. */
  metrics(pool: SessionPool, parallel: number): Response {
    const out: string[] = [];
    const metric = (name: string, type: "counter" | "gauge", help: string, samples: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
    };
    const requestSamples: Array<[string, number]> = [...this.requestCounts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, n]) => {
      const [endpoint, status] = key.split("\t") as [string, string];
      return [`{endpoint="${endpoint}",status="${status}"}`, n];
    });
    metric("zh_llama_requests_total", "counter", "HTTP requests answered, by endpoint and status class.", requestSamples);
    metric("zh_llama_prompt_tokens_total", "counter", "Prompt tokens of finished generations and embeddings.", [["", this.promptTokensTotal]]);
    metric("zh_llama_generated_tokens_total", "counter", "Tokens generated.", [["", this.generatedTokensTotal]]);
    metric("zh_llama_requests_cancelled_total", "counter", "Generations stopped because their client went away.", [["", this.cancelled]]);
    metric("zh_llama_queue_depth", "gauge", "Requests waiting for a sequence.", [["", pool.queued]]);
    metric("zh_llama_sessions_busy", "gauge", "Sequences generating now.", [["", pool.busy]]);
    metric("zh_llama_sessions", "gauge", "Sequences (--parallel).", [["", parallel]]);
    metric("zh_llama_streams_open", "gauge", "Server-sent event streams open.", [["", this.streams]]);
    metric("zh_llama_decode_tokens_per_second", "gauge", "Decode speed of the last finished generation (tokens/s).", [["", this.lastDecodeTokensPerS]]);
    return new Response(out.join("\n") + "\n", { status: 200, headers: METRICS_HEADERS });
  }
}

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
