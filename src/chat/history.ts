/**
 * Keeping a conversation inside the context window: the oldest exchanges go first, the system
 * prompt never (the upstream gradio demo drops its oldest turn while the prompt is longer than
 * --max_memory tokens).
 */
import { ContextOverflowError } from "../model/errors.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import type { ChatMessage, ChatTemplate } from "./templates.js";
import { checkMessages } from "./templates.js";

/**
 * Drops the oldest user/assistant turns (a user message and the replies after it; never a
 * system message) until the rendered prompt plus `reserve` tokens fits `maxTokens`. Throws
 * ContextOverflowError if even the last user message alone does not fit.
 */
export function fitHistory(template: ChatTemplate, messages: ChatMessage[], tokenizer: SentencePieceTokenizer, maxTokens: number, reserve: number): ChatMessage[] {
  checkMessages(messages);
  let kept = [...messages];
  for (;;) {
    const length = template.render(kept, tokenizer).length;
    if (length + reserve <= maxTokens) return kept;
    // The first turn starts at the first user message; it ends where the next user message starts.
    const start = kept.findIndex((m) => m.role === "user");
    let end = start + 1;
    while (end < kept.length && kept[end]!.role !== "user") end++;
    if (start < 0 || end >= kept.length) {
      throw new ContextOverflowError(
        `the last message alone needs ${length} prompt tokens + ${reserve} reserved for the reply, more than the ${maxTokens} the context holds: shorten it, lower the reply budget or raise --ctx`,
      );
    }
    // Assistant messages before the first user message go with it.
    kept = kept.filter((m, i) => m.role === "system" || i >= end);
  }
}
