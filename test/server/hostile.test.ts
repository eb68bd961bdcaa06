/**
 * Issue 19: no single request may end the server process, early errors must not poison a
 * keep-alive connection, request faults are 4xx (never 500), and web pages / DNS rebinding
 * cannot drive a local server (CORS and Host checks). Over a real socket on 127.0.0.1.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServedHandle } from "../../src/server/index.js";
import { allowedHostsFor } from "../../src/cli/serve.js";
import { parseHostHeader } from "../../src/server/app.js";
import { get, post, testServer, type TestServer } from "./helpers.js";

let t: TestServer;
let handle: ServedHandle;
const KEY = "sk-hostile";
const auth = { authorization: `Bearer ${KEY}` };

beforeAll(async () => {
  t = await testServer({ apiKey: KEY, parallel: 1, maxQueue: 8 });
  handle = await serve(t.app.fetch, { hostname: "127.0.0.1", port: 0 });
});
afterAll(async () => {
  await handle?.close();
  await t?.model.dispose();
});

/** Sends raw bytes on a fresh connection; resolves with what came back by the time it closed. */
function raw(text: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(handle.port, "127.0.0.1");
    let out = "";
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    // Connection: close, so the server ends the connection after its answer.
    socket.write(text.replace("\r\n", "\r\nConnection: close\r\n"));
  });
}

const status = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

async function healthy(): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${handle.port}/health`);
  expect(r.status).toBe(200);
  expect(await r.json()).toMatchObject({ status: "ok", busy: 0, queued: 0 });
}

describe("one request never ends the server", () => {
  const cases: Array<[string, string, number]> = [
    ["TRACE", "TRACE /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405],
    ["Host 'a b'", "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
    ["Host '[::1'", "GET /health HTTP/1.1\r\nHost: [::1\r\n\r\n", 400],
    ["Host 'a:b:c'", "GET /health HTTP/1.1\r\nHost: a:b:c\r\n\r\n", 400],
    ["Host 'x:99999'", "GET /health HTTP/1.1\r\nHost: x:99999\r\n\r\n", 400],
    ["Host '%'", "GET /health HTTP/1.1\r\nHost: %\r\n\r\n", 400],
    ["an empty Host", "GET /health HTTP/1.1\r\nHost: \r\n\r\n", 200],
    ["a POST with an empty Host", "POST /v1/chat/completions HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\n\r\n{}", 401],
    ["an absolute-form target", "GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200],
    ["a target that is not a path", "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400],
    ["a target starting with //", "GET //evil.example/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404],
    ["a WebDAV method", "PROPFIND /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405],
    ["a bad percent-escape in a model path", "GET /v1/models/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-hostile\r\n\r\n", 400],
  ];
  it.each(cases)("%s gets a response, and the next request is served", async (_name, request, expected) => {
    const response = await raw(request);
    expect(status(response), response.slice(0, 200)).toBe(expected);
    if (expected >= 400) expect(response).toMatch(/"error":\{"message":"[^"]+"/);
    await healthy();
  });

  it("CONNECT and methods Node's parser refuses close the connection; the server stays", async () => {
    for (const request of ["CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", "TRACK /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "BREW /pot HTTP/1.1\r\n\r\n"]) {
      expect([0, 400]).toContain(status(await raw(request)));
      await healthy();
    }
  });

  it("all of them again, at once, without an API key", async () => {
    const responses = await Promise.all(cases.map(([, request]) => raw(request)));
    expect(responses.map(status)).toEqual(cases.map(([, , s]) => s));
    await healthy();
  });
});

describe("keep-alive after an early error", () => {
  /** Requests on one kept-alive connection; resolves with status and elapsed ms. */
  function send(agent: http.Agent, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; ms: number; error?: string }> {
    return new Promise((resolve) => {
      const t0 = Date.now();
      const r = http.request({ host: "127.0.0.1", port: handle.port, method, path, agent, headers: { ...headers, ...(body ? { "content-length": String(body.length), "content-type": "application/json" } : {}) } }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0 }));
      });
      r.on("error", (e) => resolve({ status: 0, ms: Date.now() - t0, error: e.message }));
      r.end(body);
    });
  }
  const big = Buffer.from(JSON.stringify({ messages: [{ role: "user", content: "x".repeat(600_000) }] }));
  it.each([
    ["401 (no key)", "/v1/chat/completions", {}, 401],
    ["404 (unknown path)", "/v1/nowhere", auth, 404],
    ["413 (body over --max-body)", "/v1/chat/completions", auth, 413],
  ] as Array<[string, string, Record<string, string>, number]>)("after a %s to a 600 KB body the next request is answered at once", async (_name, path, headers, expected) => {
    const small = await testServer({ apiKey: KEY, maxBodyBytes: 64 * 1024 });
    const h = await serve(small.app.fetch, { hostname: "127.0.0.1", port: 0 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await new Promise<{ status: number }>((resolve) => {
        const r = http.request({ host: "127.0.0.1", port: h.port, method: "POST", path, agent, headers: { ...headers, "content-length": String(big.length), "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        });
        r.on("error", () => resolve({ status: 0 }));
        r.end(big);
      });
      expect(first.status).toBe(expected);
      for (let i = 0; i < 3; i++) {
        const next = await new Promise<{ status: number; ms: number; error?: string }>((resolve) => {
          const t0 = Date.now();
          const r = http.request({ host: "127.0.0.1", port: h.port, method: "GET", path: "/health", agent }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0 }));
          });
          r.on("error", (e) => resolve({ status: 0, ms: Date.now() - t0, error: e.message }));
          r.end();
        });
        expect(next.error).toBeUndefined();
        expect(next.status).toBe(200);
        expect(next.ms).toBeLessThan(2000);
      }
    } finally {
      agent.destroy();
      await h.close();
      await small.model.dispose();
    }
  });

  it("clients sending bodies over the limit all read their 413 (the rest of the body is drained, not reset)", async () => {
    const body = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(2 << 20) }] });
    const statuses = await Promise.all(Array.from({ length: 24 }, () => fetch(`http://127.0.0.1:${handle.port}/v1/chat/completions`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body }).then((r) => r.status, () => 0)));
    expect(statuses).toEqual(Array(24).fill(413));
    await healthy();
  });

  it("a request whose body was read keeps its connection", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const a = await send(agent, "POST", "/v1/embeddings", Buffer.from(JSON.stringify({ input: "你好" })), auth);
      const b = await send(agent, "GET", "/health");
      expect([a.status, b.status]).toEqual([200, 200]);
    } finally {
      agent.destroy();
    }
  });
});

