/**
 * The kernels as plain TypeScript: the specification every WASM kernel is tested against, and
 * the place to read what each kernel computes.
 */
export * from "./quantize.js";
export * from "./matmul.js";
export * from "./norm.js";
export * from "./rope.js";
export * from "./attention.js";
export * from "./hadamard.js";
export * from "./moe.js";
