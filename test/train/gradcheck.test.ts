/**
 * Finite-difference gradient checks.
 *
 * Element-wise ops, RMSNorm, RoPE, attention, cross-entropy and the embedding run in float64
 * here (the same code as training, given Float64Array), so central differences with h = 1e-6 are
 * accurate to ~1e-9 and the tolerance is tight (1e-6 relative, above a 1e-3 floor).
 *
 * Linear layers run on the float32 kernel. The loss sum(R * y) is linear in each of x, W, A and B
 * taken alone, so a central difference with a large step (h = 0.5) has no truncation error and
 * only float32 rounding (~1e-6 relative) remains: tolerance 1e-3.
 *
 * The whole model (float32) is checked along random directions per tensor, with central
 * differences at h = 6e-3 and 3e-3 combined by Richardson extrapolation (the h^2 error cancels;
 * the embeddings, seen through RMSNorm, are the most curved direction and need the small h);
 * float32 rounding of the loss (~1e-6 absolute) over 2h = 6e-3 adds ~3e-4 absolute.
 * Tolerance: 1% relative (+1e-3 absolute).
 */
import { describe, expect, it } from "vitest";
import {
  attentionBackward, attentionForward, crossEntropy, embeddingBackward, embeddingForward, rmsnormBackward,
  rmsnormForward, ropeBackward, ropeForward, swigluBackward, swigluForward, type AttentionShape,
} from "../../src/train/ops.js";
import { createKernels, KernelMemory } from "../../src/kernels/index.js";
import { allocLinearScratch, kernelEngine, Linear } from "../../src/train/linear.js";
import { ParameterSet, allocTensor } from "../../src/train/params.js";
import { makeConfig } from "../../src/train/config.js";
import { initModel } from "../../src/train/io.js";
import { TrainRng } from "../../src/train/rng.js";
import type { TrainableLlama } from "../../src/train/model.js";

const rng = new TrainRng(7);
const randn = (n: number, scale = 1) => Float64Array.from({ length: n }, () => rng.nextNormal() * scale);

/** Central difference of f with respect to each entry of x; compares with `analytic`. */
function checkAll(name: string, x: Float64Array, analytic: Float64Array, f: () => number, h = 1e-6, tol = 1e-6): void {
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + h;
    const up = f();
    x[i] = keep - h;
    const down = f();
    x[i] = keep;
    const numeric = (up - down) / (2 * h);
    const err = Math.abs(numeric - analytic[i]!) / (1e-3 + Math.abs(numeric));
    worst = Math.max(worst, err);
  }
  expect(worst, `${name}: worst relative error ${worst}`).toBeLessThan(tol);
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

