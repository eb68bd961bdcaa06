import { ZhLlamaError } from "../errors.js";

/**
 * A tokenizer that cannot be built from what it was given (inconsistent vocabulary arrays,
 * missing `<unk>`, duplicate pieces, an unsupported model type) or an input it cannot take
 * (text that is not valid Unicode, ids outside the vocabulary). The message names the source
 * (file or GGUF key), the index or id, and what was expected.
 */
export class TokenizerError extends ZhLlamaError {}
