/**
 * node:http adapter: each IncomingMessage becomes a web Request (its body streamed, its
 * AbortSignal fired when the client goes away), and the Response is written back with
 * backpressure. Nothing here knows the API.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ServeOptions, ServedHandle, FetchHandler } from "./runtime.js";

function toRequest(req: IncomingMessage, res: ServerResponse, base: string): { request: Request; controller: AbortController } {
  const controller = new AbortController();
  // "close" on the response before it finished: the client hung up.
  res.on("close", () => {
    if (!res.writableFinished) controller.abort();
  });
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else headers.set(key, value);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: controller.signal };
  if (hasBody) {
    init.body = Readable.toWeb(req) as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  return { request: new Request(new URL(req.url ?? "/", base), init), controller };
}

async function writeResponse(response: Response, res: ServerResponse, controller: AbortController): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
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

/** Serves `handler` on node:http; resolves once listening. */
export function serveNode(handler: FetchHandler, options: ServeOptions): Promise<ServedHandle> {
  const server: Server = createHttpServer((req, res) => {
    const base = `http://${req.headers.host ?? `${options.hostname}:${options.port}`}`;
    const { request, controller } = toRequest(req, res, base);
    handler(request)
      .then((response) => writeResponse(response, res, controller))
      .catch((error: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: String(error), type: "server_error", param: null, code: null } }));
        } else res.destroy();
      });
  });
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
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
