/**
 * Where a forward step's activations live. A model spread over several wasm32 memories
 * (plan.ts) runs each layer in the memory that holds its weights, so every memory has its own
 * scratch (the same layout at its own addresses); the residual stream x is copied from one
 * memory's scratch to the next at the boundary. The KV cache of layer l lives in layer l's memory.
 *
 * The layout is written once (`layScratch`) over an allocator, so the memory plan counts the
 * very bytes the loader later allocates.
 */
import { rowBytes, type KvType } from "../kernels/index.js";
import type { LlamaHParams } from "./hparams.js";

/** Anything that hands out aligned byte addresses: a KernelMemory, or the plan's counter. */
export interface Allocator {
  alloc(bytes: number, align?: number): number;
}

/** Scratch addresses in one memory. */
export interface Scratch {
  x: number; // f32[maxTok][nEmbd]  residual stream
  xb: number; // f32[maxTok][nEmbd]  normalised x
  xb2: number; // f32[maxTok][nEmbd] sublayer output
  q: number; // f32[maxTok][nHead*headDim]
  k: number; // f32[maxTok][nHeadKv*headDim]
  v: number; // f32[maxTok][nHeadKv*headDim]
  att: number; // f32[maxTok][nHead*headDim]
  hb: number; // f32[maxTok][nFf]
  hb2: number; // f32[maxTok][nFf]
  xq: number; // rounded matmul inputs, maxTok rows (sized for the widest input and type)
  xq2: number; // second rounded-input buffer (MoE: expert FFN inputs while xq holds the layer input)
  /** Per-thread copies of one token's xq and xq2, `threads` of each, xqOwnStride bytes apart (the quantize op's `own`; 0 with one thread). */
  xqOwn: number;
  xqOwn2: number;
  xqOwnStride: number;
  /** f32[maxTok][nVocab], in the memory that holds the output projection (0 elsewhere). */
  logits: number;
  invFreq: number; // f64[nRot + 4]: ropeFrequencies().invFreq (frequencies, then llama.cpp's float32 rope parameters)
  /** Per-thread scratch, `threads` of each: attention scores f32[nCtx], a query head f32[headDim], rope cos/sin f32[nRot]. */
  scores: number;
  qh: number;
  cs: number;
  /** Bytes of zeros, f32[maxTok][nEmbd]: the MoE sum starts from them. */
  zeros: number;
  moe?: { logits: number; probs: number; idx: number; wt: number; out: number };
}

export interface ScratchShape {
  nCtx: number;
  maxTok: number;
  threads: number;
  /** Bytes of one token's rounded matmul input, for the widest input and type. */
  xqRow: number;
  /** Whether this memory computes the logits. */
  logits: boolean;
}

/** Lays out one memory's scratch with `a`. */
export function layScratch(a: Allocator, hp: LlamaHParams, shape: ScratchShape): Scratch {
  const { maxTok, nCtx, threads, xqRow } = shape;
  const xqOwnStride = Math.ceil(xqRow / 64) * 64;
  const qDim = hp.nHead * hp.headDim;
  const kvDim = hp.nHeadKv * hp.headDim;
  const f32 = (n: number) => a.alloc(4 * n);
  return {
    x: f32(maxTok * hp.nEmbd),
    xb: f32(maxTok * hp.nEmbd),
    xb2: f32(maxTok * hp.nEmbd),
    q: f32(maxTok * qDim),
    k: f32(maxTok * kvDim),
    v: f32(maxTok * kvDim),
    att: f32(maxTok * qDim),
    hb: f32(maxTok * hp.nFf),
    hb2: f32(maxTok * hp.nFf),
    xq: a.alloc(maxTok * xqRow),
    xq2: a.alloc(xqRow),
    xqOwn: threads > 1 ? a.alloc(threads * xqOwnStride) : 0,
    xqOwn2: threads > 1 ? a.alloc(threads * xqOwnStride) : 0,
    xqOwnStride,
    logits: shape.logits ? f32(maxTok * hp.nVocab) : 0,
    invFreq: a.alloc(8 * (hp.nRot + 4)),
    scores: f32(threads * nCtx),
    qh: f32(threads * hp.headDim),
    cs: f32(hp.nRot),
    zeros: f32(maxTok * hp.nEmbd),
    moe:
      hp.nExpert > 0
        ? { logits: f32(maxTok * hp.nExpert), probs: f32(maxTok * hp.nExpert), idx: a.alloc(4 * maxTok * hp.nExpertUsed), wt: f32(maxTok * hp.nExpertUsed), out: f32(hp.nEmbd) }
        : undefined,
  };
}

/** Bytes of one layer's K (or V) cache: nCtx rows of nHeadKv*headDim values. */
export function kvCacheBytes(hp: LlamaHParams, nCtx: number, kvType: KvType): number {
  return nCtx * rowBytes(kvType, hp.nHeadKv * hp.headDim);
}

/** Counts what a sequence of allocations takes, aligned as KernelMemory aligns them. */
export class CountingAllocator implements Allocator {
  top = 0;
  alloc(bytes: number, align = 64): number {
    const ptr = Math.ceil(this.top / align) * align;
    this.top = ptr + bytes;
    return ptr;
  }
}
