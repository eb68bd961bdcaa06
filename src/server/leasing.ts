/**
 * Generation on leased sessions: a request takes one of the pool's `parallel` sessions (one KV
 * cache each; FIFO, 429 when the queue is full), generates on it, and gives it back when its
 * events end, when it is stopped, or when its client hangs up (the request's AbortSignal).
 */
import { Grammar, GrammarConstraint, GrammarError, JSON_OBJECT_GBNF, JsonSchemaError, generateConstrained, jsonSchemaGrammar } from "../grammar/index.js";
import type { GenerationEvent, GenerationResult, TokenLogprob } from "../generate/index.js";
import type { LlamaSession } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ApiError, badRequest } from "./errors.js";
import type { SessionPool } from "./pool.js";
import type { GenerationRequest, ResponseFormat } from "./requests.js";

/** A generation on a pooled session: its events, a way to stop it, and the session's return. */
export interface Generation {
  events: AsyncGenerator<GenerationEvent>;
  abort: () => void;
  release: () => void;
}

export type StartGeneration = (req: GenerationRequest & { minP?: number }, promptIds: number[], param: string, signal: AbortSignal, extraStop: readonly string[], toolsGrammar?: Grammar) => Promise<Generation>;

/** Longest stretch of generation work between two turns of the event loop. */
const EVENT_LOOP_TURN_MS = 5;

export const nextMacrotask = (): Promise<void> => new Promise((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));

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

export interface LeasingOptions {
  pool: SessionPool;
  tokenizer: SentencePieceTokenizer;
  nCtx: number;
  /** max_tokens when a request gives none, capped by the context left. */
  defaultMaxTokens: number;
  /** Called when a generation stopped early because its client went away. */
  onCancelled: () => void;
}

/** startGeneration for the pool: checks the prompt against the context and vocabulary, leases a session, generates. */
export function generationLeasing({ pool, tokenizer, nCtx, defaultMaxTokens, onCancelled }: LeasingOptions): StartGeneration {
  const grammars = new Map<string, Grammar>();

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
  return async function startGeneration(req, promptIds, param, signal, extraStop, toolsGrammar) {
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
      if (controller.signal.aborted) onCancelled();
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
  };
}

/** A generation's events to its result, gathering logprobs on the way. */
export async function collect(events: AsyncGenerator<GenerationEvent>, onResult: (r: GenerationResult) => void, logprobs?: TokenLogprob[]): Promise<GenerationResult> {
  for await (const e of events) {
    if (e.logprobs) logprobs?.push(...e.logprobs);
    if (e.type === "done") {
      onResult(e.result);
      return e.result;
    }
  }
  throw new ApiError(500, "generation ended without a result", "server_error");
}
