// Smoke test of `zh-llama serve` under Node, Deno and Bun, from the compiled dist/:
//
//   node test/smoke/serve-runtimes.mjs [node] [deno] [bun]      (default: all three)
//
// For each runtime it starts bin/zh-llama.js serve on the committed tiny model (127.0.0.1, a
// free port, an API key), reads the port from its "listening on" line, then makes a chat
// completion, a streamed one, a stream it hangs up on, and a bad request with fetch, and stops it. One line per check:
// "ok <runtime>: ..." or "FAIL <runtime>: ..."; exit status 1 on any failure.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = (name) => `${root}node_modules/.bin/${name}`;
const RUNTIMES = {
  node: [process.execPath, []],
  deno: [bin("deno"), ["run", "-A"]],
  bun: [bin("bun"), ["run"]],
};
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(RUNTIMES);
const KEY = "sk-smoke";
let failed = 0;

function report(runtime, ok, what) {
  console.log(`${ok ? "ok" : "FAIL"} ${runtime}: ${what}`);
  if (!ok) failed++;
}

async function smoke(runtime) {
  const [cmd, pre] = RUNTIMES[runtime];
  if (!existsSync(cmd)) {
    report(runtime, false, `${cmd} not found`);
    return;
  }
  const args = [...pre, `${root}bin/zh-llama.js`, "serve", "-m", `${root}fixtures/models/tiny-random-q8_0.gguf`, "--port", "0", "--api-key", KEY, "--parallel", "2", "--template", "plain", "--ctx", "4096"];
  const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening on" line in 60 s; stderr: ${stderr.slice(-500)}`)), 60_000);
      child.stderr.on("data", (d) => {
        stderr += d;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+) \((\w+)\)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve({ port: Number(m[1]), adapter: m[2] });
        }
      });
      child.on("exit", (code) => reject(new Error(`exited with ${code}; stderr: ${stderr.slice(-500)}`)));
    });
    report(runtime, port.adapter === runtime, `serve listening on port ${port.port} with the ${port.adapter} adapter`);
    const base = `http://127.0.0.1:${port.port}`;
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const body = { messages: [{ role: "user", content: "你好" }], max_tokens: 8, temperature: 0 };
    const r = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify(body) });
    const j = await r.json();
    report(runtime, r.status === 200 && j.object === "chat.completion" && typeof j.choices?.[0]?.message?.content === "string" && j.usage?.total_tokens > 0,
      `chat completion ${r.status}, ${j.usage?.completion_tokens} tokens, finish_reason ${j.choices?.[0]?.finish_reason}`);
    const s = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers, body: JSON.stringify({ ...body, stream: true }) });
    const text = await s.text();
    const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
    const streamed = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? "").join("");
    report(runtime, s.status === 200 && events.at(-1) === "data: [DONE]" && streamed === j.choices[0].message.content, `stream of ${events.length} events ending in [DONE], same text`);
    // A client that hangs up mid-stream: its generation stops and its sequence comes back.
    const controller = new AbortController();
    const long = await fetch(`${base}/v1/completions`, { method: "POST", headers, body: JSON.stringify({ prompt: "long", max_tokens: 4000, stream: true, logit_bias: { 2: -100 } }), signal: controller.signal });
    const reader = long.body.getReader();
    await reader.read();
    await reader.read();
    controller.abort();
    let after;
    for (let i = 0; i < 300; i++) {
      after = await (await fetch(`${base}/health`)).json();
      if (after.busy === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    report(runtime, after.busy === 0 && after.cancelled === 1, `a hang-up mid-stream cancels its generation (cancelled ${after.cancelled}, busy ${after.busy})`);
    const bad = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const health = await (await fetch(`${base}/health`)).json();
    report(runtime, bad.status === 401 && health.status === "ok" && health.busy === 0, `401 without a key, then /health ok (busy ${health.busy}, idle ${health.idle})`);
  } catch (error) {
    report(runtime, false, String(error?.message ?? error));
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, 5000);
      child.on("exit", () => {
        clearTimeout(t);
        resolve();
      });
      if (child.exitCode !== null) resolve();
    });
  }
}

for (const runtime of wanted) {
  if (!(runtime in RUNTIMES)) {
    report(runtime, false, "unknown runtime (node, deno, bun)");
    continue;
  }
  await smoke(runtime);
}
process.exitCode = failed > 0 ? 1 : 0;
