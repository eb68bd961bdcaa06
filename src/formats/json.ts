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
