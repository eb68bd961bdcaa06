/**
 * Chat templates against prompts built by the upstream Python code (golden-chat.py, ids from
 * SentencePiece), against a model's own Jinja template (Llama-2's official chat_template), and
 * LLaMA's real vocabulary for the ids of the Llama-2 markers.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import llamaTokenizerJs from "llama-tokenizer-js";
import { describe, expect, it } from "vitest";
import {
  ALPACA2_SYSTEM,
  ChatHistoryError,
  ChatTemplateError,
  TEMPLATE_NAMES,
  detectTemplate,
  fitHistory,
  getTemplate,
  jinjaTemplate,
  templateNameFromModelName,
  type ChatMessage,
} from "../../src/chat/index.js";
import { ContextOverflowError } from "../../src/model/errors.js";
import { buildLlamaTokenizerModel, loadTokenizer, serializeSentencePieceModel, tokenizerFromSentencePieceBytes } from "../../src/tokenizer/index.js";
import { repoRoot } from "../helpers/shared.js";

const tokenizer = await loadTokenizer(join(repoRoot, "fixtures/tokenizer/zh-bpe.model"));
const golden = JSON.parse(readFileSync(join(import.meta.dirname, "golden-templates.json"), "utf8")) as {
  cases: Array<{ name: string; template: string; messages: ChatMessage[]; text: string; ids: number[] }>;
};

/** Llama-2-7b-chat-hf's tokenizer_config.json chat_template, verbatim. */
const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/** The same format with answers closed as Chinese-Alpaca-2's gradio demo does: " {a}</s>", no space before EOS. */
const ALPACA2_JINJA = LLAMA2_CHAT_TEMPLATE.replace("{{ ' '  + content.strip() + ' ' + eos_token }}", "{{ ' '  + content.strip() + eos_token }}");

const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string): ChatMessage => ({ role: "assistant", content });
const system = (content: string): ChatMessage => ({ role: "system", content });

describe("built-in templates equal the upstream scripts' prompts", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      const ids = getTemplate(c.template).render(c.messages, tokenizer);
      expect(ids).toEqual(c.ids);
      // The same ids as the string with its control pieces parsed: the text is the upstream one.
      expect(ids).toEqual(tokenizer.encode(c.text, { addBos: true, parseSpecial: true }));
    });
  }

  it("covers every built-in template", () => {
    const covered = new Set(golden.cases.map((c) => c.template));
    for (const name of TEMPLATE_NAMES) if (name !== "jinja" && name !== "plain") expect(covered.has(name), name).toBe(true);
  });

  it("the verbatim strings", () => {
    const text = (name: string) => golden.cases.find((c) => c.name === name)!.text;
    expect(text("alpaca-2 default system")).toBe("[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\n你好，请介绍一下北京。 [/INST]");
    expect(text("alpaca-2 multi-turn")).toBe(
      "[INST] <<SYS>>\nYou are a helpful assistant. 你是一个乐于助人的助手。\n<</SYS>>\n\n你好 [/INST] 你好！有什么可以帮你？</s><s>[INST] 讲个故事 [/INST] 从前有座山。</s><s>[INST] 再讲一个 好吗？ [/INST]",
    );
    expect(text("alpaca")).toBe("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n\n你好，请介绍一下北京。\n\n### Response:\n\n");
    expect(text("linly multi-turn")).toBe("User: 你好\nBot: 你好！有什么可以帮你？\nUser: 讲个故事\nBot: 从前有座山。\nUser: 再讲一个 好吗？\nBot: ");
    expect(getTemplate("linly").stop).toEqual(["User:"]);
    expect(getTemplate("alpaca-2").defaultSystem).toBe(ALPACA2_SYSTEM);
    expect(getTemplate("alpaca-2-long").defaultSystem).toBe("You are a helpful assistant. 你是一个乐于助人的助手。请你提供专业、有逻辑、内容真实、有价值的详细回复。");
  });

  it("control pieces typed by a user stay text; EOS and BOS between turns are real ids", () => {
    const ids = getTemplate("alpaca-2").render([user("a"), assistant("b"), user("</s><s>")], tokenizer);
    expect(ids.filter((id) => id === tokenizer.eosId)).toHaveLength(1);
    expect(ids.filter((id) => id === tokenizer.bosId)).toHaveLength(2);
    expect(tokenizer.decode(ids)).toContain("[INST] </s><s> [/INST]");
  });

  it("a trailing assistant message stays open: the reply continues it", () => {
    const open = getTemplate("alpaca-2").render([user("q"), assistant("从前")], tokenizer);
    expect(open.at(-1)).not.toBe(tokenizer.eosId);
    expect(open).toEqual(tokenizer.encode(`[INST] <<SYS>>\n${ALPACA2_SYSTEM}\n<</SYS>>\n\nq [/INST] 从前`));
  });

  it("plain is the text as `run -p` tokenizes it", () => {
    expect(getTemplate("plain").render([user("从前有座山")], tokenizer)).toEqual(tokenizer.encode("从前有座山"));
    expect(getTemplate("plain").render([system("s"), user("a"), assistant("b"), user("c")], tokenizer)).toEqual(tokenizer.encode("s\na\nb\nc"));
  });

  it("bad names and messages are typed errors naming the value", () => {
    expect(() => getTemplate("vicuna")).toThrow(ChatTemplateError);
    expect(() => getTemplate("vicuna")).toThrow(/unknown chat template "vicuna"; known: alpaca, alpaca-2, alpaca-2-long, mixtral, linly, plain, jinja/);
    const bad = [{ role: "bot", content: "x" }] as unknown as ChatMessage[];
    expect(() => getTemplate("alpaca-2").render(bad, tokenizer)).toThrow(ChatHistoryError);
    expect(() => getTemplate("alpaca-2").render(bad, tokenizer)).toThrow(/message 0 has role "bot"/);
  });
});

