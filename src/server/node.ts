/**
 * node:http adapter: each IncomingMessage becomes a web Request (its body streamed, its
 * AbortSignal fired when the client goes away), and the Response is written back with
 * backpressure. Nothing here knows the API.
 *
 * Nothing a client sends may end the process: a method the fetch API refuses (TRACE, CONNECT,
 * TRACK) is answered 405, a request target that is not a path 400, and any other failure
 * while turning the request into a Request or writing the Response is answered 500 (or the
 * connection closed, once the head is out) by a last-resort handler per request. The URL is
 * built from the bound address, never from the Host header (the app checks that header).
 * A response sent before the request body was read (413, 401, 404) closes the connection, so
 * the unread body cannot be taken for the next request on it.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ServeOptions, ServedHandle, FetchHandler } from "./runtime.js";

/** Methods undici's Request refuses to construct (the fetch spec's forbidden methods). */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

/** A request the adapter answers itself, before the app sees it. */
class AdapterRefusal extends Error {
  constructor(readonly status: number, message: string, readonly code: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

function sendError(res: ServerResponse, status: number, message: string, code: string | null, type = status >= 500 ? "server_error" : "invalid_request_error", extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)), ...extra };
  if (!res.req.complete) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(body);
}

/** The path and query of the request target (origin form, or the path of an absolute form). */
function requestPath(target: string): string {
  if (target.startsWith("/")) return target;
  if (/^https?:\/\//i.test(target)) {
    try {
      const u = new URL(target);
      return u.pathname + u.search;
    } catch {
      // fall through
    }
  }
  throw new AdapterRefusal(400, `the request target ${JSON.stringify(target.slice(0, 100))} is not a path`, "invalid_request_target");
}

function toRequest(req: IncomingMessage, res: ServerResponse, base: string): { request: Request; controller: AbortController } {
  const method = (req.method ?? "GET").toUpperCase();
  if (FORBIDDEN_METHODS.has(method)) {
    throw new AdapterRefusal(405, `method ${method} is not allowed`, "method_not_allowed", { allow: "GET, HEAD, POST, OPTIONS" });
  }
  const url = base + requestPath(req.url ?? "/");
  const controller = new AbortController();
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else headers.set(key, value);
  }
  const hasBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: controller.signal };
  if (hasBody) {
    init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  let request: Request;
  try {
    request = new Request(url, init);
  } catch (error) {
    throw new AdapterRefusal(400, `malformed request: ${error instanceof Error ? error.message : String(error)}`, "invalid_request");
  }
  // "close" on the response before it finished: the client hung up.
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  return { request, controller };
}

async function writeResponse(response: Response, req: IncomingMessage, res: ServerResponse, controller: AbortController): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  // The body was not (wholly) read: close the connection after this response rather than
  // leave the rest of the body to be parsed as the next request.
  if (!req.complete) headers.connection = "close";
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const onAbort = () => void reader.cancel().catch(() => undefined);
  controller.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
      if (controller.signal.aborted) break;
    }
  } finally {
    controller.signal.removeEventListener("abort", onAbort);
    if (controller.signal.aborted) await reader.cancel().catch(() => undefined);
    res.end();
  }
}

/** Host part of a URL for a bound address ("::1" -> "[::1]"). */
function urlHost(hostname: string): string {
  return hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
}

/** Serves `handler` on node:http; resolves once listening. */
export function serveNode(handler: FetchHandler, options: ServeOptions): Promise<ServedHandle> {
  let base = `http://${urlHost(options.hostname || "localhost")}${options.port ? `:${options.port}` : ""}`;
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // Errors on either stream are answered below or end the request; never the process.
    req.on("error", () => undefined);
    res.on("error", () => undefined);
    let request: Request;
    let controller: AbortController;
    try {
      ({ request, controller } = toRequest(req, res, base));
    } catch (error) {
      if (error instanceof AdapterRefusal) sendError(res, error.status, error.message, error.code, undefined, error.headers);
      else sendError(res, 400, `malformed request: ${error instanceof Error ? error.message : String(error)}`, "invalid_request");
      return;
    }
    Promise.resolve()
      .then(() => handler(request))
      .then((response) => writeResponse(response, req, res, controller))
      .catch((error: unknown) => {
        try {
          sendError(res, 500, `internal error: ${error instanceof Error ? error.message : String(error)}`, null);
        } catch {
          res.destroy();
        }
      });
  };
  const server: Server = createHttpServer((req, res) => {
    try {
      handle(req, res);
    } catch {
      // The last resort: whatever went wrong belongs to this request alone.
      try {
        sendError(res, 500, "internal error", null);
      } catch {
        res.destroy();
      }
    }
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      base = `http://${urlHost(options.hostname || "localhost")}:${port}`;
      resolve({
        runtime: "node",
        hostname: options.hostname,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
