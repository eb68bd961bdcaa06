/** chat --template and serve --template choose through one library function. */
import { describe, expect, it } from "vitest";
import { ChatTemplateError, templateFor } from "../../src/chat/index.js";

const withJinja = { "general.name": "chinese-alpaca-2-7b", "tokenizer.chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}" };
const plain = { "general.name": "chinese-alpaca-2-7b" };

describe("templateFor", () => {
  it("no name: the model's own template, else the one its name suggests", () => {
    expect(templateFor(undefined, withJinja, "a.gguf").name).toBe("jinja");
    expect(templateFor(undefined, plain, "a.gguf").name).toBe("alpaca-2");
  });
  it("jinja: the model's tokenizer.chat_template (serve --template jinja used to fail), or an error naming the file", () => {
    expect(templateFor("jinja", withJinja, "a.gguf").name).toBe("jinja");
    expect(() => templateFor("jinja", plain, "b.gguf")).toThrow(ChatTemplateError);
    expect(() => templateFor("jinja", plain, "b.gguf")).toThrow(/b\.gguf: template "jinja": the model has no tokenizer\.chat_template/);
  });
  it("a built-in name overrides the model's own", () => {
    expect(templateFor("alpaca", withJinja, "a.gguf").name).toBe("alpaca");
    expect(() => templateFor("nope", plain)).toThrow(/unknown chat template "nope"/);
  });
});
