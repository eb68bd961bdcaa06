/**
 * The memory plan: before a byte is allocated, decide where every part of a model goes.
 *
 * A wasm32 memory holds at most 4 GiB, and a 7B model with its KV cache at 4096 tokens needs
 * about 6 GiB (a 13B about 11). So the plan spreads the model over as many memories as it needs,
 * whole layers per memory, each layer's KV cache beside its weights:
 *
 *   memory 0: scratch | token embeddings | layers 0..22 (weights, KV cache)
 *   memory 1: scratch | layers 23..31 | output norm, output projection (+ logits in its scratch)
 *
 * A forward step walks the layers in order and moves to the next memory at a boundary, copying
 * the residual stream across (nTok x nEmbd floats: 16 KiB a token for a 7B). Why whole layers,
 * not row slices of every matrix (tensor parallelism)? The number of memories stays independent
 * of the number of threads (one thread runs a 13B), every thread still works on every product,
 * and a step copies one small vector per boundary instead of gathering every product's result.
 * Memory64 would avoid the split, but Safari and Bun do not have it.
 */
import { GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import type { GgufFile, GgufTensorInfo } from "../formats/gguf/index.js";
import { actBytes, ARENA_START, MAX_PAGES, PAGE, rowBytes, type KvType, type MatmulType } from "../kernels/index.js";
import { InvalidArgumentError } from "../errors.js";
import { MemoryPlanError, ModelError } from "./errors.js";
import type { LlamaHParams } from "./hparams.js";
import { CountingAllocator, kvCacheBytes, layScratch } from "./state.js";
import { kernelTypeFor } from "./weights.js";

/** The largest wasm32 memory: 65536 pages of 64 KiB. */
export const WASM32_MEMORY_BYTES = MAX_PAGES * PAGE;

export interface PlanOptions {
  nCtx: number;
  kvType: KvType;
  /** Tokens per forward step (the micro-batch). */
  maxTok: number;
  threads: number;
  /** Sequences with their own KV cache and scratch to make room for (default 1). */
  sessions?: number;
  /** Bytes per memory (default and maximum 4 GiB); smaller limits spread even a tiny model. */
  memoryLimit?: number;
  /** At most this many layers per memory (default: as many as fit); 1 spreads a model the most. */
  layersPerMemory?: number;
}

export interface PlannedMemory {
  /** Layers [first, end) live here. */
  first: number;
  end: number;
  embedding: boolean;
  output: boolean;
  weightBytes: number;
  /** KV caches of every planned session for this memory's layers. */
  kvBytes: number;
  /** Scratch of every planned session in this memory. */
  scratchBytes: number;
  /** Everything, with the module's first page: the memory's initial size. */
  bytes: number;
}

export interface Conversion {
  name: string;
  from: GGMLType;
  to: GGMLType;
  /** Bytes in the file and in memory after the conversion. */
  fileBytes: number;
  bytes: number;
}

export interface MemoryPlan {
  nCtx: number;
  kvType: KvType;
  maxTok: number;
  threads: number;
  sessions: number;
  memoryLimit: number;
  memories: PlannedMemory[];
  /** Index of the memory holding layer l. */
  layerMemory: number[];
  embeddingMemory: number;
  outputMemory: number;
  weightBytes: number;
  kvBytes: number;
  scratchBytes: number;
  totalBytes: number;
  /** KV cache bytes per token of context for one session (all layers, K and V). */
  kvBytesPerToken: number;
  /** Matrices the kernels have no product for, converted at load. */
  conversions: Conversion[];
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

/** Bytes a tensor takes once loaded: vectors as f32, matrices in their kernel type. */
function loadedBytes(info: GgufTensorInfo): number {
  if (info.shape.length === 1) return 4 * info.elements;
  const type = kernelTypeFor(info.type);
  return rowBytes(type, info.shape[0]!) * (info.elements / info.shape[0]!);
}

function conversionOf(info: GgufTensorInfo): Conversion | undefined {
  if (info.shape.length === 1) return undefined;
  const to = kernelTypeFor(info.type);
  return to === info.type ? undefined : { name: info.name, from: info.type, to, fileBytes: info.byteSize, bytes: loadedBytes(info) };
}

/** The widest rounded matmul input any product of this model needs, per token. */
function widestInput(file: GgufFile): number {
  let widest = 0;
  for (const t of file.tensors) {
    if (t.shape.length < 2) continue;
    widest = Math.max(widest, actBytes(kernelTypeFor(t.type) as MatmulType, t.shape[0]!));
  }
  return widest;
}

export function planMemory(file: GgufFile, hp: LlamaHParams, options: PlanOptions): MemoryPlan {
  const { nCtx, kvType, maxTok, threads } = options;
  const sessions = options.sessions ?? 1;
  const memoryLimit = options.memoryLimit ?? WASM32_MEMORY_BYTES;
  for (const [name, v, max] of [["context length", nCtx, 1 << 24], ["batch size", maxTok, 1 << 16], ["threads", threads, 1024], ["sessions", sessions, 1024]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new InvalidArgumentError(`${name} must be an integer in 1..${max}, got ${v}`);
  }
  if (!(memoryLimit >= 16 * PAGE && memoryLimit <= WASM32_MEMORY_BYTES)) {
    throw new InvalidArgumentError(`memory limit must be between 1 MiB and 4 GiB, got ${memoryLimit}`);
  }
  // Hostile metadata must not make the plan loop for ever: every layer has tensors.
  if (hp.nLayer > file.tensors.length) {
    throw new ModelError(`${file.name}: block_count is ${hp.nLayer}, but the file has only ${file.tensors.length} tensors`);
  }

  const byLayer: number[] = new Array(hp.nLayer).fill(0);
  let embedding = 0;
  let output = 0;
  const conversions: Conversion[] = [];
  for (const t of file.tensors) {
    const layer = /^blk\.(\d+)\./.exec(t.name);
    if (t.name === "token_embd.weight") {
      embedding = align64(t.byteSize);
      continue;
    }
    const c = conversionOf(t);
    if (c) conversions.push(c);
    if (layer) {
      const l = Number(layer[1]);
      if (l < hp.nLayer) byLayer[l]! += align64(loadedBytes(t));
    } else if (t.name === "output.weight" || t.name === "output_norm.weight") {
      output += align64(loadedBytes(t));
    }
  }
  // Tied embeddings: the output projection reads the embedding matrix, so both share a memory;
  // a type without a kernel gets a converted copy beside it.
  const tied = !file.has("output.weight") && file.has("token_embd.weight");
  let embeddingWithOutput = false;
  if (tied) {
    const embd = file.tensor("token_embd.weight");
    const c = conversionOf(embd);
    if (c) {
      conversions.push({ ...c, name: "token_embd.weight (as the output projection)" });
      output += align64(c.bytes);
    } else {
      output += embedding;
      embedding = 0;
      embeddingWithOutput = true;
    }
  }

  const xqRow = widestInput(file);
  const scratchOf = (logits: boolean) => {
    const a = new CountingAllocator();
    layScratch(a, hp, { nCtx, maxTok, threads, xqRow, logits });
    return align64(a.top) * sessions;
  };
  const plain = scratchOf(false);
  const withLogits = scratchOf(true);
  const kvLayer = 2 * align64(kvCacheBytes(hp, nCtx, kvType)) * sessions;

  // Greedy: fill a memory with whole layers until the next would not fit.
  const memories: PlannedMemory[] = [];
  const layerMemory: number[] = [];
  const open = (): PlannedMemory => {
    const m = { first: layerMemory.length, end: layerMemory.length, embedding: false, output: false, weightBytes: 0, kvBytes: 0, scratchBytes: plain, bytes: ARENA_START + plain };
    memories.push(m);
    return m;
  };
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  const layersPerMemory = options.layersPerMemory ?? Infinity;
  const place = (what: string, weights: number, kv: number, extraScratch = 0, layer = false): PlannedMemory => {
    let m = memories[memories.length - 1] ?? open();
    const need = weights + kv + extraScratch;
    if (m.bytes + need > memoryLimit || (layer && m.end - m.first >= layersPerMemory)) {
      if (m.weightBytes + m.kvBytes > 0) m = open();
      if (m.bytes + need > memoryLimit) {
        throw new MemoryPlanError(
          `${file.name}: ${what} needs ${gib(need)} (weights ${gib(weights)}, KV cache ${gib(kv)}), more than one wasm32 memory holds (${gib(memoryLimit - m.bytes)} free in a ${gib(memoryLimit)} memory); use a shorter context (-c) or a smaller KV cache type (--kv-type q8_0)`,
        );
      }
    }
    m.weightBytes += weights;
    m.kvBytes += kv;
    m.scratchBytes += extraScratch;
    m.bytes += need;
    return m;
  };
  if (!embeddingWithOutput) place("the token embeddings", embedding, 0).embedding = true;
  for (let l = 0; l < hp.nLayer; l++) {
    const m = place(`layer ${l}`, byLayer[l]!, kvLayer, 0, true);
    m.end = l + 1;
    layerMemory.push(memories.length - 1);
  }
  const out = place("the output projection", output, 0, withLogits - plain);
  out.output = true;
  if (embeddingWithOutput) out.embedding = true;
  const outputMemory = memories.indexOf(out);
  const embeddingMemory = memories.findIndex((m) => m.embedding);
  // A memory that only starts after the last layer holds no layer: keep first/end consistent.
  for (const m of memories) if (m.end < m.first) m.end = m.first;

  const sum = (f: (m: PlannedMemory) => number) => memories.reduce((s, m) => s + f(m), 0);
  return {
    nCtx, kvType, maxTok, threads, sessions, memoryLimit,
    memories, layerMemory, embeddingMemory, outputMemory,
    weightBytes: sum((m) => m.weightBytes),
    kvBytes: sum((m) => m.kvBytes),
    scratchBytes: sum((m) => m.scratchBytes),
    totalBytes: sum((m) => m.bytes),
    kvBytesPerToken: (2 * hp.nLayer * kvCacheBytes(hp, nCtx, kvType)) / nCtx,
    conversions,
  };
}

/** Human-readable bytes: 1.23 GiB, 45.6 MiB, 789 KiB. */
export function formatPlanBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.ceil(n / 1024)} KiB`;
}

/** What the plan looks like, one line per part (for `inspect -c N` and the load summary). */
export function describePlan(plan: MemoryPlan): string[] {
  const b = formatPlanBytes;
  const kvName = plan.kvType === GGMLType.Q8_0 ? "q8_0" : ggmlTypeName(plan.kvType).toLowerCase();
  const lines = [
    `memory plan: context ${plan.nCtx} tokens, KV cache ${kvName}, ${plan.sessions} session${plan.sessions === 1 ? "" : "s"}, batch ${plan.maxTok}, ${plan.threads} thread${plan.threads === 1 ? "" : "s"}`,
    `  weights   ${b(plan.weightBytes)}`,
    `  KV cache  ${b(plan.kvBytes)} (${b(plan.kvBytesPerToken)} per token, ${b(plan.kvBytesPerToken * 1024)} per 1k tokens)`,
    `  scratch   ${b(plan.scratchBytes)}`,
    `  total     ${b(plan.totalBytes)} in ${plan.memories.length} wasm32 memor${plan.memories.length === 1 ? "y" : "ies"} (at most ${b(plan.memoryLimit)} each)`,
  ];
  plan.memories.forEach((m, i) => {
    const parts = [m.embedding ? "token embeddings" : "", m.end > m.first ? `layers ${m.first}-${m.end - 1}` : "", m.output ? "output" : ""].filter(Boolean).join(", ");
    lines.push(`  memory ${i}: ${parts.padEnd(40)} ${b(m.bytes).padStart(10)} (weights ${b(m.weightBytes)}, KV ${b(m.kvBytes)}, scratch ${b(m.scratchBytes)})`);
  });
  for (const c of plan.conversions) {
    lines.push(`  converted at load: ${c.name} ${ggmlTypeName(c.from)} -> ${ggmlTypeName(c.to)} (${b(c.fileBytes)} -> ${b(c.bytes)}; no kernel for ${ggmlTypeName(c.from)})`);
  }
  return lines;
}

/** Memory this machine can give now (bytes), where the runtime can tell. */
export async function availableMemory(): Promise<number | undefined> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!proc?.versions?.node) return undefined;
  try {
    const os = await import("node:os");
    return os.freemem();
  } catch {
    return undefined;
  }
}

/**
 * Refuses a plan bigger than the memory the machine has, before anything is allocated, naming
 * the sizes and what would fit.
 */
export function checkPlanFits(plan: MemoryPlan, available: number, fileName: string): void {
  if (plan.totalBytes <= available) return;
  const b = formatPlanBytes;
  const fixed = plan.totalBytes - plan.kvBytes;
  const perToken = plan.kvBytesPerToken * plan.sessions;
  const fits = Math.floor((available - fixed) / perToken / 256) * 256;
  const fix =
    fits >= 256
      ? `use a shorter context (-c ${fits} / nCtx: ${fits} fits)${plan.kvType === GGMLType.Q8_0 ? "" : " or a smaller KV cache (--kv-type q8_0 / kvCacheType: \"q8_0\")"}`
      : `the weights alone (${b(plan.weightBytes)}) leave no room for a KV cache: use a smaller quantization of the model`;
  throw new MemoryPlanError(
    `${fileName} does not fit this machine at a context of ${plan.nCtx} tokens: it needs ${b(plan.totalBytes)} ` +
      `(weights ${b(plan.weightBytes)}, KV cache ${b(plan.kvBytesPerToken * 1024)} per 1k tokens x ${plan.nCtx} tokens = ${b(plan.kvBytes)}, scratch ${b(plan.scratchBytes)}), ` +
      `and ${b(available)} is available; ${fix}`,
  );
}
