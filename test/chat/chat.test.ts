/**
 * ChatSession and `zh-llama chat` on a tiny synthetic model: KV cache reuse across turns,
 * history commands, piped and interactive modes (Ctrl-C as "\x03" on a terminal-mode
 * readline), and the same answers from the library, the in-process CLI and the built binary.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatSession, getTemplate, type ChatMessage } from "../../src/chat/index.js";
import { generateCfg } from "../../src/generate/index.js";
import { main } from "../../src/cli/index.js";
import type { ChatIo } from "../../src/cli/chat.js";
import { LlamaModel } from "../../src/model/index.js";
import { type GenerationResult } from "../../src/generate/index.js";
import { tokenizerFromGgufMetadata, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";
import { LETTERS, tinyModelBytes } from "./helpers.js";

let dir = "";
let modelPath = "";
let model: LlamaModel;
let tokenizer: SentencePieceTokenizer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-chat-"));
  modelPath = join(dir, "tiny.gguf");
  await writeFile(modelPath, await tinyModelBytes({ name: "chinese-alpaca-2-tiny" }, true));
  model = await LlamaModel.load(modelPath, { nCtx: 256, kvCacheType: "f32" });
  tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
});
afterAll(async () => {
  await model.dispose();
});

/** Only the "▁a".."▁l" pieces may be generated: answers re-encode to the ids that made them. */
function lettersOnly(): Map<number, number> {
  const allowed = new Set([...LETTERS].map((c) => tokenizer.pieceToId("▁" + c)));
  const bias = new Map<number, number>();
  for (let id = 0; id < 300; id++) if (!allowed.has(id)) bias.set(id, -Infinity);
  return bias;
}

async function turn(chat: ChatSession, text: string, signal?: AbortSignal): Promise<GenerationResult> {
  let result: GenerationResult | undefined;
  for await (const e of chat.send(text, signal)) if (e.type === "done") result = e.result;
  return result!;
}

