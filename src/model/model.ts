/**
 * A loaded LLaMA-family model on the main thread: the weights and the KV cache in kernel
 * memory, and `evaluate(ids)` running the forward pass over new tokens, reusing what the cache
 * already holds (a chat's earlier turns are never evaluated twice).
 */
import { GgufFile, openGguf, type ByteInput } from "../formats/gguf/index.js";
import { dequantize } from "../formats/quants/index.js";
import { InvalidArgumentError } from "../errors.js";
import { GGML_TYPES, GGMLType } from "../formats/ggml-types.js";
import { createKernels, groupedRow, isGrouped, panelBlocks, KernelMemory, KernelMemoryError, ropeFrequencies, type Kernels, type KvType, type RopeConfig, type RopeScaling } from "../kernels/index.js";
import { ContextOverflowError } from "./errors.js";
import { readHParams, type LlamaHParams } from "./hparams.js";
import { forwardProgram, REG_POS, type RunState } from "./llama.js";
import { createPool, defaultThreads, encodeProgram, execute, REGISTERS, type EncodedProgram, type Pool } from "../runtime/index.js";
import { loadWeights, type LlamaWeights } from "./weights.js";
import { availableMemory, checkPlanFits, formatPlanBytes, planMemory, type MemoryPlan } from "./plan.js";
import { kvCacheBytes, layScratch } from "./state.js";
import { MemoryPlanError } from "./errors.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../tokenizer/index.js";
import { checkWebGpuKvType, checkWebGpuTypes, createWebGpuRunner, type WebGpuOptions, type WebGpuRunner } from "../kernels/webgpu/index.js";

/**
 * KV cache element type, as llama.cpp's --cache-type-k/-v: f32 (4 bytes a value), f16 (2), or
 * q8_0 (34 bytes per 32 values: ggml Q8_0 blocks along each head, so the head size must be a
 * multiple of 32; attention then runs as llama.cpp's flash-attention path does, with its
 * Hadamard rotations where the head size is a multiple of 64: see kvRotation).
 */
export type KvCacheType = "f32" | "f16" | "q8_0";
export const KV_CACHE_TYPES: readonly KvCacheType[] = ["f32", "f16", "q8_0"];

/** The kernels' KV type for a cache type, or an error saying why this model cannot have it. */
export function kvTypeFor(hp: LlamaHParams, type: KvCacheType): KvType {
  switch (type) {
    case "f32":
      return GGMLType.F32;
    case "f16":
      return GGMLType.F16;
    case "q8_0":
      if (hp.headDim % 32 !== 0) {
        throw new InvalidArgumentError(`a q8_0 KV cache quantizes each attention head in blocks of 32 values; this model's head size is ${hp.headDim}, not a multiple of 32 (use an f16 or f32 cache)`);
      }
      return GGMLType.Q8_0;
    default:
      throw new InvalidArgumentError(`KV cache type must be ${KV_CACHE_TYPES.join(", ")}, got ${JSON.stringify(type)}`);
  }
}

export type Backend = "wasm" | "reference" | "webgpu";

/** Overrides of the model's RoPE settings (metadata gives the defaults). */
export interface RopeOverrides {
  /** none | linear | yarn | ntk; `ntkAlpha` alone implies ntk. */
  scaling?: "none" | "linear" | "yarn";
  /** Linear / YaRN factor (llama.cpp --rope-scale). */
  scale?: number;
  /** rope_theta (llama.cpp --rope-freq-base). */
  freqBase?: number;
  /** YaRN original context (llama.cpp --yarn-orig-ctx). */
  yarnOrigCtx?: number;
  /** NTK-aware scaling as in the Chinese-LLaMA-Alpaca patches: a fixed alpha or "auto". */
  ntkAlpha?: number | "auto";
  /** Formula for ntkAlpha "auto": v2 (default) alpha = L/(n_ctx_train/2) - 1, v1 alpha = (L/1024 - 1) * 1.1. */
  ntkAutoFormula?: "v1" | "v2";
}

