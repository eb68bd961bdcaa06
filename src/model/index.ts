/** LLaMA-family models: hyper-parameters, weights in kernel memory, the forward pass. */
export * from "./errors.js";
export * from "./hparams.js";
export * from "./weights.js";
export * from "./plan.js";
export * from "./state.js";
export * from "./llama.js";
export * from "./model.js";
