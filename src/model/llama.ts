/**
 * The LLaMA / Llama-2 / Mixtral forward pass, in model order, like llama2.c's `forward()` —
 * written as a program: the list of kernel calls one step makes (src/kernels/program.ts).
 * Every worker thread walks the same list over the same shared memory, doing its share of each
 * call (rows of a matrix, heads of attention, elements of a vector) and meeting the others at a
 * barrier after it; with one thread the list simply runs in order. The position of the step's
 * first token is a register, so a program built once serves every step of the same shape.
 *
 * Per layer, for the nTok rows of x (one per token):
 *   xb  = rmsnorm(x) * attn_norm
 *   q, k, v = Wq xb, Wk xb, Wv xb           (inputs rounded as llama.cpp rounds them)
 *   q, k = rope(q, pos), rope(k, pos);  K/V cache[pos] = k, v
 *   att = softmax(q K^T / sqrt(headDim)) V   (causal; each kv head serves nHead/nHeadKv q heads)
 *     (a Q8_0 cache with headDim % 64 == 0: q, k, v Hadamard-rotated before, att after; kvRotation)
 *   x  += Wo att
 *   xb  = rmsnorm(x) * ffn_norm
 *   x  += W2 (silu(W1 xb) * W3 xb)           (dense)
 *   x  += sum over the top-k experts e of p_e * W2_e (silu(W1_e xb) * W3_e xb)   (MoE)
 * then logits = Wout (rmsnorm(x) * output_norm).
 */
import { GGMLType } from "../formats/ggml-types.js";
import { actBytes, rowBytes, type KvType } from "../kernels/index.js";
import type { Op } from "../kernels/index.js";
import type { LlamaHParams } from "./hparams.js";
import type { Matrix, LlamaWeights } from "./weights.js";
import type { Scratch } from "./state.js";

/** Register holding the position of the step's first token (= tokens already cached). */
export const REG_POS = 0;
const pos = { reg: REG_POS };

/** Addresses (byte offsets in kernel memory) of everything a forward step reads and writes. */
export interface RunState {
  /** Tokens one forward call may carry (the micro-batch). */
  maxTok: number;
  /** KV cache length in tokens. */
  nCtx: number;
  /** KV cache element type: F32, F16, or Q8_0 blocks along each head. */
  kvType: KvType;
  /** Scratch in each of the model's memories (state.ts); a step runs layer l in memory w.layerMemory[l]. */
  scratch: Scratch[];
  kCache: number[]; // per layer [nCtx] rows of nHeadKv*headDim values of kvType, in the layer's memory
  vCache: number[];
  mscale: number;
  threads: number;
}

/**
 * The Walsh-Hadamard rotations llama.cpp applies around a quantized KV cache (since
 * ggml-org/llama.cpp#21038) when the head size is a multiple of 64: q and k by H_k, k the largest
 * power of two (>= 64) dividing headDim; v before the cache and the attention output after it by
 * H_64. The rotations are orthonormal, so the attention is the same in exact arithmetic, but an
 * outlier value is spread over its chunk and the Q8_0 blocks round less of it away. Undefined:
 * no rotation (unquantized cache, or headDim not a multiple of 64).
 */
export function kvRotation(headDim: number, kvType: KvType): { k: number; v: number } | undefined {
  if (kvType !== GGMLType.Q8_0 || headDim % 64 !== 0) return undefined;
  let k = 64;
  while (headDim % (2 * k) === 0) k *= 2;
  return { k, v: 64 };
}

/** The per-thread copies a one-token rounding into xq or xq2 may use (program.ts, quantize's own). */
function ownCopies(s: Scratch, xq: number): { own?: number; ownStride?: number } {
  if (xq === s.xq2) return { own: s.xqOwn2, ownStride: s.xqOwnStride };
  return xq === s.xq ? { own: s.xqOwn, ownStride: s.xqOwnStride } : {};
}

/** Whether a product of m sums in another float order for one token than for several (F16). */
const sumsPerBatch = (m: Matrix): boolean => m.type === GGMLType.F16;