describe("gradient checks, float64, per op", () => {
  it("RMSNorm (x and weight)", () => {
    const N = 3, C = 8, eps = 1e-5;
    const x = randn(N * C), w = randn(C), R = randn(N * C);
    const out = new Float64Array(N * C), rstd = new Float64Array(N);
    const loss = () => (rmsnormForward(out, rstd, x, w, N, C, eps), dot(out, R));
    loss();
    const dx = new Float64Array(N * C), dw = new Float64Array(C);
    rmsnormBackward(dx, dw, R, x, w, rstd, N, C);
    checkAll("rmsnorm dx", x, dx, loss);
    checkAll("rmsnorm dw", w, dw, loss);
  });

  it("RoPE (adjacent pairs, partial rotation, mscale)", () => {
    const B = 2, T = 3, H = 2, hd = 6, nRot = 4, half = nRot / 2;
    const cos = new Float64Array(T * half), sin = new Float64Array(T * half);
    for (let p = 0; p < T; p++) for (let i = 0; i < half; i++) {
      cos[p * half + i] = 1.2 * Math.cos(p * 10000 ** (-2 * i / nRot));
      sin[p * half + i] = 1.2 * Math.sin(p * 10000 ** (-2 * i / nRot));
    }
    const x = randn(B * T * H * hd), R = randn(B * T * H * hd);
    const loss = () => {
      const y = x.slice();
      ropeForward(y, B * T, T, H, hd, nRot, cos, sin);
      return dot(y, R);
    };
    const dx = R.slice();
    ropeBackward(dx, B * T, T, H, hd, nRot, cos, sin);
    checkAll("rope dx", x, dx, loss);
  });

  it("causal attention with grouped-query heads (q, k, v)", () => {
    const a: AttentionShape = { B: 2, T: 4, nHead: 4, nHeadKv: 2, headDim: 3, scale: 1 / Math.sqrt(3) };
    const N = a.B * a.T, qd = a.nHead * a.headDim, kvd = a.nHeadKv * a.headDim;
    const q = randn(N * qd), k = randn(N * kvd), v = randn(N * kvd), R = randn(N * qd);
    const out = new Float64Array(N * qd), probs = new Float64Array(a.B * a.nHead * a.T * a.T);
    const loss = () => (attentionForward(out, probs, q, k, v, a), dot(out, R));
    loss();
    const dq = new Float64Array(N * qd), dk = new Float64Array(N * kvd), dv = new Float64Array(N * kvd);
    attentionBackward(dq, dk, dv, new Float64Array(a.T), R, q, k, v, probs, a);
    checkAll("attention dq", q, dq, loss);
    checkAll("attention dk", k, dk, loss);
    checkAll("attention dv", v, dv, loss);
  });

  it("SwiGLU (gate and up)", () => {
    const n = 20;
    const g = randn(n, 2), u = randn(n), R = randn(n);
    const out = new Float64Array(n);
    const loss = () => (swigluForward(out, g, u, n), dot(out, R));
    const dg = new Float64Array(n), du = new Float64Array(n);
    swigluBackward(dg, du, R, g, u, n);
    checkAll("swiglu dg", g, dg, loss);
    checkAll("swiglu du", u, du, loss);
  });

  it("cross-entropy with ignored targets", () => {
    const rows = 3, V = 7;
    const logits = randn(rows * V, 2);
    const targets = Int32Array.from([2, -100, 5]);
    const loss = () => crossEntropy(logits.slice(), targets, 0, rows, V, null);
    const grad = logits.slice();
    const value = crossEntropy(grad, targets, 0, rows, V, 1);
    expect(value).toBeCloseTo(loss(), 12);
    checkAll("cross-entropy dlogits", logits, grad, loss);
  });

  it("embedding (repeated ids accumulate)", () => {
    const V = 5, C = 3, ids = Int32Array.from([1, 3, 1, 0]);
    const table = randn(V * C), R = randn(ids.length * C);
    const out = new Float64Array(ids.length * C);
    const loss = () => (embeddingForward(out, ids, table, ids.length, C), dot(out, R));
    const dtable = new Float64Array(V * C);
    embeddingBackward(dtable, R, ids, ids.length, C);
    checkAll("embedding dtable", table, dtable, loss);
  });
});

describe("gradient checks, float32 kernels", () => {
  it("linear layer with a LoRA adapter (x, W, A, B)", async () => {
    const mem = KernelMemory.create({ initialBytes: 8 << 20 });
    const k = await createKernels(mem, "wasm");
    const n = 5, inDim = 12, outDim = 9, r = 3;
    const set = new ParameterSet(mem, [
      { name: "w", rows: outDim, cols: inDim, kind: "matrix" },
      { name: "a", rows: r, cols: inDim, kind: "lora" },
      { name: "b", rows: outDim, cols: r, kind: "lora" },
    ]);
    for (const p of set.params) p.value.data.set(randn(p.size));
    const scratch = allocLinearScratch(k, { xT: 64 * 64, dyT: 64 * 64, tmp: 64 * 64, u: 64, loraT: 64 });
    const lora = { A: set.get("a"), B: set.get("b"), rank: r, scale: 2.5, u: allocTensor(mem, n * r) };
    const lin = new Linear(k, kernelEngine(k), scratch, set.get("w"), inDim, outDim, lora);
    const x = allocTensor(mem, n * inDim), y = allocTensor(mem, n * outDim), dy = allocTensor(mem, n * outDim), dx = allocTensor(mem, n * inDim);
    x.data.set(randn(n * inDim));
    const R = randn(n * outDim);
    dy.data.set(R);
    const loss = () => {
      lin.forward(y, x, n);
      let s = 0;
      for (let i = 0; i < n * outDim; i++) s += y.data[i]! * R[i]!;
      return s;
    };
    loss();
    set.zeroGrad();
    lin.backward(dx, false, dy, x, n);
    const check = (name: string, values: Float32Array, grad: Float32Array) => {
      const x64 = Float64Array.from(values);
      const f = () => (values.set(x64), loss());
      checkAll(name, x64, Float64Array.from(grad), f, 0.5, 1e-3);
      values.set(x64);
    };
    check("linear dx", x.data, dx.data.slice());
    check("linear dW", set.get("w").value.data, set.get("w").grad.data.slice());
    check("lora dA", set.get("a").value.data, set.get("a").grad.data.slice());
    check("lora dB", set.get("b").value.data, set.get("b").grad.data.slice());
  });
});

/**
 * d loss / d t along random unit-RMS directions, per trainable tensor, vs the gradient. The loss
 * is evaluate()'s unless `training` (then forwardBackward's, with frozen dropout masks).
 */
