import { FormatError } from "./errors.js";

/**
 * JSON text for GGUF values: 64-bit integers (bigint) are written as plain JSON numbers with
 * every digit kept, which JSON.stringify cannot do; non-finite floats become the strings
 * "NaN", "Infinity", "-Infinity" since JSON has no literal for them.
 */
export function toJson(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify(String(value));
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return "[" + value.map(toJson).join(",") + "]";
  if (ArrayBuffer.isView(value)) return "[" + Array.from(value as unknown as ArrayLike<number>, toJson).join(",") + "]";
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return "{" + entries.map(([k, v]) => JSON.stringify(k) + ":" + toJson(v)).join(",") + "}";
}

/**
 * A config file's text as a JSON object, or `error` naming the file: not valid JSON, or not an
 * object. Every JSON config reader (HF, Meta's params.json, TencentPretrain) starts here.
 */
export function parseJsonObject(text: string, file: string, error: new (message: string) => Error = FormatError): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new error(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}