export interface StepShape {
  nTok: number;
  /** Logits are computed for token rows [logitsFrom, nTok) into logits rows 0... */
  logitsFrom: number;
  /**
   * Every row's final residual stream is wanted (embed.ts reads it). Otherwise the last layer's
   * feed-forward runs only for the rows [logitsFrom, nTok), as llama.cpp's does (inp_out_ids).
   */
  hiddenStates?: boolean;
}

/** The ops of one forward step of `shape` (the position comes from REG_POS at run time). */
export function forwardProgram(hp: LlamaHParams, w: LlamaWeights, state: RunState, shape: StepShape): Op[] {
  const { nEmbd, headDim, nHead, nHeadKv, nFf, nRot } = hp;
  const { nTok } = shape;
  const qDim = nHead * headDim;
  const kvDim = nHeadKv * headDim;
  /** Bytes of one position's K (or V) row in the cache. */
  const kvRowBytes = rowBytes(state.kvType, kvDim);
  const rot = kvRotation(headDim, state.kvType);
  const ops: Op[] = [];
  /** The memory the ops run in now, and its scratch (every step starts in memory 0). */
  let memory = 0;
  let s: Scratch = state.scratch[0]!;
  /** Continue in memory m, taking the residual stream along. */
  const moveTo = (m: number) => {
    if (m === memory) return;
    const to = state.scratch[m]!;
    ops.push({ op: "transfer", from: memory, src: s.x, to: m, dst: to.x, bytes: 4 * nTok * nEmbd });
    ops.push({ op: "memory", index: m, sync: false });
    memory = m;
    s = to;
  };

  /** y = W x for nTok rows (x rounded into xq first, as llama.cpp rounds matmul inputs). */
  const linear = (m: Matrix, x: number, y: number, ldy: number, rows = nTok, xq = s.xq, roundInput = true, sync = true) => {
    if (roundInput) ops.push({ op: "quantize", type: m.type, x, xq, cols: m.cols, nTok: rows, ...ownCopies(s, xq) });
    ops.push({ op: "matmul", type: m.type, w: m.addr, xq, y, cols: m.cols, rows: m.rows, nTok: rows, ldy, sync });
  };
  const rmsnorm = (x: number, weight: number, y: number, rows = nTok) => ops.push({ op: "rmsnorm", x, w: weight, y, n: nEmbd, eps: hp.rmsEps, nTok: rows });
  const rope = (x: number, heads: number, ld: number, sync = true) =>
    ops.push({ op: "rope", x, cs: s.cs, nHeads: heads, headDim, nDims: nRot, pos, invFreq: s.invFreq, mscale: state.mscale, neox: false, nTok, ld, sync });
  const residual = (from = 0, rows = nTok) => {
    const o = 4 * from * nEmbd;
    ops.push({ op: "add", a: s.x + o, b: s.xb2 + o, out: s.x + o, n: rows * nEmbd });
  };

  for (let l = 0; l < hp.nLayer; l++) {
    const L = w.layers[l]!;
    moveTo(w.layerMemory[l]!);

    // Attention: xb = rmsnorm(x); q, k, v projections. They read the same rounded xb and write
    // different outputs, so no barrier between them unless a type change re-rounds xb.
    const kSame = L.wk.type === L.wq.type;
    const vSame = L.wv.type === L.wk.type;
    rmsnorm(s.x, L.attnNorm, s.xb);
    linear(L.wq, s.xb, s.q, qDim, nTok, s.xq, true, !kSame);
    linear(L.wk, s.xb, s.k, kvDim, nTok, s.xq, !kSame, !vSame);
    linear(L.wv, s.xb, s.v, kvDim, nTok, s.xq, !vSame);

    // RoPE on q and k, then append k and v to the cache at positions pos...
    rope(s.q, nHead, qDim, false);
    rope(s.k, nHeadKv, kvDim);
    if (rot) {
      ops.push({ op: "hadamard", x: s.q, n: rot.k, count: (nTok * qDim) / rot.k, sync: false });
      ops.push({ op: "hadamard", x: s.k, n: rot.k, count: (nTok * kvDim) / rot.k, sync: false });
      ops.push({ op: "hadamard", x: s.v, n: rot.v, count: (nTok * kvDim) / rot.v });
    }
    const kDst = { reg: REG_POS, mul: kvRowBytes, add: state.kCache[l]! };
    const vDst = { reg: REG_POS, mul: kvRowBytes, add: state.vCache[l]! };
    if (state.kvType === GGMLType.F16) {
      ops.push({ op: "storeF16", x: s.k, h: kDst, n: nTok * kvDim, sync: false });
      ops.push({ op: "storeF16", x: s.v, h: vDst, n: nTok * kvDim });
    } else if (state.kvType === GGMLType.Q8_0) {
      // Blocks of 32 along each head (headDim % 32 == 0), so nTok rows quantize as one run.
      ops.push({ op: "storeQ8_0", x: s.k, dst: kDst, n: nTok * kvDim, sync: false });
      ops.push({ op: "storeQ8_0", x: s.v, dst: vDst, n: nTok * kvDim });
    } else {
      ops.push({ op: "copy", src: s.k, dst: kDst, bytes: 4 * nTok * kvDim, sync: false });
      ops.push({ op: "copy", src: s.v, dst: vDst, bytes: 4 * nTok * kvDim });
    }
    ops.push({
      op: "attention", q: s.q, k: state.kCache[l]!, v: state.vCache[l]!, out: s.att,
      scores: s.scores, scoresStride: 4 * state.nCtx, qh: s.qh, qhStride: 4 * headDim,
      nHead, nKvHead: nHeadKv, headDim, pos, nTok, kvType: state.kvType, scale: Math.fround(1 / Math.fround(Math.sqrt(headDim))), // llama.cpp: 1.0f/sqrtf(n_embd_head)
      // llama.cpp's P.V order where the output goes into an F16 product (assembly/attention.ts).
      llamaKqv: L.wo.type === GGMLType.F16,
    });
    // H_64 H_64 = I: rotating the output undoes the rotation of v.
    if (rot) ops.push({ op: "hadamard", x: s.att, n: rot.v, count: (nTok * qDim) / rot.v });

    // x += Wo att
    linear(L.wo, s.att, s.xb2, nEmbd);
    residual();

    // Feed-forward on xb = rmsnorm(x), for token rows [from, from + rows).
    const feedForward = (from: number, rows: number) => {
      const xb = s.xb + 4 * from * nEmbd;
      rmsnorm(s.x + 4 * from * nEmbd, L.ffnNorm, xb, rows);
      if (L.ffn) {
        const { gate, up, down } = L.ffn;
        const upSame = up.type === gate.type;
        const hb = s.hb + 4 * from * nFf;
        linear(gate, xb, hb, nFf, rows, s.xq, true, !upSame);
        linear(up, xb, s.hb2 + 4 * from * nFf, nFf, rows, s.xq, !upSame);
        ops.push({ op: "swiglu", a: hb, b: s.hb2 + 4 * from * nFf, out: hb, n: rows * nFf });
        linear(down, hb, s.xb2 + 4 * from * nEmbd, nEmbd, rows);
      } else {
        moeFeedForward(ops, hp, L.moe!, s, rows, from);
      }
    };
    // llama.cpp's last layer runs the feed-forward only for the rows whose output is wanted (its
    // inp_out_ids): the other rows' results feed nothing but embed.ts, so they are skipped unless
    // the hidden states are wanted (a long prompt's chunks before the last skip it whole). Where
    // they are wanted, an F16 product sums in another order for one row than for several
    // (assembly/f16.ts), so the rows without logits go through a call of their own; the other
    // products give the same bits either way.
    const { logitsFrom } = shape;
    const batchOrdered = L.ffn ? [L.ffn.gate, L.ffn.up, L.ffn.down].some(sumsPerBatch) : sumsPerBatch(L.moe!.router);
    if (l === hp.nLayer - 1 && logitsFrom > 0 && !shape.hiddenStates) {
      if (logitsFrom < nTok) {
        feedForward(logitsFrom, nTok - logitsFrom);
        residual(logitsFrom, nTok - logitsFrom);
      }
    } else if (l === hp.nLayer - 1 && batchOrdered && logitsFrom > 0 && logitsFrom < nTok) {
      feedForward(0, logitsFrom);
      feedForward(logitsFrom, nTok - logitsFrom);
      residual();
    } else {
      feedForward(0, nTok);
      residual();
    }
  }

  // Final norm and the output projection, for the rows whose logits are wanted. The step ends
  // in the output's memory either way: the residual stream is read there (embed.ts).
  moveTo(w.outputMemory);
  const rows = nTok - shape.logitsFrom;
  if (rows > 0) {
    const from = 4 * shape.logitsFrom * nEmbd;
    rmsnorm(s.x + from, w.outputNorm, s.xb + from, rows);
    linear(w.output, s.xb + from, s.logits, hp.nVocab, rows);
  }
  return ops;
}

