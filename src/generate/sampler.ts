/**
 * The sampler: a chain of logits processors followed by a draw from what is left.
 *
 *   logits[V] --copy--> penalties -> logit bias -> temperature -> top-k -> top-p -> min-p
 *             -> typical-p -> draw with a seeded PRNG            (the default, "hf", order)
 *
 * The default order and UPSTREAM_DEFAULTS reproduce the Chinese-LLaMA-Alpaca (v1, v2,
 * Mixtral) `inference_hf.py` scripts, which call HF `generate` with temperature 0.2, top_k 40,
 * top_p 0.9, repetition_penalty 1.1, max_new_tokens 400; HF runs its processors (repetition
 * penalty) before its warpers, in the order temperature -> top_k -> top_p -> min_p -> typical_p
 * (transformers GenerationMixin._get_logits_processor).
 *
 * The "llama.cpp" order is llama.cpp's default sampler chain: common_sampler_init adds the
 * logit-bias sampler first, then common_params_sampling::samplers (common/common.h:
 * penalties, dry, top_n_sigma, top_k, typical_p, top_p, min_p, xtc, temperature), then dist.
 * DRY, top-n-sigma and XTC are not implemented here (they are off by default there). Note that
 * llama.cpp applies the temperature last, so its top-p / min-p / typical-p see the
 * untempered distribution.
 *
 * Temperature 0 means greedy: argmax (lowest id on ties) of the penalised, biased logits,
 * skipping the warpers, as HF's greedy search does.
 */
import { InvalidArgumentError } from "../errors.js";
import { Candidates } from "./candidates.js";
import { randomSeed, Xoshiro128 } from "./rng.js";

/** One step of the chain. */
export type SamplerStage = "penalties" | "logit_bias" | "temperature" | "top_k" | "top_p" | "min_p" | "typical_p";

const STAGES: readonly SamplerStage[] = ["penalties", "logit_bias", "temperature", "top_k", "top_p", "min_p", "typical_p"];

/** HF transformers' order; logit bias (not an HF processor) right after the penalties. */
export const HF_ORDER: readonly SamplerStage[] = Object.freeze([...STAGES]);

/** llama.cpp's default chain (see the file comment). */
export const LLAMA_CPP_ORDER: readonly SamplerStage[] = Object.freeze([
  "logit_bias", "penalties", "top_k", "typical_p", "top_p", "min_p", "temperature",
] as const);

/** Generation defaults of the upstream Chinese-LLaMA-Alpaca inference scripts. */
export const UPSTREAM_DEFAULTS = Object.freeze({
  temperature: 0.2,
  topK: 40,
  topP: 0.9,
  repetitionPenalty: 1.1,
  maxNewTokens: 400,
});

export interface SamplerOptions {
  /** Length of every logits vector this sampler will see. */
  vocabSize: number;
  /** 0 = greedy. Default 0.2 (upstream). */
  temperature?: number;
  /** 0 = off. Default 40 (upstream). */
  topK?: number;
  /** 1 = off. Default 0.9 (upstream). */
  topP?: number;
  /** 0 = off (default). */
  minP?: number;
  /** 1 = off (default). */
  typicalP?: number;
  /** HF repetition penalty over the context, prompt included; 1 = off. Default 1.1 (upstream). */
  repetitionPenalty?: number;
  /** OpenAI frequency penalty over the generated tokens; 0 = off (default). */
  frequencyPenalty?: number;
  /** OpenAI presence penalty over the generated tokens; 0 = off (default). */
  presencePenalty?: number;
  /** Penalties look at the last N context tokens only (llama.cpp: 64). Default: all (HF). */
  penaltyLastN?: number;
  /** Added to the logits of these ids; -Infinity bans a token. */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  /** "hf" (default), "llama.cpp", or an explicit list; stages not listed are not applied. */
  order?: "hf" | "llama.cpp" | readonly SamplerStage[];
  /** PRNG seed (xoshiro128**, see rng.ts). Default: random; read it back from `sampler.seed`. */
  seed?: number | bigint;
}

/** Every option resolved to a value. */
export interface ResolvedSamplerOptions {
  readonly vocabSize: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly typicalP: number;
  readonly repetitionPenalty: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly penaltyLastN: number;
  readonly logitBias: ReadonlyMap<number, number>;
  readonly order: readonly SamplerStage[];
  readonly seed: number | bigint;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new InvalidArgumentError(message);
}