export interface LoadOptions {
  backend?: Backend;
  /**
   * Worker threads for the wasm backend (default: all cores; one for models under
   * SMALL_MODEL_BYTES of weights, where sharing costs more than it gains). 1 runs on the calling
   * thread; more run each forward step on a worker pool meeting at barriers over shared memory.
   * The reference backend always runs on the calling thread.
   */
  threads?: number;
  /** KV cache length in tokens (default: the training context). */
  nCtx?: number;
  kvCacheType?: KvCacheType;
  /** Tokens per forward call when evaluating a prompt (llama.cpp's micro-batch). */
  batchSize?: number;
  rope?: RopeOverrides;
  /** Loading progress: bytes read from the file so far, and in all. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Sequences with their own KV cache the plan makes room for (default 1): a server's parallel
   * slots, or 2 for a chat with CFG. More can be created while the memories have room.
   */
  sessions?: number;
  /**
   * Bytes per wasm32 memory (default and maximum 4 GiB). The model is spread over as many
   * memories as it needs (src/model/plan.ts); a smaller limit spreads even small models (tests).
   */
  memoryLimit?: number;
  /** At most this many layers per memory (default: as many as fit); 1 spreads a model the most (tests). */
  layersPerMemory?: number;
  /** Refuse (default) a plan bigger than the memory the machine has free; false skips the check. */
  checkMemory?: boolean;
  /** backend "webgpu": a device to use instead of navigator.gpu's default adapter. */
  webgpu?: WebGpuOptions;
}

export interface EvaluateOptions {
  /** Return logits for every new token (perplexity), not just the last. */
  allLogits?: boolean;
  /**
   * Leave every new token's final residual stream in the output memory's scratch `x` (embed.ts
   * reads it). Otherwise the last layer's feed-forward runs only for the tokens whose logits are
   * returned, as llama.cpp's does.
   */
  hiddenStates?: boolean;
}

/** The rope scaling in effect: the model's own, then the caller's overrides. */
export function resolveRope(hp: LlamaHParams, o: RopeOverrides = {}): RopeConfig {
  const base = o.freqBase ?? hp.ropeFreqBase;
  let scaling: RopeScaling = hp.ropeScaling;
  if (o.scaling === "none") scaling = { type: "none" };
  if (o.scaling === "linear" || (o.scaling === undefined && o.scale !== undefined && scaling.type !== "yarn")) {
    scaling = { type: "linear", factor: o.scale ?? (scaling.type === "linear" ? scaling.factor : 1) };
  }
  if (o.scaling === "yarn" || (scaling.type === "yarn" && (o.scale !== undefined || o.yarnOrigCtx !== undefined))) {
    const prior = scaling.type === "yarn" ? scaling : undefined;
    scaling = { ...prior, type: "yarn", factor: o.scale ?? prior?.factor ?? 1, originalContext: o.yarnOrigCtx ?? prior?.originalContext ?? hp.nCtxTrain };
  }
  if (o.ntkAlpha !== undefined) {
    const factor = scaling.type === "linear" ? scaling.factor : 1;
    scaling =
      o.ntkAutoFormula === "v1"
        ? { type: "ntk", alpha: o.ntkAlpha, maxPositions: 2048, coeff: 1.1, factor }
        : { type: "ntk", alpha: o.ntkAlpha, maxPositions: hp.nCtxTrain, coeff: 1, factor };
  }
  return { nDims: hp.nRot, base, neox: false, scaling };
}

export interface SessionOptions {
  /** KV cache length in tokens (default: the model's training context, or the load-time value). */
  nCtx?: number;
  kvCacheType?: KvCacheType;
  /** Tokens per forward call when evaluating a prompt (llama.cpp's micro-batch). */
  batchSize?: number;
}

/**
 * The weights of a LLaMA-family model in kernel memory. Text is evaluated in sessions
 * (`createSession`), each with its own KV cache: a chat, a CFG's negative prompt, a server's
 * parallel slot. `model.session` is a default one for simple use.
 */
