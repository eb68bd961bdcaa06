#!/usr/bin/env node
/**
 * A static server for the page (npm run web): web/ at /, fixtures/models/ at /models/.
 *
 * - Cross-origin isolation: every response carries COOP same-origin and COEP require-corp, without
 *   which a browser hides SharedArrayBuffer and the page must run on one thread.
 * - Range requests (206 / 416), so the page reads a GGUF by URL lazily, header first.
 * - Only files under the two roots; anything else, or a path that climbs out, is 404.
 *
 * Usage: node web/serve.mjs [--port N] [--host H] [--no-isolation]
 *   (port 0 picks a free one; the URL is printed)
 */
import { createServer } from "node:http";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const ROOTS = [
  { prefix: "/models/", dir: join(here, "..", "fixtures", "models") },
  { prefix: "/", dir: here },
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".gguf": "application/octet-stream",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};
const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

function resolvePath(urlPath, roots) {
  let path;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path.endsWith("/")) path += "index.html";
  for (const { prefix, dir } of roots) {
    if (!path.startsWith(prefix)) continue;
    const file = normalize(join(dir, path.slice(prefix.length)));
    return file.startsWith(dir + sep) ? file : undefined;
  }
  return undefined;
}

/** bytes=a-b, a-, -n (one range); undefined when absent, null when unsatisfiable. */
export function parseRange(header, size) {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start;
  let end;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start <= end && start < size ? { start, end } : null;
}

/**
 * `isolation: false` leaves out COOP/COEP: how a plain static host serves the page (tests the fallback).
 * `roots` ({ prefix, dir } pairs, first match wins) replaces the page's two roots: the wllama
 * benchmark (tools/wllama-peer.mjs) serves its own page, wllama's files and a model folder.
 */
export function createWebServer({ isolation = true, roots = ROOTS } = {}) {
  const ISOLATION = isolation ? ISOLATION_HEADERS : {};
  return createServer(async (req, res) => {
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { ...ISOLATION, "Content-Type": "text/plain; charset=utf-8", ...headers });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n", { Allow: "GET, HEAD" });
    const file = resolvePath(new URL(req.url ?? "/", "http://x").pathname, roots);
    let info;
    try {
      info = file ? await stat(file) : undefined;
    } catch {
      info = undefined;
    }
    if (!file || !info?.isFile()) return send(404, "not found\n");
    const headers = {
      ...ISOLATION,
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
      "Accept-Ranges": "bytes",
      "Cache-Control": "no-cache",
      "Last-Modified": info.mtime.toUTCString(),
    };
    const range = parseRange(req.headers.range, info.size);
    if (range === null) return send(416, "range not satisfiable\n", { "Content-Range": `bytes */${info.size}` });
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    const length = info.size === 0 ? 0 : end - start + 1;
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "Content-Length": String(length),
      ...(range ? { "Content-Range": `bytes ${start}-${end}/${info.size}` } : {}),
    });
    if (req.method === "HEAD" || length === 0) return res.end();
    createReadStream(file, { start, end }).on("error", () => res.destroy()).pipe(res);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const port = Number(arg("--port", process.env.PORT ?? "8080"));
  const host = arg("--host", "127.0.0.1");
  const server = createWebServer({ isolation: !process.argv.includes("--no-isolation") });
  server.listen(port, host, () => {
    const addr = server.address();
    console.log(`zh-llama web: http://${host}:${addr.port}/ (cross-origin isolated, range requests)`);
  });
}
