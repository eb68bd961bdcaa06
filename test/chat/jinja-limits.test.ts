/**
 * Issue 19: a model's own chat template comes from a downloaded file, so a render is bounded
 * (steps, time, string sizes, range sizes) and fails with a ChatTemplateError naming the
 * template, quickly and without filling the heap; in the server it renders on a worker thread
 * and the event loop keeps answering meanwhile.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ChatTemplateError, JINJA_LIMITS, detectTemplate, jinjaTemplate, type ChatMessage } from "../../src/chat/index.js";
import { stopJinjaWorker } from "../../src/chat/jinja-off-thread.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";
import { post, get, testServer } from "../server/helpers.js";

const tokenizer = await loadTokenizer(join(repoRoot, "fixtures/tokenizer/zh-bpe.model"));
const hello: ChatMessage[] = [{ role: "user", content: "你好" }];

afterAll(() => stopJinjaWorker());

/** Runs `f`, returning its error and the milliseconds it took. */
function timed(f: () => unknown): { error: unknown; ms: number } {
  const t0 = performance.now();
  try {
    f();
    return { error: undefined, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

const HOSTILE: Array<[string, string, RegExp]> = [
  ["the issue's template: range(100000000)", "{% for i in range(100000000) %}{{ i }}{% endfor %}", /range\(\) of 100000000 items exceeds the limit of 100000/],
  ["nested empty loops (10^10 iterations)", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", /more than 5000000 steps|longer than/],
  ["a string doubled 40 times", "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", /string of more than/],
  ["a message repeated until the output is huge", "{% for i in range(100000) %}{{ messages[0]['content'] }}{% endfor %}", /characters in all|string of more than/],
  ["a macro that calls itself", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", /failed to render|stopped/],
  ["many ranges", "{% for i in range(1000) %}{% set x = range(99999) %}{% endfor %}", /more than 5000000 steps|longer than/],
];

describe("hostile templates stop with a ChatTemplateError naming the template", () => {
  it.each(HOSTILE)("%s", (_name, source, why) => {
    const template = jinjaTemplate(source, { origin: "evil.gguf: tokenizer.chat_template" });
    const messages = _name.includes("repeated") ? [{ role: "user" as const, content: "长".repeat(1000) }] : hello;
    const { error, ms } = timed(() => template.render(messages, tokenizer));
    expect(error).toBeInstanceOf(ChatTemplateError);
    const message = (error as Error).message;
    expect(message).toMatch(why);
    expect(message).toContain("evil.gguf: tokenizer.chat_template");
    expect(message).toContain("template begins");
    expect(ms).toBeLessThan(JINJA_LIMITS.timeoutMs + 3000);
  });

  it("the time limit holds when one step is cheap and there are many", () => {
    const template = jinjaTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", { limits: { timeoutMs: 200, maxSteps: 1e12 } });
    const { error, ms } = timed(() => template.render(hello, tokenizer));
    expect((error as Error).message).toMatch(/longer than 200 ms/);
    // Unbounded, this loop runs for hours; the bound only has to tell the limit from that
    // (and hold on a loaded 2-core CI machine).
    expect(ms).toBeLessThan(10_000);
  });

  it("detectTemplate names the model file", () => {
    const template = detectTemplate({ "tokenizer.chat_template": "{% for i in range(100000000) %}{% endfor %}" }, "model.gguf");
    expect(() => template.render(hello, tokenizer)).toThrow(/model\.gguf: tokenizer\.chat_template/);
  });

  it("ordinary templates still render, also off the thread, to the same ids", async () => {
    const source = "{% for m in messages %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}";
    const template = jinjaTemplate(source);
    const long = Array.from({ length: 200 }, (_, i) => ({ role: (i % 2 ? "assistant" : "user") as ChatMessage["role"], content: `第${i}句` }));
    expect(await template.renderAsync!(long, tokenizer)).toEqual(template.render(long, tokenizer));
    await expect(jinjaTemplate(HOSTILE[0]![1]).renderAsync!(hello, tokenizer)).rejects.toThrow(ChatTemplateError);
  });
});

describe("in the server", () => {
  const worker = join(repoRoot, "dist/chat/jinja-worker.js");
  it.runIf(existsSync(worker))("the render thread never keeps a process alive", () => {
    const code = `const { jinjaTemplate } = await import(${JSON.stringify(join(repoRoot, "dist/chat/index.js"))});
      const { loadTokenizer } = await import(${JSON.stringify(join(repoRoot, "dist/tokenizer/index.js"))});
      const tok = await loadTokenizer(${JSON.stringify(join(repoRoot, "fixtures/tokenizer/zh-bpe.model"))});
      console.log((await jinjaTemplate("{{ messages[0]['content'] }}").renderAsync([{ role: "user", content: "你好" }], tok)).length > 0);`;
    const t0 = performance.now();
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", code], { encoding: "utf8", timeout: 20_000 });
    expect(out.trim()).toBe("true");
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it.runIf(existsSync(worker))("a hostile chat_template is a 400 and the event loop keeps serving while it renders", async () => {
    const slow = jinjaTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", { origin: "evil.gguf: tokenizer.chat_template", limits: { timeoutMs: 1500, maxSteps: 1e12 } });
    const t = await testServer({ template: slow });
    try {
      const t0 = performance.now();
      const pending = t.app.fetch(post("/v1/chat/completions", { messages: hello, max_tokens: 2 }));
      // While the template runs, other requests are answered at once.
      await new Promise((r) => setTimeout(r, 200));
      const h0 = performance.now();
      const health = await t.app.fetch(get("/health"));
      expect(health.status).toBe(200);
      // A render blocking the event loop would hold /health for the template's 1.5 s.
      expect(performance.now() - h0).toBeLessThan(1000);
      const r = await pending;
      const body = (await r.json()) as { error: { message: string } };
      expect(r.status).toBe(400);
      expect(body.error.message).toMatch(/chat template was stopped: it ran longer than 1500 ms \(evil\.gguf: tokenizer\.chat_template/);
      expect(performance.now() - t0).toBeLessThan(20_000);
      // The issue's template: refused at range(), and the next request is served.
      const issue = await testServer({ template: jinjaTemplate(HOSTILE[0]![1]) });
      try {
        const r2 = await issue.app.fetch(post("/v1/chat/completions", { messages: hello, max_tokens: 2 }));
        expect(r2.status).toBe(400);
        expect(((await r2.json()) as { error: { message: string } }).error.message).toMatch(/range\(\) of 100000000 items/);
      } finally {
        await issue.model.dispose();
      }
    } finally {
      await t.model.dispose();
    }
  });
});