export class LlamaModel {
  /** Forward passes of all sessions take turns: the kernels and threads are shared. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly idle: LlamaSession[] = [];
  private defaultSession?: LlamaSession;

  private constructor(
    readonly file: GgufFile,
    readonly hp: LlamaHParams,
    /** The kernels over each of the plan's memories (one for most models). */
    readonly memoryKernels: readonly Kernels[],
    readonly weights: LlamaWeights,
    readonly rope: RopeConfig,
    readonly defaults: Required<SessionOptions>,
    /** The worker pool running forward steps, or undefined to run them on this thread. */
    readonly pool: Pool | undefined,
    /** Where every part of the model went (plan.ts). */
    readonly plan: MemoryPlan,
    /** backend "webgpu": runs forward steps on the GPU (src/kernels/webgpu). */
    readonly gpu?: WebGpuRunner,
  ) {}

  private cachedTokenizer?: SentencePieceTokenizer;

  /** The model's tokenizer, read from its GGUF metadata once (a TokenizerError if it has none). */
  get tokenizer(): SentencePieceTokenizer {
    return (this.cachedTokenizer ??= tokenizerFromGgufMetadata(this.file.metadata, this.file.name));
  }

  /** The kernels over the first memory (the only one unless the model is bigger than 4 GiB). */
  get kernels(): Kernels {
    return this.memoryKernels[0]!;
  }

  /** A default session, made on first use. */
  get session(): LlamaSession {
    return (this.defaultSession ??= this.createSession());
  }

  /** Threads a forward step runs on. */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  static async load(input: ByteInput | GgufFile, options: LoadOptions = {}): Promise<LlamaModel> {
    const file = input instanceof GgufFile ? input : await openGguf(input);
    try {
      const hp = readHParams(file.metadata);
      const nCtx = options.nCtx ?? hp.nCtxTrain;
      if (!Number.isInteger(nCtx) || nCtx < 1) throw new InvalidArgumentError(`context length must be a positive integer, got ${nCtx}`);
      const defaults = { nCtx, kvCacheType: options.kvCacheType ?? "f16", batchSize: Math.min(options.batchSize ?? 64, nCtx) } as const;
      // Refuse a cache type this model or backend cannot have before the weights are read.
      const kvType = kvTypeFor(hp, defaults.kvCacheType);
      const backend = options.backend ?? "wasm";
      if (backend === "webgpu") checkWebGpuKvType(kvType);
      const threads = backend === "wasm" ? (options.threads ?? threadsFor(file)) : 1;
      if (!Number.isInteger(threads) || threads < 1) throw new InvalidArgumentError(`threads must be a positive integer, got ${threads}`);

      // Plan every byte before allocating any, and refuse what the machine cannot hold.
      const plan = planMemory(file, hp, { nCtx, kvType, maxTok: defaults.batchSize, threads, sessions: options.sessions, memoryLimit: options.memoryLimit, layersPerMemory: options.layersPerMemory });
      if (backend === "webgpu" && plan.memories.length > 1) {
        throw new MemoryPlanError(`${file.name}: the webgpu backend runs models that fit one 4 GiB memory; this one needs ${plan.memories.length} (${formatPlanBytes(plan.totalBytes)}); use --backend wasm or a shorter context`);
      }
      if (options.checkMemory !== false) {
        const available = await availableMemory();
        if (available !== undefined) checkPlanFits(plan, available, file.name);
      }
      const mems = plan.memories.map((m) => KernelMemory.create({ initialBytes: Math.min(plan.memoryLimit, m.bytes + (1 << 20)), maximumBytes: plan.memoryLimit }));
      // WebGPU: the CPU side keeps the reference kernels' activation layout (the GPU kernels
      // size their buffers by it) and only embeds tokens; forward steps run on the GPU.
      const memoryKernels = await Promise.all(mems.map((mem) => createKernels(mem, backend === "webgpu" ? "reference" : backend)));
      const weights = await loadWeights(file, hp, memoryKernels, plan, options.onProgress);
      const rope = resolveRope(hp, options.rope);
      if (backend === "webgpu") {
        checkWebGpuTypes([weights.output, ...weights.layers.flatMap((L) => [L.wq, L.wk, L.wv, L.wo, ...(L.ffn ? [L.ffn.gate, L.ffn.up, L.ffn.down] : []), ...(L.moe ? [L.moe.router, L.moe.gate, L.moe.up, L.moe.down] : [])])].map((m) => m.type));
        const gpu = await createWebGpuRunner(mems[0]!, options.webgpu);
        return new LlamaModel(file, hp, memoryKernels, weights, rope, defaults, undefined, plan, gpu);
      }
      const pool = threads > 1 ? await createPool({ memories: mems, threadsPerMemory: threads, split: "layers" }) : undefined;
      return new LlamaModel(file, hp, memoryKernels, weights, rope, defaults, pool, plan);
    } catch (error) {
      if (!(input instanceof GgufFile)) await file.close();
      throw error;
    }
  }

  /**
   * A session with its own KV cache. Memory cannot be returned to a WebAssembly memory, so
   * released sessions (`session.release()`) are kept and handed out again.
   */
  createSession(options: SessionOptions = {}): LlamaSession {
    const o = { ...this.defaults, ...options };
    const kvType = kvTypeFor(this.hp, o.kvCacheType);
    if (this.gpu) checkWebGpuKvType(kvType);
    const reusable = this.idle.findIndex((s) => s.nCtx === o.nCtx && s.state.maxTok === Math.min(o.batchSize, o.nCtx) && s.state.kvType === kvType);
    if (reusable >= 0) {
      const session = this.idle.splice(reusable, 1)[0]!;
      session.reset();
      return session;
    }
    const state = allocateState(this.memoryKernels, this.hp, this.weights, o.nCtx, Math.min(o.batchSize, o.nCtx), kvType, this.threads);
    state.mscale = ropeFrequencies(this.rope, 0).mscale;
    return new LlamaSession(this, state, (s) => this.idle.push(s));
  }

  /** Runs `work` when no other session's forward pass is running. */
  exclusive<T>(work: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Shortcuts to the default session. */
  get nCtx(): number {
    return this.session.nCtx;
  }
  get nPast(): number {
    return this.session.nPast;
  }
  get cachedTokens(): readonly number[] {
    return this.session.cachedTokens;
  }
  evaluate(ids: readonly number[], options?: EvaluateOptions): Promise<Float32Array> {
    return this.session.evaluate(ids, options);
  }
  evaluateSequence(ids: readonly number[]): Promise<Float32Array> {
    return this.session.evaluateSequence(ids);
  }
  reset(): void {
    this.session.reset();
  }
  truncate(n: number): void {
    this.session.truncate(n);
  }

  async dispose(): Promise<void> {
    await this.pool?.dispose();
    this.gpu?.dispose();
    await this.file.close();
  }
}


