/**
 * Grammar-constrained generation is generate() (src/generate/decode.ts) with a `constraint`:
 * the grammar's mask is applied to each step's logits before sampling. These names remain for
 * callers that think of it as its own operation.
 */
import { generate, type GenerateOptions, type GenerationEvent } from "../generate/decode.js";
import type { LlamaSession } from "../model/index.js";
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import type { TokenConstraint } from "./constraint.js";

export interface ConstrainedGenerateOptions extends GenerateOptions {
  constraint?: TokenConstraint;
}

export function generateConstrained(session: LlamaSession, tokenizer: SentencePieceTokenizer, promptIds: readonly number[], options: ConstrainedGenerateOptions = {}): AsyncGenerator<GenerationEvent> {
  return generate(session, tokenizer, promptIds, options);
}
