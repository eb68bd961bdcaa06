/**
 * Picks a chat template for a model: its own Jinja `tokenizer.chat_template` when the GGUF has
 * one, else a built-in template recognised from `general.name` (llama.cpp's convert script
 * writes the HF repository name there, e.g. "chinese-alpaca-2-7b"), else plain completion.
 */
import type { GgufValue } from "../formats/gguf/index.js";
import { jinjaTemplate } from "./jinja.js";
import { ChatTemplateError } from "./errors.js";
import { getTemplate, type ChatTemplate } from "./templates.js";

/** general.name patterns, first match wins (lower-cased name). */
const NAME_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/alpaca[-_ ]?2|llama[-_ ]?2[-_ ].*chat/, "alpaca-2"],
  [/mixtral.*instruct|chinese[-_ ]?mixtral[-_ ]?instruct/, "mixtral"],
  [/alpaca/, "alpaca"],
  // Linly's releases: Linly-ChatFlow, ChatLLaMA-zh-7B (chatllama_7b.bin).
  [/linly|chatflow|chatllama[-_ ]?(zh|\d+b)/, "linly"],
];

/** The template name `general.name` suggests, or undefined. */
export function templateNameFromModelName(name: string): string | undefined {
  const lower = name.toLowerCase();
  return NAME_RULES.find(([pattern]) => pattern.test(lower))?.[1];
}

/** `file` names the model in template errors ("FILE: tokenizer.chat_template"). */
export function detectTemplate(metadata: Record<string, GgufValue>, file?: string): ChatTemplate {
  const source = metadata["tokenizer.chat_template"];
  if (typeof source === "string" && source.trim() !== "") return jinjaTemplate(source, { origin: `${file ? `${file}: ` : ""}tokenizer.chat_template` });
  const name = metadata["general.name"];
  const guess = typeof name === "string" ? templateNameFromModelName(name) : undefined;
  return getTemplate(guess ?? "plain");
}

/**
 * The template a user asked for by name, for a model: none -> detectTemplate; "jinja" -> the
 * model's own tokenizer.chat_template (an error naming the file where it has none); any other
 * name -> that built-in template. What `chat --template` and `serve --template` both accept.
 */
export function templateFor(name: string | undefined, metadata: Record<string, GgufValue>, file?: string): ChatTemplate {
  if (name === undefined) return detectTemplate(metadata, file);
  if (name === "jinja") {
    const template = detectTemplate(metadata, file);
    if (template.name !== "jinja") throw new ChatTemplateError(`${file ? `${file}: ` : ""}template "jinja": the model has no tokenizer.chat_template`);
    return template;
  }
  return getTemplate(name);
}