/**
 * Below this many bytes of weights a forward step is a few hundred microseconds of work, and
 * meeting at a barrier after every op costs more than a second thread gains: the bundled
 * 12 MB model decodes at ~1000 tokens/s on one thread and ~450 on two here.
 */
export const SMALL_MODEL_BYTES = 32 << 20;

/** The default thread count for a model: all cores, or one for a model too small to share. */
export function threadsFor(file: GgufFile): number {
  // Token embeddings are only read a row per token; they are no work for the threads.
  const work = file.tensors.reduce((sum, t) => sum + (t.name === "token_embd.weight" ? 0 : t.byteSize), 0);
  return work < SMALL_MODEL_BYTES ? 1 : defaultThreads();
}

/** One sequence's KV cache and scratch over a model's weights. */
export class LlamaSession {
  /** Ids whose keys and values are in the cache, in order. */
  private cached: number[] = [];

  constructor(readonly model: LlamaModel, readonly state: RunState, private readonly onRelease: (s: LlamaSession) => void) {}

  get nCtx(): number {
    return this.state.nCtx;
  }

  /** Tokens currently in the KV cache. */
  get nPast(): number {
    return this.cached.length;
  }

  get cachedTokens(): readonly number[] {
    return this.cached;
  }

  /** Forget everything after the first n cached tokens. */
  truncate(n: number): void {
    this.cached.length = Math.max(0, Math.min(n, this.cached.length));
  }