function checkModel(model: TrainableLlama, ids: number[], targets: Int32Array, training = false): void {
  model.zeroGrad();
  model.forwardBackward(ids, targets, 1);
  const grads = new Map(model.trainableParams().map((p) => [p, p.grad.data.slice()]));
  if (training) model.freezeDropout(true);
  const lossAt = () => {
    const r = training ? model.forwardBackward(ids, targets, 1) : model.evaluate(ids, targets);
    return r.sum / r.count;
  };
  const h = 6e-3;
  for (const p of model.trainableParams()) {
    const d = randn(p.size);
    const keep = p.value.data.slice();
    const analytic = grads.get(p)!.reduce((s, g, i) => s + g * d[i]!, 0);
    const central = (step: number) => {
      for (let i = 0; i < p.size; i++) p.value.data[i] = keep[i]! + step * d[i]!;
      const up = lossAt();
      for (let i = 0; i < p.size; i++) p.value.data[i] = keep[i]! - step * d[i]!;
      const down = lossAt();
      p.value.data.set(keep);
      return (up - down) / (2 * step);
    };
    // Richardson extrapolation cancels the h^2 term of the central difference.
    const numeric = (4 * central(h / 2) - central(h)) / 3;
    const err = Math.abs(numeric - analytic) / (1e-3 + Math.abs(numeric));
    if (process.env.GRADDEBUG) console.log(p.name, numeric, analytic, err);
    else expect(err, `${p.name}: directional derivative ${numeric} vs gradient ${analytic}`).toBeLessThan(1e-2);
  }
  model.freezeDropout(false);
}

describe("gradient checks, whole tiny model (float32)", () => {
  const cfg = makeConfig({ nVocab: 40, nEmbd: 16, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 24, nCtx: 16 });
  const B = 2, T = 5;
  const ids = Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % cfg.nVocab);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i % 4 === 3 ? -100 : (i * 11 + 1) % cfg.nVocab));

  it("full fine-tuning: every tensor", async () => {
    const model = await initModel(cfg, { batch: B, seq: T, headChunk: 3 }, 11);
    for (const p of model.base.params) for (let i = 0; i < p.size; i++) p.value.data[i] = p.kind === "norm" ? 1 + 0.3 * rng.nextNormal() : p.value.data[i]! * 8;
    checkModel(model, ids, targets);
  });

  it("vocabulary of 2100 in lm_head blocks, head chunks of 3 rows", async () => {
    const big = makeConfig({ ...cfg, nVocab: 2100, nLayer: 1 });
    const model = await initModel(big, { batch: B, seq: T, headChunk: 3 }, 14);
    for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] = p.value.data[i]! * 8;
    const far = Int32Array.from(targets, (t, i) => (t < 0 ? t : (t * 97 + i * 331) % big.nVocab));
    checkModel(model, ids, far);
  });

  it("tied embeddings", async () => {
    const tied = makeConfig({ ...cfg, tiedEmbeddings: true });
    const model = await initModel(tied, { batch: B, seq: T }, 12);
    for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] = p.value.data[i]! * 8;
    checkModel(model, ids, targets);
  });

  it("LoRA on every target with modules_to_save", async () => {
    const model = await initModel(cfg, {
      batch: B, seq: T,
      lora: { rank: 2, alpha: 4, targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], modulesToSave: ["embed_tokens", "lm_head"] },
    }, 13);
    for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] = p.value.data[i]! * 8;
    // B starts at zero (PEFT); give it values so A's gradient is not zero.
    for (const p of model.lora!.params) if (p.name.endsWith("lora_b")) p.value.data.set(randn(p.size, 0.3));
    expect(model.trainableParams().map((p) => p.name)).toContain("token_embd.weight");
    expect(model.trainableParams().some((p) => p.name === "blk.0.attn_q.weight")).toBe(false);
    checkModel(model, ids, targets);
  });

  it("LoRA with dropout (masks frozen between the passes)", async () => {
    const model = await initModel(cfg, {
      batch: B, seq: T,
      lora: { rank: 2, alpha: 4, targets: ["q_proj", "v_proj", "o_proj", "down_proj"], modulesToSave: [], dropout: 0.3 },
    }, 15);
    for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] = p.value.data[i]! * 8;
    for (const p of model.lora!.params) if (p.name.endsWith("lora_b")) p.value.data.set(randn(p.size, 0.3));
    // Evaluation never drops: the same loss twice.
    expect(model.evaluate(ids, targets).sum).toBe(model.evaluate(ids, targets).sum);
    // Training does: two passes with fresh masks differ.
    model.zeroGrad();
    const a = model.forwardBackward(ids, targets).sum;
    const b = model.forwardBackward(ids, targets).sum;
    expect(a).not.toBe(b);
    checkModel(model, ids, targets, true);
  });
});
