import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.js";

/** Where a command writes; tests pass in-memory sinks. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stderr is a terminal (progress bars redraw in place only then). */
  isTty: boolean;
}

export interface Command {
  /** Full usage text for `zh-llama NAME --help`. */
  usage: string;
  run(args: string[], io: CliIo): Promise<number>;
}

/**
 * node:util parseArgs in strict mode, turning its TypeError into a UsageError that names
 * the offending flag. Pass `{ args, options, allowPositionals }`.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Parses a flag value as a number, rejecting NaN and anything outside [min, max]. */
export function numberOption(name: string, value: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} expects a number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return parsed;
}
