#!/usr/bin/env node
// Reliability check of the compiled CLI and server (issue 19), bounded, on loopback only, and
// ending by itself:
//
//   node tools/reliability.mjs [--quick] [--big] [--json] [--keep]
//
// 1. server: `zh-llama serve` in a child process on 127.0.0.1 takes a mix of good, malformed,
//    oversized, aborted and hostile requests (TRACE, bad Host headers, foreign Origins, a
//    300 KB message, keep-alive after a 413 ...) at a fixed concurrency while slow clients hold
//    connections; reports requests sent and held, statuses by class, the server's RSS over the
//    run, and that it is still up and idle at the end. A second server with a hostile
//    chat_template answers 400 while its /health stays quick.
// 2. hostile inputs: each file runs through the CLI in a child process (30 s limit); reports
//    the outcome, the time and the peak RSS of each; every one must be a one-line typed error
//    (or success) under 30 s and 2 GB. Among them, the tokenizer on one huge line: 10 MB of
//    one joinable character (spaces, "-", "a", "人", "□") and 50 MB of random text.
// 3. kill tests: quantize / export-hf / convert --force are interrupted with SIGTERM, SIGINT
//    and SIGKILL mid-write; nothing may be lost (an old output and its manifest stay intact)
//    or left behind (after SIGKILL: once the same output is written again).
//
// One line per check, "ok ..." or "FAIL ...", then a summary; exit status 1 on any failure.
// --quick (CI): fewer requests and a subset of inputs, well under a minute. --big adds a
// 4.4 GiB tensor through quantize (sparse input; ~5 GB of disk). Needs `npm run build`.
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync, copyFileSync, openSync, writeSync, ftruncateSync, closeSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { deflateSync } from "fflate";

const { values: opts } = parseArgs({ options: { quick: { type: "boolean" }, big: { type: "boolean" }, json: { type: "boolean" }, keep: { type: "boolean" } } });
const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
if (!existsSync(join(dist, "cli/index.js"))) {
  console.log("FAIL reliability: dist/ is missing (run npm run build)");
  process.exit(1);
}
const zh = await import(pathToFileURL(join(dist, "internals.js")).href);
const { crc32 } = await import(pathToFileURL(join(dist, "formats/pytorch-zip.js")).href);
const work = mkdtempSync(join(tmpdir(), "zh-reliability-"));
const started = performance.now();
const LIMIT_MS = 30_000;
const LIMIT_RSS_MB = 2048;
let failures = 0;
const summary = { server: {}, hostile: [], kills: [] };

function report(ok, what) {
  console.log(`${ok ? "ok" : "FAIL"} ${what}`);
  if (!ok) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Running the CLI in a child, with its time and peak RSS

const WRAP = `const { main } = await import(${JSON.stringify(pathToFileURL(join(dist, "cli/index.js")).href)});
process.on("exit", () => process.stderr.write("\\n@@maxrss " + process.resourceUsage().maxRSS + "\\n"));
process.exitCode = await main(process.argv.slice(1));`;

/** Runs `zh-llama ARGS`; resolves with exit code / signal, output, wall time, peak RSS (MB). */
function cli(args, { timeoutMs = LIMIT_MS, onSpawn } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--input-type=module", "-e", WRAP, ...args], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    onSpawn?.(child);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const m = /@@maxrss (\d+)/.exec(stderr);
      stderr = stderr.replace(/\n?@@maxrss \d+\n?/, "");
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, rssMb: m ? Number(m[1]) / 1024 : NaN, timedOut: signal === "SIGKILL" && performance.now() - t0 >= timeoutMs });
    });
  });
}

/** The last non-progress line of stderr (the error line). */
const lastLine = (text) => text.split(/\r|\n/).map((l) => l.trim()).filter((l) => l && !/\d+%|\[#*\s*\]/.test(l)).pop() ?? "";
const hasStack = (text) => /\n\s+at .+:\d+:\d+/.test(text);

// ---------------------------------------------------------------------------------------------
// Fixtures

const tinyRandom = join(root, "fixtures/models/tiny-random-q8_0.gguf");

/** A copy of a GGUF with metadata changed. */
async function withMetadata(src, dst, changes) {
  const file = await zh.openGguf(src);
  const metadata = { ...file.metadata, ...changes };
  const tensors = file.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => file.readTensorBytes(t) }));
  await zh.writeGguf(dst, { metadata, metadataTypes: file.metadataTypes, tensors });
  await file.close();
  return dst;
}

