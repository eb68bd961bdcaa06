/** Evaluation: perplexity (llama.cpp's method). */
export * from "./perplexity.js";
export * from "./bench.js";
