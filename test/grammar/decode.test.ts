/** Constrained decoding on a random-weight model: the output always fits the grammar. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Grammar,
  GrammarConstraint,
  JSON_OBJECT_GBNF,
  JsonSchemaError,
  TokenTrie,
  generateConstrained,
  jsonSchemaGrammar,
  jsonSchemaToGbnf,
  tokenBytes,
} from "../../src/grammar/index.js";
import type { LlamaModel } from "../../src/model/index.js";
import type { GenerationResult } from "../../src/generate/index.js";
import { loadTokenizer, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { hasShared, sharedPath } from "../helpers/shared.js";
import { jsonModel } from "./helpers.js";

let model: LlamaModel;
let tokenizer: SentencePieceTokenizer;
beforeAll(async () => {
  ({ model, tokenizer } = await jsonModel());
});
afterAll(async () => {
  await model?.dispose();
});

async function run(grammar: Grammar, seed: number, maxTokens = 300): Promise<GenerationResult> {
  const session = model.createSession();
  try {
    const prompt = tokenizer.encode("json:");
    for await (const e of generateConstrained(session, tokenizer, prompt, { constraint: new GrammarConstraint(grammar, tokenizer), seed, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, maxTokens })) {
      if (e.type === "done") return e.result;
    }
    throw new Error("no result");
  } finally {
    session.release();
  }
}

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 4 },
    age: { type: "integer", minimum: 0 },
    ok: { type: "boolean" },
    tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 },
    kind: { anyOf: [{ const: "x" }, { type: "null" }] },
    score: { type: "number" },
  },
  required: ["name", "age", "ok"],
};

/** A hand check of SCHEMA (no validator dependency). */
function fitsSchema(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.some((k) => !(k in SCHEMA.properties))) return false;
  if (typeof o.name !== "string" || [...o.name].length > 4) return false;
  if (typeof o.age !== "number" || !Number.isInteger(o.age) || o.age < 0) return false;
  if (typeof o.ok !== "boolean") return false;
  if ("tags" in o && (!Array.isArray(o.tags) || o.tags.length > 3 || o.tags.some((t) => t !== "a" && t !== "b"))) return false;
  if ("kind" in o && o.kind !== "x" && o.kind !== null) return false;
  if ("score" in o && typeof o.score !== "number") return false;
  return true;
}

describe("token masks", () => {
  it("equal a token-by-token check of the whole vocabulary", () => {
    const grammar = jsonSchemaGrammar(SCHEMA);
    const constraint = new GrammarConstraint(grammar, tokenizer);
    const reference = Grammar.parse(jsonSchemaToGbnf(SCHEMA));
    const trie = TokenTrie.of(tokenizer);
    expect(trie.nodeCount).toBeGreaterThan(10);
    // Walk a valid document token by token, comparing the mask at every step.
    const doc = '{"name": "ab", "age": 10, "ok": true, "tags": ["a"], "kind": null}';
    const ids = tokenizer.encode(doc, { addBos: false });
    let atStart = true;
    for (const id of [...ids, tokenizer.eosId]) {
      const allowed = constraint.allowed().slice();
      for (let t = 0; t < tokenizer.vocabSize; t++) {
        let ok: boolean;
        if (t === tokenizer.eosId) ok = constraint.matcher.canEnd;
        else {
          const bytes = tokenBytes(tokenizer, t, atStart);
          const probe = reference.matcher();
          // Replay what was accepted so far on a fresh matcher, then try this token.
          probe.acceptBytes(acceptedBytes);
          ok = bytes.length > 0 && probe.acceptBytes(bytes);
        }
        expect(allowed[t], `token ${t} ${JSON.stringify(tokenizer.idToPiece(t))} after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(acceptedBytes)))}`).toBe(ok ? 1 : 0);
      }
      expect(allowed[id]).toBe(1);
      if (id !== tokenizer.eosId) {
        const bytes = tokenBytes(tokenizer, id, atStart);
        acceptedBytes.push(...bytes);
        if (bytes.length > 0) atStart = false;
      }
      constraint.accept(id);
    }
  });
  const acceptedBytes: number[] = [];
});

describe("constrained generation", () => {
  it("JSON Schema output parses and fits the schema for many seeds", async () => {
    const grammar = jsonSchemaGrammar(SCHEMA);
    for (let seed = 1; seed <= 12; seed++) {
      const r = await run(grammar, seed);
      expect(r.finishReason, r.text).toBe("stop");
      const value = JSON.parse(r.text) as unknown;
      expect(fitsSchema(value), r.text).toBe(true);
    }
  });

  it("json_object output is always a JSON object when it ends, and a JSON prefix when cut", async () => {
    const grammar = Grammar.parse(JSON_OBJECT_GBNF);
    let finished = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const r = await run(grammar, seed, 120);
      if (r.finishReason === "stop") {
        finished++;
        const v = JSON.parse(r.text) as unknown;
        expect(typeof v === "object" && v !== null && !Array.isArray(v), r.text).toBe(true);
      } else {
        const m = grammar.matcher();
        expect(m.acceptText(r.text), r.text).toBe(true);
      }
    }
    expect(finished).toBeGreaterThan(0);
  });

  it("a GBNF grammar: exactly its language", async () => {
    const grammar = Grammar.parse(`root ::= ("yes" | "no" | "中文") ("," [0-9]){1,3}`);
    for (let seed = 1; seed <= 8; seed++) {
      const r = await run(grammar, seed);
      expect(r.text).toMatch(/^(yes|no|中文)(,[0-9]){1,3}$/);
      expect(r.finishReason).toBe("stop");
    }
  });

  it("never emits overlong UTF-8 or stray bytes", async () => {
    const grammar = Grammar.parse(`root ::= [a-z,]{1,8}`);
    for (let seed = 1; seed <= 4; seed++) {
      const r = await run(grammar, seed);
      expect(r.text).toMatch(/^[a-z,]{1,8}$/);
    }
  });
});

