/**
 * A trainable LLaMA: the graph zh-llama's inference runs (src/model/llama.ts), in float32, with
 * its backward pass. One micro-batch is B sequences of T tokens (N = B*T rows); every sequence
 * starts at position 0 and attends causally within itself.
 *
 * Per layer, forward (backward replays it in reverse, see backward()):
 *   ln1 = rmsnorm(x) * attn_norm
 *   q, k, v = Wq ln1, Wk ln1, Wv ln1;  q, k = rope(q), rope(k)     (adjacent pairs, as GGUF)
 *   att = softmax(q k^T * scale, causal) v                        (grouped-query heads)
 *   mid = x + Wo att
 *   ln2 = rmsnorm(mid) * ffn_norm
 *   x'  = mid + W2 (silu(W1 ln2) * W3 ln2)
 * then logits = Wout (rmsnorm(x) * output_norm) and cross-entropy against the targets; the
 * lm_head and the loss run in chunks of rows so the [N][V] logits never exist at once.
 */
import { InvalidArgumentError } from "../errors.js";
import type { Kernels } from "../kernels/index.js";
import { ropeFrequencies } from "../kernels/index.js";
import type { TrainModelConfig } from "./config.js";
import { KernelAttention } from "./attention.js";
import { LmHead } from "./head.js";
import { allocLinearScratch, kernelEngine, Linear, rowsOf, type LoraAdapter, type MatmulEngine } from "./linear.js";
import {
  embeddingBackward, embeddingForward, rmsnormBackward,
  rmsnormForward, ropeBackward, ropeForward, ropeTables, swigluBackward, swigluForward, type AttentionShape,
} from "./ops.js";
import { allocTensor, llamaParamSpecs, ParameterSet, type Param, type ParamSpec, type Tensor } from "./params.js";
import type { TrainRng } from "./rng.js";

/** LoRA target modules by their PEFT names (q_proj ... down_proj) and short names. */
export const LORA_TARGETS = {
  q_proj: "attn_q",
  k_proj: "attn_k",
  v_proj: "attn_v",
  o_proj: "attn_output",
  gate_proj: "ffn_gate",
  up_proj: "ffn_up",
  down_proj: "ffn_down",
} as const;
export type LoraTarget = keyof typeof LORA_TARGETS;

/** PEFT modules_to_save the trainer supports: trained in full alongside the adapters. */
export type ModuleToSave = "embed_tokens" | "lm_head";

export interface LoraSettings {
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  modulesToSave: ModuleToSave[];
  /** PEFT lora_dropout (default 0; upstream's scripts use 0.05). */
  dropout?: number;
}

/** Accepts "q", "q_proj", "gate", "gate_proj", ... */
export function parseLoraTarget(name: string): LoraTarget {
  const full = (name.endsWith("_proj") ? name : `${name}_proj`) as LoraTarget;
  if (!(full in LORA_TARGETS)) throw new InvalidArgumentError(`unknown LoRA target ${JSON.stringify(name)} (expected q, k, v, o, gate, up, down)`);
  return full;
}

export interface TrainModelOptions {
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
  lora?: LoraSettings;
  /** Rows of logits computed at once (default 64). */
  headChunk?: number;
  /** The matrix-product engine (default: one thread); a MatmulTeam is disposed with the model. */
  engine?: MatmulEngine & { dispose?: () => Promise<void> };
}

interface LayerLinears {
  wq: Linear; wk: Linear; wv: Linear; wo: Linear; gate: Linear; up: Linear; down: Linear;
}

/** What one layer's forward pass keeps for its backward pass (N = B*T token rows). */
interface LayerActs {
  ln1: Tensor; // [N][C]      rmsnorm(x) * attn_norm
  rstd1: Float32Array; // [N] 1 / rms(x)
  q: Tensor; // [N][nHead*hd]   after RoPE
  k: Tensor; // [N][nHeadKv*hd] after RoPE
  v: Tensor; // [N][nHeadKv*hd]
  probs: Float32Array; // [B][nHead][T][T] attention weights, zero above the diagonal
  att: Tensor; // [N][nHead*hd] attention output
  mid: Tensor; // [N][C]        x + Wo att
  ln2: Tensor; // [N][C]        rmsnorm(mid) * ffn_norm
  rstd2: Float32Array; // [N]
  g: Tensor; // [N][F] gate projection
  u: Tensor; // [N][F] up projection
  act: Tensor; // [N][F] silu(g) * u
}

