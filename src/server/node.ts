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
 * A response sent before the request body was read (413, 401, 404) leaves the connection usable:
 * the rest of the body is read and dropped (up to DRAIN_LIMIT bytes; a larger one closes the
 * connection instead), so the client can finish sending, read its answer and send the next
 * request on the same connection.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { ServeOptions, ServedHandle, FetchHandler } from "./runtime.js";

/** Unread request body the server reads and drops after an early answer, to keep the connection. */
const DRAIN_LIMIT = 16 << 20;

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
  closeIfUndrainable(res.req, headers);
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

/**
 * The request body as a web stream, read only when the app reads it (so a body the app never
 * touches is left for node:http to drop after the response), and `drain()`, which reads and
 * drops whatever the app left, within DRAIN_LIMIT.
 */
function bodyOf(req: IncomingMessage): { stream: ReadableStream<Uint8Array>; drain: () => void } {
  let attached = false;
  let draining = false;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const drain = (): void => {
    if (draining || !attached || req.complete || req.destroyed) return;
    draining = true;
    let dropped = 0;
    req.removeAllListeners("data");
    req.on("data", (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > DRAIN_LIMIT) req.socket?.destroy();
    });
    req.resume();
  };
  const attach = (): void => {
    attached = true;
    req.on("data", (chunk: Buffer) => {
      if (draining) return;
      controller!.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if ((controller!.desiredSize ?? 0) <= 0) req.pause();
    });
    req.on("end", () => {
      if (!draining) controller!.close();
    });
    req.on("error", (error) => {
      if (!draining) controller!.error(error);
    });
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      pull() {
        if (!attached) attach();
        req.resume();
      },
      cancel() {
        drain();
      },
    },
    { highWaterMark: 1 << 16, size: (chunk) => chunk.byteLength },
  );
  return { stream, drain };
}

function toRequest(req: IncomingMessage, res: ServerResponse, base: string): { request: Request; controller: AbortController; drain: () => void } {
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
  let drain = (): void => undefined;
  if (hasBody) {
    const body = bodyOf(req);
    init.body = body.stream;
    init.duplex = "half";
    drain = body.drain;
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
  return { request, controller, drain };
}

/** An early answer to a request whose declared body is too large to drain closes the connection. */
function closeIfUndrainable(req: IncomingMessage, headers: Record<string, string>): void {
  if (req.complete) return;
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT) headers.connection = "close";
}

async function writeResponse(response: Response, req: IncomingMessage, res: ServerResponse, controller: AbortController): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  closeIfUndrainable(req, headers);
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
    let drain: () => void;
    try {
      ({ request, controller, drain } = toRequest(req, res, base));
    } catch (error) {
      if (error instanceof AdapterRefusal) sendError(res, error.status, error.message, error.code, undefined, error.headers);
      else sendError(res, 400, `malformed request: ${error instanceof Error ? error.message : String(error)}`, "invalid_request");
      return;
    }
    // Whatever of the body the app left unread is dropped once the answer is out, so the next
    // request on this connection is parsed from where it begins (a body node:http never
    // started reading, it drops itself).
    res.once("finish", drain);
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
