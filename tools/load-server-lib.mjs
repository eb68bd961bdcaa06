// The load driver behind tools/load-server.mjs and test/server/client.test.ts: `requests`
// requests with `concurrency` in flight. Every 10th is malformed (bad JSON, bad field,
// unknown model; a 4xx is the right answer), every 7th is a stream cancelled after its first
// token, a third of the rest are non-streaming; streams time their first content chunk.

/** @typedef {{ baseUrl: string, requests: number, concurrency: number, maxTokens: number, headers?: Record<string, string> }} LoadOptions */

const MALFORMED = [
  ["/v1/chat/completions", "{oops"],
  ["/v1/chat/completions", JSON.stringify({ messages: [] })],
  ["/v1/chat/completions", JSON.stringify({ messages: "x", temperature: "hot" })],
  ["/v1/completions", JSON.stringify({ model: "no-such-model", prompt: "x" })],
  ["/v1/completions", JSON.stringify({ prompt: "x", max_tokens: 1e9 })],
];

/** @param {LoadOptions} o */
export async function runLoad(o) {
  const headers = { "content-type": "application/json", ...(o.headers ?? {}) };
  const ttfts = [];
  const counts = { ok: 0, malformed: 0, cancelled: 0, failed: 0 };
  const failures = [];
  let next = 0;
  const one = async (i) => {
    if (i % 10 === 9) {
      const [path, body] = MALFORMED[(i / 10) % MALFORMED.length | 0];
      const r = await fetch(o.baseUrl + path, { method: "POST", headers, body });
      const j = await r.json();
      if (r.status >= 400 && r.status < 500 && j.error && typeof j.error.message === "string") counts.malformed++;
      else {
        counts.failed++;
        failures.push(`malformed ${i}: ${r.status}`);
      }
      return;
    }
    const stream = i % 3 !== 2 || i % 7 === 6;
    const body = JSON.stringify({ messages: [{ role: "user", content: `request ${i}` }], max_tokens: o.maxTokens, stream, seed: i, logit_bias: { 2: -100 } });
    const controller = new AbortController();
    const t0 = performance.now();
    const r = await fetch(o.baseUrl + "/v1/chat/completions", { method: "POST", headers, body, signal: controller.signal });
    if (r.status !== 200) {
      counts.failed++;
      failures.push(`request ${i}: ${r.status} ${await r.text()}`);
      return;
    }
    if (!stream) {
      const j = await r.json();
      if (j.choices?.[0]?.finish_reason) counts.ok++;
      else counts.failed++;
      return;
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let first = true;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (controller.signal.aborted) break;
        throw error;
      }
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
      if (first && text.includes('"content":"') && /"content":"[^"]/.test(text)) {
        first = false;
        ttfts.push(performance.now() - t0);
        if (i % 7 === 6) {
          controller.abort();
          counts.cancelled++;
          return;
        }
      }
    }
    if (text.trimEnd().endsWith("data: [DONE]")) counts.ok++;
    else {
      counts.failed++;
      failures.push(`stream ${i} did not end in [DONE]`);
    }
  };
  const t0 = performance.now();
  const workers = Array.from({ length: o.concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= o.requests) return;
      try {
        await one(i);
      } catch (error) {
        counts.failed++;
        failures.push(`request ${i}: ${error}`);
      }
    }
  });
  await Promise.all(workers);
  const seconds = (performance.now() - t0) / 1000;
  // Give cancelled generations a moment to notice and hand their sequences back.
  let health;
  for (let tries = 0; tries < 100; tries++) {
    health = await (await fetch(o.baseUrl + "/health")).json();
    if (health.busy === 0 && health.queued === 0 && health.streams === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  ttfts.sort((a, b) => a - b);
  const pct = (p) => (ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor((p / 100) * ttfts.length))] : NaN);
  return {
    requests: o.requests,
    seconds,
    requestsPerSecond: o.requests / seconds,
    ttft: { n: ttfts.length, p50: pct(50), p99: pct(99) },
    counts,
    failures: failures.slice(0, 10),
    health,
    healthy: health?.status === "ok" && health.busy === 0 && health.queued === 0 && health.streams === 0,
  };
}