/**
 * Mixtral's sparse FFN for each token: router logits -> softmax -> top-k experts ->
 * renormalised weights; the output is the weighted sum of the chosen experts' SwiGLU FFNs.
 * The chosen expert ids are only known at run time: the expert matrices' addresses are read
 * from the routing result in memory ({ i32At }), and so are their weights ({ f32At }).
 */
function moeFeedForward(ops: Op[], hp: LlamaHParams, moe: NonNullable<LlamaWeights["layers"][number]["moe"]>, s: Scratch, nTok: number, from = 0): void {
  const m = s.moe!;
  const { nEmbd, nFf, nExpert, nExpertUsed: k } = hp;
  const xb = s.xb + 4 * from * nEmbd;
  const xb2 = s.xb2 + 4 * from * nEmbd;
  ops.push({ op: "quantize", type: moe.router.type, x: xb, xq: s.xq, cols: nEmbd, nTok, ...ownCopies(s, s.xq) });
  // An F32 router in llama.cpp's order where F16 experts follow (one ulp in a routing weight can flip their f16 inputs' rounding).
  ops.push({ op: "matmul", type: moe.router.type, w: moe.router.addr, xq: s.xq, y: m.logits, cols: nEmbd, rows: nExpert, nTok, ldy: nExpert, llamaOrder: moe.gate.type === GGMLType.F16 });
  for (let t = 0; t < nTok; t++) {
    ops.push({ op: "moeRoute", logits: m.logits + 4 * t * nExpert, probs: m.probs + 4 * t * nExpert, nExpert, k, norm: true, idx: m.idx + 4 * t * k, wt: m.wt + 4 * t * k, sync: false });
  }
  ops.push({ op: "copy", src: s.zeros, dst: xb2, bytes: 4 * nTok * nEmbd, sync: false });
  ops.push({ op: "quantize", type: moe.gate.type, x: xb, xq: s.xq, cols: nEmbd, nTok, ...ownCopies(s, s.xq) });
  const gateStride = actBytes(moe.gate.type, nEmbd);
  for (let t = 0; t < nTok; t++) {
    for (let j = 0; j < k; j++) {
      const expert = (base: number, bytes: number) => ({ i32At: m.idx + 4 * (t * k + j), mul: bytes, add: base });
      const xqT = s.xq + t * gateStride;
      ops.push({ op: "matmul", type: moe.gate.type, w: expert(moe.gate.addr, moe.gate.expertBytes), xq: xqT, y: s.hb, cols: nEmbd, rows: nFf, nTok: 1, ldy: nFf, sync: false });
      ops.push({ op: "matmul", type: moe.up.type, w: expert(moe.up.addr, moe.up.expertBytes), xq: xqT, y: s.hb2, cols: nEmbd, rows: nFf, nTok: 1, ldy: nFf });
      ops.push({ op: "swiglu", a: s.hb, b: s.hb2, out: s.hb, n: nFf });
      ops.push({ op: "quantize", type: moe.down.type, x: s.hb, xq: s.xq2, cols: nFf, nTok: 1, ...ownCopies(s, s.xq2) });
      ops.push({ op: "matmul", type: moe.down.type, w: expert(moe.down.addr, moe.down.expertBytes), xq: s.xq2, y: m.out, cols: nFf, rows: nEmbd, nTok: 1, ldy: nEmbd });
      ops.push({ op: "axpy", a: m.out, s: { f32At: m.wt + 4 * (t * k + j) }, out: xb2 + 4 * t * nEmbd, n: nEmbd });
    }
  }
}

