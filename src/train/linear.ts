/**
 * Linear layers y = x W^T (W: [out][in], x: [n][in], y: [n][out]) and their two backward
 * products, all on one kernel: the F32 matmul, which computes y[t][r] = W[r] . x[t] with both
 * operands row-major ("NT" form). The other two products become NT products of transposes:
 *
 *   forward    y  = x  W^T          nt(W,   x)
 *   input      dx = dy W            nt(W^T, dy)      W^T [in][out], cached until W changes
 *   weight     dW = dy^T x          nt(x^T, dy^T)    x^T [in][n], dy^T [out][n]; summed into dW
 *
 * A LoRA adapter on the layer (Hu et al. 2021; PEFT's Linear) adds s * B A x with s = alpha / r,
 * A: [r][in], B: [out][r]; the frozen W then needs no weight gradient.
 */
import { GGMLType } from "../formats/ggml-types.js";
import type { Kernels } from "../kernels/index.js";
import { allocTensor, type Param, type Tensor } from "./params.js";
import { transpose } from "./ops.js";
import type { TrainRng } from "./rng.js";

/** The NT product y[n][rows] = x[n][cols] . W[rows][cols]^T over kernel-memory addresses. */
export interface MatmulEngine {
  nt(y: number, w: number, x: number, rows: number, cols: number, n: number): void;
}

/** Token rows per kernel call: keeps the x block (~256 KiB) in cache while W streams by. */
const BLOCK_BYTES = 256 << 10;

/** One thread, the WASM (or reference) F32 matmul, blocked over tokens. */
export function kernelEngine(k: Kernels): MatmulEngine {
  return {
    nt(y, w, x, rows, cols, n) {
      const tb = Math.max(1, Math.floor(BLOCK_BYTES / (4 * cols)));
      for (let t0 = 0; t0 < n; t0 += tb) {
        const nb = Math.min(tb, n - t0);
        k.matmul(GGMLType.F32, w, x + 4 * t0 * cols, y + 4 * t0 * rows, cols, 0, rows, nb, rows);
      }
    },
  };
}

/** Scratch the linear layers of one model share (sized for the widest layer and micro-batch). */
export interface LinearScratch {
  xT: Tensor;
  dyT: Tensor;
  /** Products to be added somewhere (dW, or dx when accumulating). */
  tmp: Tensor;
  /** LoRA: u = A x, du, and small transposes. */
  u: Tensor;
  du: Tensor;
  loraT: Tensor;
}

/** Scratch sizes in floats; the model computes them from its widest layer, micro-batch and head chunk. */
export interface LinearScratchSizes {
  xT: number;
  dyT: number;
  tmp: number;
  u: number;
  loraT: number;
}

export function allocLinearScratch(k: Kernels, n: LinearScratchSizes): LinearScratch {
  const mem = k.memory;
  return {
    xT: allocTensor(mem, n.xT),
    dyT: allocTensor(mem, n.dyT),
    tmp: allocTensor(mem, n.tmp),
    u: allocTensor(mem, n.u),
    du: allocTensor(mem, n.u),
    loraT: allocTensor(mem, n.loraT),
  };
}

export interface LoraAdapter {
  A: Param; // [r][in]
  B: Param; // [out][r]
  rank: number;
  scale: number;
  /** u = A x per token row, kept for the backward pass: [maxRows][r]. */
  u: Tensor;
  /**
   * PEFT's lora_dropout p: in training the adapter sees x * mask, mask 0 with probability p and
   * 1/(1-p) otherwise, drawn afresh every forward pass (the base layer sees x).
   */
  dropout: number;
  /** With dropout: [maxRows][in] the mask and x * mask of the last training forward pass. */
  mask: Tensor | null;
  xd: Tensor | null;
  rng: TrainRng | null;
  /** Reuse the last mask instead of drawing one (gradient checks). */
  frozen: boolean;
}

/** A view of rows [r0, r0 + n) of a tensor with `width` floats per row. */
export function rowsOf(t: Tensor, r0: number, n: number, width: number): Tensor {
  return { addr: t.addr + 4 * r0 * width, data: t.data.subarray(r0 * width, (r0 + n) * width) };
}

export class Linear {
  /** W^T [in][out], valid while `wTVersion` equals W's version. */
  private wT: Tensor | null = null;
  private wTVersion = -1;
  /** The last forward pass applied dropout (its backward must too). */
  private dropped = false;

  constructor(
    private readonly k: Kernels,
    private readonly engine: MatmulEngine,
    private readonly s: LinearScratch,
    readonly w: Param,
    readonly inDim: number,
    readonly outDim: number,
    readonly lora: LoraAdapter | null = null,
  ) {}

