/**
 * A model's own Jinja chat template (GGUF `tokenizer.chat_template`, HF tokenizer_config.json),
 * rendered with @huggingface/jinja the way transformers' apply_chat_template does:
 * `messages`, `bos_token`, `eos_token`, `add_generation_prompt: true`, `raise_exception`.
 *
 * The rendered string carries its control tokens as text ("<s>", "</s>"), so it is encoded
 * with special-token parsing, as llama.cpp and HF do. BOS is added in front only when the
 * model declares add_bos and the template did not already write one (no double BOS).
 *
 * Templates come from downloaded files, so a render is bounded: interpreter steps (every
 * expression, statement and loop iteration counts), wall time, the length of any string it
 * builds and of all it builds together, and range() sizes (JINJA_LIMITS); every item of a
 * range() or of a list a filter makes counts as a step. Going past a limit
 * is a ChatTemplateError naming the template and the limit, raised within milliseconds of the
 * limit, never an exhausted heap. (`{% for i in range(100000000) %}{{ i }}{% endfor %}` fails
 * at range(): 100000000 items exceeds 100000.)
 */
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ChatTemplateError } from "./errors.js";
import { checkMessages, type ChatMessage, type ChatTemplate } from "./templates.js";

export interface JinjaLimits {
  /** Interpreter steps (expressions, statements, loop iterations) per render. */
  maxSteps: number;
  /** Milliseconds per render. */
  timeoutMs: number;
  /** Characters in any one string the template builds (the prompt included). */
  maxOutputChars: number;
  /** Characters built in all, counting every block's output (bounds loops that concatenate). */
  maxTotalChars: number;
  /** Items one range() call may produce. */
  maxRange: number;
}

export const JINJA_LIMITS: Readonly<JinjaLimits> = Object.freeze({
  maxSteps: 5_000_000,
  timeoutMs: 2_000,
  maxOutputChars: 4 << 20,
  maxTotalChars: 32 << 20,
  maxRange: 100_000,
});

/** Thrown inside the interpreter when a limit is passed; becomes a ChatTemplateError. */
class JinjaLimitExceeded extends Error {}

/** The running render's budget (renders are synchronous: one at a time per thread). */
interface Budget {
  limits: JinjaLimits;
  range: (start: number, stop?: number, step?: number) => number[];
  steps: number;
  total: number;
  deadline: number;
}
let budget: Budget | undefined;

const now = (): number => (typeof performance !== "undefined" ? performance.now() : Date.now());

function tick(n = 1): void {
  const b = budget;
  if (!b) return;
  b.steps += n;
  if (b.steps > b.limits.maxSteps) throw new JinjaLimitExceeded(`it ran more than ${b.limits.maxSteps} steps`);
  if ((b.steps & 255) === 0 && now() > b.deadline) throw new JinjaLimitExceeded(`it ran longer than ${b.limits.timeoutMs} ms`);
}

function checkSize(value: unknown, kind: "node" | "block" | "filter"): void {
  const b = budget;
  if (!b || typeof value !== "object" || value === null) return;
  const v = (value as { value?: unknown }).value;
  // A filter's new list (|list, |map, |reverse ...) counts one step per item.
  if (kind === "filter" && Array.isArray(v)) tick(v.length);
  if (typeof v !== "string") return;
  const block = kind === "block";
  if (v.length > b.limits.maxOutputChars) throw new JinjaLimitExceeded(`it built a string of more than ${b.limits.maxOutputChars} characters`);
  if (block) {
    b.total += v.length;
    if (b.total > b.limits.maxTotalChars) throw new JinjaLimitExceeded(`it built more than ${b.limits.maxTotalChars} characters in all`);
  }
}

/**
 * Counts the interpreter's work: evaluate (every node), evaluateBlock (every block, so every
 * loop iteration, even of an empty body) and applyFilter (whose results are size-checked).
 * Installed once; it does nothing outside a bounded render.
 */
let installed = false;
function installHooks(): void {
  if (installed) return;
  installed = true;
  type Method = (this: unknown, ...args: unknown[]) => unknown;
  const proto = Interpreter.prototype as unknown as Record<string, Method>;
  for (const [name, kind] of [["evaluate", "node"], ["evaluateBlock", "block"], ["applyFilter", "filter"]] as const) {
    const original = proto[name];
    if (typeof original !== "function") continue;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      tick();
      const result = original.apply(this, args);
      checkSize(result, kind);
      return result;
    };
  }
  // The global range() is declared by the library before a render's variables (which may not
  // redeclare it): swap in the bounded one as it is declared.
  const envProto = Environment.prototype as unknown as Record<string, Method>;
  const set = envProto.set;
  if (typeof set === "function") {
    envProto.set = function (this: unknown, name: unknown, value: unknown) {
      return set.call(this, name, name === "range" && budget ? budget.range : value);
    };
  }
}

