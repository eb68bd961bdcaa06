/**
 * Request bodies of the OpenAI API, checked field by field. Every refusal is a 400 naming the
 * field (`param`) and the bad value. Fields of the upstream server (top_k,
 * repetition_penalty, do_sample, num_beams) are accepted besides OpenAI's; any other field is a
 * 400 naming it (code unsupported_parameter), never silently ignored. Scalar fields are zod
 * schemas (`validate` turns the first issue into the 400); the fields whose refusals differ per
 * branch (messages, tools, stop, logit_bias, response_format, prompt, input) are checked by hand,
 * where a schema would need as many custom messages as the code has lines.
 */
import type { ChatMessage } from "../chat/index.js";
import { z } from "zod";
import { badRequest } from "./errors.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Sampling and stopping fields shared by /v1/completions and /v1/chat/completions. */
export interface GenerationRequest {
  model?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  stop: string[];
  seed?: number;
  stream: boolean;
  includeUsage: boolean;
  logitBias: Map<number, number>;
  responseFormat: ResponseFormat;
  user?: string;
  /** Log-probabilities asked for: how many alternatives per token (0..MAX_TOP_LOGPROBS); undefined: none. */
  logprobs?: number;
}

/** Most alternatives per token `top_logprobs` / legacy `logprobs` may ask for (OpenAI's 20). */
export const MAX_TOP_LOGPROBS = 20;

/** A function the model may call: its parameters' JSON Schema constrains the arguments. */
export interface ToolFunction {
  name: string;
  description?: string;
  parameters: Json;
}

export type ToolChoice = "none" | "auto" | "required" | { name: string };

export type ResponseFormat = { type: "text" } | { type: "json_object" } | { type: "json_schema"; schema: Json; name?: string } | { type: "grammar"; grammar: string };

export interface ChatRequest extends GenerationRequest {
  messages: ChatMessage[];
  tools: ToolFunction[];
  /** "none" when there are no tools. */
  toolChoice: ToolChoice;
}

export interface CompletionRequest extends GenerationRequest {
  /** Text, or token ids given directly. */
  prompt: string | number[];
  echo: boolean;
}

export interface EmbeddingRequest {
  model?: string;
  inputs: Array<string | number[]>;
  encodingFormat: "float" | "base64";
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const describe = (v: Json | undefined): string => (v === undefined ? "nothing" : `${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v} ${truncate(stringify(v))}`);

/** JSON text for an error message; a value nested too deep for JSON.stringify is named as such. */
function stringify(v: Json): string {
  try {
    return JSON.stringify(v);
  } catch {
    return "(nested too deeply to show)";
  }
}
const truncate = (s: string): string => (s.length > 60 ? s.slice(0, 57) + "..." : s);

/** Error text for a value of the wrong type: "must be a number, got string \"hot\"". */
const got = (what: string) => ({ error: (iss: { input?: unknown }) => `must be ${what}, got ${describe(iss.input as Json | undefined)}` });

/** A number field in [min, max] (an integer if asked); null counts as absent, as for every field here. */
function num(min: number, max: number, integer = false) {
  const what = integer ? "an integer" : "a number";
  const range = { error: (iss: { input?: unknown }) => `must be between ${min} and ${max}, got ${String(iss.input)}` };
  return z
    .number(got(what))
    .refine((v) => !integer || Number.isInteger(v), got(what))
    .refine((v) => v >= min, { ...range, abort: true })
    .refine((v) => v <= max, range)
    .nullish()
    .transform((v) => v ?? undefined);
}
const bool = z.boolean(got("a boolean")).nullish().transform((v) => v ?? undefined);
const str = z.string(got("a string")).nullish().transform((v) => v ?? undefined);

/** `body` checked against `schema`; its first issue as a 400 naming the field ("'stop[0]' must be ..."). */
export function validate<T extends z.ZodType>(schema: T, body: Json): z.infer<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
  throw badRequest(`'${field}' ${issue.message}`, issue.path.length > 0 ? String(issue.path[0]) : null);
}