const u32 = (v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const B = (...b) => Uint8Array.from(b);
const enc = (s) => new TextEncoder().encode(s);
const pstr = (s) => cat(B(0x58, ...u32(enc(s).length)), enc(s));
const pint = (v) => {
  if (v < 2 ** 31) return B(0x4a, ...u32(v));
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(v), true);
  return cat(B(0x8a, 8), b);
};
/** {"w": _rebuild_tensor_v2(storage(numel F32), offset, shape, stride)} */
const viewPickle = (name, numel, shape, stride) =>
  cat(B(0x80, 2, 0x7d), pstr(name), B(0x63), enc("torch._utils\n_rebuild_tensor_v2\n"), B(0x28, 0x28), pstr("storage"), B(0x63), enc("torch\nFloatStorage\n"), pstr("0"), pstr("cpu"), pint(numel), B(0x74, 0x51), pint(0), B(0x28), ...shape.map(pint), B(0x74, 0x28), ...stride.map(pint), B(0x74, 0x89, 0x74, 0x52, 0x73, 0x2e));

/** A zip of entries {name, data, deflate?, declaredSize?}. */
function zip(entries) {
  const parts = [];
  const central = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc(e.name);
    const body = e.deflate ? deflateSync(e.data, { level: 1 }) : e.data;
    const size = e.declaredSize ?? e.data.length;
    const crc = crc32(e.data);
    const head = (central) => {
      const b = new Uint8Array((central ? 46 : 30) + name.length);
      const d = new DataView(b.buffer);
      d.setUint32(0, central ? 0x02014b50 : 0x04034b50, true);
      const o = central ? 2 : 0;
      d.setUint16(4 + o, 20, true);
      if (central) d.setUint16(4, 20, true);
      d.setUint16(8 + o, e.deflate ? 8 : 0, true);
      d.setUint32(14 + o, crc, true);
      d.setUint32(18 + o, body.length, true);
      d.setUint32(22 + o, size, true);
      d.setUint16(26 + o, name.length, true);
      if (central) d.setUint32(42, offset, true);
      b.set(name, central ? 46 : 30);
      return b;
    };
    central.push(head(true));
    const local = head(false);
    parts.push(local, body);
    offset += local.length + body.length;
  }
  const cd = cat(...central);
  const end = new Uint8Array(22);
  const v = new DataView(end.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, cd.length, true);
  v.setUint32(16, offset, true);
  return cat(...parts, cd, end);
}

/** An HF directory (config.json + tokenizer.model of `hfDir`) whose only weights are `bin`. */
function hostileHfDir(name, hfDir, bin) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const f of ["config.json", "tokenizer.model"]) copyFileSync(join(hfDir, f), join(dir, f));
  writeFileSync(join(dir, "pytorch_model.bin"), bin);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// 1. The server

