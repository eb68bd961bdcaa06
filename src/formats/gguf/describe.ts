/**
 * A human summary of a GGUF model: the hyper-parameters llama.cpp reads and what the tensors
 * weigh, per type. Used by `zh-llama inspect`.
 */
import { GGMLType, ggmlTypeName } from "../ggml-types.js";
import { GgufValueType } from "./constants.js";
import type { GgufType, GgufValue } from "./header.js";
import type { GgufFile } from "./reader.js";

export interface TypeUsage {
  type: string;
  tensors: number;
  elements: number;
  bytes: number;
}

export interface GgufSummary {
  file: string;
  fileSize: number;
  parts: number;
  version: number;
  architecture: string;
  name?: string;
  parameters: number;
  /** The `{arch}.*` hyper-parameters, keyed without the prefix (context_length, rope.freq_base, ...). */
  hyperParameters: Record<string, GgufValue>;
  vocabSize?: number;
  tokenizerModel?: string;
  tensorCount: number;
  types: TypeUsage[];
}

export function summarizeGguf(file: GgufFile): GgufSummary {
  const meta = file.metadata;
  const architecture = typeof meta["general.architecture"] === "string" ? meta["general.architecture"] : "(none)";
  const prefix = architecture + ".";
  const hyperParameters: Record<string, GgufValue> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key.startsWith(prefix)) hyperParameters[key.slice(prefix.length)] = value;
  }
  const usage = new Map<GGMLType, TypeUsage>();
  let parameters = 0;
  for (const t of file.tensors) {
    parameters += t.elements;
    const u = usage.get(t.type) ?? { type: ggmlTypeName(t.type), tensors: 0, elements: 0, bytes: 0 };
    u.tensors++;
    u.elements += t.elements;
    u.bytes += t.byteSize;
    usage.set(t.type, u);
  }
  const tokens = meta["tokenizer.ggml.tokens"];
  return {
    file: file.name,
    fileSize: file.fileSize,
    parts: file.sources.length,
    version: file.version,
    architecture,
    name: typeof meta["general.name"] === "string" ? meta["general.name"] : undefined,
    parameters,
    hyperParameters,
    vocabSize: Array.isArray(tokens) ? tokens.length : undefined,
    tokenizerModel: typeof meta["tokenizer.ggml.model"] === "string" ? meta["tokenizer.ggml.model"] : undefined,
    tensorCount: file.tensors.length,
    types: [...usage.values()].sort((a, b) => b.bytes - a.bytes),
  };
}

function typeLabel(type: GgufType): string {
  if (typeof type === "object") return `${typeLabel(type.array)}[]`;
  return GgufValueType[type];
}

/** A metadata value shortened for humans: long arrays show their first items and their length. */
export function abbreviateValue(value: GgufValue, type: GgufType, maxItems = 6): string {
  if (Array.isArray(value)) {
    const shown = value.slice(0, maxItems).map((v) => (typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? `[${v.length} items]` : String(v)));
    const more = value.length > maxItems ? `, … (${value.length} items, ${typeLabel(type)})` : "";
    return `[${shown.join(", ")}${more}]`;
  }
  if (typeof value === "string") return JSON.stringify(value.length > 120 ? value.slice(0, 120) + "…" : value);
  // A float32 printed with float64 digits (9.999999747378752e-6) hides the value that was meant.
  if (type === GgufValueType.FLOAT32 && typeof value === "number") return String(Number(value.toPrecision(7)));
  return String(value);
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(2)} ${units[u]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
