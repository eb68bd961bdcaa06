/**
 * OpenAI's endpoints: /v1/chat/completions (through the chat template, with tools), /v1/completions
 * (the legacy prompt -> text), /v1/embeddings, /v1/models. Each parses its body (requests.ts),
 * leases a session (leasing.ts) and answers whole or as server-sent events (sse.ts).
 */
import type { ChatTemplate } from "../chat/index.js";
import { ZhLlamaError } from "../errors.js";
import { tokenBytes } from "../grammar/index.js";
import type { GenerationResult, TokenLogprob } from "../generate/index.js";
import { embed } from "../model/embed.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { usage, type Accounting } from "./accounting.js";
import { ApiError, badRequest } from "./errors.js";
import { json, randomId } from "./http.js";
import { collect, nextMacrotask, type StartGeneration } from "./leasing.js";
import type { SessionPool } from "./pool.js";
import { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest, type JsonObject } from "./requests.js";
import { sse, type ChunkFn } from "./sse.js";
import { parseToolCall, toolGrammar, toolMessages, type ToolCall } from "./tools.js";

export interface OpenAiContext {
  tokenizer: SentencePieceTokenizer;
  template: ChatTemplate;
  modelName: string;
  names: ReadonlySet<string>;
  created: number;
  nCtx: number;
  maxTokensLimit: number;
  pool: SessionPool;
  accounting: Accounting;
  readJson(request: Request): Promise<JsonObject>;
  startGeneration: StartGeneration;
}

type Named = Array<TokenLogprob & { token: string; bytes: number[]; topNamed: Array<{ token: string; logprob: number; bytes: number[] }> }>;

/** Chat's shape: {content: [{token, logprob, bytes, top_logprobs}]}; null when not asked. */
function chatLogprobs(named: Named | undefined) {
  if (!named) return null;
  return { content: named.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes, top_logprobs: t.topNamed })), refusal: null };
}

/** The legacy completions shape: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. */
function legacyLogprobs(named: Named | undefined, offset: { at: number }) {
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

/** Float32 little-endian bytes in base64 (OpenAI's encoding_format "base64"). */
function base64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(4 * i, x, true));
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function openAiRoutes(ctx: OpenAiContext) {
  const { tokenizer, template, modelName, names, nCtx, maxTokensLimit, pool, accounting, startGeneration } = ctx;

  function checkModel(name: string | undefined): void {
    if (name !== undefined && !names.has(name)) {
      throw new ApiError(404, `The model '${name}' does not exist; this server serves '${modelName}'`, "invalid_request_error", "model", "model_not_found");
    }
  }

  /**
   * Token text and bytes for logprobs, in generation order: the first piece's leading space is
   * dropped where the decoder drops it, so the tokens add up to the text.
   */
  function tokenNamer(): (lp: TokenLogprob[]) => Named {
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

  const usageOf = (r: GenerationResult) => usage(r, tokenizer.eosId);
  const stream = (request: Request, run: Parameters<typeof sse>[0], first: unknown, chunk: ChunkFn, includeUsage: boolean) =>
    sse(run, first, chunk, { usage: includeUsage ? usageOf : undefined, onResult: (r) => accounting.noteResult(request, r), finish: accounting.streamOpened(request) });
  const collectFor = (request: Request, run: { events: Parameters<typeof collect>[0] }, logprobs: TokenLogprob[]) => collect(run.events, (r) => accounting.noteResult(request, r), logprobs);

  async function chatCompletions(request: Request): Promise<Response> {
    const req = parseChatRequest(await ctx.readJson(request), maxTokensLimit);
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
      return stream(
        request,
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
      );
    }
    const logprobs: TokenLogprob[] = [];
    const r = await collectFor(request, run, logprobs);
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
      usage: usageOf(r),
    });
  }

  async function completions(request: Request): Promise<Response> {
    const req = parseCompletionRequest(await ctx.readJson(request), maxTokensLimit);
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
      return stream(request, run, first, (text, result, lp) => ({ ...base, choices: text === null && !result ? [] : [{ index: 0, text: text ?? "", logprobs: lps(lp), finish_reason: result ? finishReason(result) : null }] }), req.includeUsage);
    }
    const logprobs: TokenLogprob[] = [];
    const r = await collectFor(request, run, logprobs);
    return json({ ...base, choices: [{ index: 0, text: echo + r.text, logprobs: lps(logprobs), finish_reason: finishReason(r) }], usage: usageOf(r) });
  }

  async function embeddings(request: Request): Promise<Response> {
    const req = parseEmbeddingRequest(await ctx.readJson(request));
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
    accounting.notePromptTokens(request, tokens);
    return json({ object: "list", data, model: modelName, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  const modelCard = () => ({ id: modelName, object: "model", created: ctx.created, owned_by: "zh-llama" });

  /** GET /v1/models/NAME: the card under the name asked for, if it is one of the served names. */
  function model(path: string): Response {
    let name: string;
    try {
      name = decodeURIComponent(path.slice("/v1/models/".length));
    } catch {
      throw badRequest(`the model name in ${JSON.stringify(path)} is not valid percent-encoding`, "model", "invalid_url");
    }
    checkModel(name);
    return json({ ...modelCard(), id: name });
  }

  return { chatCompletions, completions, embeddings, models: () => json({ object: "list", data: [modelCard()] }), model };
}
