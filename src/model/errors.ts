import { ZhLlamaError } from "../errors.js";

/**
 * A model file that cannot run as a LLaMA-family model: a missing key or tensor, a shape that
 * disagrees with the hyper-parameters, an unsupported architecture. The message names it.
 */
export class ModelError extends ZhLlamaError {}

/** A request the loaded model cannot serve, such as a prompt longer than the context. */
export class ContextOverflowError extends ZhLlamaError {}

/**
 * A model that does not fit: the machine's memory, or one wasm32 memory (a single layer bigger
 * than 4 GiB). Raised by the memory plan before anything large is allocated; the message names
 * the sizes and the option that fixes it.
 */
export class MemoryPlanError extends ModelError {}