function resolve(o: SamplerOptions): ResolvedSamplerOptions {
  const r = {
    vocabSize: o.vocabSize,
    temperature: o.temperature ?? UPSTREAM_DEFAULTS.temperature,
    topK: o.topK ?? UPSTREAM_DEFAULTS.topK,
    topP: o.topP ?? UPSTREAM_DEFAULTS.topP,
    minP: o.minP ?? 0,
    typicalP: o.typicalP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? UPSTREAM_DEFAULTS.repetitionPenalty,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    presencePenalty: o.presencePenalty ?? 0,
    penaltyLastN: o.penaltyLastN ?? Infinity,
    logitBias: new Map<number, number>(),
    order: o.order === undefined || o.order === "hf" ? HF_ORDER : o.order === "llama.cpp" ? LLAMA_CPP_ORDER : Object.freeze([...o.order]),
    seed: o.seed ?? randomSeed(),
  };
  check(Number.isSafeInteger(r.vocabSize) && r.vocabSize > 0, `vocabSize ${r.vocabSize} must be a positive integer`);
  check(Number.isFinite(r.temperature) && r.temperature >= 0, `temperature ${r.temperature} must be a finite number >= 0`);
  check(Number.isSafeInteger(r.topK) && r.topK >= 0, `topK ${r.topK} must be an integer >= 0`);
  check(r.topP > 0 && r.topP <= 1, `topP ${r.topP} must be in (0, 1]`);
  check(r.minP >= 0 && r.minP <= 1, `minP ${r.minP} must be in [0, 1]`);
  check(r.typicalP > 0 && r.typicalP <= 1, `typicalP ${r.typicalP} must be in (0, 1]`);
  check(Number.isFinite(r.repetitionPenalty) && r.repetitionPenalty > 0, `repetitionPenalty ${r.repetitionPenalty} must be a finite number > 0`);
  check(Number.isFinite(r.frequencyPenalty), `frequencyPenalty ${r.frequencyPenalty} must be finite`);
  check(Number.isFinite(r.presencePenalty), `presencePenalty ${r.presencePenalty} must be finite`);
  check(r.penaltyLastN === Infinity || (Number.isSafeInteger(r.penaltyLastN) && r.penaltyLastN >= 0),
    `penaltyLastN ${r.penaltyLastN} must be an integer >= 0 or Infinity`);
  const seen = new Set<string>();
  for (const stage of r.order) {
    check(STAGES.includes(stage), `unknown sampler stage ${JSON.stringify(stage)}; known: ${STAGES.join(", ")}`);
    check(!seen.has(stage), `sampler stage ${JSON.stringify(stage)} is listed twice`);
    seen.add(stage);
  }
  const entries = o.logitBias instanceof Map ? [...o.logitBias] : Object.entries(o.logitBias ?? {}).map(([k, v]) => [Number(k), v] as const);
  for (const [id, bias] of entries) {
    check(Number.isInteger(id) && id >= 0 && id < r.vocabSize, `logitBias id ${id} is not a token id below ${r.vocabSize}`);
    check(typeof bias === "number" && (Number.isFinite(bias) || bias === -Infinity), `logitBias[${id}] = ${bias} must be finite or -Infinity`);
    r.logitBias.set(id, bias);
  }
  return r;
}

/** The stages that do something with these options, in order. */
function plan(r: ResolvedSamplerOptions): SamplerStage[] {
  const active = (s: SamplerStage): boolean => {
    switch (s) {
      case "penalties":
        return r.penaltyLastN > 0 && (r.repetitionPenalty !== 1 || r.frequencyPenalty !== 0 || r.presencePenalty !== 0);
      case "logit_bias":
        return r.logitBias.size > 0;
      case "temperature":
        return r.temperature !== 1;
      case "top_k":
        return r.topK > 0 && r.topK < r.vocabSize;
      case "top_p":
        return r.topP < 1;
      case "min_p":
        return r.minP > 0;
      case "typical_p":
        return r.typicalP < 1;
    }
  };
  const stages = r.order.filter(active);
  // Dividing by T > 0 keeps the order of the logits, so "temperature then top-k" picks the same
  // ids as "top-k then temperature"; the second divides 40 logits instead of the vocabulary.
  for (let i = 0; i + 1 < stages.length; i++) {
    if (stages[i] === "temperature" && stages[i + 1] === "top_k") {
      stages[i] = "top_k";
      stages[i + 1] = "temperature";
      i++;
    }
  }
  return stages;
}