export interface LossResult {
  /** Sum of -log p over the counted targets. */
  sum: number;
  /** Targets counted (not -100). */
  count: number;
}

export class TrainableLlama {
  readonly base: ParameterSet;
  readonly lora: ParameterSet | null;
  /** The adapter's settings (null: full fine-tuning). */
  readonly loraSettings: LoraSettings | null;
  readonly B: number;
  readonly T: number;
  readonly N: number;
  private readonly linears: LayerLinears[];
  /** Per layer: the attention and FFN RMSNorm weights. */
  private readonly norms: { attn: Param; ffn: Param }[];
  private trainable: Param[] | null = null;
  private readonly output: LmHead;
  private readonly acts: LayerActs[];
  /** The residual stream: resid[0] = embeddings, resid[l + 1] = layer l's output ([N][C] each). */
  private readonly resid: Tensor[];
  private readonly lnf: Tensor; // [N][C] rmsnorm(resid[nLayer]) * output_norm
  private readonly rstdf: Float32Array; // [N]
  /** Rows of logits computed at once (the head's chunk). */
  private readonly headChunk: number;
  /** [N][C] a sublayer's output before it joins the residual stream. */
  private readonly proj: Tensor;
  /** Gradients of the activations, shared by all layers (backward runs one layer at a time). */
  private readonly g: {
    resid: Tensor; ln: Tensor; att: Tensor; q: Tensor; k: Tensor; v: Tensor; gate: Tensor; up: Tensor; act: Tensor; lnf: Tensor;
  };
  /** [T][nRot/2] each: every sequence starts at position 0. */
  private readonly rope: { cos: Float32Array; sin: Float32Array };
  private readonly attention: KernelAttention;
  private readonly ids: Int32Array; // [N] the micro-batch's token ids
  /** Draws LoRA dropout masks (its state goes into checkpoints). */
  readonly rng: TrainRng | null;
  private readonly engine: MatmulEngine & { dispose?: () => Promise<void> };

