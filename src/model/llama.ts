/**
 * The LLaMA / Llama-2 / Mixtral forward pass, in model order, like llama2.c's `forward()`.
 *
 * It is written once for any number of threads: every thread runs this same function over
 * the same shared memory, each doing its slice [a, b) of every step (rows of a matrix, heads
 * of attention, elements of a vector), and `th.sync()` is the barrier between steps that
 * read what the previous step wrote. With one thread, sync() does nothing.
 *
 * Per layer, for the nTok rows of x (one per token):
 *   xb  = rmsnorm(x) * attn_norm
 *   q, k, v = Wq xb, Wk xb, Wv xb           (inputs rounded as llama.cpp rounds them)
 *   q, k = rope(q, pos), rope(k, pos);  K/V cache[pos] = k, v
 *   att = softmax(q K^T / sqrt(headDim)) V   (causal; each kv head serves nHead/nHeadKv q heads)
 *   x  += Wo att
 *   xb  = rmsnorm(x) * ffn_norm
 *   x  += W2 (silu(W1 xb) * W3 xb)           (dense)
 *   x  += sum over the top-k experts e of p_e * W2_e (silu(W1_e xb) * W3_e xb)   (MoE)
 * then logits = Wout (rmsnorm(x) * output_norm).
 */
import type { Kernels } from "../kernels/index.js";
import type { LlamaHParams } from "./hparams.js";
import type { Matrix, LlamaWeights } from "./weights.js";

/** One thread's view of a parallel step. */
export interface ThreadContext {
  ith: number;
  nth: number;
  /** Barrier: returns when every thread has reached it. */
  sync(): void;
}

export const SINGLE_THREAD: ThreadContext = { ith: 0, nth: 1, sync() {} };

/** Addresses (byte offsets in kernel memory) of everything a forward step reads and writes. */
export interface RunState {
  /** Tokens one forward call may carry (the micro-batch). */
  maxTok: number;
  /** KV cache length in tokens. */
  nCtx: number;
  kvF16: boolean;
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
  logits: number; // f32[maxTok][nVocab]
  kCache: number[]; // per layer f32|f16 [nCtx][nHeadKv*headDim]
  vCache: number[];
  invFreq: number; // f64[nRot/2]
  mscale: number;
  /** Per-thread scratch: attention scores f32[nCtx], a query head f32[headDim], rope cos/sin f32[nRot]. */
  scratch: Array<{ scores: number; qh: number; cs: number }>;
  moe?: { logits: number; probs: number; idx: number; wt: number; out: number };
}

export interface ForwardStep {
  /** Position of the first token (tokens already in the cache). */
  pos0: number;
  nTok: number;
  /** Logits are computed for token rows [logitsFrom, nTok) into logits rows 0... */
  logitsFrom: number;
}

/** [a, b): thread ith's share of n items. */
export function share(n: number, th: ThreadContext): [number, number] {
  const per = Math.ceil(n / th.nth);
  const a = Math.min(n, th.ith * per);
  return [a, Math.min(n, a + per)];
}

/** y = W x for nTok rows of x (already rounded into xq), this thread's rows of W. */
function matmul(k: Kernels, m: Matrix, xq: number, y: number, nTok: number, ldy: number, th: ThreadContext, addr = m.addr): void {
  const [r0, r1] = share(m.rows, th);
  if (r1 > r0) k.matmul(m.type, addr, xq, y, m.cols, r0, r1, nTok, ldy);
}

/** Rounds nTok rows of x (cols wide) as llama.cpp rounds the inputs of a `m.type` product. */
function roundInput(k: Kernels, m: Matrix, x: number, xq: number, nTok: number, th: ThreadContext): void {
  const [t0, t1] = share(nTok, th);
  if (t1 > t0) k.quantize(m.type, x, xq, m.cols, t0, t1);
}

function rmsnormRows(k: Kernels, x: number, w: number, y: number, n: number, eps: number, r0: number, r1: number, th: ThreadContext): void {
  const [a, b] = share(r1 - r0, th);
  if (b > a) k.rmsnorm(x, w, y, n, eps, r0 + a, r0 + b);
}