const NO_TOKENS: readonly number[] = Object.freeze([]);

export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly c: Candidates;
  private readonly rng: Xoshiro128;
  private readonly stages: readonly SamplerStage[];
  private readonly greedy: boolean;
  private readonly biasIds: Int32Array;
  private readonly biasValues: Float64Array;

  constructor(options: SamplerOptions) {
    this.options = resolve(options);
    this.c = new Candidates(this.options.vocabSize);
    this.rng = new Xoshiro128(this.options.seed);
    this.greedy = this.options.temperature === 0;
    const all = plan(this.options);
    // Greedy keeps only what changes the logits themselves; filters cannot move the argmax
    // except typical-p, which HF's greedy search does not run either.
    this.stages = this.greedy ? all.filter((s) => s === "penalties" || s === "logit_bias") : all;
    this.biasIds = Int32Array.from(this.options.logitBias.keys());
    this.biasValues = Float64Array.from(this.options.logitBias.values());
  }

  /** The seed the PRNG started from (the random one when none was given). */
  get seed(): number | bigint {
    return this.options.seed;
  }

  /** Restarts the PRNG from `seed`, or from the sampler's own seed. */
  reset(seed: number | bigint = this.options.seed): void {
    this.rng.seed(seed);
  }

  /**
   * Picks the next token.
   * @param logits       the model's last-position logits, vocabSize entries (not modified)
   * @param context      every token so far: the prompt, then the generated ones
   * @param promptLength how many of `context` are the prompt (frequency / presence penalties
   *                     count only the tokens after it)
   */
  sample(logits: ArrayLike<number>, context: ArrayLike<number> = NO_TOKENS, promptLength = 0): number {
    this.run(logits, context, promptLength);
    return this.greedy ? this.c.argmax() : this.c.draw(this.rng);
  }

  /** The processed logits the draw would use: -Infinity for removed tokens. */
  process<T extends Float32Array | Float64Array>(logits: ArrayLike<number>, context: ArrayLike<number>, promptLength: number, out: T): T {
    this.run(logits, context, promptLength);
    this.c.writeLogits(out);
    return out;
  }

  /**
   * The distribution the draw would use, as a dense vector (one-hot when greedy): what
   * speculative decoding compares between draft and target.
   */
  probabilities<T extends Float32Array | Float64Array>(logits: ArrayLike<number>, context: ArrayLike<number>, promptLength: number, out: T): T {
    this.run(logits, context, promptLength);
    if (this.greedy) {
      const best = this.c.argmax();
      out.fill(0);
      out[best] = 1;
    } else {
      this.c.writeProbabilities(out);
    }
    return out;
  }

  private run(logits: ArrayLike<number>, context: ArrayLike<number>, promptLength: number): void {
    const o = this.options;
    if (!(Number.isSafeInteger(promptLength) && promptLength >= 0 && promptLength <= context.length)) {
      throw new InvalidArgumentError(`promptLength ${promptLength} must be an integer in 0..${context.length} (the context length)`);
    }
    const c = this.c;
    c.load(logits);
    for (const stage of this.stages) {
      switch (stage) {
        case "penalties":
          c.applyPenalties(context, promptLength, o.penaltyLastN, o.repetitionPenalty, o.frequencyPenalty, o.presencePenalty);
          break;
        case "logit_bias":
          c.applyLogitBias(this.biasIds, this.biasValues);
          break;
        case "temperature":
          c.applyTemperature(o.temperature);
          break;
        case "top_k":
          c.topK(o.topK);
          break;
        case "top_p":
          c.topP(o.topP);
          break;
        case "min_p":
          c.minP(o.minP);
          break;
        case "typical_p":
          c.typicalP(o.typicalP);
          break;
      }
    }
  }
}

/** A sampler with the upstream defaults, overridden by `options`. */
export function createSampler(options: SamplerOptions): Sampler {
  return new Sampler(options);
}
