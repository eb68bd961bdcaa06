/**
 * The training loop: one optimizer step = `accum` micro-batches of forward + backward (each
 * micro-batch's mean loss scaled by 1/accum, as HF's Trainer does), clipping by global norm,
 * an AdamW update at the scheduled learning rate. A loss or gradient that is not finite stops
 * training with an error naming the step.
 */
import { TrainError } from "./io.js";
import type { DataLoader } from "./data.js";
import type { TrainableLlama } from "./model.js";
import { AdamW, clipGradNorm, cosineLr, type AdamWOptions } from "./optim.js";
import type { TrainRng } from "./rng.js";

export interface TrainerOptions extends AdamWOptions {
  /** Total optimizer steps of the run (the schedule's length). */
  steps: number;
  lr: number;
  warmup: number;
  /** Micro-batches per optimizer step. */
  accum: number;
  /** Clip the global gradient norm to this (0: off; default 1.0 as HF). */
  maxGradNorm?: number;
}

export interface StepInfo {
  /** 1-based index of the step just done. */
  step: number;
  /**
   * Mean loss over the step's counted targets (token-weighted over the micro-batches; the
   * gradient averages the micro-batches' means, as HF does, which differs only when their target
   * counts differ).
   */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens (inputs) processed in this step, and their rate. */
  tokens: number;
  tokensPerSecond: number;
  seconds: number;
}

export class Trainer {
  readonly optimizer: AdamW;
  /** Optimizer steps done. */
  step = 0;

  constructor(readonly model: TrainableLlama, readonly loader: DataLoader, readonly rng: TrainRng, readonly options: TrainerOptions) {
    if (!Number.isInteger(options.accum) || options.accum < 1) throw new TrainError(`accum must be a positive integer, got ${options.accum}`);
    if (loader.batch !== model.B || loader.dataset.seq !== model.T) {
      throw new TrainError(`the loader gives ${loader.batch} x ${loader.dataset.seq} micro-batches, the model takes ${model.B} x ${model.T}`);
    }
    this.optimizer = new AdamW(model.trainableParams(), options);
  }

  /** One optimizer step. */
  trainStep(): StepInfo {
    const { model, loader, options } = this;
    const started = performance.now();
    model.zeroGrad();
    let sum = 0;
    let count = 0;
    for (let a = 0; a < options.accum; a++) {
      loader.next();
      const r = model.forwardBackward(loader.ids, loader.targets, 1 / options.accum);
      sum += r.sum;
      count += r.count;
    }
    const loss = count > 0 ? sum / count : 0;
    const stepNo = this.step + 1;
    if (!Number.isFinite(loss)) throw new TrainError(`step ${stepNo}: the loss is ${loss}; stopping (lower --lr, or check the data)`);
    const params = this.optimizer.params;
    const gradNorm = clipGradNorm(params, options.maxGradNorm ?? 1);
    if (!Number.isFinite(gradNorm)) throw new TrainError(`step ${stepNo}: the gradient norm is ${gradNorm} (loss ${loss.toFixed(4)}); stopping (lower --lr)`);
    const lr = cosineLr(this.step, { lr: options.lr, warmup: options.warmup, total: options.steps });
    this.optimizer.step(lr);
    this.step = stepNo;
    const seconds = (performance.now() - started) / 1000;
    const tokens = options.accum * model.N;
    return { step: stepNo, loss, lr, gradNorm, tokens, tokensPerSecond: tokens / seconds, seconds };
  }
}
