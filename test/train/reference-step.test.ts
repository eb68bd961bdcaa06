/**
 * One training step (2 micro-batches accumulated, clipping, AdamW with weight decay) against an
 * independent numpy implementation, tools/train-step-reference.py, in float64.
 *
 * Adam's eps is 1e-6 here rather than 1e-8: on the first step the update is lr * g / (|g| + eps),
 * a sign function for |g| >> eps, so float32-vs-float64 differences in gradients near zero
 * (~1e-9) would flip whole updates with eps 1e-8; with 1e-6 the update is smooth there and the
 * weights agree to a small fraction of lr.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors, writeSafetensors } from "../../src/formats/safetensors.js";
import { makeConfig } from "../../src/train/config.js";
import { DataLoader, type Dataset } from "../../src/train/data.js";
import { initModel } from "../../src/train/io.js";
import { TrainRng } from "../../src/train/rng.js";
import { Trainer } from "../../src/train/trainer.js";

function hasNumpy(): boolean {
  try {
    execFileSync("python3", ["-c", "import numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Fixed samples in order. */
class FixedDataset implements Dataset {
  constructor(readonly seq: number, private readonly ids: number[][], private readonly targets: number[][]) {}
  get size(): number {
    return this.ids.length;
  }
  sample(i: number, ids: Int32Array, targets: Int32Array, at: number): void {
    ids.set(this.ids[i]!, at);
    targets.set(this.targets[i]!, at);
  }
}

describe.skipIf(!hasNumpy())("a training step vs numpy (tools/train-step-reference.py)", () => {
  for (const tied of [false, true]) {
    it(`GQA model, ${tied ? "tied" : "separate"} lm_head, accum 2, clipping, weight decay`, async () => {
      const cfg = makeConfig({ nVocab: 37, nEmbd: 24, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 40, nCtx: 32, tiedEmbeddings: tied, rmsEps: 1e-5 });
      const B = 2, T = 7, accum = 2;
      const model = await initModel(cfg, { batch: B, seq: T, headChunk: 5 }, 42);
      for (const p of model.base.params) for (let i = 0; i < p.size; i++) p.value.data[i] = p.kind === "norm" ? 1 + 0.1 * Math.sin(i) : p.value.data[i]! * 5;
      const rng = new TrainRng(5);
      const samples = Array.from({ length: B * accum }, () => Array.from({ length: T }, () => rng.nextInt(cfg.nVocab)));
      const targets = samples.map((s, k) => s.map((_, t) => ((t + k) % 5 === 4 ? -100 : rng.nextInt(cfg.nVocab))));
      const opts = { steps: 10, lr: 1e-3, warmup: 0, accum, maxGradNorm: 0.5, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-6 };

      const dir = mkdtempSync(join(tmpdir(), "zh-train-ref-"));
      try {
        const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
        for (const p of model.base.params) tensors[p.name] = { dtype: "F32", shape: p.rows === 1 ? [p.cols] : [p.rows, p.cols], data: p.value.data.slice() };
        const initial = new Map(model.base.params.map((p) => [p.name, p.value.data.slice()]));
        const batches = [0, 1].map((a) => ({ ids: samples.slice(a * B, a * B + B), targets: targets.slice(a * B, a * B + B) }));
        const step = {
          config: cfg, batches, lr: opts.lr, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay, maxGradNorm: opts.maxGradNorm,
          decay: model.base.params.filter((p) => p.kind === "matrix").map((p) => p.name),
        };
        await writeSafetensors(join(dir, "in.safetensors"), tensors, { step: JSON.stringify(step) });

        const loader = new DataLoader(new FixedDataset(T, samples, targets), B, new TrainRng(1), false);
        const trainer = new Trainer(model, loader, new TrainRng(1), opts);
        const grads = new Map<string, Float32Array>();
        // Keep the unclipped gradients: run the micro-batches by hand first, then the real step.
        model.zeroGrad();
        loader.next();
        model.forwardBackward(loader.ids, loader.targets, 1 / accum);
        loader.next();
        model.forwardBackward(loader.ids, loader.targets, 1 / accum);
        for (const p of model.base.params) grads.set(p.name, p.grad.data.slice());
        loader.setState({ epoch: 0, cursor: 0, order: [0, 1, 2, 3] });
        const info = trainer.trainStep();

        execFileSync("python3", ["tools/train-step-reference.py", join(dir, "in.safetensors"), join(dir, "out.safetensors")]);
        const out = await openSafetensors(join(dir, "out.safetensors"));
        expect(info.loss).toBeCloseTo(Number(out.metadata.loss), 5);
        expect(Math.abs(info.gradNorm - Number(out.metadata.grad_norm)) / info.gradNorm).toBeLessThan(1e-4);
        expect(info.gradNorm).toBeGreaterThan(opts.maxGradNorm); // the clipping path ran
        for (const p of model.base.params) {
          const g = await out.readTensorF32(`grad.${p.name}`);
          const mine = grads.get(p.name)!;
          let maxG = 0, maxDiff = 0;
          for (let i = 0; i < g.length; i++) {
            maxG = Math.max(maxG, Math.abs(g[i]!));
            maxDiff = Math.max(maxDiff, Math.abs(g[i]! - mine[i]!));
          }
          expect(maxDiff, `gradient of ${p.name}`).toBeLessThanOrEqual(1e-4 * maxG + 1e-9);
          const w = await out.readTensorF32(p.name);
          const w0 = initial.get(p.name)!;
          let worst = 0, moved = 0;
          for (let i = 0; i < w.length; i++) {
            worst = Math.max(worst, Math.abs(w[i]! - p.value.data[i]!));
            moved = Math.max(moved, Math.abs(w[i]! - w0[i]!));
          }
          expect(moved, `${p.name} should move`).toBeGreaterThan(0.5 * opts.lr);
          expect(worst, `updated ${p.name}`).toBeLessThan(0.01 * opts.lr);
        }
        await out.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