const MAX_INT = Number.MAX_SAFE_INTEGER;
/** The scalar fields both generation endpoints take. */
const GenerationScalars = z.object({
  model: str,
  n: num(1, 1e9, true),
  best_of: num(1, 1e9, true),
  num_beams: num(1, 1e9, true),
  max_tokens: num(0, MAX_INT, true),
  max_completion_tokens: num(0, MAX_INT, true),
  temperature: num(0, 2),
  top_p: num(0, 1),
  top_k: num(0, 1e9, true),
  repetition_penalty: num(1e-3, 100),
  presence_penalty: num(-2, 2),
  frequency_penalty: num(-2, 2),
  seed: num(-MAX_INT, MAX_INT, true),
  stream: bool,
  stream_options: z.object({ include_usage: bool }, got("an object")).nullish(),
  do_sample: bool,
  grammar: str,
  user: str,
});

/** At most this many stop strings (OpenAI allows 4; the upstream server ignores `stop`). */
export const MAX_STOP = 16;

/** Fields both generation endpoints take (OpenAI's and the upstream server's). */
const GENERATION_KEYS = ["model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "presence_penalty", "frequency_penalty", "stop", "seed", "stream", "stream_options", "logit_bias", "response_format", "grammar", "user", "n", "best_of", "num_beams", "do_sample", "logprobs", "store"];
const CHAT_KEYS = new Set([...GENERATION_KEYS, "messages", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls"]);
const COMPLETION_KEYS = new Set([...GENERATION_KEYS, "prompt", "echo", "suffix"]);

/** A field this server does not implement is refused by name, never silently ignored (null counts as absent). */
function refuseUnknown(body: JsonObject, known: ReadonlySet<string>): void {
  for (const [key, value] of Object.entries(body)) {
    if (value !== null && !known.has(key)) throw badRequest(`'${key}' is not supported by this server`, key, "unsupported_parameter");
  }
  if (body.store === true) throw badRequest("'store' is not supported (nothing is stored)", "store", "unsupported_parameter");
}

function generationFields(body: JsonObject, maxTokensLimit: number): GenerationRequest {
  const f = validate(GenerationScalars, body);
  if (f.n !== undefined && f.n !== 1) throw badRequest(`'n' must be 1 (one choice per request), got ${f.n}`, "n");
  if (f.best_of !== undefined && f.best_of !== 1) throw badRequest(`'best_of' must be 1, got ${f.best_of}`, "best_of");
  if (f.num_beams !== undefined && f.num_beams !== 1) throw badRequest(`'num_beams' must be 1 (no beam search), got ${f.num_beams}`, "num_beams");
  const maxTokens = f.max_tokens ?? f.max_completion_tokens;
  if (maxTokens !== undefined && maxTokens > maxTokensLimit) {
    throw badRequest(`'max_tokens' is ${maxTokens}, above this server's limit of ${maxTokensLimit}`, "max_tokens", "max_tokens_exceeded");
  }
  let stop: string[] = [];
  const s = body.stop;
  if (typeof s === "string") stop = [s];
  else if (Array.isArray(s)) {
    if (s.length > MAX_STOP) throw badRequest(`'stop' has ${s.length} strings; at most ${MAX_STOP}`, "stop");
    stop = s.map((x, i) => {
      if (typeof x !== "string") throw badRequest(`'stop[${i}]' must be a string, got ${describe(x)}`, "stop");
      return x;
    });
  } else if (s !== undefined && s !== null) throw badRequest(`'stop' must be a string or an array of strings, got ${describe(s)}`, "stop");
  stop = stop.filter((x) => x.length > 0);

  const logitBias = new Map<number, number>();
  const lb = body.logit_bias;
  if (lb !== undefined && lb !== null) {
    if (!isObject(lb)) throw badRequest(`'logit_bias' must be an object of token id -> bias, got ${describe(lb)}`, "logit_bias");
    for (const [key, value] of Object.entries(lb)) {
      const id = Number(key);
      if (!/^[0-9]+$/.test(key) || !Number.isSafeInteger(id)) throw badRequest(`'logit_bias' key ${JSON.stringify(key)} is not a token id`, "logit_bias");
      if (typeof value !== "number" || !Number.isFinite(value) || value < -100 || value > 100) throw badRequest(`'logit_bias[${key}]' must be a number in [-100, 100], got ${describe(value)}`, "logit_bias");
      // OpenAI: -100 bans the token, 100 makes it the only choice.
      logitBias.set(id, value === -100 ? -Infinity : value);
    }
  }

  return {
    model: f.model,
    maxTokens,
    temperature: f.do_sample === false ? 0 : f.temperature,
    topP: f.top_p,
    topK: f.top_k,
    repetitionPenalty: f.repetition_penalty,
    presencePenalty: f.presence_penalty,
    frequencyPenalty: f.frequency_penalty,
    stop,
    seed: f.seed,
    stream: f.stream ?? false,
    includeUsage: f.stream_options?.include_usage ?? false,
    logitBias,
    responseFormat: responseFormat(body, f.grammar),
    user: f.user,
  };
}

function responseFormat(body: JsonObject, grammar: string | undefined): ResponseFormat {
  const rf = body.response_format;
  if (rf === undefined || rf === null) return grammar !== undefined ? { type: "grammar", grammar } : { type: "text" };
  if (grammar !== undefined) throw badRequest("give at most one of 'grammar' and 'response_format'", "grammar");
  if (!isObject(rf)) throw badRequest(`'response_format' must be an object, got ${describe(rf)}`, "response_format");
  switch (rf.type) {
    case "text":
      return { type: "text" };
    case "json_object":
      return { type: "json_object" };
    case "json_schema": {
      const js = rf.json_schema;
      if (!isObject(js)) throw badRequest(`'response_format.json_schema' must be an object {name, schema}, got ${describe(js)}`, "response_format.json_schema");
      const schema = js.schema ?? {};
      if (!isObject(schema) && typeof schema !== "boolean") throw badRequest(`'response_format.json_schema.schema' must be a JSON Schema object, got ${describe(schema)}`, "response_format.json_schema.schema");
      return { type: "json_schema", schema, name: typeof js.name === "string" ? js.name : undefined };
    }
    default:
      throw badRequest(`'response_format.type' must be "text", "json_object" or "json_schema", got ${describe(rf.type)}`, "response_format.type");
  }
}

/** Message content: a string, or OpenAI's array of {type: "text", text} parts. */
function content(v: Json | undefined, i: number): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) {
    return v
      .map((part, j) => {
        if (!isObject(part) || part.type !== "text" || typeof part.text !== "string") throw badRequest(`'messages[${i}].content[${j}]' must be a {"type": "text", "text": ...} part (only text is supported), got ${describe(part)}`, `messages[${i}].content`);
        return part.text;
      })
      .join("");
  }
  throw badRequest(`'messages[${i}].content' must be a string, got ${describe(v)}`, `messages[${i}].content`);
}

const ChatLogprobs = z.object({ logprobs: bool, top_logprobs: num(0, MAX_TOP_LOGPROBS, true) });

export function parseChatRequest(body: JsonObject, maxTokensLimit: number): ChatRequest {
  refuseUnknown(body, CHAT_KEYS);
  const m = body.messages;
  let messages: ChatMessage[];
  if (typeof m === "string") {
    // The upstream server also takes a bare string: one user message.
    messages = [{ role: "user", content: m }];
  } else if (Array.isArray(m)) {
    const callNames = new Map<string, string>();
    messages = m.map((msg, i) => {
      if (!isObject(msg)) throw badRequest(`'messages[${i}]' must be an object {role, content}, got ${describe(msg)}`, `messages[${i}]`);
      const role = msg.role === "developer" ? "system" : msg.role;
      if (role === "tool") {
        // A tool's result goes back to the model as a user turn (llama-server's generic format does the same).
        const id = typeof msg.tool_call_id === "string" ? msg.tool_call_id : undefined;
        const name = (id !== undefined ? callNames.get(id) : undefined) ?? (typeof msg.name === "string" ? msg.name : undefined);
        return { role: "user", content: JSON.stringify({ tool_response: { ...(name !== undefined ? { name } : {}), ...(id !== undefined ? { tool_call_id: id } : {}), content: content(msg.content, i) } }) };
      }
      if (role !== "system" && role !== "user" && role !== "assistant") throw badRequest(`'messages[${i}].role' must be "system", "user", "assistant" or "tool", got ${describe(msg.role)}`, `messages[${i}].role`);
      const calls = msg.tool_calls;
      if (role === "assistant" && Array.isArray(calls) && calls.length > 0) {
        // The model's earlier call, written as it was told to write one.
        const text = calls.map((call, j) => {
          const f = isObject(call) ? call.function : undefined;
          if (!isObject(call) || !isObject(f) || typeof f.name !== "string") throw badRequest(`'messages[${i}].tool_calls[${j}]' must be {id, type: "function", function: {name, arguments}}`, `messages[${i}].tool_calls`);
          if (typeof call.id === "string") callNames.set(call.id, f.name);
          let args: Json = {};
          if (typeof f.arguments === "string") {
            try {
              args = JSON.parse(f.arguments) as Json;
            } catch {
              throw badRequest(`'messages[${i}].tool_calls[${j}].function.arguments' is not JSON text`, `messages[${i}].tool_calls`);
            }
          } else if (f.arguments !== undefined && f.arguments !== null) args = f.arguments;
          return JSON.stringify({ tool_call: { name: f.name, arguments: args } });
        });
        const said = content(msg.content, i);
        return { role, content: [said, ...text].filter((x) => x).join("\n") };
      }
      return { role, content: content(msg.content, i) };
    });
  } else if (m === undefined || m === null) {
    throw badRequest("'messages' is required", "messages");
  } else {
    throw badRequest(`'messages' must be an array of {role, content}, got ${describe(m)}`, "messages");
  }
  if (messages.length === 0) throw badRequest("'messages' must not be empty", "messages");
  if (!messages.some((x) => x.role === "user")) throw badRequest("'messages' must contain at least one user message", "messages");
  const fields = generationFields(body, maxTokensLimit);
  const { logprobs, top_logprobs: top } = validate(ChatLogprobs, body);
  const wantLogprobs = logprobs ?? false;
  if (top !== undefined && !wantLogprobs) throw badRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  if (toolChoice !== "none" && fields.responseFormat.type !== "text") throw badRequest("give at most one of 'tools' and 'response_format' / 'grammar' (both constrain the reply)", "response_format");
  return { ...fields, logprobs: wantLogprobs ? (top ?? 0) : undefined, messages, tools, toolChoice };
}

/** Most tools one request may offer. */
export const MAX_TOOLS = 64;

function parseTools(v: Json | undefined): ToolFunction[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`'tools' must be an array of {type: "function", function: {name, parameters}}, got ${describe(v)}`, "tools");
  if (v.length > MAX_TOOLS) throw badRequest(`'tools' has ${v.length} tools; at most ${MAX_TOOLS}`, "tools");
  const names = new Set<string>();
  return v.map((tool, i) => {
    if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function)) throw badRequest(`'tools[${i}]' must be {type: "function", function: {name, parameters}} (only function tools are supported), got ${describe(tool)}`, "tools");
    const f = tool.function;
    if (typeof f.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name)) throw badRequest(`'tools[${i}].function.name' must be 1 to 64 letters, digits, _ or -, got ${describe(f.name)}`, "tools");
    if (names.has(f.name)) throw badRequest(`'tools' names the function ${JSON.stringify(f.name)} twice`, "tools");
    names.add(f.name);
    const parameters = f.parameters ?? { type: "object", properties: {} };
    if (!isObject(parameters)) throw badRequest(`'tools[${i}].function.parameters' must be a JSON Schema object, got ${describe(parameters)}`, "tools");
    if (f.strict !== undefined && f.strict !== null && typeof f.strict !== "boolean") throw badRequest(`'tools[${i}].function.strict' must be a boolean`, "tools");
    return { name: f.name, description: typeof f.description === "string" ? f.description : undefined, parameters };
  });
}