describe("generateConstrained's prompt batches", () => {
  it("pause runs between prompt micro-batches and tokens; an abort there stops a long prompt early", async () => {
    const session = model.createSession();
    try {
      const prompt = [1, ...Array.from({ length: 300 }, (_, i) => 3 + (i % 250))];
      let pauses = 0;
      const controller = new AbortController();
      const events = generateConstrained(session, tokenizer, prompt, { signal: controller.signal, maxTokens: 5, pause: async () => void (++pauses === 2 && controller.abort()) });
      let result: GenerationResult | undefined;
      for await (const e of events) if (e.type === "done") result = e.result;
      expect(result!.finishReason).toBe("abort");
      expect(result!.generatedIds).toEqual([]);
      expect(session.nPast).toBe(2 * session.state.maxTok);
      // Without an abort: every batch and token pauses, and the cached prefix is reused.
      pauses = 0;
      let n = 0;
      for await (const e of generateConstrained(session, tokenizer, prompt, { maxTokens: 3, ignoreEos: true, pause: async () => void n++ })) if (e.type === "done") result = e.result;
      expect(result!.generatedIds).toHaveLength(3);
      expect(result!.timings.promptTokens).toBe(prompt.length - 2 * session.state.maxTok);
      expect(n).toBe(Math.ceil(result!.timings.promptTokens / session.state.maxTok) - 1 + 2);
    } finally {
      session.release();
    }
  });
});

describe("JSON Schema conversion", () => {
  it("accepts valid and rejects invalid documents", () => {
    const g = jsonSchemaGrammar(SCHEMA);
    const ok = ['{"name": "ab", "age": 3, "ok": false}', '{"name":"","age":0,"ok":true,"tags":[],"kind":"x","score":-1.5e3}', '{"name": "中文", "age": 12, "ok": true, "score": 2}'];
    const bad = ['{"age": 3, "name": "ab", "ok": false}', '{"name": "abcde", "age": 3, "ok": false}', '{"name": "a", "age": -3, "ok": false}', '{"name": "a", "age": 3, "ok": false, "extra": 1}', '{"name": "a", "age": 3, "ok": false, "tags": ["a","b","a","b"]}', '{"name": "a", "age": 3}'];
    for (const s of ok) expect(g.matcher().accepts(s), s).toBe(true);
    for (const s of bad) expect(g.matcher().accepts(s), s).toBe(false);
  });

  it("handles $defs references, type lists, prefixItems and optional-only objects", () => {
    const g = jsonSchemaGrammar({
      $defs: { node: { type: "object", properties: { v: { type: "integer" }, next: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } }, required: ["v", "next"] } },
      type: "object",
      properties: { list: { $ref: "#/$defs/node" }, pair: { type: "array", prefixItems: [{ type: "string" }, { type: ["number", "null"] }] }, o: { type: "object", properties: { p: { type: "boolean" }, q: { type: "null" } } } },
    });
    expect(g.matcher().accepts('{"list": {"v": 1, "next": {"v": 2, "next": null}}, "pair": ["a", null], "o": {"q": null}}')).toBe(true);
    expect(g.matcher().accepts('{"o": {"p": true, "q": null}}')).toBe(true);
    expect(g.matcher().accepts("{}")).toBe(true);
    expect(g.matcher().accepts('{"o": {"q": null, "p": true}}')).toBe(false);
    expect(g.matcher().accepts('{"pair": ["a"]}')).toBe(false);
  });

  it.each([
    [{ type: "string", pattern: "^a" }, /#: "pattern" is not supported/],
    [{ type: "object", properties: { a: { type: "wat" } } }, /#\/properties\/a\/type: unknown type "wat"/],
    [{ $ref: "#/$defs/missing" }, /"#\/\$defs\/missing" is not defined/],
    [{ type: "object", properties: { a: {} }, required: ["b"] }, /#\/required: "b" is not among the properties/],
    [{ type: "array", minItems: 3, maxItems: 1 }, /maxItems 1 is below minItems 3/],
    [42, /a schema must be an object or a boolean/],
  ])("rejects %j", (schema, pattern) => {
    expect(() => jsonSchemaGrammar(schema)).toThrow(JsonSchemaError);
    expect(() => jsonSchemaGrammar(schema)).toThrow(pattern);
  });
});

describe("on the LLaMA vocabulary (../shared)", () => {
  it.skipIf(!hasShared)("every token of a tokenized JSON document is allowed at its step", async () => {
    const llama = await loadTokenizer(sharedPath("tokenizer", "llama.gguf"));
    const c = new GrammarConstraint(jsonSchemaGrammar(SCHEMA), llama);
    const doc = '{"name": "张三", "age": 42, "ok": true, "tags": ["a", "b"], "score": -1.5e3}';
    const ids = llama.encode(doc, { addBos: false });
    for (const id of ids) {
      expect(c.allowed()[id], `token ${JSON.stringify(llama.idToPiece(id))}`).toBe(1);
      c.accept(id);
    }
    const last = c.allowed();
    expect(last[llama.eosId]).toBe(1);
    expect(last.reduce((a, b) => a + b, 0)).toBe(1);
    expect(llama.decode(ids)).toBe(doc);
  });
});