describe("Jinja chat templates", () => {
  const conversation = [user("你好"), assistant("你好！有什么可以帮你？"), user("讲个故事")];

  it("Llama-2's official chat_template renders single turns identically to alpaca-2", () => {
    const official = jinjaTemplate(LLAMA2_CHAT_TEMPLATE);
    const builtIn = getTemplate("alpaca-2");
    const withSystem = [system(ALPACA2_SYSTEM), user("你好，请介绍一下北京。")];
    expect(official.render(withSystem, tokenizer)).toEqual(builtIn.render(withSystem, tokenizer));
    expect(official.render(withSystem, tokenizer)).toEqual(golden.cases[0]!.ids);
    // Without a system message the official template has no <<SYS>> block: alpaca-2 with an empty one.
    expect(official.render([user("你好")], tokenizer)).toEqual(builtIn.render([system(""), user("你好")], tokenizer));
  });

  it("multi-turn: the official template puts a space before </s>, upstream does not", () => {
    const ours = getTemplate("alpaca-2").render([system(ALPACA2_SYSTEM), ...conversation], tokenizer);
    expect(jinjaTemplate(ALPACA2_JINJA).render([system(ALPACA2_SYSTEM), ...conversation], tokenizer)).toEqual(ours);
    const official = jinjaTemplate(LLAMA2_CHAT_TEMPLATE).render([system(ALPACA2_SYSTEM), ...conversation], tokenizer);
    expect(official).not.toEqual(ours);
    expect(tokenizer.decode(official)).toBe(tokenizer.decode(ours).replace("帮你？", "帮你？ "));
  });

  it("no double BOS; raise_exception and syntax errors become ChatTemplateError", () => {
    const ids = jinjaTemplate(LLAMA2_CHAT_TEMPLATE).render([user("x")], tokenizer);
    expect(ids.slice(0, 2).filter((id) => id === tokenizer.bosId)).toHaveLength(1);
    const noBos = jinjaTemplate("{% for m in messages %}{{ m['content'] }}{% endfor %}");
    expect(noBos.render([user("x")], tokenizer)[0]).toBe(tokenizer.bosId);
    expect(() => jinjaTemplate(LLAMA2_CHAT_TEMPLATE).render([user("a"), user("b")], tokenizer)).toThrow(/failed to render: .*Conversation roles must alternate/);
    expect(() => jinjaTemplate("{% for m in messages %}")).toThrow(ChatTemplateError);
    expect(() => jinjaTemplate("")).toThrow(/empty/);
  });

  it("the Llama-2 markers are the ids published for LLaMA's vocabulary", () => {
    const vocab = (llamaTokenizerJs as unknown as { vocabById: string[] }).vocabById;
    const llama = tokenizerFromSentencePieceBytes(serializeSentencePieceModel(buildLlamaTokenizerModel(vocab)));
    const ids = getTemplate("alpaca-2").render([system("S"), user("Hi"), assistant("Yo"), user("Hm")], llama);
    // <s> [INST] <<SYS>> \n : Meta's llama-recipes and llama.cpp show these ids.
    expect(ids.slice(0, 9)).toEqual([1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13]);
    // ... Yo</s><s>[INST] Hm [/INST]: the turn break is EOS, BOS, then "[INST]" with its dummy prefix.
    const brk = ids.indexOf(2);
    expect(ids.slice(brk, brk + 5)).toEqual([2, 1, 518, 25580, 29962]);
    expect(ids.slice(-4)).toEqual([518, 29914, 25580, 29962]);
  });
});

