/**
 * Every error zh-llama raises on purpose derives from ZhLlamaError, one subclass per failure
 * family, so callers can tell "your file is broken" from "zh-llama has a bug".
 */
export class ZhLlamaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A command line that cannot be understood (unknown flag, missing argument). */
export class UsageError extends ZhLlamaError {}

/** An argument or option with a value outside what the operation accepts. */
export class InvalidArgumentError extends ZhLlamaError {}

/**
 * An output that could not be written: a full disk (ENOSPC), no permission, a read-only file
 * system. The message names the path and the cause; nothing partial is left under the name.
 */
export class OutputError extends ZhLlamaError {}