/** range() as Python's, refusing more than `max` items before building any. */
function boundedRange(max: number) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) {
      stop = start;
      start = 0;
    }
    if ([start, stop, step].some((x) => typeof x !== "number" || !Number.isFinite(x))) throw new Error("range() takes numbers");
    if (step === 0) throw new Error("range() step must not be zero");
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (count > max) throw new JinjaLimitExceeded(`range() of ${count} items exceeds the limit of ${max}`);
    tick(count); // every item counts as a step: many ranges cannot fill the heap either
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = start + i * step;
    return out;
  };
}

function pieceOr(tokenizer: SentencePieceTokenizer, id: number, fallback: string): string {
  return id >= 0 && id < tokenizer.vocabSize ? tokenizer.idToPiece(id) : fallback;
}

/** How a template is named in errors: where it came from, and how it begins. */
function describe(source: string, origin: string | undefined): string {
  return `${origin ? `${origin}, ` : ""}template begins ${JSON.stringify(source.slice(0, 60))}`;
}

/** The variables a chat template is rendered with. */
export function jinjaContext(messages: readonly ChatMessage[], tokenizer: SentencePieceTokenizer): Record<string, unknown> {
  return {
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    bos_token: pieceOr(tokenizer, tokenizer.bosId, "<s>"),
    eos_token: pieceOr(tokenizer, tokenizer.eosId, "</s>"),
    unk_token: pieceOr(tokenizer, tokenizer.unkId, "<unk>"),
    add_generation_prompt: true,
  };
}

/**
 * Renders a parsed template with `context` within `limits`; ChatTemplateError on any failure.
 * @internal (its parameter is @huggingface/jinja's Template, whose typings do not compile
 * under NodeNext: kept out of the published declarations)
 */
export function renderBounded(template: Template, source: string, context: Record<string, unknown>, limits: Partial<JinjaLimits> = {}, origin?: string): string {
  installHooks();
  const l: JinjaLimits = { ...JINJA_LIMITS, ...limits };
  const outer = budget;
  budget = { limits: l, range: boundedRange(l.maxRange), steps: 0, total: 0, deadline: now() + l.timeoutMs };
  try {
    const text = template.render(context);
    if (text.length > l.maxOutputChars) throw new JinjaLimitExceeded(`it built a string of more than ${l.maxOutputChars} characters`);
    return text;
  } catch (error) {
    if (error instanceof JinjaLimitExceeded) {
      throw new ChatTemplateError(`the chat template was stopped: ${error.message} (${describe(source, origin)})`, { cause: error });
    }
    const why = error instanceof RangeError ? `${error.message} (the template recurses or builds too much)` : error instanceof Error ? error.message : String(error);
    throw new ChatTemplateError(`the chat template failed to render: ${why} (${describe(source, origin)})`, { cause: error });
  } finally {
    budget = outer;
  }
}

/**
 * The prompt text a Jinja chat template gives for `messages`.
 * @internal (takes @huggingface/jinja's Template; see renderBounded)
 */
export function renderJinja(template: Template, source: string, messages: readonly ChatMessage[], tokenizer: SentencePieceTokenizer, limits: Partial<JinjaLimits> = {}, origin?: string): string {
  return renderBounded(template, source, jinjaContext(messages, tokenizer), limits, origin);
}

export interface JinjaTemplateOptions {
  /** Where the template came from, for errors ("model.gguf: tokenizer.chat_template"). */
  origin?: string;
  /** Limits on each render (defaults: JINJA_LIMITS). */
  limits?: Partial<JinjaLimits>;
}

/** A ChatTemplate from Jinja source; throws ChatTemplateError if it does not parse. */
export function jinjaTemplate(source: string, options: JinjaTemplateOptions = {}): ChatTemplate {
  if (typeof source !== "string" || source.trim() === "") throw new ChatTemplateError(`the Jinja chat template is empty${options.origin ? ` (${options.origin})` : ""}`);
  let template: Template;
  try {
    template = new Template(source);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ChatTemplateError(`the Jinja chat template does not parse: ${why} (${describe(source, options.origin)})`, { cause: error });
  }
  const encode = (text: string, tokenizer: SentencePieceTokenizer): number[] => {
    const ids = tokenizer.encode(text, { addBos: false, addEos: false, parseSpecial: true });
    if (tokenizer.settings.addBos && tokenizer.bosId >= 0 && ids[0] !== tokenizer.bosId) ids.unshift(tokenizer.bosId);
    return ids;
  };
  return {
    name: "jinja",
    stop: [],
    render(messages, tokenizer) {
      checkMessages(messages);
      return encode(renderJinja(template, source, messages, tokenizer, options.limits, options.origin), tokenizer);
    },
    async renderAsync(messages, tokenizer) {
      checkMessages(messages);
      const { renderJinjaOffThread } = await import("./jinja-off-thread.js");
      return encode(await renderJinjaOffThread(template, source, jinjaContext(messages, tokenizer), options.limits, options.origin), tokenizer);
    },
  };
}