export function forward(k: Kernels, hp: LlamaHParams, w: LlamaWeights, s: RunState, step: ForwardStep, th: ThreadContext): void {
  const { nEmbd, headDim, nHead, nHeadKv, nFf, nRot } = hp;
  const { pos0, nTok } = step;
  const qDim = nHead * headDim;
  const kvDim = nHeadKv * headDim;
  const kvBytes = s.kvF16 ? 2 : 4;
  const mine = th.ith < s.scratch.length ? s.scratch[th.ith]! : s.scratch[0]!;
  const mem = k.memory;

  for (let l = 0; l < hp.nLayer; l++) {
    const L = w.layers[l]!;

    // Attention: xb = rmsnorm(x); q, k, v projections.
    rmsnormRows(k, s.x, L.attnNorm, s.xb, nEmbd, hp.rmsEps, 0, nTok, th);
    th.sync();
    roundInput(k, L.wq, s.xb, s.xq, nTok, th);
    th.sync();
    matmul(k, L.wq, s.xq, s.q, nTok, qDim, th);
    if (L.wk.type !== L.wq.type) {
      th.sync();
      roundInput(k, L.wk, s.xb, s.xq, nTok, th);
      th.sync();
    }
    matmul(k, L.wk, s.xq, s.k, nTok, kvDim, th);
    if (L.wv.type !== L.wk.type) {
      th.sync();
      roundInput(k, L.wv, s.xb, s.xq, nTok, th);
      th.sync();
    }
    matmul(k, L.wv, s.xq, s.v, nTok, kvDim, th);
    th.sync();

    // RoPE on q and k heads, then append k and v to the cache at positions pos0...
    const [qh0, qh1] = share(nHead, th);
    if (qh1 > qh0) k.rope(s.q + 4 * qh0 * headDim, mine.cs, qh1 - qh0, headDim, nRot, pos0, s.invFreq, s.mscale, false, nTok, qDim);
    const [kh0, kh1] = share(nHeadKv, th);
    if (kh1 > kh0) k.rope(s.k + 4 * kh0 * headDim, mine.cs, kh1 - kh0, headDim, nRot, pos0, s.invFreq, s.mscale, false, nTok, kvDim);
    th.sync();
    const [e0, e1] = share(nTok * kvDim, th);
    if (e1 > e0) {
      const kDst = s.kCache[l]! + pos0 * kvDim * kvBytes;
      const vDst = s.vCache[l]! + pos0 * kvDim * kvBytes;
      if (s.kvF16) {
        k.storeF16(s.k + 4 * e0, kDst + 2 * e0, e1 - e0);
        k.storeF16(s.v + 4 * e0, vDst + 2 * e0, e1 - e0);
      } else {
        mem.f32(kDst + 4 * e0, e1 - e0).set(mem.f32(s.k + 4 * e0, e1 - e0));
        mem.f32(vDst + 4 * e0, e1 - e0).set(mem.f32(s.v + 4 * e0, e1 - e0));
      }
    }
    th.sync();
    const [h0, h1] = share(nHead, th);
    if (h1 > h0) {
      k.attention(s.q, s.kCache[l]!, s.vCache[l]!, s.att, mine.scores, mine.qh, nHead, nHeadKv, headDim, pos0, nTok, s.kvF16, 1 / Math.sqrt(headDim), h0, h1);
    }
    th.sync();

    // x += Wo att
    roundInput(k, L.wo, s.att, s.xq, nTok, th);
    th.sync();
    matmul(k, L.wo, s.xq, s.xb2, nTok, nEmbd, th);
    th.sync();
    addRows(k, s.x, s.xb2, nTok * nEmbd, th);
    th.sync();

    // Feed-forward on xb = rmsnorm(x).
    rmsnormRows(k, s.x, L.ffnNorm, s.xb, nEmbd, hp.rmsEps, 0, nTok, th);
    th.sync();
    if (L.ffn) {
      const { gate, up, down } = L.ffn;
      roundInput(k, gate, s.xb, s.xq, nTok, th);
      th.sync();
      matmul(k, gate, s.xq, s.hb, nTok, nFf, th);
      if (up.type !== gate.type) {
        th.sync();
        roundInput(k, up, s.xb, s.xq, nTok, th);
        th.sync();
      }
      matmul(k, up, s.xq, s.hb2, nTok, nFf, th);
      th.sync();
      const [i0, i1] = share(nTok * nFf, th);
      if (i1 > i0) k.swiglu(s.hb, s.hb2, s.hb, i0, i1);
      th.sync();
      roundInput(k, down, s.hb, s.xq, nTok, th);
      th.sync();
      matmul(k, down, s.xq, s.xb2, nTok, nEmbd, th);
      th.sync();
    } else {
      moeFeedForward(k, hp, L.moe!, s, nTok, th);
    }
    addRows(k, s.x, s.xb2, nTok * nEmbd, th);
    th.sync();
  }

  // Final norm and the output projection, for the rows whose logits are wanted.
  const rows = nTok - step.logitsFrom;
  if (rows <= 0) return;
  rmsnormRows(k, s.x, w.outputNorm, s.xb, nEmbd, hp.rmsEps, step.logitsFrom, nTok, th);
  th.sync();
  const xbFrom = s.xb + 4 * step.logitsFrom * nEmbd;
  roundInput(k, w.output, xbFrom, s.xq, rows, th);
  th.sync();
  matmul(k, w.output, s.xq, s.logits, rows, hp.nVocab, th);
  th.sync();
}