  constructor(readonly k: Kernels, readonly cfg: TrainModelConfig, options: TrainModelOptions, rng?: TrainRng) {
    const { batch: B, seq: T } = options;
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new InvalidArgumentError(`batch (${B}) and seq (${T}) must be positive integers`);
    this.B = B;
    this.T = T;
    const N = (this.N = B * T);
    const c = cfg;
    const mem = k.memory;
    const qDim = c.nHead * c.headDim;
    const kvDim = c.nHeadKv * c.headDim;
    const C = c.nEmbd;
    const F = c.nFf;

    this.base = new ParameterSet(mem, llamaParamSpecs(c));
    const lora = options.lora;
    this.loraSettings = lora ? { rank: lora.rank, alpha: lora.alpha, targets: [...lora.targets], modulesToSave: [...lora.modulesToSave], dropout: lora.dropout ?? 0 } : null;
    const dropout = lora?.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new InvalidArgumentError(`LoRA dropout must be in [0, 1), got ${dropout}`);
    this.rng = rng ?? null;
    this.lora = lora ? new ParameterSet(mem, loraParamSpecs(c, lora)) : null;
    if (lora) {
      for (const p of this.base.params) p.trainable = false;
      if (lora.modulesToSave.includes("embed_tokens")) this.base.get("token_embd.weight").trainable = true;
      if (lora.modulesToSave.includes("lm_head")) this.outputWeight().trainable = true;
      if (!rng) throw new InvalidArgumentError("LoRA initialisation needs a random generator");
      initLora(this.lora!, rng);
    }

    this.headChunk = Math.min(N, options.headChunk ?? 256);
    const r = lora?.rank ?? 1;
    const wide = Math.max(C, qDim, F);
    const scratch = allocLinearScratch(k, {
      xT: N * Math.max(wide, r),
      dyT: N * wide,
      tmp: Math.max(wide * wide, N * wide),
      u: N * r,
      loraT: r * wide,
    });
    const engine = (this.engine = options.engine ?? kernelEngine(k));
    const linear = (name: string, inDim: number, outDim: number): Linear => {
      const w = this.base.get(name);
      const short = name.split(".")[2]!;
      const target = lora?.targets.find((t) => LORA_TARGETS[t] === short);
      let adapter: LoraAdapter | null = null;
      if (lora && target) {
        adapter = {
          A: this.lora!.get(`${name.slice(0, -".weight".length)}.lora_a`),
          B: this.lora!.get(`${name.slice(0, -".weight".length)}.lora_b`),
          rank: lora.rank,
          scale: lora.alpha / lora.rank,
          u: allocTensor(mem, N * lora.rank),
          dropout,
          mask: dropout > 0 ? allocTensor(mem, N * inDim) : null,
          xd: dropout > 0 ? allocTensor(mem, N * inDim) : null,
          rng: rng ?? null,
          frozen: false,
        };
      }
      return new Linear(k, engine, scratch, w, inDim, outDim, adapter);
    };
    this.linears = [];
    this.norms = [];
    this.acts = [];
    const t = (n: number) => allocTensor(mem, n);
    this.resid = [t(N * C)];
    for (let l = 0; l < c.nLayer; l++) {
      const p = `blk.${l}.`;
      this.norms.push({ attn: this.base.get(p + "attn_norm.weight"), ffn: this.base.get(p + "ffn_norm.weight") });
      this.linears.push({
        wq: linear(p + "attn_q.weight", C, qDim),
        wk: linear(p + "attn_k.weight", C, kvDim),
        wv: linear(p + "attn_v.weight", C, kvDim),
        wo: linear(p + "attn_output.weight", qDim, C),
        gate: linear(p + "ffn_gate.weight", C, F),
        up: linear(p + "ffn_up.weight", C, F),
        down: linear(p + "ffn_down.weight", F, C),
      });
      this.acts.push({
        ln1: t(N * C), rstd1: new Float32Array(N),
        q: t(N * qDim), k: t(N * kvDim), v: t(N * kvDim), probs: new Float32Array(B * c.nHead * T * T), att: t(N * qDim),
        mid: t(N * C),
        ln2: t(N * C), rstd2: new Float32Array(N),
        g: t(N * F), u: t(N * F), act: t(N * F),
      });
      this.resid.push(t(N * C));
    }
    this.output = new LmHead(k, engine, this.outputWeight(), c.nVocab, C, this.headChunk);
    this.lnf = t(N * C);
    this.rstdf = new Float32Array(N);
    this.proj = t(N * C);
    this.g = {
      resid: t(N * C), ln: t(N * C), att: t(N * qDim), q: t(N * qDim), k: t(N * kvDim), v: t(N * kvDim),
      gate: t(N * F), up: t(N * F), act: t(N * F), lnf: t(N * C),
    };
    const f = ropeFrequencies({ nDims: c.nRot, base: c.ropeFreqBase, neox: false, scaling: c.ropeScaling }, T);
    this.rope = ropeTables(T, c.nRot, f.invFreq, f.mscale);
    const attShape: AttentionShape = { B, T, nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim, scale: 1 / Math.sqrt(c.headDim) };
    this.attention = new KernelAttention(k, engine, attShape);
    this.ids = new Int32Array(N);
  }

  /** Reuse the current LoRA dropout masks in later training passes (for gradient checks). */
  freezeDropout(frozen: boolean): void {
    for (const L of this.linears) for (const lin of Object.values(L) as Linear[]) if (lin.lora) lin.lora.frozen = frozen;
  }

  /** Stops the matmul threads, if any. */
  async dispose(): Promise<void> {
    await this.engine.dispose?.();
  }

  /** lm_head's weight: output.weight, or the embeddings when tied. */
  outputWeight(): Param {
    return this.base.byName.get("output.weight") ?? this.base.get("token_embd.weight");
  }

  /** Every parameter the optimizer updates (fixed once training starts). */
  trainableParams(): Param[] {
    this.trainable ??= [...this.base.params, ...(this.lora?.params ?? [])].filter((p) => p.trainable);
    return this.trainable;
  }

  zeroGrad(): void {
    for (const p of this.trainableParams()) p.grad.data.fill(0);
  }

  /**
   * Forward and backward on one micro-batch: ids and targets hold N = B*T entries (targets[t]
   * is the id that should follow ids[t], or -100 for none). Gradients of mean loss * lossScale
   * are ADDED to the trainable parameters' gradients. Returns the loss sum and count.
   */
  forwardBackward(ids: ArrayLike<number>, targets: Int32Array, lossScale = 1): LossResult {
    this.forward(ids, true);
    const count = countTargets(targets, this.N);
    const result = this.head(targets, count > 0 ? lossScale / count : 0, true);
    this.backward();
    return result;
  }

