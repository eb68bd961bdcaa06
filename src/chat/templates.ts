/**
 * Prompt templates of the Chinese LLaMA / Alpaca family, verbatim from the upstream scripts
 * (../shared/UPSTREAM.md section 3). A template turns a conversation into the token ids the
 * model was trained on, ending where the assistant's reply begins.
 *
 * Control tokens (BOS "<s>", EOS "</s>") are placed as ids, never written as text and parsed
 * back: a user typing "</s>" gets the five characters, not an end of turn. Each stretch of text
 * between control tokens is encoded on its own (with its own dummy prefix), which is what HF's
 * slow LlamaTokenizer and llama.cpp do with "<s>" inside a prompt string.
 *
 *   alpaca-2, turn 3 (gradio_demo.py / openai_api_server.py):
 *   <s> "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{q1} [/INST] {a1}" </s>
 *   <s> "[INST] {q2} [/INST] {a2}" </s>
 *   <s> "[INST] {q3} [/INST]"                      <- the reply starts here
 *
 * A conversation that ends with an assistant message renders that message open (no EOS), so
 * the reply continues it.
 */
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ChatHistoryError, ChatTemplateError } from "./errors.js";

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTemplate {
  /** "alpaca", "alpaca-2", "alpaca-2-long", "mixtral", "linly", "plain", "jinja". */
  name: string;
  /** The system prompt used when the conversation has no system message. */
  defaultSystem?: string;
  /** Strings that end the reply (never shown), e.g. "User:" for Linly. */
  stop: string[];
  /** Prompt token ids for the conversation, ending where the assistant's reply begins. */
  render(messages: ChatMessage[], tokenizer: SentencePieceTokenizer): number[];
  /**
   * The same ids, computed off the calling thread where that matters (a model's own Jinja
   * template renders on a worker thread: the server uses this so its event loop never waits).
   */
  renderAsync?(messages: ChatMessage[], tokenizer: SentencePieceTokenizer): Promise<number[]>;
}

const ROLES: readonly ChatRole[] = ["system", "user", "assistant"];

/** Throws ChatHistoryError unless every message has a known role and string content. */
export function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new ChatHistoryError(`messages must be an array, got ${typeof messages}`);
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null) throw new ChatHistoryError(`message ${i} must be an object {role, content}, got ${JSON.stringify(m)}`);
    if (!ROLES.includes(m.role)) throw new ChatHistoryError(`message ${i} has role ${JSON.stringify(m.role)}; expected one of ${ROLES.join(", ")}`);
    if (typeof m.content !== "string") throw new ChatHistoryError(`message ${i} (${m.role}) has content of type ${typeof m.content}; expected a string`);
  });
}

/** Text, or a control token placed by id. */
type Part = string | { id: number };

const BOS = (t: SentencePieceTokenizer): Part[] => (t.bosId >= 0 ? [{ id: t.bosId }] : []);
const EOS = (t: SentencePieceTokenizer): Part[] => (t.eosId >= 0 ? [{ id: t.eosId }] : []);

/** Encodes text runs without BOS/EOS or special-token parsing; control parts go in as ids. */
function encodeParts(parts: readonly Part[], tokenizer: SentencePieceTokenizer): number[] {
  const ids: number[] = [];
  let text = "";
  const flush = () => {
    // A loop, not push(...ids): spreading a huge array (a 300 KB message) overflows the stack.
    if (text) for (const id of tokenizer.encode(text, { addBos: false, addEos: false, parseSpecial: false })) ids.push(id);
    text = "";
  };
  for (const part of parts) {
    if (typeof part === "string") text += part;
    else {
      flush();
      ids.push(part.id);
    }
  }
  flush();
  return ids;
}

/** The system prompt in effect: the last system message (as the upstream server), else the default. */
function systemOf(messages: readonly ChatMessage[], fallback: string | undefined): string | undefined {
  let system = fallback;
  for (const m of messages) if (m.role === "system") system = m.content;
  return system;
}

/** The user and assistant messages, in order. */
const turns = (messages: readonly ChatMessage[]) => messages.filter((m) => m.role !== "system");

/** Is message i of `list` the last one (an assistant message there stays open)? */
const isLast = (list: readonly unknown[], i: number) => i === list.length - 1;

// ---------------------------------------------------------------------------------------------
// Alpaca v1

/** The Stanford Alpaca preamble, Chinese-Alpaca v1's system sentence. */
export const ALPACA_SYSTEM = "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/**
 * Chinese-Alpaca v1, scripts/inference/inference_hf.py (the llama.cpp variant upstream found to
 * work better than the training one):
 *   "{system}\n\n### Instruction:\n\n{instruction}\n\n### Response:\n\n"
 * Earlier turns repeat the instruction/response block, each answer followed by "\n\n" as in the
 * v1 gradio demo [inferred: upstream has no multi-turn form of this template]. An empty system
 * prompt drops the preamble line.
 */