  /** y = x W^T (+ s B A dropout(x)); x, y: n rows. Dropout only when `training`. */
  forward(y: Tensor, x: Tensor, n: number, training = false): void {
    this.engine.nt(y.addr, this.w.value.addr, x.addr, this.outDim, this.inDim, n);
    const L = this.lora;
    if (!L) return;
    const { tmp } = this.s;
    this.dropped = training && L.dropout > 0;
    const xl = this.dropped ? this.dropout(L, x, n) : x;
    this.engine.nt(L.u.addr, L.A.value.addr, xl.addr, L.rank, this.inDim, n);
    this.engine.nt(tmp.addr, L.B.value.addr, L.u.addr, this.outDim, L.rank, n);
    this.k.axpy(tmp.addr, L.scale, y.addr, 0, n * this.outDim);
  }

  /**
   * Given dy for the n rows of x: dW += dy^T x (when W is trained), LoRA gradients, and
   * dx = dy W (+ LoRA), written or added (`accumulate`). dx null: the input needs no gradient.
   */
  backward(dx: Tensor | null, accumulate: boolean, dy: Tensor, x: Tensor, n: number): void {
    const { k, engine, s } = this;
    const { inDim, outDim } = this;
    const L = this.lora;
    const needXT = this.w.trainable || L !== null;
    if (needXT) transpose(s.xT.data, x.data, n, inDim);
    if (this.w.trainable || L) transpose(s.dyT.data, dy.data, n, outDim);
    if (this.w.trainable) {
      // tmp[o][i] = sum_t dy[t][o] x[t][i]
      engine.nt(s.tmp.addr, s.xT.addr, s.dyT.addr, inDim, n, outDim);
      k.add(this.w.grad.addr, s.tmp.addr, this.w.grad.addr, 0, outDim * inDim);
    }
    if (dx) {
      const wT = this.transposed();
      engine.nt(accumulate ? s.tmp.addr : dx.addr, wT.addr, dy.addr, inDim, outDim, n);
      if (accumulate) k.add(dx.addr, s.tmp.addr, dx.addr, 0, n * inDim);
    }
    if (!L) return;
    const r = L.rank;
    // dB += scale * dy^T u
    transpose(s.xT.data.subarray(0, r * n), L.u.data, n, r);
    engine.nt(s.tmp.addr, s.xT.addr, s.dyT.addr, r, n, outDim);
    k.axpy(s.tmp.addr, L.scale, L.B.grad.addr, 0, outDim * r);
    // du = scale * dy B  (B^T: [r][out])
    transpose(s.loraT.data, L.B.value.data, outDim, r);
    engine.nt(s.du.addr, s.loraT.addr, dy.addr, r, outDim, n);
    const du = s.du.data;
    for (let i = 0; i < n * r; i++) du[i] *= L.scale;
    // dA += du^T x  (x^T again: xT was reused for u^T above; the dropped x with dropout)
    const xl = this.dropped ? L.xd! : x;
    transpose(s.xT.data, xl.data, n, inDim);
    transpose(s.dyT.data.subarray(0, r * n), du.subarray(0, n * r), n, r);
    engine.nt(s.tmp.addr, s.xT.addr, s.dyT.addr, inDim, n, r);
    k.add(L.A.grad.addr, s.tmp.addr, L.A.grad.addr, 0, r * inDim);
    // dx += (du A) * mask  (A^T: [in][r])
    if (dx) {
      transpose(s.loraT.data, L.A.value.data, r, inDim);
      engine.nt(s.tmp.addr, s.loraT.addr, s.du.addr, inDim, r, n);
      if (this.dropped) k.mul(s.tmp.addr, L.mask!.addr, s.tmp.addr, 0, n * inDim);
      k.add(dx.addr, s.tmp.addr, dx.addr, 0, n * inDim);
    }
  }

  /** xd = x * mask, with a fresh mask unless frozen. */
  private dropout(L: LoraAdapter, x: Tensor, n: number): Tensor {
    const m = L.mask!.data;
    const size = n * this.inDim;
    if (!L.frozen) {
      const keep = 1 / (1 - L.dropout);
      for (let i = 0; i < size; i++) m[i] = L.rng!.nextFloat() < L.dropout ? 0 : keep;
    }
    this.k.mul(x.addr, L.mask!.addr, L.xd!.addr, 0, size);
    return L.xd!;
  }

  /** W^T, transposed again only after the optimizer changed W. */
  private transposed(): Tensor {
    if (!this.wT) this.wT = allocTensor(this.k.memory, this.inDim * this.outDim);
    if (this.wTVersion !== this.w.version) {
      transpose(this.wT.data, this.w.value.data, this.outDim, this.inDim);
      this.wTVersion = this.w.version;
    }
    return this.wT;
  }
}
