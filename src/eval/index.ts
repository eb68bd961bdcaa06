/** Evaluation: perplexity (llama.cpp's method). */
export * from "./perplexity.js";
export * from "./bench.js";
export * from "./llama-cpp-peer.js";
export * from "./compare.js";
export * from "./csv.js";
export * from "./choice.js";
export * from "./quant-report.js";
