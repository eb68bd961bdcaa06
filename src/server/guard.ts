/**
 * Who may call the server from a browser, as Hono middleware. A request whose Host header is not
 * an allowed name (default: localhost and the loopback addresses) is refused, as is one from a
 * web page whose Origin is not allowed (default: pages on localhost, and the chat page at / on
 * whatever host served it): without both checks any page a user visits could drive the server,
 * directly or by DNS rebinding. Requests without an Origin (curl, SDKs) are not affected.
 *
 * Hono's cors() writes the headers and answers preflights; it cannot refuse an origin (it only
 * leaves the allow-origin header out), so the 403s are this file's own middleware before it.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { ApiError } from "./errors.js";

export interface GuardOptions {
  corsOrigins?: readonly string[];
  allowedHosts?: readonly string[] | "*";
}

/** The Host check, the Origin check, then cors(): the allowed origin's headers and the preflight's 204. */
export function browserGuard(options: GuardOptions): MiddlewareHandler[] {
  const corsAny = options.corsOrigins?.includes("*") ?? false;
  const corsOrigins = new Set((options.corsOrigins ?? []).filter((o) => o !== "*").map(normaliseOrigin));
  const hostsAny = options.allowedHosts === "*";
  const allowedHosts = new Set(options.allowedHosts === "*" ? [] : (options.allowedHosts ?? []).map((h) => normaliseHostName(h)));

  /** 400 for a malformed Host header, 403 for a name this server does not answer to. */
  function checkHost(request: Request): void {
    const host = request.headers.get("host");
    if (host === null || host === "") return; // HTTP/1.0, or no authority: no browser sends this
    const name = parseHostHeader(host);
    if (name === undefined) throw new ApiError(400, `invalid Host header ${JSON.stringify(host.slice(0, 100))}`, "invalid_request_error", null, "invalid_host");
    if (hostsAny || isLocalHostName(name) || allowedHosts.has(name)) return;
    throw new ApiError(403, `Host ${JSON.stringify(name)} is not allowed: this server answers to localhost (start it with --allowed-host NAME, or --host on a public address)`, "invalid_request_error", null, "host_not_allowed");
  }

  /** The allow-origin value for the request's Origin (undefined without one); 403 for an origin not allowed. */
  function allowOrigin(request: Request): string | undefined {
    const origin = request.headers.get("origin");
    if (origin === null) return undefined;
    if (corsAny) return "*";
    const normal = normaliseOrigin(origin);
    // The page at / calling back to the host it came from is same-origin, whatever that host
    // is (the Host header was checked already: a rebinding attacker's name is refused there).
    const host = request.headers.get("host");
    const sameOrigin = host !== null && (normal === `http://${host.toLowerCase()}` || normal === `https://${host.toLowerCase()}`);
    if (sameOrigin || isLocalOrigin(normal) || corsOrigins.has(normal)) return origin;
    throw new ApiError(403, `cross-origin requests from ${JSON.stringify(origin.slice(0, 100))} are not allowed (start the server with --cors-origin ORIGIN to allow them)`, "invalid_request_error", null, "origin_not_allowed");
  }

  const allowed = new WeakMap<Request, string | undefined>();
  const check: MiddlewareHandler = async (c, next) => {
    checkHost(c.req.raw);
    allowed.set(c.req.raw, allowOrigin(c.req.raw));
    await next();
    if (c.req.method === "OPTIONS") c.res.headers.set("allow", "GET, HEAD, POST, OPTIONS");
  };
  const headers = cors({
    origin: (_origin, c) => allowed.get(c.req.raw),
    allowMethods: ["GET", "POST", "OPTIONS"],
    allowHeaders: ["authorization", "content-type"],
    maxAge: 86400,
  });
  return [check, headers];
}

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** localhost, *.localhost, 127.0.0.0/8, [::1]. */
function isLocalHostName(name: string): boolean {
  return LOOPBACK_NAMES.has(name) || name.endsWith(".localhost") || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** "Host" as "name" or "name:port" (IPv6 in brackets) -> the lower-case name; undefined if malformed. */
export function parseHostHeader(host: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return undefined;
  if (m[2] !== undefined && Number(m[2]) > 65535) return undefined;
  return normaliseHostName(m[1]!);
}

function normaliseHostName(name: string): string {
  let n = name.trim().toLowerCase();
  if (n.endsWith(".")) n = n.slice(0, -1);
  if (n.includes(":") && !n.startsWith("[")) n = `[${n}]`;
  return n;
}

/** "HTTP://LocalHost:80/" -> "http://localhost:80"; other strings unchanged but for case. */
function normaliseOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, "");
}

/** An origin served from this machine: http(s) on localhost, *.localhost, 127.x or [::1], any port. */
function isLocalOrigin(origin: string): boolean {
  const m = /^https?:\/\/(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?$/.exec(origin);
  return m !== null && isLocalHostName(m[1]!);
}