  reset(): void {
    this.cached = [];
  }

  /** Hands the session back to its model for reuse. */
  release(): void {
    this.reset();
    this.onRelease(this);
  }

  /**
   * Makes the cache hold exactly `ids`, evaluating only the part after the longest prefix the
   * cache already has, and returns the logits after the last id.
   */
  async evaluateSequence(ids: readonly number[]): Promise<Float32Array> {
    let common = 0;
    while (common < ids.length && common < this.cached.length && ids[common] === this.cached[common]) common++;
    // The last token must be evaluated to produce its logits.
    if (common === ids.length) common = ids.length - 1;
    this.truncate(common);
    return this.evaluate(ids.slice(common));
  }

  /** Appends `ids` to the cache; returns the last token's logits (or every new token's). */
  evaluate(ids: readonly number[], options: EvaluateOptions = {}): Promise<Float32Array> {
    const { hp } = this.model;
    const s = this.state;
    if (ids.length === 0) return Promise.reject(new InvalidArgumentError("evaluate() needs at least one token"));
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= hp.nVocab) return Promise.reject(new InvalidArgumentError(`token id ${id} is outside the vocabulary (0..${hp.nVocab - 1})`));
    }
    if (this.cached.length + ids.length > s.nCtx) {
      return Promise.reject(new ContextOverflowError(`${this.cached.length} cached + ${ids.length} new tokens exceed the context of ${s.nCtx} tokens`));
    }
    return this.model.exclusive(() => this.run(ids, options));
  }

  /** Encoded forward programs by step shape: a decode step's program is built once. */
  private readonly programs = new Map<string, EncodedProgram>();
  private readonly registers = new Float64Array(REGISTERS);

  private program(nTok: number, logitsFrom: number, hiddenStates: boolean): EncodedProgram {
    const key = `${nTok}:${logitsFrom}:${hiddenStates}`;
    let program = this.programs.get(key);
    if (!program) {
      program = encodeProgram(forwardProgram(this.model.hp, this.model.weights, this.state, { nTok, logitsFrom, hiddenStates }));
      this.programs.set(key, program);
    }
    return program;
  }

  private async step(pos0: number, nTok: number, logitsFrom: number, hiddenStates: boolean): Promise<void> {
    const program = this.program(nTok, logitsFrom, hiddenStates);
    this.registers[REG_POS] = pos0;
    const gpu = this.model.gpu;
    if (gpu) {
      // The embeddings go up, the wanted logits come back; everything else stays on the GPU.
      const { nEmbd, nVocab } = this.model.hp;
      const s = this.state;
      const scratch = s.scratch[0]!;
      return gpu.run(program, [pos0], { upload: [[scratch.x, 4 * nTok * nEmbd]], download: [[scratch.logits, 4 * (nTok - logitsFrom) * nVocab]] });
    }
    const pool = this.model.pool;
    if (pool) await pool.run(program, [pos0]);
    else {
      const memories = this.model.memoryKernels;
      execute(memories[0]!, new Float64Array(program.sab), 0, program.length, this.registers, { thread: 0, threads: 1, peers: [], memories }, undefined);
    }
  }

  private async run(ids: readonly number[], options: EvaluateOptions): Promise<Float32Array> {
    const { hp, weights } = this.model;
    const s = this.state;
    const outMem = this.model.memoryKernels[weights.outputMemory]!.memory;
    const logits = s.scratch[weights.outputMemory]!.logits;
    const out = new Float32Array(options.allLogits ? ids.length * hp.nVocab : hp.nVocab);
    for (let start = 0; start < ids.length; start += s.maxTok) {
      const chunk = ids.slice(start, start + s.maxTok);
      const pos0 = this.cached.length;
      this.prepareRope(pos0 + chunk.length);
      this.embed(chunk);
      const last = start + chunk.length === ids.length;
      const logitsFrom = options.allLogits ? 0 : last ? chunk.length - 1 : chunk.length;
      await this.step(pos0, chunk.length, logitsFrom, options.hiddenStates === true);
      const rows = chunk.length - logitsFrom;
      if (rows > 0) out.set(outMem.f32(logits, rows * hp.nVocab), options.allLogits ? start * hp.nVocab : 0);
      this.cached.push(...chunk);
    }
    return out;
  }

  /** Writes the token embeddings (one dequantized row per id) into x, in memory 0 where a step starts. */
  private embed(ids: readonly number[]): void {
    const { tokEmbd, embeddingMemory } = this.model.weights;
    const from = this.model.memoryKernels[embeddingMemory]!.memory;
    const to = this.model.memoryKernels[0]!.memory;
    const x = this.state.scratch[0]!.x;
    const n = this.model.hp.nEmbd;
    // rows in panels are read from the whole matrix (kernels/layout.ts), others from their group
    const panels = panelBlocks(n, GGML_TYPES[tokEmbd.type].blockSize) < n / GGML_TYPES[tokEmbd.type].blockSize;
    ids.forEach((id, t) => {
      const row = !isGrouped(tokEmbd.type, tokEmbd.rows) ? from.u8(tokEmbd.addr + id * tokEmbd.rowBytes, tokEmbd.rowBytes)
        : panels ? groupedRow(tokEmbd.type, from.u8(tokEmbd.addr, tokEmbd.rows * tokEmbd.rowBytes), id, n)
        : groupedRow(tokEmbd.type, from.u8(tokEmbd.addr + (id & ~3) * tokEmbd.rowBytes, 4 * tokEmbd.rowBytes), id & 3, n);
      dequantize(tokEmbd.type, row, n, to.f32(x + 4 * t * n, n));
    });
  }

  private ropeSeqLen = -1;

  /** RoPE frequencies change with the sequence only under NTK "auto". */
  private prepareRope(seqLen: number): void {
    const rope = this.model.rope;
    const auto = rope.scaling.type === "ntk" && rope.scaling.alpha === "auto";
    if (this.ropeSeqLen >= 0 && !auto) return;
    const f = ropeFrequencies(rope, seqLen);
    this.model.memoryKernels.forEach((k, m) => k.memory.f64(this.state.scratch[m]!.invFreq, f.invFreq.length).set(f.invFreq));
    this.state.mscale = f.mscale;
    this.ropeSeqLen = seqLen;
  }
}

