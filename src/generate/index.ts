/**
 * Generation, the model-independent part: logits processors and samplers, stop handling,
 * classifier-free guidance and speculative-sampling maths, all on plain Float32Arrays.
 */
export * from "./errors.js";
export * from "./rng.js";
export * from "./softmax.js";
export * from "./sampler.js";
export * from "./stop.js";
export * from "./cfg.js";
export * from "./speculative.js";