describe("ChatSession", () => {
  it("reuses the KV cache: a turn evaluates only its new tokens", async () => {
    const template = getTemplate("alpaca-2");
    const chat = new ChatSession({ model, tokenizer, template, generation: { temperature: 0, repetitionPenalty: 1, maxTokens: 6, logitBias: lettersOnly() } });
    const first = await turn(chat, "你好");
    expect(first.generatedIds).toHaveLength(6);
    expect(first.text).toMatch(/^[a-l]( [a-l]){5}$/);
    expect(chat.messages).toEqual([{ role: "user", content: "你好" }, { role: "assistant", content: first.text }]);
    // The answer as the template writes it back is exactly the generated ids.
    const prompt2 = template.render([...chat.messages, { role: "user", content: "再来" }], tokenizer);
    expect(prompt2.slice(0, first.promptIds.length + 6)).toEqual([...first.promptIds, ...first.generatedIds]);

    const second = await turn(chat, "再来");
    expect(second.promptIds).toEqual(prompt2);
    // Cached: the first prompt and the answer's first five ids (the sixth was sampled, never evaluated).
    expect(second.timings.promptTokens).toBe(prompt2.length - (first.promptIds.length + 5));
    // The last answer id, EOS, BOS, then the new user turn.
    expect(second.timings.promptTokens).toBe(1 + 2 + tokenizer.encode("[INST] 再来 [/INST]", { addBos: false }).length);
    chat.dispose();
  });

  it("an aborted answer keeps what was said; history dropping keeps the system prompt", async () => {
    const template = getTemplate("alpaca-2");
    const chat = new ChatSession({ model, tokenizer, template, system: "S", generation: { temperature: 0, repetitionPenalty: 1, maxTokens: 40, logitBias: lettersOnly() } });
    const controller = new AbortController();
    let tokens = 0;
    let result: GenerationResult | undefined;
    for await (const e of chat.send("x", controller.signal)) {
      if (e.type === "token" && ++tokens === 3) controller.abort();
      if (e.type === "done") result = e.result;
    }
    expect(result!.finishReason).toBe("abort");
    expect(chat.messages.at(-1)).toEqual({ role: "assistant", content: result!.text.trim() });
    expect(result!.generatedIds).toHaveLength(3);

    // 256 tokens of context, 40 reserved: long turns push the oldest out.
    const long = "长".repeat(20); // 60 byte tokens
    for (let i = 0; i < 4; i++) await turn(chat, long);
    const messages = chat.messages;
    expect(messages[0]).toEqual({ role: "system", content: "S" });
    expect(messages.length).toBeLessThan(1 + 2 * 5);
    expect(template.render(messages, tokenizer).length).toBeLessThanOrEqual(256);
    await expect(turn(chat, "长".repeat(80))).rejects.toThrow(/the last message alone needs \d+ prompt tokens \+ 40 reserved/);
    chat.dispose();
  });

  it("CFG: the negative prompt takes the system prompt's place; its cache is kept across turns", async () => {
    const template = getTemplate("alpaca-2");
    const generation = { temperature: 0, repetitionPenalty: 1, maxTokens: 6, logitBias: lettersOnly() };
    const chat = new ChatSession({ model, tokenizer, template, generation, negativePrompt: "回复尽可能多的内容。", cfgScale: 2 });
    const first = await turn(chat, "你好");
    // The same step by hand: generateCfg over the rendered conversation and the negative one.
    const negativePromptIds = template.render([{ role: "system", content: "回复尽可能多的内容。" }, { role: "user", content: "你好" }], tokenizer);
    const fresh = model.createSession();
    let expected: GenerationResult | undefined;
    for await (const e of generateCfg(fresh, tokenizer, first.promptIds, { ...generation, cfgScale: 2, negativePromptIds })) if (e.type === "done") expected = e.result;
    fresh.release();
    expect(first.generatedIds).toEqual(expected!.generatedIds);
    expect(first.promptIds).toEqual(template.render([{ role: "user", content: "你好" }], tokenizer));
    const second = await turn(chat, "再来");
    // Each sequence evaluates only the last answer id, EOS, BOS and the new [INST] turn.
    const newTokens = 1 + 2 + tokenizer.encode("[INST] 再来 [/INST]", { addBos: false }).length;
    expect(second.timings.promptTokens).toBe(2 * newTokens);
    chat.dispose();
  });

  it("save / load round-trips; bad files are ChatHistoryError", () => {
    const chat = new ChatSession({ model, tokenizer, template: getTemplate("linly") });
    const messages: ChatMessage[] = [{ role: "system", content: "sys" }, { role: "user", content: "q" }, { role: "assistant", content: "a" }];
    chat.load(JSON.stringify({ template: "linly", messages }));
    expect(chat.save()).toEqual({ template: "linly", messages });
    chat.load(JSON.stringify(messages.slice(1)));
    expect(chat.messages).toEqual(messages);
    expect(() => chat.load("{")).toThrow(/the chat history is not JSON/);
    expect(() => chat.load('{"messages": [{"role": "robot", "content": "x"}]}')).toThrow(/message 0 has role "robot"/);
    expect(() => chat.load('{"turns": []}')).toThrow(/must be \{"messages"/);
  });
});

type Run = { status: number; stdout: string; stderr: string };

async function cli(argv: string[], lines: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: ChatIo = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    isTty: false,
    input: Readable.from(lines.map((l) => l + "\n")),
    interactive: false,
  };
  const status = await main(["chat", "-m", modelPath, "--ctx", "256", "--kv-type", "f32", ...argv], io);
  return { status, stdout, stderr };
}

/** The library's answers to the same lines. */
async function libraryAnswers(lines: string[], options: { system?: string; maxTokens: number }): Promise<string[]> {
  const chat = new ChatSession({ model, tokenizer, template: getTemplate("alpaca-2"), system: options.system, generation: { temperature: 0, maxTokens: options.maxTokens } });
  const out: string[] = [];
  for (const line of lines) out.push((await turn(chat, line)).text.trim());
  chat.dispose();
  return out;
}