/**
 * Carves a session's run state out of the model's memories (once; nothing is allocated per
 * token): scratch in every memory, each layer's KV cache in the layer's memory.
 */
export function allocateState(memoryKernels: readonly Kernels[], hp: LlamaHParams, w: LlamaWeights, nCtx: number, maxTok: number, kvType: KvType, threads: number): RunState {
  const matrices = [w.output, ...w.layers.flatMap((L) => [L.wq, L.wk, L.wv, L.wo, ...(L.ffn ? [L.ffn.gate, L.ffn.up, L.ffn.down] : []), ...(L.moe ? [L.moe.router, L.moe.gate, L.moe.up, L.moe.down] : [])])];
  const k0 = memoryKernels[0]!;
  const xqRow = Math.max(...matrices.map((m) => k0.actBytes(m.type, m.cols)));
  const cacheBytes = kvCacheBytes(hp, nCtx, kvType);
  try {
    const scratch = memoryKernels.map((k, m) => layScratch(k.memory, hp, { nCtx, maxTok, threads, xqRow, logits: m === w.outputMemory }));
    const cache = () => w.layerMemory.map((m) => memoryKernels[m]!.memory.alloc(cacheBytes));
    return { maxTok, nCtx, kvType, scratch, kCache: cache(), vCache: cache(), mscale: 1, threads };
  } catch (error) {
    if (!(error instanceof KernelMemoryError)) throw error;
    throw new MemoryPlanError(
      `no room for another session (KV cache ${formatPlanBytes(2 * hp.nLayer * cacheBytes)} at ${nCtx} tokens) in the model's memory: ` +
        `load it with sessions: N (the server's --parallel) so the plan reserves room, or use a shorter context (${error.message})`,
      { cause: error },
    );
  }
}
