/**
 * A model's own Jinja chat template (GGUF `tokenizer.chat_template`, HF tokenizer_config.json),
 * rendered with @huggingface/jinja the way transformers' apply_chat_template does:
 * `messages`, `bos_token`, `eos_token`, `add_generation_prompt: true`, `raise_exception`.
 *
 * The rendered string carries its control tokens as text ("<s>", "</s>"), so it is encoded
 * with special-token parsing, as llama.cpp and HF do. BOS is added in front only when the
 * model declares add_bos and the template did not already write one (no double BOS).
 */
import { Template } from "@huggingface/jinja";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { ChatTemplateError } from "./errors.js";
import { checkMessages, type ChatMessage, type ChatTemplate } from "./templates.js";

function pieceOr(tokenizer: SentencePieceTokenizer, id: number, fallback: string): string {
  return id >= 0 && id < tokenizer.vocabSize ? tokenizer.idToPiece(id) : fallback;
}

/** The prompt text a Jinja chat template gives for `messages`. */
export function renderJinja(template: Template, source: string, messages: readonly ChatMessage[], tokenizer: SentencePieceTokenizer): string {
  try {
    return template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: pieceOr(tokenizer, tokenizer.bosId, "<s>"),
      eos_token: pieceOr(tokenizer, tokenizer.eosId, "</s>"),
      unk_token: pieceOr(tokenizer, tokenizer.unkId, "<unk>"),
      add_generation_prompt: true,
    });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ChatTemplateError(`the chat template failed to render: ${why} (template begins ${JSON.stringify(source.slice(0, 60))})`, { cause: error });
  }
}

/** A ChatTemplate from Jinja source; throws ChatTemplateError if it does not parse. */
export function jinjaTemplate(source: string): ChatTemplate {
  if (typeof source !== "string" || source.trim() === "") throw new ChatTemplateError("the Jinja chat template is empty");
  let template: Template;
  try {
    template = new Template(source);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ChatTemplateError(`the Jinja chat template does not parse: ${why} (template begins ${JSON.stringify(source.slice(0, 60))})`, { cause: error });
  }
  return {
    name: "jinja",
    stop: [],
    render(messages, tokenizer) {
      checkMessages(messages);
      const text = renderJinja(template, source, messages, tokenizer);
      const ids = tokenizer.encode(text, { addBos: false, addEos: false, parseSpecial: true });
      if (tokenizer.settings.addBos && tokenizer.bosId >= 0 && ids[0] !== tokenizer.bosId) ids.unshift(tokenizer.bosId);
      return ids;
    },
  };
}
