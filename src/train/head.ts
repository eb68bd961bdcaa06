/**
 * lm_head and the loss: logits = x Wout^T over a vocabulary of tens of thousands, the largest
 * product of a small model, so it gets a layout of its own. The vocabulary is cut into blocks of
 * VB ids; the logits of a chunk of n rows are stored block by block, and Wout^T block by block:
 *
 *   logits:  | block 0: [n][VB] | block 1: [n][VB] | ... | last: [n][V - VB*(nb-1)] |
 *   Wout^T:  | block 0: [C][VB] | block 1: [C][VB] | ... |
 *
 * so that each of the three products streams operands that fit in cache, with dot products of a
 * useful length (C, n, VB) rather than one of V floats:
 *
 *   forward   logits_j = x W_j^T             nt(W_j rows,  x)        W_j = rows [j VB, j VB + vb) of Wout
 *   input     dx  = sum_j dlogits_j W_j      nt(W_j^T,     dlogits_j) summed over blocks
 *   weight    dW_j += dlogits_j^T x           nt(x^T,       dlogits_j^T)
 *
 * Cross-entropy (fused, llm.c style) turns the logits into their gradient in place.
 */
import type { Kernels } from "../kernels/index.js";
import type { MatmulEngine } from "./linear.js";
import { transpose } from "./ops.js";
import { allocTensor, type Param, type Tensor } from "./params.js";

/** Vocabulary ids per block. */
export const VOCAB_BLOCK = 1024;

export class LmHead {
  readonly nBlocks: number;
  /** Logits (then their gradient) of up to `chunk` rows, block-major. */
  readonly logits: Tensor;
  private readonly wT: Tensor;
  private wTVersion = -1;
  private readonly xT: Tensor;
  private readonly dlT: Tensor;
  private readonly tmp: Tensor;
  private readonly dxPart: Tensor;
  /** Per row and block: the max logit and where it is (cross-entropy scratch). */
  private readonly blockMax: Float64Array;
  private readonly blockArg: Int32Array;
  private readonly targetLogit: Float64Array;

  constructor(
    private readonly k: Kernels,
    private readonly engine: MatmulEngine,
    readonly w: Param,
    readonly V: number,
    readonly C: number,
    /** Rows per chunk. */
    readonly chunk: number,
  ) {
    const mem = k.memory;
    this.nBlocks = Math.ceil(V / VOCAB_BLOCK);
    this.logits = allocTensor(mem, chunk * V);
    this.wT = allocTensor(mem, V * C);
    this.xT = allocTensor(mem, C * chunk);
    this.dlT = allocTensor(mem, VOCAB_BLOCK * chunk);
    this.tmp = allocTensor(mem, VOCAB_BLOCK * C);
    this.dxPart = allocTensor(mem, chunk * C);
    this.blockMax = new Float64Array(chunk * this.nBlocks);
    this.blockArg = new Int32Array(chunk * this.nBlocks);
    this.targetLogit = new Float64Array(chunk);
  }

  private blockSize(j: number): number {
    return Math.min(VOCAB_BLOCK, this.V - j * VOCAB_BLOCK);
  }

  /** Float offset of block j of the logits. */
  private blockOffset(j: number): number {
    return j * this.chunk * VOCAB_BLOCK;
  }

  /** logits of n rows of x ([n][C]). */
  forward(x: Tensor, n: number): void {
    const { C } = this;
    for (let j = 0; j < this.nBlocks; j++) {
      const vb = this.blockSize(j);
      this.engine.nt(this.logits.addr + 4 * this.blockOffset(j), this.w.value.addr + 4 * j * VOCAB_BLOCK * C, x.addr, vb, C, n);
    }
  }

  /** Copies the blocked logits of n rows into out ([n][V], row-major) at row r0. */
  gather(out: Float32Array, r0: number, n: number): void {
    const L = this.logits.data;
    for (let j = 0; j < this.nBlocks; j++) {
      const vb = this.blockSize(j);
      const o = this.blockOffset(j);
      for (let t = 0; t < n; t++) out.set(L.subarray(o + t * vb, o + t * vb + vb), (r0 + t) * this.V + j * VOCAB_BLOCK);
    }
  }