  /** The loss without gradients (evaluation). */
  evaluate(ids: ArrayLike<number>, targets: Int32Array): LossResult {
    this.forward(ids);
    return this.head(targets, null, false);
  }

  /** Logits for every row ([N][V]); for tests and inspection, not the training path. */
  allLogits(ids: ArrayLike<number>): Float32Array {
    this.forward(ids);
    const { N, headChunk } = this;
    const V = this.cfg.nVocab;
    const C = this.cfg.nEmbd;
    const out = new Float32Array(N * V);
    for (let r0 = 0; r0 < N; r0 += headChunk) {
      const n = Math.min(headChunk, N - r0);
      this.output.forward(rowsOf(this.lnf, r0, n, C), n);
      this.output.gather(out, r0, n);
    }
    return out;
  }

  /** `training`: LoRA dropout on (the loss of evaluate() and allLogits() never drops). */
  private forward(ids: ArrayLike<number>, training = false): void {
    const { N, T, cfg: c, rope } = this;
    const C = c.nEmbd;
    if (ids.length !== N) throw new InvalidArgumentError(`a micro-batch holds ${N} token ids (batch x seq), got ${ids.length}`);
    for (let i = 0; i < N; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.nVocab) throw new InvalidArgumentError(`token id ${id} at row ${i} is outside the vocabulary (0..${c.nVocab - 1})`);
      this.ids[i] = id;
    }
    embeddingForward(this.resid[0]!.data, this.ids, this.base.get("token_embd.weight").value.data, N, C);
    for (let l = 0; l < c.nLayer; l++) {
      const a = this.acts[l]!;
      const L = this.linears[l]!;
      const x = this.resid[l]!;
      const norm = this.norms[l]!;
      rmsnormForward(a.ln1.data, a.rstd1, x.data, norm.attn.value.data, N, C, c.rmsEps);
      L.wq.forward(a.q, a.ln1, N, training);
      L.wk.forward(a.k, a.ln1, N, training);
      L.wv.forward(a.v, a.ln1, N, training);
      ropeForward(a.q.data, N, T, c.nHead, c.headDim, c.nRot, rope.cos, rope.sin);
      ropeForward(a.k.data, N, T, c.nHeadKv, c.headDim, c.nRot, rope.cos, rope.sin);
      this.attention.forward(a.att.data, a.probs, a.q.data, a.k.data, a.v.data);
      L.wo.forward(this.proj, a.att, N, training);
      this.k.add(x.addr, this.proj.addr, a.mid.addr, 0, N * C);
      rmsnormForward(a.ln2.data, a.rstd2, a.mid.data, norm.ffn.value.data, N, C, c.rmsEps);
      L.gate.forward(a.g, a.ln2, N, training);
      L.up.forward(a.u, a.ln2, N, training);
      swigluForward(a.act.data, a.g.data, a.u.data, N * c.nFf);
      L.down.forward(this.proj, a.act, N, training);
      this.k.add(a.mid.addr, this.proj.addr, this.resid[l + 1]!.addr, 0, N * C);
    }
    rmsnormForward(this.lnf.data, this.rstdf, this.resid[c.nLayer]!.data, this.base.get("output_norm.weight").value.data, N, C, c.rmsEps);
  }

  /** lm_head + cross-entropy, chunk by chunk; with `backward`, dlnf and dWout too. */
  private head(targets: Int32Array, gradScale: number | null, backward: boolean): LossResult {
    const { N, headChunk } = this;
    const V = this.cfg.nVocab;
    const C = this.cfg.nEmbd;
    if (targets.length < N) throw new InvalidArgumentError(`targets hold ${targets.length} entries, the micro-batch ${N}`);
    for (let i = 0; i < N; i++) {
      const t = targets[i]!;
      if (t >= V || (t < 0 && t !== -100)) throw new InvalidArgumentError(`target ${t} at row ${i} is outside the vocabulary (0..${V - 1}, or -100 to skip)`);
    }
    let sum = 0;
    for (let r0 = 0; r0 < N; r0 += headChunk) {
      const n = Math.min(headChunk, N - r0);
      const x = rowsOf(this.lnf, r0, n, C);
      this.output.forward(x, n);
      sum += this.output.crossEntropy(targets, r0, n, backward ? gradScale : null);
      if (backward) this.output.backward(rowsOf(this.g.lnf, r0, n, C), x, n);
    }
    return { sum, count: countTargets(targets, N) };
  }

  private backward(): void {
    const { N, T, cfg: c, rope, g } = this;
    const C = c.nEmbd;
    const F = c.nFf;
    const grad = (p: Param): Float32Array | null => (p.trainable ? p.grad.data : null);
    g.resid.data.fill(0);
    const outNorm = this.base.get("output_norm.weight");
    rmsnormBackward(g.resid.data, grad(outNorm), g.lnf.data, this.resid[c.nLayer]!.data, outNorm.value.data, this.rstdf, N, C);
    for (let l = c.nLayer - 1; l >= 0; l--) {
      const a = this.acts[l]!;
      const L = this.linears[l]!;
      const norm = this.norms[l]!;
      // x' = mid + W2 act: the residual passes g.resid through; the FFN branch adds to it.
      L.down.backward(g.act, false, g.resid, a.act, N);
      swigluBackward(g.gate.data, g.up.data, g.act.data, a.g.data, a.u.data, N * F);
      L.gate.backward(g.ln, false, g.gate, a.ln2, N);
      L.up.backward(g.ln, true, g.up, a.ln2, N);
      rmsnormBackward(g.resid.data, grad(norm.ffn), g.ln.data, a.mid.data, norm.ffn.value.data, a.rstd2, N, C);
      // mid = x + Wo att
      L.wo.backward(g.att, false, g.resid, a.att, N);
      this.attention.backward(g.q.data, g.k.data, g.v.data, g.att.data, a.q.data, a.k.data, a.v.data, a.probs);
      ropeBackward(g.q.data, N, T, c.nHead, c.headDim, c.nRot, rope.cos, rope.sin);
      ropeBackward(g.k.data, N, T, c.nHeadKv, c.headDim, c.nRot, rope.cos, rope.sin);
      L.wq.backward(g.ln, false, g.q, a.ln1, N);
      L.wk.backward(g.ln, true, g.k, a.ln1, N);
      L.wv.backward(g.ln, true, g.v, a.ln1, N);
      rmsnormBackward(g.resid.data, grad(norm.attn), g.ln.data, this.resid[l]!.data, norm.attn.value.data, a.rstd1, N, C);
    }
    const emb = this.base.get("token_embd.weight");
    if (emb.trainable) embeddingBackward(emb.grad.data, g.resid.data, this.ids, N, C);
  }
}

