import { ZhLlamaError } from "../errors.js";

/** OpenAI's error `type` values used here. */
export type ApiErrorType = "invalid_request_error" | "authentication_error" | "not_found_error" | "rate_limit_error" | "server_error";

/**
 * A request the server refuses, sent back as OpenAI's error body
 * `{"error": {"message", "type", "param", "code"}}` with `status`.
 */
export class ApiError extends ZhLlamaError {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 naming the field. */
export const badRequest = (message: string, param: string | null = null, code: string | null = null): ApiError => new ApiError(400, message, "invalid_request_error", param, code);
