/**
 * Training LLaMA models in TypeScript: forward and backward of the inference graph in float32
 * on the WASM matmul, AdamW, LoRA with PEFT-format adapters, checkpoints and loss curves.
 */
export * from "./config.js";
export * from "./params.js";
export * from "./ops.js";
export * from "./linear.js";
export * from "./head.js";
export * from "./model.js";
export * from "./optim.js";
export * from "./data.js";
export * from "./trainer.js";
export * from "./io.js";
export * from "./peft.js";
export * from "./checkpoint.js";
export * from "./log.js";
export { TrainRng } from "./rng.js";
export * from "./run.js";
export * from "./team.js";
