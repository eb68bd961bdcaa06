/**
 * What every endpoint shares: JSON responses and errors, the API key check, and the request body
 * read with a size limit (413 before or while it arrives) and parsed as one JSON object.
 */
import { ZhLlamaError } from "../errors.js";
import { GrammarError, JsonSchemaError } from "../grammar/index.js";
import { ApiError, badRequest } from "./errors.js";
import { isObject, type Json, type JsonObject } from "./requests.js";

export const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

export const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
export const errorResponse = (e: ApiError): Response => json(e.body(), e.status);

/** Any failure as an API error: ours keep their status; the library's are the request's fault (400); the rest are 500. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof GrammarError || error instanceof JsonSchemaError) return badRequest(error.message, "response_format");
  if (error instanceof ZhLlamaError) return badRequest(error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, `internal error: ${message}`, "server_error");
}

/** 401 unless the request carries `Authorization: Bearer KEY` (nothing to check without a key). */
export function checkAuth(request: Request, apiKey: string | undefined): void {
  if (apiKey === undefined) return;
  const header = request.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(header);
  if (!m) throw new ApiError(401, "You didn't provide an API key: send it as 'Authorization: Bearer KEY'", "authentication_error", null, "missing_api_key");
  if (!timingSafeEqual(m[1]!.trim(), apiKey)) throw new ApiError(401, "Incorrect API key provided", "authentication_error", null, "invalid_api_key");
}

/** The body as a JSON object: 413 over `maxBodyBytes` (declared or counted), 400 if not UTF-8 JSON or not an object. */
export async function readJson(request: Request, maxBodyBytes: number): Promise<JsonObject> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBodyBytes) throw new ApiError(413, `the request body is ${declared} bytes; the limit is ${maxBodyBytes}`, "invalid_request_error", null, "request_too_large");
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBodyBytes) {
        await reader.cancel().catch(() => undefined);
        throw new ApiError(413, `the request body is over the limit of ${maxBodyBytes} bytes`, "invalid_request_error", null, "request_too_large");
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  let body: Json;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, null, "invalid_json");
  }
  if (!isObject(body)) throw badRequest("the request body must be a JSON object", null, "invalid_json");
  return body;
}

export function randomId(): string {
  return globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 24);
}

function timingSafeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i % Math.max(1, a.length)) || 0) ^ (b.charCodeAt(i % Math.max(1, b.length)) || 0);
  return diff === 0;
}
