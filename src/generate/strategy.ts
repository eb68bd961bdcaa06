/**
 * The one strategy switch of decoding: plain generate(), classifier-free guidance
 * (generateCfg) or speculative decoding with a draft model (generateSpeculative), as the options
 * ask. The CLI, ChatSession and the server all decode through it.
 */
import { InvalidArgumentError } from "../errors.js";
import type { LlamaModel, LlamaSession } from "../model/model.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { generate, type GenerateOptions, type GenerationEvent } from "./decode.js";
import { generateCfg } from "./decode-cfg.js";
import { generateSpeculative } from "./decode-speculative.js";

/** generate() plus the decoding extras; at most one of CFG and a draft model. */
export interface GenerateWithOptions extends GenerateOptions {
  /** Classifier-free guidance scale; 1 (default) = off. */
  cfgScale?: number;
  /** The negative prompt's ids (CFG); default: the prompt's last token alone. */
  negativePromptIds?: readonly number[];
  /** The session that keeps the negative sequence's cache between calls. */
  negativeSession?: LlamaSession;
  /** A draft model for speculative decoding. */
  draft?: LlamaModel | LlamaSession;
  /** Fixed draft length; default adaptive. */
  draftK?: number;
}

/** generate(), generateCfg() or generateSpeculative(), as the options ask. */
export function generateWith(target: LlamaModel | LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: GenerateWithOptions): AsyncGenerator<GenerationEvent> {
  const { cfgScale = 1, negativePromptIds, negativeSession, draft, draftK, ...rest } = options;
  if (draft !== undefined && cfgScale !== 1) throw new InvalidArgumentError(`speculative decoding and CFG (scale ${cfgScale}) cannot be combined`);
  if (draft !== undefined) return generateSpeculative(target, tokenizer, promptIds, { ...rest, draft, draftK });
  if (cfgScale !== 1) return generateCfg(target, tokenizer, promptIds, { ...rest, cfgScale, negativePromptIds, negativeSession });
  return generate(target, tokenizer, promptIds, rest);
}