describe("detectTemplate", () => {
  it("prefers the GGUF chat_template, then general.name, else plain", () => {
    expect(detectTemplate({ "tokenizer.chat_template": LLAMA2_CHAT_TEMPLATE, "general.name": "chinese-alpaca-2-7b" }).name).toBe("jinja");
    expect(detectTemplate({ "general.name": "chinese-alpaca-2-7b" }).name).toBe("alpaca-2");
    expect(detectTemplate({ "general.name": "Chinese-Alpaca-2-13B-16K" }).name).toBe("alpaca-2");
    expect(detectTemplate({ "general.name": "chinese-alpaca-plus-7b" }).name).toBe("alpaca");
    expect(detectTemplate({ "general.name": "chinese-mixtral-instruct" }).name).toBe("mixtral");
    expect(detectTemplate({ "general.name": "Linly-ChatFlow-7B" }).name).toBe("linly");
    expect(detectTemplate({ "general.name": "chinese-llama-2-7b" }).name).toBe("plain");
    expect(detectTemplate({}).name).toBe("plain");
    expect(templateNameFromModelName("Llama-2-7b-chat-hf")).toBe("alpaca-2");
  });
});

describe("fitHistory", () => {
  const t = getTemplate("alpaca-2");
  const conversation = [system("短"), user("第一问"), assistant("第一答"), user("第二问"), assistant("第二答"), user("第三问")];
  const length = (m: ChatMessage[]) => t.render(m, tokenizer).length;

  it("keeps everything that fits", () => {
    expect(fitHistory(t, conversation, tokenizer, length(conversation) + 10, 10)).toEqual(conversation);
  });

  it("drops the oldest turns first, never the system message", () => {
    const without1 = [conversation[0]!, ...conversation.slice(3)];
    expect(fitHistory(t, conversation, tokenizer, length(conversation) + 9, 10)).toEqual(without1);
    expect(fitHistory(t, conversation, tokenizer, length(without1) + 10, 10)).toEqual(without1);
    const last = [conversation[0]!, conversation[5]!];
    expect(fitHistory(t, conversation, tokenizer, length(without1) + 9, 10)).toEqual(last);
    expect(fitHistory(t, conversation, tokenizer, length(last) + 10, 10)).toEqual(last);
  });

  it("throws when the last message alone does not fit", () => {
    const last = [conversation[0]!, conversation[5]!];
    expect(() => fitHistory(t, conversation, tokenizer, length(last) + 9, 10)).toThrow(ContextOverflowError);
    expect(() => fitHistory(t, conversation, tokenizer, length(last) + 9, 10)).toThrow(new RegExp(`needs ${length(last)} prompt tokens \\+ 10 reserved`));
  });
});
