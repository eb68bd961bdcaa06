/**
 * zh-llama's public library API: what a program that reads, runs, chats with, serves, converts
 * or evaluates a Chinese-LLaMA / Alpaca model needs. The CLI (src/cli) is a thin shell over it.
 * Everything else (kernels, op programs, test-model generators, format internals) is in
 * `zh-llama/internals`; `zh-llama/formats/gguf` and `zh-llama/formats/ggml-types` are there for
 * file-format work alone.
 */

// Errors: one class per failure family.
export {
  ZhLlamaError, UsageError, InvalidArgumentError, OutputError,
} from "./errors.js";
export { FormatError, GgufFormatError, UnsupportedTensorTypeError } from "./formats/errors.js";
export { SentencePieceFormatError } from "./formats/sentencepiece.js";
export { ModelError, MemoryPlanError, ContextOverflowError } from "./model/errors.js";

// The bundled tiny model.
export { bundledModelPath, bundledModelUrl, BUNDLED_MODEL_FILE } from "./bundled.js";

// Files: GGUF, ggml tensor types, safetensors, PyTorch checkpoints.
export { openGguf, writeGguf, writeGgufSplit, encodeGguf, GgufFile, summarizeGguf } from "./formats/gguf/index.js";
export type { ByteInput, ByteSource, GgufValue, GgufTensorInfo, GgufWriteSpec } from "./formats/gguf/index.js";
export { GGMLType, ggmlTypeName, ggmlTypeFromName } from "./formats/ggml-types.js";
export { dequantize, quantize } from "./formats/quants/index.js";
export { openSafetensors, writeSafetensors } from "./formats/safetensors.js";
export { openTorchCheckpoint } from "./formats/pytorch.js";

// Tokenizer.
export {
  SentencePieceTokenizer, StreamingDecoder, TokenizerError, loadTokenizer, tokenizerFromGgufMetadata,
  mergeSentencePieceModels, parseSentencePieceModel, serializeSentencePieceModel, buildLlamaTokenizerModel,
} from "./tokenizer/index.js";

// Models: load, plan, evaluate.
export { LlamaModel, LlamaSession, KV_CACHE_TYPES, planMemory, describePlan, readHParams } from "./model/index.js";
export type { LoadOptions, SessionOptions, EvaluateOptions, KvCacheType, Backend, RopeOverrides, MemoryPlan, LlamaHParams } from "./model/index.js";
export { embed } from "./model/embed.js";

// Generation: samplers, the decode loops, grammar constraints.
export { generate, generateCfg, generateSpeculative, generateConstrained, generateText } from "./internals.js";
export type { GenerateOptions, GenerationEvent, GenerationResult } from "./generate/index.js";
export { createSampler, UPSTREAM_DEFAULTS } from "./generate/index.js";
export { Grammar, parseGbnf, jsonSchemaToGbnf } from "./grammar/index.js";

// Chat.
export { ChatSession, getTemplate, detectTemplate, TEMPLATE_NAMES, fitHistory } from "./chat/index.js";
export type { ChatMessage, ChatTemplate } from "./chat/index.js";

// The OpenAI-compatible server.
export { createServer, serve } from "./server/index.js";

// Tools: LoRA merge, conversion, quantization, evaluation.
export { mergeLora, mergeLoraFiles, openLoraAdapter } from "./lora/index.js";
export { convertHfToGguf, exportGgufToHf, quantizeGguf } from "./convert/index.js";
export { perplexity, evaluateChoices, benchModel } from "./eval/index.js";
