/**
 * Generation, the one home of decoding: logits processors and samplers, stop handling,
 * classifier-free guidance and speculative-sampling maths on plain Float32Arrays, and the decode
 * loops over a model that use them (decode.ts: plain; decode-cfg.ts; decode-speculative.ts).
 */
export * from "./errors.js";
export * from "./rng.js";
export * from "./softmax.js";
export * from "./sampler.js";
export * from "./stop.js";
export * from "./cfg.js";
export * from "./speculative.js";
export * from "./decode.js";
export * from "./decode-cfg.js";
export * from "./decode-speculative.js";
export * from "./strategy.js";