  /**
   * Cross-entropy of n rows against targets[from + t] (< 0: skipped). Returns the summed loss;
   * with gradScale, the logits become (softmax - onehot) * gradScale (zero on skipped rows).
   *
   * The exponentials run in the WASM softmax kernel, one call per vocabulary block over all n
   * rows: block j of row t becomes q = exp(l - m_j) / S_j with m_j the block's max. Since q at
   * the block's argmax is 1 / S_j, the row's softmax follows without a second exp pass:
   *   M = max_j m_j,  S = sum_j S_j exp(m_j - M),  p = q S_j exp(m_j - M) / S,
   *   loss = log S + M - l_target.
   */
  crossEntropy(targets: Int32Array, from: number, n: number, gradScale: number | null): number {
    const L = this.logits.data;
    const nb = this.nBlocks;
    const { blockMax, blockArg } = this;
    // Block maxima and their positions; the target logits before the kernel overwrites them.
    for (let j = 0; j < nb; j++) {
      const vb = this.blockSize(j);
      for (let t = 0; t < n; t++) {
        const o = this.rowStart(j, t);
        let m = L[o]!, a = o;
        for (let i = o + 1; i < o + vb; i++) if (L[i]! > m) { m = L[i]!; a = i; }
        blockMax[t * nb + j] = m;
        blockArg[t * nb + j] = a;
      }
    }
    for (let t = 0; t < n; t++) {
      const target = targets[from + t]!;
      this.targetLogit[t] = target < 0 ? 0 : L[this.at(t, target)]!;
    }
    for (let j = 0; j < nb; j++) this.k.softmax(this.logits.addr + 4 * this.blockOffset(j), this.logits.addr + 4 * this.blockOffset(j), this.blockSize(j), 0, n);
    let total = 0;
    for (let t = 0; t < n; t++) {
      const target = targets[from + t]!;
      if (target < 0) {
        if (gradScale !== null) for (let j = 0; j < nb; j++) L.fill(0, this.rowStart(j, t), this.rowStart(j, t) + this.blockSize(j));
        continue;
      }
      let M = -Infinity;
      for (let j = 0; j < nb; j++) M = Math.max(M, blockMax[t * nb + j]!);
      let S = 0;
      for (let j = 0; j < nb; j++) S += Math.exp(blockMax[t * nb + j]! - M) / L[blockArg[t * nb + j]!]!;
      total += Math.log(S) + M - this.targetLogit[t]!;
      if (gradScale === null) continue;
      for (let j = 0; j < nb; j++) {
        const c = (gradScale * Math.exp(blockMax[t * nb + j]! - M)) / L[blockArg[t * nb + j]!]! / S;
        const o = this.rowStart(j, t), e = o + this.blockSize(j);
        for (let i = o; i < e; i++) L[i] *= c;
      }
      L[this.at(t, target)] -= gradScale;
    }
    return total;
  }

  /** Float offset of the logit of id v in row t. */
  private at(t: number, v: number): number {
    const j = Math.floor(v / VOCAB_BLOCK);
    return this.rowStart(j, t) + (v - j * VOCAB_BLOCK);
  }

  /** Float offset of token row t inside block j. */
  private rowStart(j: number, t: number): number {
    return j * this.chunk * VOCAB_BLOCK + t * this.blockSize(j);
  }

  /** With the logits holding their gradient: dW += dlogits^T x (if trained), dx = dlogits W. */
  backward(dx: Tensor, x: Tensor, n: number): void {
    const { k, engine, C } = this;
    if (this.w.trainable) transpose(this.xT.data, x.data, n, C);
    const wT = this.transposed();
    for (let j = 0; j < this.nBlocks; j++) {
      const vb = this.blockSize(j);
      const dl = this.logits.addr + 4 * this.blockOffset(j);
      if (this.w.trainable) {
        transpose(this.dlT.data, this.logits.data.subarray(this.blockOffset(j), this.blockOffset(j) + n * vb), n, vb);
        engine.nt(this.tmp.addr, this.xT.addr, this.dlT.addr, C, n, vb);
        const g = this.w.grad.addr + 4 * j * VOCAB_BLOCK * C;
        k.add(g, this.tmp.addr, g, 0, vb * C);
      }
      const wTj = wT.addr + 4 * j * VOCAB_BLOCK * C;
      engine.nt(j === 0 ? dx.addr : this.dxPart.addr, wTj, dl, C, vb, n);
      if (j > 0) k.add(dx.addr, this.dxPart.addr, dx.addr, 0, n * C);
    }
  }

  /** Wout^T block by block ([C][vb] each), redone only after the optimizer changed Wout. */
  private transposed(): Tensor {
    if (this.wTVersion !== this.w.version) {
      const { C } = this;
      for (let j = 0; j < this.nBlocks; j++) {
        const vb = this.blockSize(j);
        const o = j * VOCAB_BLOCK * C;
        transpose(this.wT.data.subarray(o, o + vb * C), this.w.value.data.subarray(o, o + vb * C), vb, C);
      }
      this.wTVersion = this.w.version;
    }
    return this.wT;
  }
}