function countTargets(targets: Int32Array, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (targets[i]! >= 0) count++;
  return count;
}

/** LoRA tensors, named after the layer they adapt: blk.{l}.attn_q.lora_a [r][in], .lora_b [out][r]. */
export function loraParamSpecs(c: TrainModelConfig, lora: LoraSettings): ParamSpec[] {
  if (!Number.isInteger(lora.rank) || lora.rank < 1) throw new InvalidArgumentError(`LoRA rank must be a positive integer, got ${lora.rank}`);
  if (!(lora.alpha > 0)) throw new InvalidArgumentError(`LoRA alpha must be positive, got ${lora.alpha}`);
  const base = new Map(llamaParamSpecs(c).map((s) => [s.name, s]));
  const specs: ParamSpec[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    for (const target of lora.targets) {
      const name = `blk.${l}.${LORA_TARGETS[target]}`;
      const w = base.get(`${name}.weight`)!;
      specs.push({ name: `${name}.lora_a`, rows: lora.rank, cols: w.cols, kind: "lora" });
      specs.push({ name: `${name}.lora_b`, rows: w.rows, cols: lora.rank, kind: "lora" });
    }
  }
  return specs;
}

/**
 * PEFT's initialisation: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0,
 * so training starts from the base model exactly.
 */
export function initLora(set: ParameterSet, rng: TrainRng): void {
  for (const p of set.params) {
    const d = p.value.data;
    if (p.name.endsWith(".lora_b")) {
      d.fill(0);
      continue;
    }
    const bound = 1 / Math.sqrt(p.cols);
    for (let i = 0; i < d.length; i++) d[i] = (2 * rng.nextFloat() - 1) * bound;
  }
}