function parseToolChoice(v: Json | undefined, tools: readonly ToolFunction[]): ToolChoice {
  if (v === undefined || v === null) return tools.length > 0 ? "auto" : "none";
  if (v === "none" || v === "auto" || v === "required") {
    if (v !== "none" && tools.length === 0) throw badRequest(`'tool_choice' is ${JSON.stringify(v)} but no 'tools' are given`, "tool_choice");
    return tools.length === 0 ? "none" : v;
  }
  if (isObject(v) && v.type === "function" && isObject(v.function) && typeof v.function.name === "string") {
    const name = v.function.name;
    if (!tools.some((t) => t.name === name)) throw badRequest(`'tool_choice' names the function ${JSON.stringify(name)}, which is not in 'tools'`, "tool_choice");
    return { name };
  }
  throw badRequest(`'tool_choice' must be "none", "auto", "required" or {type: "function", function: {name}}, got ${describe(v)}`, "tool_choice");
}

const CompletionScalars = z.object({ suffix: str, echo: bool, logprobs: z.preprocess((v) => (v === false ? null : v), num(0, MAX_TOP_LOGPROBS, true)) });

export function parseCompletionRequest(body: JsonObject, maxTokensLimit: number): CompletionRequest {
  refuseUnknown(body, COMPLETION_KEYS);
  let p = body.prompt;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === "string" || Array.isArray(p[0]))) p = p[0]!;
  let prompt: string | number[];
  if (typeof p === "string") prompt = p;
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === "number")) {
    prompt = p.map((x, i) => {
      if (!Number.isSafeInteger(x) || (x as number) < 0) throw badRequest(`'prompt[${i}]' must be a token id, got ${describe(x)}`, "prompt");
      return x as number;
    });
  } else if (p === undefined || p === null) throw badRequest("'prompt' is required", "prompt");
  else if (Array.isArray(p) && p.length > 1) throw badRequest("'prompt' must be one string (several prompts per request are not supported)", "prompt");
  else throw badRequest(`'prompt' must be a string or an array of token ids, got ${describe(p)}`, "prompt");
  const f = validate(CompletionScalars, body);
  if (f.suffix) throw badRequest("'suffix' is not supported", "suffix");
  // The legacy shape: logprobs N = the chosen token and the N most likely at each step.
  const logprobs = f.logprobs;
  const echo = f.echo ?? false;
  if (logprobs !== undefined && echo) throw badRequest("'logprobs' with 'echo' (the prompt's log-probabilities) is not supported", "logprobs", "unsupported_parameter");
  return { ...generationFields(body, maxTokensLimit), logprobs, prompt, echo };
}

