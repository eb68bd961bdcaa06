/**
 * Everything the library has, flat: `import ... from "zh-llama/internals"`. The project's own
 * tools and advanced users reach kernels, program encoders, test generators and format helpers
 * here; most code wants the curated entry, `zh-llama` (src/index.ts).
 */
export * from "./errors.js";
export * from "./formats/ggml-types.js";
export * from "./formats/errors.js";
export * from "./tokenizer/index.js";
export * from "./formats/quants/index.js";
export * from "./formats/gguf/index.js";
export * from "./formats/safetensors.js";
export * from "./formats/pytorch.js";
export * from "./formats/pickle.js";
export * from "./formats/hf-config.js";
export * from "./convert/index.js";
export * from "./lora/index.js";
export * from "./generate/index.js";
export * from "./model/index.js";
export * from "./eval/index.js";
export * from "./chat/index.js";
export * as kernels from "./kernels/index.js";
export * as runtime from "./runtime/index.js";
export * as train from "./train/index.js";
export * from "./grammar/index.js";
export * from "./server/index.js";
export * from "./hub/index.js";
export { embed } from "./model/embed.js";