async function startServer(model, extra = []) {
  const child = spawn(process.execPath, [join(root, "bin/zh-llama.js"), "serve", "-m", model, "--port", "0", "--api-key", "sk-rel", "--parallel", "2", "--queue", "64", "--max-body", "1048576", "-t", "1", ...extra], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr.slice(-400)}`)), 60_000);
    child.stderr.on("data", (d) => {
      stderr += d;
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (c) => reject(new Error(`serve exited (${c}): ${stderr.slice(-400)}`)));
  });
  return { child, port, stderr: () => stderr };
}

const rssOf = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024, hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
};

/** One raw HTTP exchange on a fresh connection; resolves with the status (0: closed without one). */
function raw(port, text) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    s.setTimeout(5000, () => s.destroy());
    s.on("data", (d) => (out += d));
    s.on("error", () => undefined);
    s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
    s.write(text.replace("\r\n", "\r\nConnection: close\r\n"));
  });
}

async function serverSection() {
  const requests = opts.quick ? 240 : 1600;
  const concurrency = opts.quick ? 8 : 16;
  const slowClients = opts.quick ? 4 : 16;
  const { child, port } = await startServer(tinyRandom, ["--template", "plain"]);
  const base = `http://127.0.0.1:${port}`;
  const auth = { authorization: "Bearer sk-rel", "content-type": "application/json" };
  const rss = { start: rssOf(child.pid).rss, peak: 0, samples: [] };
  const sampler = setInterval(() => {
    const r = rssOf(child.pid);
    rss.peak = Math.max(rss.peak, r.rss);
    rss.samples.push(r.rss);
  }, 200);

  // Slow clients: each sends a request line and then one header byte a second, never finishing.
  const slow = [];
  for (let i = 0; i < slowClients; i++) {
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    s.write("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const tick = setInterval(() => s.write("X"), 1000);
    slow.push({ s, tick });
  }

  const statuses = { "2xx": 0, "4xx": 0, "5xx": 0, "closed": 0 };
  const byKind = {};
  const count = (kind, status) => {
    const cls = status === 0 ? "closed" : `${Math.floor(status / 100)}xx`;
    statuses[cls] = (statuses[cls] ?? 0) + 1;
    (byKind[kind] ??= {})[status] = (byKind[kind][status] ?? 0) + 1;
  };
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const kinds = [
    ["chat", async (i) => (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: [{ role: "user", content: `第${i}问` }], max_tokens: 8, seed: i }) })).status],
    ["chat-stream", async (i) => {
      const r = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: [{ role: "user", content: `流${i}` }], max_tokens: 8, stream: true }) });
      await r.text();
      return r.status;
    }],
    ["stream-aborted", async (i) => {
      const c = new AbortController();
      const r = await fetch(`${base}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ prompt: `abort ${i}`, max_tokens: 64, stream: true }), signal: c.signal });
      const reader = r.body.getReader();
      await reader.read();
      c.abort();
      return r.status;
    }],
    ["embeddings", async () => (await fetch(`${base}/v1/embeddings`, { method: "POST", headers: auth, body: JSON.stringify({ input: ["你好", "世界"] }) })).status],
    ["malformed-json", async () => (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: "{oops" })).status],
    ["wrong-types", async () => (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: "x", temperature: "hot" }) })).status],
    ["unknown-model", async () => (await fetch(`${base}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ model: "gpt-4", prompt: "x" }) })).status],
    ["no-key", async () => (await fetch(`${base}/v1/models`)).status],
    ["oversized-2MB", async () => (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(2 << 20) }] }) })).status],
    ["300KB-message", async () => (await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: [{ role: "user", content: "天地玄黄 ".repeat(60_000) }] }) })).status],
    ["models-%zz", async () => (await fetch(`${base}/v1/models/%zz`, { headers: auth })).status],
    ["TRACE", () => raw(port, "TRACE /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")],
    ["host-a-b", () => raw(port, "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n")],
    ["host-x:99999", () => raw(port, "GET /health HTTP/1.1\r\nHost: x:99999\r\n\r\n")],
    ["host-rebinding", () => raw(port, "GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n")],
    ["origin-evil", async () => (await fetch(`${base}/v1/completions`, { method: "POST", headers: { ...auth, origin: "https://evil.example", "content-type": "text/plain" }, body: JSON.stringify({ prompt: "x", max_tokens: 1 }) })).status],
    ["keepalive-after-413", () => new Promise((resolve) => {
      const body = Buffer.alloc(1_200_000, 0x20);
      const first = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", agent: keepAlive, headers: { ...auth, "content-length": body.length } }, (res) => {
        res.resume();
        res.on("end", () => {
          const t0 = performance.now();
          const next = http.request({ host: "127.0.0.1", port, path: "/health", agent: keepAlive }, (r2) => {
            r2.resume();
            r2.on("end", () => resolve(res.statusCode === 413 && r2.statusCode === 200 && performance.now() - t0 < 2000 ? 413 : 599));
          });
          next.on("error", () => resolve(599));
          next.end();
        });
      });
      first.on("error", () => resolve(0));
      first.end(body);
    })],
  ];
  const expected = { chat: [200], "chat-stream": [200], "stream-aborted": [200], embeddings: [200], "malformed-json": [400], "wrong-types": [400], "unknown-model": [404], "no-key": [401], "oversized-2MB": [413], "300KB-message": [400], "models-%zz": [400], TRACE: [405], "host-a-b": [400], "host-x:99999": [400], "host-rebinding": [403], "origin-evil": [403], "keepalive-after-413": [413] };
  let next = 0;
  let unexpected = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= requests) return;
      const [kind, run] = kinds[i % kinds.length];
      let status;
      try {
        status = await run(i);
      } catch {
        status = 0;
      }
      count(kind, status);
      if (!expected[kind].includes(status)) unexpected++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  // While slow clients still hold their connections, a normal request is answered at once.
  const h0 = performance.now();
  const health = await (await fetch(`${base}/health`)).json();
  const healthMs = performance.now() - h0;
  clearInterval(sampler);
  for (const { s, tick } of slow) {
    clearInterval(tick);
    s.destroy();
  }
  keepAlive.destroy();
  const alive = child.exitCode === null && child.signalCode === null;
  rss.end = rssOf(child.pid).rss;
  const tail = rss.samples.slice(-Math.max(1, Math.floor(rss.samples.length / 4)));
  Object.assign(summary.server, { requests, concurrency, slowClientsHeld: slowClients, seconds, statuses, byKind, unexpected, rssMb: { start: rss.start, peak: rss.peak, end: rss.end, lastQuarterMax: Math.max(...tail) }, health });
  report(alive, `server: still running after ${requests} requests at concurrency ${concurrency} with ${slowClients} slow clients holding connections (${seconds.toFixed(1)} s)`);
  report(unexpected === 0, `server: statuses by class ${JSON.stringify(statuses)}; every request got the status its kind calls for (${unexpected} did not)`);
  report(statuses["5xx"] === 0, "server: no 5xx");
  report(health.busy === 0 && health.queued === 0 && health.streams === 0, `server: idle at the end (busy ${health.busy}, queued ${health.queued}, streams ${health.streams}); /health answered in ${healthMs.toFixed(0)} ms beside the slow clients`);
  report(rss.peak < LIMIT_RSS_MB, `server: RSS ${rss.start.toFixed(0)} MB at the start, peak ${rss.peak.toFixed(0)} MB, ${rss.end.toFixed(0)} MB at the end`);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));

  // A model whose own chat template never ends.
  const evil = await withMetadata(tinyRandom, join(work, "evil-template.gguf"), { "tokenizer.chat_template": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}" });
  const s2 = await startServer(evil);
  const b2 = `http://127.0.0.1:${s2.port}`;
  const c0 = performance.now();
  const pending = fetch(`${b2}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2 }) });
  await sleep(300);
  const g0 = performance.now();
  const ok = (await fetch(`${b2}/health`)).status === 200;
  const gMs = performance.now() - g0;
  const r = await pending;
  const body = await r.json();
  const cMs = performance.now() - c0;
  const r2 = await fetch(`${b2}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ prompt: "x", max_tokens: 2 }) });
  summary.server.hostileTemplate = { status: r.status, ms: cMs, healthMs: gMs, message: body.error?.message };
  report(r.status === 400 && /chat template was stopped/.test(body.error?.message ?? "") && ok && gMs < 500 && r2.status === 200, `server: a hostile chat_template is a 400 after ${(cMs / 1000).toFixed(1)} s, /health answered in ${gMs.toFixed(0)} ms meanwhile, completions still served`);
  s2.child.kill("SIGTERM");
  await new Promise((r) => s2.child.once("exit", r));
}