describe("zh-llama chat", () => {
  it("piped: one answer per line, equal to the library's; template detected from general.name", async () => {
    const lines = ["你好", "讲个故事", "谢谢"];
    const r = await cli(["--temp", "0", "-n", "5"], lines);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[template alpaca-2, default system prompt, context 256 tokens\]/);
    expect(r.stdout.split("\n").slice(0, -1)).toEqual(await libraryAnswers(lines, { maxTokens: 5 }));
    expect(r.stderr.match(/generated at [\d.]+ tok\/s/g)).toHaveLength(3);
  });

  it("commands: /system, /save, /reset, /load, /help, /quit", async () => {
    const file = join(dir, "history.json");
    const r = await cli(["--temp", "0", "-n", "4"], ["/system 你是诗人", "你好", `/save ${file}`, "/reset", "/bogus", `/load ${file}`, "再来", "/help", "/quit", "never answered"]);
    expect(r.status, r.stderr).toBe(0);
    const saved = JSON.parse(await readFile(file, "utf8"));
    expect(saved.template).toBe("alpaca-2");
    expect(saved.messages.map((m: ChatMessage) => m.role)).toEqual(["system", "user", "assistant"]);
    expect(saved.messages[0].content).toBe("你是诗人");
    expect(r.stderr).toMatch(/unknown command \/bogus/);
    expect(r.stderr).toMatch(/\[loaded 3 messages from /);
    const answers = r.stdout.split("\n").filter((l) => l && !l.startsWith("  /") && l !== "commands:");
    expect(answers).toEqual(await libraryAnswers(["你好", "再来"], { system: "你是诗人", maxTokens: 4 }));
    expect(r.stdout).toContain("/save FILE");
  });

  it("--prompt answers once; --template and flag errors", async () => {
    const r = await cli(["--temp", "0", "-n", "5", "-p", "你好", "--template", "alpaca-2"], []);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe((await libraryAnswers(["你好"], { maxTokens: 5 }))[0] + "\n");
    const bad = await cli(["--template", "vicuna"], []);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--template must be one of alpaca, alpaca-2, alpaca-2-long, mixtral, linly, plain, jinja, got "vicuna"/);
    expect((await cli(["--negative-prompt", "x"], [])).stderr).toMatch(/--negative-prompt takes effect with --cfg-scale/);
    expect((await cli(["--draft-k", "3"], [])).stderr).toMatch(/--draft-k needs --draft-model/);
    expect((await cli(["--template", "jinja"], [])).stderr).toMatch(/the model has no tokenizer.chat_template/);
    const warn = await cli(["--template", "linly", "--system", "x", "-n", "2", "-p", "hi"], []);
    expect(warn.stderr).toMatch(/the linly template has no system prompt: --system is ignored/);
  });

  it("CFG and a draft model through the flags", async () => {
    const guided = await cli(["--temp", "0", "-n", "5", "--negative-prompt", "回复尽可能多的内容。", "--cfg-scale", "1.5"], ["你好"]);
    expect(guided.status, guided.stderr).toBe(0);
    const draftPath = join(dir, "draft.gguf");
    await writeFile(draftPath, await tinyModelBytes({ name: "draft", layers: 1 }, true));
    const drafted = await cli(["--temp", "0", "-n", "8", "--draft-model", draftPath], ["你好", "再来"]);
    expect(drafted.status, drafted.stderr).toBe(0);
    expect(drafted.stderr).toMatch(/draft acceptance [\d.]+%/);
    const plain = await cli(["--temp", "0", "-n", "8"], ["你好", "再来"]);
    expect(drafted.stdout).toBe(plain.stdout);
  });

  it("interactive: Ctrl-C stops the answer, the chat goes on; twice at the prompt quits", async () => {
    const input = new PassThrough();
    const echo = new PassThrough();
    echo.resume();
    let stdout = "";
    let stderr = "";
    let sent = false;
    let pressed = false;
    const io: ChatIo = {
      stdout: (t) => {
        stdout += t;
        // The first streamed piece of the answer: press Ctrl-C.
        if (sent && !pressed && !t.includes("zh-llama chat:")) {
          pressed = true;
          input.write("\x03");
        }
      },
      stderr: (t) => {
        stderr += t;
        // Back at the prompt after the stopped answer: Ctrl-C twice.
        if (t.includes("generated at")) setTimeout(() => input.write("\x03"), 20), setTimeout(() => input.write("\x03"), 40);
      },
      isTty: false,
      input,
      output: echo,
      interactive: true,
    };
    const done = main(["chat", "-m", modelPath, "--ctx", "256", "--kv-type", "f32", "--temp", "0", "-n", "200"], io);
    sent = true;
    input.write("你好\r");
    const status = await done;
    expect(status).toBe(0);
    expect(stdout).toContain("[stopped]");
    expect(stdout).toContain("(Ctrl-C again to quit, or /quit)");
    expect(stderr).toMatch(/, abort\]/);
  });
});

describe("the built binary", () => {
  const bin = join(repoRoot, "bin/zh-llama.js");
  const built = existsSync(join(repoRoot, "dist/cli/chat.js"));
  it.skipIf(!built)("node bin/zh-llama.js chat with piped stdin (after npm run build:ts)", async () => {
    const r = spawnSync(process.execPath, [bin, "chat", "-m", modelPath, "--ctx", "256", "--kv-type", "f32", "--temp", "0", "-n", "5"], { input: "你好\n讲个故事\n", encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split("\n").slice(0, -1)).toEqual(await libraryAnswers(["你好", "讲个故事"], { maxTokens: 5 }));
    expect(r.stderr).toMatch(/tok\/s/);
  });
  if (!built) console.warn("[chat tests] dist/cli/chat.js not built: run `npm run build:ts` to test the binary");
});
