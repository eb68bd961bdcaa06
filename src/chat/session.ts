/**
 * A conversation with a model: the history, its template, and one KV cache that keeps every
 * earlier turn. Each turn renders the whole conversation and hands it to the generator, which
 * evaluates only what the cache does not already hold (the new user message, and whatever of
 * the last answer the template writes differently from how it was generated).
 */
import { InvalidArgumentError } from "../errors.js";
import { generateWith, type GenerateOptions, type GenerationEvent, type GenerationResult } from "../generate/index.js";
import { LlamaModel, type LlamaSession } from "../model/model.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ChatHistoryError } from "./errors.js";
import { fitHistory } from "./history.js";
import { checkMessages, type ChatMessage, type ChatTemplate } from "./templates.js";

export interface ChatSessionOptions {
  model: LlamaModel;
  tokenizer: SentencePieceTokenizer;
  template: ChatTemplate;
  /** The system prompt; default: the template's own. */
  system?: string;
  /** Sampling, reply length (maxTokens), stop strings; the template's stop strings are added. */
  generation?: GenerateOptions;
  /** CFG: the negative prompt takes the system prompt's place in the template. */
  negativePrompt?: string;
  cfgScale?: number;
  /** Speculative decoding. */
  draft?: LlamaModel;
  draftK?: number;
}

/** What `save()` writes and `load()` reads. */
export interface ChatHistoryFile {
  template: string;
  messages: ChatMessage[];
}

/** The reply budget of the chat command (the v2 gradio demo's max_new_tokens). */
export const CHAT_MAX_TOKENS = 512;

export class ChatSession {
  private history: ChatMessage[] = [];
  private systemPrompt: string | undefined;
  private readonly session: LlamaSession;
  private readonly negativeSession: LlamaSession | undefined;
  private readonly draftSession: LlamaSession | undefined;

  constructor(readonly options: ChatSessionOptions) {
    const { model, draft, cfgScale = 1 } = options;
    if (draft && cfgScale !== 1) throw new InvalidArgumentError(`speculative decoding and CFG (scale ${cfgScale}) cannot be combined`);
    if (!Number.isFinite(cfgScale)) throw new InvalidArgumentError(`cfgScale ${cfgScale} must be a finite number`);
    this.systemPrompt = options.system;
    this.session = model.session;
    this.negativeSession = cfgScale !== 1 && options.negativePrompt !== undefined ? model.createSession({ nCtx: model.nCtx }) : undefined;
    this.draftSession = draft?.session;
  }

  /** The conversation so far, the system message first when one is set. */
  get messages(): ChatMessage[] {
    return this.systemPrompt === undefined ? [...this.history] : [{ role: "system", content: this.systemPrompt }, ...this.history];
  }

  get system(): string | undefined {
    return this.systemPrompt ?? this.options.template.defaultSystem;
  }

  /** Sets the system prompt (undefined: back to the template's default). */
  setSystem(text: string | undefined): void {
    this.systemPrompt = text;
  }

  /** Forgets the conversation (the system prompt stays). */
  reset(): void {
    this.history = [];
  }

  /** Replaces the conversation; a system message in it becomes the system prompt. */
  setMessages(messages: ChatMessage[]): void {
    checkMessages(messages);
    const system = messages.filter((m) => m.role === "system").at(-1);
    if (system) this.systemPrompt = system.content;
    this.history = messages.filter((m) => m.role !== "system").map((m) => ({ role: m.role, content: m.content }));
  }

  save(): ChatHistoryFile {
    return { template: this.options.template.name, messages: this.messages };
  }

  /** Reads `save()`'s JSON (or a bare message array, as the OpenAI API sends). */
  load(json: string): void {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new ChatHistoryError(`the chat history is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    const messages = Array.isArray(value) ? value : typeof value === "object" && value !== null && "messages" in value ? value.messages : undefined;
    if (!Array.isArray(messages)) throw new ChatHistoryError('the chat history must be {"messages": [{role, content}, ...]} or an array of messages');
    this.setMessages(messages as ChatMessage[]);
  }

  /**
   * Sends a user message and streams the reply. The oldest turns are dropped first when the
   * conversation and the reply budget no longer fit the context. The reply (trimmed, as the
   * upstream scripts strip it) joins the history when it ends, also when it was aborted.
   */
  async *send(text: string, signal?: AbortSignal): AsyncGenerator<GenerationEvent> {
    const { template, tokenizer, generation = {} } = this.options;
    const maxTokens = generation.maxTokens ?? CHAT_MAX_TOKENS;
    const nCtx = this.session.nCtx;
    // The reply may also stop early at the end of the context: reserve at most half of it.
    const reserve = Math.min(maxTokens, Math.floor(nCtx / 2));
    const kept = fitHistory(template, [...this.messages, { role: "user", content: text }], tokenizer, nCtx, reserve);
    const promptIds = template.render(kept, tokenizer);
    const turns = kept.filter((m) => m.role !== "system");
    const negativePromptIds =
      this.negativeSession && this.options.negativePrompt !== undefined ? template.render([{ role: "system", content: this.options.negativePrompt }, ...turns], tokenizer) : undefined;

    let result: GenerationResult | undefined;
    for await (const event of generateWith(this.session, tokenizer, promptIds, {
      ...generation,
      maxTokens,
      stop: [...template.stop, ...(generation.stop ?? [])],
      signal,
      cfgScale: this.options.cfgScale,
      negativePromptIds,
      negativeSession: this.negativeSession,
      draft: this.draftSession,
      draftK: this.options.draftK,
    })) {
      if (event.type === "done") result = event.result;
      yield event;
    }
    this.history = turns.slice(0, -1);
    this.history.push({ role: "user", content: text });
    const answer = result?.text.trim() ?? "";
    if (answer || result?.finishReason !== "abort") this.history.push({ role: "assistant", content: answer });
  }

  /** Hands the extra KV caches back to their models. */
  dispose(): void {
    this.negativeSession?.release();
  }
}