function alpacaV1(): ChatTemplate {
  return {
    name: "alpaca",
    defaultSystem: ALPACA_SYSTEM,
    stop: ["### Instruction:"],
    render(messages, tokenizer) {
      checkMessages(messages);
      const system = systemOf(messages, ALPACA_SYSTEM) ?? "";
      let text = system ? `${system}\n\n` : "";
      const list = turns(messages);
      list.forEach((m, i) => {
        if (m.role === "user") text += `### Instruction:\n\n${m.content}\n\n### Response:\n\n`;
        else {
          if (i === 0 || list[i - 1]!.role !== "user") text += "### Response:\n\n";
          text += m.content + (isLast(list, i) ? "" : "\n\n");
        }
      });
      return encodeParts([...BOS(tokenizer), text], tokenizer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Alpaca-2 (Llama-2-chat)

/** prompts/alpaca-2.txt (no trailing newline). */
export const ALPACA2_SYSTEM = "You are a helpful assistant. 你是一个乐于助人的助手。";
/** prompts/alpaca-2-long.txt: asks for long, professional answers. */
export const ALPACA2_LONG_SYSTEM = "You are a helpful assistant. 你是一个乐于助人的助手。请你提供专业、有逻辑、内容真实、有价值的详细回复。";

/**
 * The Llama-2-chat format as Chinese-Alpaca-2's gradio demo and OpenAI server build it:
 * first user message "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{q} [/INST]", later ones
 * <s>"[INST] {q} [/INST]", answers " {a}"</s>. An empty system prompt gives the template
 * without system, "[INST] {q} [/INST]". `withSystem` false ignores system messages (Mixtral).
 */
function llama2Chat(name: string, defaultSystem: string | undefined, withSystem: boolean): ChatTemplate {
  return {
    name,
    defaultSystem,
    stop: [],
    render(messages, tokenizer) {
      checkMessages(messages);
      const system = withSystem ? systemOf(messages, defaultSystem) : undefined;
      const parts: Part[] = [...BOS(tokenizer)];
      const list = turns(messages);
      let firstUser = true;
      list.forEach((m, i) => {
        if (m.role === "user") {
          if (!firstUser) parts.push(...BOS(tokenizer));
          parts.push(firstUser && system ? `[INST] <<SYS>>\n${system}\n<</SYS>>\n\n${m.content} [/INST]` : `[INST] ${m.content} [/INST]`);
          firstUser = false;
        } else {
          parts.push(` ${m.content}`);
          if (!isLast(list, i)) parts.push(...EOS(tokenizer));
        }
      });
      return encodeParts(parts, tokenizer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Linly, plain

/**
 * Linly ChatFlow (ProjectD-AI/llama_inference llama_dialogue.py):
 *   "User: {u}\nBot: {a}\n" ... "User: {u}\nBot: ", stopping on "User:". No system prompt.
 */
function linly(): ChatTemplate {
  return {
    name: "linly",
    stop: ["User:"],
    render(messages, tokenizer) {
      checkMessages(messages);
      let text = "";
      const list = turns(messages);
      list.forEach((m, i) => {
        if (m.role === "user") text += `User: ${m.content}\nBot: `;
        else {
          if (i === 0 || list[i - 1]!.role !== "user") text += "Bot: ";
          text += m.content + (isLast(list, i) ? "" : "\n");
        }
      });
      return encodeParts([...BOS(tokenizer), text], tokenizer);
    },
  };
}

/**
 * Plain completion for base (LLaMA) models: the messages' texts joined by newlines, BOS as the
 * model declares; a single user message is exactly `zh-llama run -p TEXT`.
 */
function plain(): ChatTemplate {
  return {
    name: "plain",
    stop: [],
    render(messages, tokenizer) {
      checkMessages(messages);
      return tokenizer.encode(messages.map((m) => m.content).join("\n"), { addEos: false });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The table

const BUILT_IN: Record<string, () => ChatTemplate> = {
  alpaca: alpacaV1,
  "alpaca-2": () => llama2Chat("alpaca-2", ALPACA2_SYSTEM, true),
  "alpaca-2-long": () => llama2Chat("alpaca-2-long", ALPACA2_LONG_SYSTEM, true),
  // Chinese-Mixtral trains and serves without a system prompt (with_system_prompt=False).
  mixtral: () => llama2Chat("mixtral", undefined, false),
  linly,
  plain,
};

/** Every name `getTemplate` accepts; "jinja" needs the model's tokenizer.chat_template (see detectTemplate). */
export const TEMPLATE_NAMES: readonly string[] = Object.freeze([...Object.keys(BUILT_IN), "jinja"]);

/** Templates that drop system messages (the CLI warns when --system is given with one). */
export function ignoresSystem(template: ChatTemplate): boolean {
  return template.name === "mixtral" || template.name === "linly";
}

/** A built-in template by name. */
export function getTemplate(name: string): ChatTemplate {
  const make = Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name] : undefined;
  if (make) return make();
  if (name === "jinja") throw new ChatTemplateError(`template "jinja" comes from a model's tokenizer.chat_template: use detectTemplate(metadata) or jinjaTemplate(source)`);
  throw new ChatTemplateError(`unknown chat template ${JSON.stringify(name)}; known: ${TEMPLATE_NAMES.join(", ")}`);
}
