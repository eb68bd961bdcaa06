import { ZhLlamaError } from "../errors.js";

/**
 * A file that is not what it claims to be: bad magic, truncated, offsets outside the file,
 * inconsistent counts. The message names the file, the byte offset and what was expected.
 */
export class FormatError extends ZhLlamaError {}

/** A GGUF file that breaks the GGUF format. */
export class GgufFormatError extends FormatError {}

/** A tensor type zh-llama cannot read, dequantize or quantize (named in the message). */
export class UnsupportedTensorTypeError extends ZhLlamaError {}
