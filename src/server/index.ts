/** The OpenAI-compatible HTTP API: a fetch(Request) -> Response core and runtime adapters. */
export { ApiError, type ApiErrorType } from "./errors.js";
export { SessionPool } from "./pool.js";
export { createServer, type ServerOptions, type ServerApp, type ServerStats } from "./app.js";
export { serve, detectRuntime, type FetchHandler, type ServeOptions, type ServedHandle, type Runtime } from "./runtime.js";
export { parseChatRequest, parseCompletionRequest, parseEmbeddingRequest, type ChatRequest, type CompletionRequest, type EmbeddingRequest, type ResponseFormat } from "./requests.js";
