/**
 * Tool calling for /v1/chat/completions, in the manner of llama-server's generic format (for
 * models without a tool-call format of their own): the tools are listed as JSON in a system
 * message, and the reply is constrained by a grammar to a JSON object
 * `{"tool_call": {"name": NAME, "arguments": ARGS}}` whose ARGS follow that tool's JSON Schema.
 * With tool_choice "auto" the grammar also allows plain text instead (any text not starting
 * with "{"); "required" allows only a call, {function: {name}} only a call of that tool.
 */
import type { ChatMessage } from "../chat/index.js";
import { Grammar, GrammarError, JsonSchemaError, jsonSchemaToGbnf } from "../grammar/index.js";
import { badRequest } from "./errors.js";
import { isObject, type Json, type JsonObject, type ToolChoice, type ToolFunction } from "./requests.js";

export interface ToolCall {
  name: string;
  /** The arguments as JSON text (OpenAI's `function.arguments`). */
  arguments: string;
}

/** The tools a choice allows the model to call. */
function allowed(tools: readonly ToolFunction[], choice: ToolChoice): ToolFunction[] {
  return typeof choice === "object" ? tools.filter((t) => t.name === choice.name) : choice === "none" ? [] : [...tools];
}

/** The messages with the tools described in the system message (added first if there is none). */
export function toolMessages(messages: readonly ChatMessage[], tools: readonly ToolFunction[], choice: ToolChoice): ChatMessage[] {
  const offered = allowed(tools, choice);
  if (offered.length === 0) return [...messages];
  const list = JSON.stringify(offered.map((t) => ({ name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters })));
  const how = choice === "auto" ? "To call a tool, reply with only a JSON object of this form; otherwise reply in plain text." : "Reply with only a JSON object of this form, calling one tool.";
  const preamble = `You can call these tools (each with a JSON Schema of its arguments):\n${list}\n\n${how}\n{"tool_call": {"name": "<tool name>", "arguments": {<arguments>}}}`;
  const out = [...messages];
  const i = out.findIndex((m) => m.role === "system");
  if (i >= 0) out[i] = { ...out[i]!, content: `${out[i]!.content}\n\n${preamble}` };
  else out.unshift({ role: "system", content: preamble });
  return out;
}

/** A copy of `schema` with its local $refs to $defs/definitions renamed with `prefix`; the definitions go into `defs`. */
function hoist(schema: Json, prefix: string, defs: JsonObject): Json {
  const walk = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(walk);
    if (!isObject(v)) return v;
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") {
        const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(x);
        if (!m) throw badRequest(`tool parameters: only local $refs to #/$defs/... are supported, got ${JSON.stringify(x)}`, "tools");
        out[k] = `#/$defs/${prefix}${m[2]}`;
      } else out[k] = walk(x);
    }
    return out;
  };
  if (isObject(schema)) {
    for (const key of ["$defs", "definitions"]) {
      const d = schema[key];
      if (isObject(d)) for (const [name, def] of Object.entries(d)) defs[`${prefix}${name}`] = walk(def);
    }
    const { $defs: _a, definitions: _b, ...rest } = schema;
    return walk(rest);
  }
  return walk(schema);
}

/** The JSON Schema of a call of any one of `tools`. */
function callSchema(tools: readonly ToolFunction[]): JsonObject {
  const defs: JsonObject = {};
  const anyOf = tools.map((t, i): Json => ({
    type: "object",
    properties: { tool_call: { type: "object", properties: { name: { const: t.name }, arguments: hoist(t.parameters, `t${i}-`, defs) }, required: ["name", "arguments"] } },
    required: ["tool_call"],
  }));
  return { anyOf, $defs: defs };
}

const cache = new Map<string, Grammar>();
const CACHE_SIZE = 32;

/** The grammar of a reply under `choice`: a call's JSON, or (auto) that or plain text; undefined for "none". */
export function toolGrammar(tools: readonly ToolFunction[], choice: ToolChoice): Grammar | undefined {
  const offered = allowed(tools, choice);
  if (offered.length === 0) return undefined;
  let key: string;
  try {
    key = JSON.stringify([choice === "auto", offered]);
  } catch {
    throw badRequest("'tools' parameters are nested too deeply", "tools");
  }
  let g = cache.get(key);
  if (g) return g;
  try {
    let gbnf = jsonSchemaToGbnf(callSchema(offered));
    // Plain text is anything that does not open a JSON object (an empty reply included).
    if (choice === "auto") gbnf = `${gbnf.replace(/^root ::=/m, "tool-call ::=")}\nroot ::= tool-call | plain-text\nplain-text ::= ( [^{] [^\\x00]* )?\n`;
    g = Grammar.parse(gbnf);
  } catch (error) {
    if (error instanceof GrammarError || error instanceof JsonSchemaError) throw badRequest(`'tools': ${error.message}`, "tools");
    throw error;
  }
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, g);
  return g;
}

/** The call in a reply written under the tool grammar; undefined for plain text (or a call cut short). */
export function parseToolCall(text: string, tools: readonly ToolFunction[]): ToolCall | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v as Json)) return undefined;
  const call = (v as JsonObject).tool_call;
  if (!isObject(call) || typeof call.name !== "string" || !tools.some((t) => t.name === call.name)) return undefined;
  return { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) };
}
