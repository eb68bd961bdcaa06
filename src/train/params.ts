/**
 * Parameters carved from one allocation by a size table (llm.c's `fill_in_parameter_sizes`):
 * every tensor of a set is a window into one float32 block in kernel memory, and its gradient
 * the same window into a second block, so the optimizer, gradient clipping and checkpoints walk
 * flat arrays while the kernels see plain addresses.
 *
 *   values: | token_embd | blk.0.attn_norm | blk.0.attn_q | ... | output_norm | output |
 *   grads:  | (same layout)                                                            |
 *
 * Names are GGUF's (`blk.{l}.attn_q.weight`); `hfName` gives the Hugging Face name used by PEFT.
 */
import { InvalidArgumentError } from "../errors.js";
import type { KernelMemory } from "../kernels/index.js";
import type { TrainModelConfig } from "./config.js";
import type { TrainRng } from "./rng.js";

/** Decides the default weight decay and initialisation: norms and embeddings are not decayed. */
export type ParamKind = "embedding" | "norm" | "matrix" | "lora";

export interface ParamSpec {
  name: string;
  /** Matrices: rows (outputs) x cols (inputs); vectors: 1 x n. */
  rows: number;
  cols: number;
  kind: ParamKind;
}

/** A float32 tensor in kernel memory: its byte address and a view created once. */
export interface Tensor {
  addr: number;
  data: Float32Array;
}

export interface Param extends ParamSpec {
  size: number;
  /** Float offset inside the set's value (and gradient) block. */
  offset: number;
  value: Tensor;
  grad: Tensor;
  trainable: boolean;
  /** Bumped by the optimizer after every update: cached transposes compare against it. */
  version: number;
}

/** A float32 tensor of n values carved from kernel memory. */
export function allocTensor(mem: KernelMemory, n: number): Tensor {
  const addr = mem.alloc(4 * Math.max(1, n));
  return { addr, data: mem.f32(addr, n) };
}

export class ParameterSet {
  readonly params: Param[];
  readonly byName = new Map<string, Param>();
  readonly count: number;
  readonly values: Tensor;
  readonly grads: Tensor;

  constructor(mem: KernelMemory, specs: readonly ParamSpec[]) {
    let count = 0;
    const offsets = specs.map((s) => {
      const o = count;
      count += s.rows * s.cols;
      return o;
    });
    this.count = count;
    this.values = allocTensor(mem, count);
    this.grads = allocTensor(mem, count);
    this.params = specs.map((s, i) => {
      const size = s.rows * s.cols;
      const offset = offsets[i]!;
      const p: Param = {
        ...s, size, offset, trainable: true, version: 0,
        value: { addr: this.values.addr + 4 * offset, data: this.values.data.subarray(offset, offset + size) },
        grad: { addr: this.grads.addr + 4 * offset, data: this.grads.data.subarray(offset, offset + size) },
      };
      if (this.byName.has(s.name)) throw new InvalidArgumentError(`duplicate parameter ${s.name}`);
      this.byName.set(s.name, p);
      return p;
    });
  }

  get(name: string): Param {
    const p = this.byName.get(name);
    if (!p) throw new InvalidArgumentError(`no parameter named ${JSON.stringify(name)}`);
    return p;
  }

  zeroGrad(): void {
    this.grads.data.fill(0);
  }
}

/** The size table of a LLaMA model, in GGUF's tensor order. */
export function llamaParamSpecs(c: TrainModelConfig): ParamSpec[] {
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const specs: ParamSpec[] = [{ name: "token_embd.weight", rows: c.nVocab, cols: c.nEmbd, kind: "embedding" }];
  for (let l = 0; l < c.nLayer; l++) {
    const p = `blk.${l}.`;
    specs.push(
      { name: p + "attn_norm.weight", rows: 1, cols: c.nEmbd, kind: "norm" },
      { name: p + "attn_q.weight", rows: qDim, cols: c.nEmbd, kind: "matrix" },
      { name: p + "attn_k.weight", rows: kvDim, cols: c.nEmbd, kind: "matrix" },
      { name: p + "attn_v.weight", rows: kvDim, cols: c.nEmbd, kind: "matrix" },
      { name: p + "attn_output.weight", rows: c.nEmbd, cols: qDim, kind: "matrix" },
      { name: p + "ffn_norm.weight", rows: 1, cols: c.nEmbd, kind: "norm" },
      { name: p + "ffn_gate.weight", rows: c.nFf, cols: c.nEmbd, kind: "matrix" },
      { name: p + "ffn_up.weight", rows: c.nFf, cols: c.nEmbd, kind: "matrix" },
      { name: p + "ffn_down.weight", rows: c.nEmbd, cols: c.nFf, kind: "matrix" },
    );
  }
  specs.push({ name: "output_norm.weight", rows: 1, cols: c.nEmbd, kind: "norm" });
  // lm_head is an embedding-sized matrix; PEFT trains it in full (modules_to_save), like the embeddings.
  if (!c.tiedEmbeddings) specs.push({ name: "output.weight", rows: c.nVocab, cols: c.nEmbd, kind: "embedding" });
  return specs;
}

/** GGUF tensor name -> Hugging Face LlamaForCausalLM state-dict key. */
export function hfName(ggufName: string): string {
  const fixed: Record<string, string> = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
  };
  if (fixed[ggufName]) return fixed[ggufName];
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(ggufName);
  const module = m ? HF_LAYER_MODULES[m[2]!] : undefined;
  if (!m || !module) throw new InvalidArgumentError(`no Hugging Face name for tensor ${JSON.stringify(ggufName)}`);
  return `model.layers.${m[1]}.${module}.weight`;
}

/** GGUF per-layer tensor -> HF module path inside a decoder layer. */
export const HF_LAYER_MODULES: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

/**
 * Deterministic initialisation (GPT-2 / llm.c): N(0, 0.02) for matrices and embeddings, the
 * residual projections (attn_output, ffn_down) scaled by 1/sqrt(2 nLayer) so the residual
 * stream's variance does not grow with depth, norms at 1.
 */
export function initLlamaParams(set: ParameterSet, c: TrainModelConfig, rng: TrainRng, std = 0.02): void {
  const residualStd = std / Math.sqrt(2 * c.nLayer);
  for (const p of set.params) {
    if (p.kind === "norm") {
      p.value.data.fill(1);
      continue;
    }
    const s = /attn_output|ffn_down/.test(p.name) ? residualStd : std;
    const d = p.value.data;
    for (let i = 0; i < d.length; i++) d[i] = rng.nextNormal() * s;
  }
}
