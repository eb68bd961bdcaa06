/**
 * The optimizer side of a training step: learning-rate schedule, gradient clipping by global
 * norm, AdamW with decoupled weight decay (Loshchilov & Hutter 2019), as PyTorch and HF's
 * Trainer do them, so that upstream's training scripts' settings mean the same thing here.
 */
import { InvalidArgumentError } from "../errors.js";
import type { Param } from "./params.js";

export interface ScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. */
  warmup: number;
  /** Total optimizer steps (the cosine reaches 0 there). */
  total: number;
}

/**
 * HF transformers' get_cosine_schedule_with_warmup (the upstream scripts' `--lr_scheduler_type
 * cosine`): lr * step / warmup while step < warmup, then lr * 0.5 (1 + cos(pi * progress)) with
 * progress = (step - warmup) / (total - warmup). `step` counts from 0, so with warm-up the first
 * update uses lr 0, as upstream's does.
 */
export function cosineLr(step: number, o: ScheduleOptions): number {
  if (step < o.warmup) return (o.lr * step) / Math.max(1, o.warmup);
  const progress = Math.min(1, (step - o.warmup) / Math.max(1, o.total - o.warmup));
  return o.lr * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** sqrt of the sum of squared gradients over all params (float64 sum). */
export function gradNorm(params: readonly Param[]): number {
  let ss = 0;
  for (const p of params) {
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  }
  return Math.sqrt(ss);
}

/**
 * torch.nn.utils.clip_grad_norm_: when the global norm exceeds maxNorm, every gradient is scaled
 * by maxNorm / (norm + 1e-6). Returns the norm before clipping. maxNorm <= 0 disables clipping.
 */
export function clipGradNorm(params: readonly Param[], maxNorm: number): number {
  const norm = gradNorm(params);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const p of params) for (let i = 0, g = p.grad.data; i < g.length; i++) g[i] *= coef;
  }
  return norm;
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, on matrices and LoRA tensors. */
  weightDecay?: number;
  /** Also decay the embeddings and lm_head (default off). */
  decayEmbeddings?: boolean;
  /** Also decay RMSNorm weights (default off). */
  decayNorms?: boolean;
}

/**
 * torch.optim.AdamW: p -= lr * wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). The moments of all parameters live
 * in two flat arrays laid out like the parameter list.
 */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Updates done so far (the bias-correction exponent). */
  t = 0;
  private readonly offsets: number[];
  private readonly decay: boolean[];

  constructor(readonly params: readonly Param[], o: AdamWOptions = {}) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
    if (!(this.beta1 >= 0 && this.beta1 < 1 && this.beta2 >= 0 && this.beta2 < 1)) throw new InvalidArgumentError(`AdamW betas must be in [0, 1), got ${this.beta1}, ${this.beta2}`);
    if (!(this.weightDecay >= 0)) throw new InvalidArgumentError(`weight decay must be >= 0, got ${this.weightDecay}`);
    let n = 0;
    this.offsets = params.map((p) => {
      const o = n;
      n += p.size;
      return o;
    });
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
    this.decay = params.map((p) => p.kind === "matrix" || p.kind === "lora" || (p.kind === "embedding" && !!o.decayEmbeddings) || (p.kind === "norm" && !!o.decayNorms));
  }

  /** One update of every parameter with learning rate lr. */
  step(lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps, m, v } = this;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      adamwUpdate(p.value.data, p.grad.data, m, v, this.offsets[k]!, b1, b2, eps, stepSize, sqrtBc2, this.decay[k] ? 1 - lr * this.weightDecay : 1);
      p.version++;
    }
  }
}

/** The element loop of AdamW.step, on its own so V8 optimises it as one tight loop. */
function adamwUpdate(
  w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, o: number,
  b1: number, b2: number, eps: number, stepSize: number, sqrtBc2: number, shrink: number,
): void {
  const n = w.length;
  const c1 = 1 - b1, c2 = 1 - b2;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = b1 * m[o + i]! + c1 * gi;
    const vi = b2 * v[o + i]! + c2 * gi * gi;
    m[o + i] = mi;
    v[o + i] = vi;
    w[i] = w[i]! * shrink - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}