describe("request faults are 400s, not 500s", () => {
  it("GET /v1/models/%zz", async () => {
    const r = await t.app.fetch(get("/v1/models/%zz", auth));
    expect(r.status).toBe(400);
  });

  it("a 300 KB message (hundreds of thousands of tokens) is context_length_exceeded", async () => {
    const r = await t.app.fetch(post("/v1/chat/completions", { messages: [{ role: "user", content: "天地玄黄 ".repeat(60_000) }] }, auth));
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(r.status, body.error.message).toBe(400);
    expect(body.error.code).toBe("context_length_exceeded");
  });
});

describe("web pages and DNS rebinding", () => {
  it("no Origin (curl, SDKs): served, with no CORS header", async () => {
    const r = await t.app.fetch(get("/health"));
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });

  it.each(["http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:5173", "https://app.localhost"])("a page on %s is allowed (origin reflected)", async (origin) => {
    const r = await t.app.fetch(get("/health", { origin }));
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe(origin);
    expect(r.headers.get("vary")).toMatch(/origin/i);
  });

  it.each(["https://evil.example", "null", "http://localhost.evil.example", "http://127.0.0.1.nip.io"])("a page on %s gets 403 and no CORS header, for every endpoint and preflight", async (origin) => {
    for (const request of [get("/health", { origin }), post("/v1/completions", { prompt: "x", max_tokens: 1 }, { ...auth, origin, "content-type": "text/plain" }), new Request("http://test/v1/chat/completions", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } })]) {
      const r = await t.app.fetch(request);
      expect(r.status).toBe(403);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("origin_not_allowed");
    }
  });

  it("the page at / calling back to the address it was served from is same-origin, on any allowed host (--host 0.0.0.0 over a LAN)", async () => {
    const lan = await testServer({ allowedHosts: ["192.168.1.5"] });
    const r = await lan.app.fetch(get("/health", { host: "192.168.1.5:19327", origin: "http://192.168.1.5:19327" }));
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBe("http://192.168.1.5:19327");
    // Another page on that network is still a foreign origin.
    const other = await lan.app.fetch(get("/health", { host: "192.168.1.5:19327", origin: "http://192.168.1.6:8080" }));
    expect(other.status).toBe(403);
  });

  it("a preflight from an allowed origin gets the CORS answer", async () => {
    const r = await t.app.fetch(new Request("http://test/v1/chat/completions", { method: "OPTIONS", headers: { origin: "http://localhost:3000", "access-control-request-method": "POST" } }));
    expect(r.status).toBe(204);
    expect(r.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(r.headers.get("access-control-allow-methods")).toMatch(/POST/);
  });

  it("--cors-origin widens it; '*' opens it", async () => {
    const wide = await testServer({ corsOrigins: ["https://chat.example.com"] });
    const open = await testServer({ corsOrigins: ["*"] });
    try {
      const r = await wide.app.fetch(get("/health", { origin: "https://chat.example.com" }));
      expect(r.status).toBe(200);
      expect(r.headers.get("access-control-allow-origin")).toBe("https://chat.example.com");
      expect((await wide.app.fetch(get("/health", { origin: "https://other.example.com" }))).status).toBe(403);
      const any = await open.app.fetch(get("/health", { origin: "https://anything.example" }));
      expect(any.status).toBe(200);
      expect(any.headers.get("access-control-allow-origin")).toBe("*");
    } finally {
      await wide.model.dispose();
      await open.model.dispose();
    }
  });

  it("a Host that is not localhost or the bound address gets 403 (DNS rebinding); a public bind accepts any", async () => {
    for (const host of ["evil.example", "evil.example:19327", "192.168.1.10"]) {
      const response = await raw(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      expect(status(response), host).toBe(403);
      expect(response).toMatch(/host_not_allowed/);
    }
    for (const host of ["localhost", `localhost:${handle.port}`, `127.0.0.1:${handle.port}`, "[::1]:80", "LOCALHOST."]) {
      expect(status(await raw(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`)), host).toBe(200);
    }
    const open = await testServer({ allowedHosts: "*" });
    const named = await testServer({ allowedHosts: ["my-box.lan"] });
    try {
      expect((await open.app.fetch(get("/health", { host: "evil.example" }))).status).toBe(200);
      expect((await open.app.fetch(get("/health", { host: "a b" }))).status).toBe(400);
      expect((await named.app.fetch(get("/health", { host: "my-box.lan:19327" }))).status).toBe(200);
      expect((await named.app.fetch(get("/health", { host: "evil.example" }))).status).toBe(403);
    } finally {
      await open.model.dispose();
      await named.model.dispose();
    }
  });

  it("the CLI's rule: loopback --host checks Host, a public one does not unless --allowed-host names", () => {
    expect(allowedHostsFor("127.0.0.1")).toEqual(["127.0.0.1"]);
    expect(allowedHostsFor("::1")).toEqual(["::1"]);
    expect(allowedHostsFor("localhost", ["box"])).toEqual(["localhost", "box"]);
    expect(allowedHostsFor("0.0.0.0")).toBe("*");
    expect(allowedHostsFor("192.168.1.5")).toBe("*");
    expect(allowedHostsFor("0.0.0.0", ["my-box.lan"])).toEqual(["0.0.0.0", "my-box.lan"]);
  });

  it("Host parsing", () => {
    expect(parseHostHeader("Example.COM:80")).toBe("example.com");
    expect(parseHostHeader("[::1]:8080")).toBe("[::1]");
    for (const bad of ["a b", "[::1", "a:b:c", "x:99999", "%", "x:", ":80"]) expect(parseHostHeader(bad), bad).toBeUndefined();
  });
});