function addRows(k: Kernels, x: number, y: number, n: number, th: ThreadContext): void {
  const [i0, i1] = share(n, th);
  if (i1 > i0) k.add(x, y, x, i0, i1);
}

/**
 * Mixtral's sparse FFN for each token: router logits -> softmax -> top-k experts ->
 * renormalised weights; the output is the weighted sum of the chosen experts' SwiGLU FFNs.
 */
function moeFeedForward(k: Kernels, hp: LlamaHParams, moe: NonNullable<LlamaWeights["layers"][number]["moe"]>, s: RunState, nTok: number, th: ThreadContext): void {
  const m = s.moe!;
  const { nEmbd, nFf, nExpert, nExpertUsed } = hp;
  roundInput(k, moe.router, s.xb, s.xq, nTok, th);
  th.sync();
  matmul(k, moe.router, s.xq, m.logits, nTok, nExpert, th);
  th.sync();
  const [t0, t1] = share(nTok, th);
  for (let t = t0; t < t1; t++) {
    k.moeRoute(m.logits + 4 * t * nExpert, m.probs + 4 * t * nExpert, nExpert, nExpertUsed, true, m.idx + 4 * t * nExpertUsed, m.wt + 4 * t * nExpertUsed);
  }
  const [z0, z1] = share(nTok * nEmbd, th);
  if (z1 > z0) k.memory.f32(s.xb2 + 4 * z0, z1 - z0).fill(0);
  roundInput(k, moe.gate, s.xb, s.xq, nTok, th);
  th.sync();
  const idx = k.memory.i32(m.idx, nTok * nExpertUsed);
  const wt = k.memory.f32(m.wt, nTok * nExpertUsed);
  const gateStride = k.actBytes(moe.gate.type, nEmbd);
  for (let t = 0; t < nTok; t++) {
    for (let j = 0; j < nExpertUsed; j++) {
      const e = idx[t * nExpertUsed + j]!;
      const xqT = s.xq + t * gateStride;
      matmul(k, moe.gate, xqT, s.hb, 1, nFf, th, moe.gate.addr + e * moe.gate.expertBytes);
      matmul(k, moe.up, xqT, s.hb2, 1, nFf, th, moe.up.addr + e * moe.up.expertBytes);
      th.sync();
      const [i0, i1] = share(nFf, th);
      if (i1 > i0) k.swiglu(s.hb, s.hb2, s.hb, i0, i1);
      th.sync();
      roundInput(k, moe.down, s.hb, s.xq2, 1, th);
      th.sync();
      matmul(k, moe.down, s.xq2, m.out, 1, nEmbd, th, moe.down.addr + e * moe.down.expertBytes);
      th.sync();
      const [o0, o1] = share(nEmbd, th);
      if (o1 > o0) k.axpy(m.out, wt[t * nExpertUsed + j]!, s.xb2 + 4 * t * nEmbd, o0, o1);
      th.sync();
    }
  }
}