/** Most inputs in one embeddings request. */
export const MAX_EMBEDDING_INPUTS = 256;

const EmbeddingScalars = z.object({ model: str, encoding_format: str });

export function parseEmbeddingRequest(body: JsonObject): EmbeddingRequest {
  const input = body.input;
  let inputs: Array<string | number[]>;
  const isIds = (v: Json): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0);
  if (typeof input === "string") inputs = [input];
  else if (isIds(input ?? null)) inputs = [input as number[]];
  else if (Array.isArray(input) && input.length > 0) {
    inputs = input.map((x, i) => {
      if (typeof x === "string") return x;
      if (isIds(x)) return x;
      throw badRequest(`'input[${i}]' must be a string or an array of token ids, got ${describe(x)}`, "input");
    });
  } else if (input === undefined || input === null) throw badRequest("'input' is required", "input");
  else throw badRequest(`'input' must be a string, an array of strings or token ids, got ${describe(input)}`, "input");
  if (inputs.length > MAX_EMBEDDING_INPUTS) throw badRequest(`'input' has ${inputs.length} items; at most ${MAX_EMBEDDING_INPUTS}`, "input");
  inputs.forEach((x, i) => {
    if (x.length === 0) throw badRequest(`'input[${i}]' is empty`, "input");
  });
  const f = validate(EmbeddingScalars, body);
  const format = f.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") throw badRequest(`'encoding_format' must be "float" or "base64", got ${JSON.stringify(format)}`, "encoding_format");
  const dims = body.dimensions;
  if (dims !== undefined && dims !== null) throw badRequest("'dimensions' is not supported (the embedding has the model's width)", "dimensions");
  return { model: f.model, inputs, encodingFormat: format };
}