// ---------------------------------------------------------------------------------------------
// 2. Hostile inputs

async function hostileSection(hfDir) {
  const evil1 = await withMetadata(tinyRandom, join(work, "range-template.gguf"), { "tokenizer.chat_template": "{% for i in range(100000000) %}{{ i }}{% endfor %}" });
  const evil2 = await withMetadata(tinyRandom, join(work, "loop-template.gguf"), { "tokenizer.chat_template": "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}" });
  const long4 = cat(B(0x80, 2, 0x8b, ...u32(512 << 10)), new Uint8Array(512 << 10).fill(0x7f), B(0x2e));
  const selfRef = cat(B(0x80, 4, 0x7d, 0x94), pstr("self"), B(0x68, 0, 0x73, 0x2e));
  // {"a": {"a": ... 200000 deep}}: one level is "a" EMPTY_DICT, closed by SETITEMs at the end.
  const level = cat(pstr("a"), B(0x7d));
  const deepAll = new Uint8Array(3 + 200_000 * level.length + 200_000 + 1);
  deepAll.set(B(0x80, 2, 0x7d), 0);
  for (let i = 0; i < 200_000; i++) deepAll.set(level, 3 + i * level.length);
  deepAll.fill(0x73, 3 + 200_000 * level.length, deepAll.length - 1);
  deepAll[deepAll.length - 1] = 0x2e;
  const adapterDir = join(work, "adapter-selfref");
  mkdirSync(adapterDir, { recursive: true });
  writeFileSync(join(adapterDir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 4, lora_alpha: 8, target_modules: ["q_proj"] }));
  writeFileSync(join(adapterDir, "adapter_model.bin"), zip([{ name: "a/data.pkl", data: selfRef }]));
  const partial = join(work, "partial-hf");
  mkdirSync(partial, { recursive: true });
  for (const f of readdirSync(hfDir)) if (f !== "model.safetensors" && !f.startsWith("model-") && f !== "model.safetensors.index.json" && f !== "SHA256SUMS") copyFileSync(join(hfDir, f), join(partial, f));
  const hf = await zh.openHfModel(hfDir);
  const embed = hf.tensors.find((t) => t.name === "model.embed_tokens.weight");
  await zh.writeSafetensors(join(partial, "model.safetensors"), { "model.embed_tokens.weight": { dtype: embed.dtype, shape: embed.shape, data: await embed.read() } });
  await hf.close();

  const cases = [
    ["chat_template range(100000000) (chat -p)", ["chat", "-m", evil1, "-p", "你好", "-n", "1"], /ChatTemplateError: .*range\(\) of 100000000 items/],
    ["chat_template doubling a string 64 times (chat -p)", ["chat", "-m", evil2, "-p", "你好", "-n", "1"], /ChatTemplateError: .*string of more than/],
    ["pickle with a 512 KiB LONG4 integer (convert)", ["convert", hostileHfDir("long4", hfDir, zip([{ name: "m/data.pkl", data: long4 }])), join(work, "o1.gguf")], /FormatError: .*integer of 524288 bytes/],
    ["self-referencing state dict (convert)", ["convert", hostileHfDir("selfref", hfDir, zip([{ name: "m/data.pkl", data: selfRef }])), join(work, "o2.gguf")], /FormatError: .*refers to itself/],
    ["state dict nested 200000 deep (convert)", ["convert", hostileHfDir("deep", hfDir, zip([{ name: "m/data.pkl", data: deepAll }])), join(work, "o3.gguf")], /FormatError: .*nested more than 64 deep/],
    ["self-referencing adapter_model.bin (merge-lora)", ["merge-lora", "--base", hfDir, "--lora", adapterDir, "--out", join(work, "o4")], /FormatError: .*refers to itself/],
    ["zero-stride [2^31, 2^31] view over 1 element (convert)", ["convert", hostileHfDir("zerostride", hfDir, zip([{ name: "m/data.pkl", data: viewPickle("model.embed_tokens.weight", 1, [2 ** 31, 2 ** 31], [0, 0]) }, { name: "m/data/0", data: new Uint8Array(4) }])), join(work, "o5.gguf")], /FormatError: .*claims/],
    ["[2^15, 2^15] F32 over a 4-byte storage (convert)", ["convert", hostileHfDir("huge-view", hfDir, zip([{ name: "m/data.pkl", data: viewPickle("model.embed_tokens.weight", 2 ** 30, [2 ** 15, 2 ** 15], [2 ** 15, 1]) }, { name: "m/data/0", data: new Uint8Array(4) }])), join(work, "o6.gguf")], /FormatError: .*claims 1073741824 F32 values/],
    ["deflated entry declaring 3 GB (zip bomb, convert)", ["convert", hostileHfDir("bomb", hfDir, zip([{ name: "m/data.pkl", data: viewPickle("model.embed_tokens.weight", 775_000_000, [775_000_000], [1]) }, { name: "m/data/0", data: new Uint8Array(3 << 20), deflate: true, declaredSize: 3_100_000_000 }])), join(work, "o7.gguf")], /FormatError: .*more than deflate can make/],
    ["a model with 1 of its tensors (convert)", ["convert", partial, join(work, "o8.gguf")], /FormatError: .*missing \d+ of the \d+ tensors.*nothing was written/],
  ];
  const quickSet = new Set([0, 2, 3, 4, 6, 9]);
  for (const [i, [name, args, want]] of cases.entries()) {
    if (opts.quick && !quickSet.has(i)) continue;
    const r = await cli(args);
    const line = lastLine(r.stderr);
    const ok = r.code === 1 && want.test(line) && !hasStack(r.stderr) && r.ms < LIMIT_MS && r.rssMb < LIMIT_RSS_MB;
    summary.hostile.push({ name, exit: r.code ?? r.signal, ms: Math.round(r.ms), rssMb: Math.round(r.rssMb), outcome: line });
    report(ok, `hostile: ${name}: exit ${r.code ?? r.signal} in ${(r.ms / 1000).toFixed(2)} s, peak RSS ${r.rssMb.toFixed(0)} MB: ${line.slice(0, 160)}`);
  }
  for (const out of ["o1.gguf", "o2.gguf", "o3.gguf", "o4", "o5.gguf", "o6.gguf", "o7.gguf", "o8.gguf"]) {
    if (existsSync(join(work, out))) report(false, `hostile: ${out} was written`);
  }

  // A full disk: a 256 KB tmpfs (root only).
  if (!opts.quick && process.getuid?.() === 0) {
    const mnt = join(work, "full");
    mkdirSync(mnt);
    let mounted = false;
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], { stdio: "ignore" });
      mounted = true;
    } catch {
      console.log("(skipped the full-disk case: cannot mount a tmpfs)");
    }
    if (mounted) {
      try {
        const r = await cli(["quantize", tinyRandom, join(mnt, "out.gguf"), "F32"]);
        const line = lastLine(r.stderr);
        const left = readdirSync(mnt);
        summary.hostile.push({ name: "quantize onto a full disk", exit: r.code, ms: Math.round(r.ms), rssMb: Math.round(r.rssMb), outcome: line, left });
        report(r.code === 1 && /OutputError: .*ENOSPC/.test(line) && !hasStack(r.stderr) && left.length === 0, `hostile: quantize onto a full 256 KB disk: exit ${r.code}, nothing left (${left.length} files): ${line.slice(0, 160)}`);
      } finally {
        execFileSync("umount", [mnt]);
      }
    }
  }

  if (opts.big) {
    const free = statfsSync(work).bavail * statfsSync(work).bsize;
    if (free < 12e9) console.log(`(skipped --big: ${(free / 1e9).toFixed(1)} GB free, 12 GB wanted)`);
    else {
      const spec = { metadata: { "general.architecture": "llama", "general.name": "big" }, tensors: [{ name: "blk.0.ffn_up_exps.weight", type: zh.GGMLType.F16, shape: [4096, 14336, 40], data: new Uint8Array() }] };
      const layout = zh.layoutGguf(spec);
      const input = join(work, "big-in.gguf");
      const fd = openSync(input, "w");
      writeSync(fd, layout.header, 0, layout.header.length, 0);
      ftruncateSync(fd, layout.fileSize);
      closeSync(fd);
      const r = await cli(["quantize", input, join(work, "big-out.gguf"), "F16"], { timeoutMs: 120_000 });
      const line = lastLine(r.stdout) || lastLine(r.stderr);
      summary.hostile.push({ name: "quantize a 4.4 GiB tensor", exit: r.code, ms: Math.round(r.ms), rssMb: Math.round(r.rssMb), outcome: line });
      report(r.code === 0 && r.rssMb < LIMIT_RSS_MB, `big: quantize of one 4.4 GiB tensor (F16 [4096, 14336, 40]): exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s, peak RSS ${r.rssMb.toFixed(0)} MB`);
      rmSync(input, { force: true });
      rmSync(join(work, "big-out.gguf"), { force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2b. The tokenizer on one huge line (item 9): LLaMA's vocabulary (rebuilt from the npm package
// llama-tokenizer-js) and a Chinese-extended one (LLaMA + fixtures/tokenizer/zh-unigram.model,
// merged as Chinese-LLaMA did), through `tokenizer-stats`, each line one file.

async function tokenizerSection() {
  const { default: llamaJs } = await import("llama-tokenizer-js");
  const llamaBytes = zh.serializeSentencePieceModel(zh.buildLlamaTokenizerModel(llamaJs.vocabById));
  const llama = join(work, "llama.model");
  writeFileSync(llama, llamaBytes);
  const chinese = join(work, "chinese-llama.model");
  const unigram = zh.parseSentencePieceModel(new Uint8Array(readFileSync(join(root, "fixtures/tokenizer/zh-unigram.model"))));
  writeFileSync(chinese, zh.serializeSentencePieceModel(zh.mergeSentencePieceModels(zh.parseSentencePieceModel(llamaBytes), unigram).model));
  const MB = 1_000_000;
  const file = (name, bytes) => {
    const path = join(work, name);
    writeFileSync(path, bytes);
    return path;
  };
  // 50 MB of random bytes (no newline) as a lenient reader would decode them (bad bytes ->
  // U+FFFD), written back as UTF-8: the text the issue's 50 MB case tokenized.
  const randomLine = () => {
    const raw = randomBytes(50 * MB);
    for (let i = 0; i < raw.length; i++) if (raw[i] === 10) raw[i] = 32;
    return Buffer.from(raw.toString("utf8"), "utf8");
  };
  const cases = [
    // name, model, bytes, tokens expected (undefined: any), quick
    ["10 MB of spaces on one line (LLaMA: runs of \"▁\" join up to 16)", llama, () => Buffer.alloc(10 * MB, 0x20), Math.ceil((10 * MB + 1) / 16), true],
    ["10 MB of \"-\" on one line (LLaMA: 10 piece lengths up to 16, mixed scores)", llama, () => Buffer.alloc(10 * MB, 0x2d), undefined, false],
    ["10 MB of \"a\" on one line (LLaMA)", llama, () => Buffer.alloc(10 * MB, 0x61), undefined, false],
    ["10 MB of \"人\" on one line (Chinese-extended: \"人人\" is a piece)", chinese, () => Buffer.from("人".repeat((10 * MB) / 3)), undefined, false],
    ["10 MB of \"□\" on one line (Chinese-extended: \"□□\"..\"□□□□\", equal scores)", chinese, () => Buffer.from("□".repeat((10 * MB) / 3)), undefined, false],
    ["50 MB of random bytes on one line, decoded leniently (LLaMA)", llama, randomLine, undefined, false],
  ];
  for (const [name, model, bytes, want, quick] of cases) {
    if (opts.quick && !quick) continue;
    const input = file("line.txt", bytes());
    const size = statSync(input).size;
    const r = await cli(["tokenizer-stats", "--model", model, "--file", input, "--json"]);
    let tokens = NaN;
    try {
      tokens = JSON.parse(r.stdout)[0].tokens;
    } catch {}
    const ok = r.code === 0 && Number.isFinite(tokens) && (want === undefined || tokens === want) && r.ms < LIMIT_MS && r.rssMb < LIMIT_RSS_MB;
    const outcome = r.code === 0 ? `${tokens} tokens` : lastLine(r.stderr);
    summary.hostile.push({ name, exit: r.code ?? r.signal, ms: Math.round(r.ms), rssMb: Math.round(r.rssMb), outcome, bytes: size });
    report(ok, `hostile: ${name}: exit ${r.code ?? r.signal} in ${(r.ms / 1000).toFixed(2)} s, peak RSS ${r.rssMb.toFixed(0)} MB: ${outcome}${want !== undefined ? ` (expected ${want})` : ""}`);
    rmSync(input, { force: true });
  }
  // Raw random bytes are not UTF-8: a TokenizerError naming the byte, not U+FFFD.
  {
    const input = file("raw.txt", randomBytes(50 * MB));
    const r = await cli(["tokenizer-stats", "--model", llama, "--file", input]);
    const line = lastLine(r.stderr);
    const ok = r.code === 1 && /TokenizerError: .*not valid UTF-8 at byte \d+/.test(line) && !hasStack(r.stderr) && r.ms < LIMIT_MS && r.rssMb < LIMIT_RSS_MB;
    summary.hostile.push({ name: "50 MB of raw random bytes (tokenizer-stats)", exit: r.code ?? r.signal, ms: Math.round(r.ms), rssMb: Math.round(r.rssMb), outcome: line });
    report(ok, `hostile: 50 MB of raw random bytes (tokenizer-stats): exit ${r.code ?? r.signal} in ${(r.ms / 1000).toFixed(2)} s, peak RSS ${r.rssMb.toFixed(0)} MB: ${line.slice(0, 160)}`);
    rmSync(input, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Kill tests

/** Starts `zh-llama ARGS`, waits until a temporary output of `target` exists, then kills it with `signal`. */
async function killDuring(args, target, signal) {
  const dir = join(target, "..");
  const base = target.split("/").pop();
  let seen = false;
  const r = await cli(args, {
    onSpawn: (child) => {
      const poll = setInterval(() => {
        const temp = readdirSync(dir).some((n) => n !== base && n.startsWith(base) && /\.tmp$|\.partial-/.test(n));
        if (temp) {
          seen = true;
          clearInterval(poll);
          child.kill(signal);
        }
      }, 2);
      child.once("exit", () => clearInterval(poll));
    },
  });
  return { ...r, seen };
}

const leftovers = (dir, base) => readdirSync(dir).filter((n) => n !== base && n !== `${base}.sha256` && n.startsWith(base));

async function killSection(model, hfDir) {
  const dir = join(work, "kills");
  mkdirSync(dir);
  const signals = opts.quick ? ["SIGTERM", "SIGKILL"] : ["SIGTERM", "SIGINT", "SIGKILL"];
  for (const signal of signals) {
    const out = join(dir, `q-${signal}.gguf`);
    const r = await killDuring(["quantize", model, out, "Q4_K"], out, signal);
    let left = leftovers(dir, `q-${signal}.gguf`);
    let detail = `killed by ${r.signal ?? `exit ${r.code}`} mid-write (temporary seen: ${r.seen}), left ${JSON.stringify(left)}`;
    let ok = r.seen && r.signal === signal && !existsSync(out);
    if (signal === "SIGKILL") {
      // kill -9 cannot clean up: the next write of the same output sweeps it.
      ok &&= left.length === 1;
      const again = await cli(["quantize", model, out, "Q8_0"]);
      left = leftovers(dir, `q-${signal}.gguf`);
      ok &&= again.code === 0 && left.length === 0 && existsSync(out);
      detail += `; the next quantize of it exits ${again.code} and leaves ${JSON.stringify(left)}`;
    } else ok &&= left.length === 0;
    summary.kills.push({ test: `quantize ${signal}`, ok, detail });
    report(ok, `kill: quantize ${signal}: ${detail}`);
  }
  // A directory output (export-hf stages OUT.partial-PID-RAND/).
  {
    const out = join(dir, "hf-out");
    const r = await killDuring(["export-hf", model, out, "--dtype", "f32"], out, "SIGTERM");
    const left = leftovers(dir, "hf-out");
    const ok = r.signal === "SIGTERM" && r.seen && left.length === 0 && !existsSync(out);
    summary.kills.push({ test: "export-hf SIGTERM", ok, detail: `left ${JSON.stringify(left)}` });
    report(ok, `kill: export-hf SIGTERM mid-write: no OUT, no OUT.partial-*/ (left ${JSON.stringify(left)})`);
  }
  // convert --force over an existing output, killed: the old file and its manifest stay a pair.
  {
    const out = join(dir, "conv.gguf");
    const first = await cli(["convert", hfDir, out, "--outtype", "f32"]);
    const before = readFileSync(`${out}.sha256`, "utf8");
    const r = await killDuring(["convert", hfDir, out, "--outtype", "q4_k", "--force"], out, "SIGKILL");
    const verify = await cli(["verify", out]);
    const after = readFileSync(`${out}.sha256`, "utf8");
    const again = await cli(["convert", hfDir, out, "--outtype", "q8_0", "--force"]);
    const verify2 = await cli(["verify", out]);
    const left = leftovers(dir, "conv.gguf");
    const ok = first.code === 0 && r.seen && verify.code === 0 && before === after && again.code === 0 && verify2.code === 0 && left.length === 0;
    summary.kills.push({ test: "convert --force SIGKILL", ok, detail: `verify ${verify.code} / ${verify2.code}, left ${JSON.stringify(left)}` });
    report(ok, `kill: convert --force killed mid-write: the old file still verifies against its manifest (exit ${verify.code}); the next convert --force sweeps and verifies (exit ${verify2.code}); left ${JSON.stringify(left)}`);
  }
}

// ---------------------------------------------------------------------------------------------

try {
  // A model big enough that a k-quant takes a few seconds (kill tests), and its HF export.
  const synth = join(work, "synthetic-f32.gguf");
  await zh.writeGguf(synth, zh.syntheticModel({ name: "reliability", dim: 256, layers: 4, heads: 4, ffn: 768, vocab: 2000, ctx: 256, type: zh.GGMLType.F32, seed: 3 }));
  const hfDir = join(work, "synthetic-hf");
  const exported = await cli(["export-hf", synth, hfDir]);
  if (exported.code !== 0) throw new Error(`export-hf failed: ${exported.stderr}`);
  await serverSection();
  await hostileSection(hfDir);
  await tokenizerSection();
  await killSection(synth, hfDir);
} catch (error) {
  report(false, `reliability: ${error instanceof Error ? error.stack : String(error)}`);
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`(kept ${work})`);
}
const seconds = (performance.now() - started) / 1000;
if (opts.json) console.log(JSON.stringify({ ...summary, seconds, failures }));
console.log(`reliability: ${failures === 0 ? "all checks passed" : `${failures} failed`} in ${seconds.toFixed(0)} s (${opts.quick ? "quick" : "full"} run)`);
process.exit(failures === 0 ? 0 : 1);
