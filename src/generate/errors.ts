import { ZhLlamaError } from "../errors.js";

/**
 * Logits that cannot be sampled from: NaN or +Infinity entries (a broken forward pass), or
 * every token ruled out. Bad options raise InvalidArgumentError instead.
 */
export class SamplingError extends ZhLlamaError {}
