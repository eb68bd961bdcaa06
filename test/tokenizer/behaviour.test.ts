/** Behaviours SentencePiece goldens cannot show: streaming, specials, bad input, GGUF files. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeGguf } from "../../src/formats/gguf/index.js";
import {
  PieceType,
  SentencePieceFormatError,
  SentencePieceTokenizer,
  TokenizerError,
  decodeBytesLikeSentencePiece,
  loadTokenizer,
  parseSentencePieceModel,
  saveTokenizerModel,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePieceBytes,
  tokenizerFromSentencePieceModel,
  tokenizerToGgufMetadata,
  type TokenizerSettings,
} from "../../src/tokenizer/index.js";
import { FIXTURES, readJsonl, llamaModelBytes } from "./helpers.js";

const llamaBytes = llamaModelBytes();
const llama = tokenizerFromSentencePieceBytes(llamaBytes, "llama.model");
const fixtureBytes = new Uint8Array(readFileSync(join(FIXTURES, "zh-bpe.model")));

describe("streaming decode", () => {
  it("prints a byte-fallback Chinese character only when complete", () => {
    const ids = llama.encode("依", { addBos: false }); // ▁ <0xE4> <0xBE> <0x9D>
    expect(ids.length).toBe(4);
    const d = llama.createStreamingDecoder();
    expect(ids.map((id) => d.push(id))).toEqual(["", "", "", "依"]);
    expect(d.flush()).toBe("");
  });

  it("equals one-shot decode on every prefix split, for long mixed text", () => {
    const texts = readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl")).map((c) => c.text).filter((t) => !t.includes("\ufffd"));
    for (const text of texts) {
      const ids = llama.encode(text);
      const d = llama.createStreamingDecoder();
      let out = "";
      for (const id of ids) {
        const piece = d.push(id);
        expect(piece).not.toMatch(/\ufffd/);
        out += piece;
      }
      expect(out + d.flush()).toBe(llama.decode(ids));
    }
  });

  it("replaces each invalid byte like SentencePiece (not like TextDecoder)", () => {
    expect(decodeBytesLikeSentencePiece([0xf0, 0x9f, 0xa6])).toBe("\ufffd\ufffd\ufffd");
    expect(decodeBytesLikeSentencePiece([0xe0, 0x80, 0x80])).toBe("\ufffd\ufffd\ufffd"); // overlong
    expect(decodeBytesLikeSentencePiece([0xed, 0xa0, 0x80])).toBe("\ufffd\ufffd\ufffd"); // surrogate
    expect(decodeBytesLikeSentencePiece([0xe4, 0xe4, 0xb8, 0xad])).toBe("\ufffd中");
    expect(decodeBytesLikeSentencePiece([0xf4, 0x90, 0x80, 0x80])).toBe("\ufffd\ufffd\ufffd\ufffd"); // > U+10FFFF
  });
});

describe("special tokens", () => {
  it("treats <s> in text as text unless asked", () => {
    const plain = llama.encode("<s>你好</s>", { addBos: false });
    expect(plain).not.toContain(1);
    expect(plain).not.toContain(2);
    const parsed = llama.encode("<s>你好</s>", { addBos: false, parseSpecial: true });
    expect(parsed[0]).toBe(1);
    expect(parsed[parsed.length - 1]).toBe(2);
    expect(parsed.slice(1, -1)).toEqual(llama.encode("你好", { addBos: false }));
    expect(llama.encode("", {})).toEqual([1]);
    expect(llama.encode("hi", { addEos: true })).toEqual([1, ...llama.encode("hi", { addBos: false }), 2]);
  });
});

describe("bad input", () => {
  it("rejects invalid UTF-8 and lone surrogates with a TokenizerError naming the offset", () => {
    expect(() => llama.encode(new Uint8Array([0x61, 0xe4, 0xb8]))).toThrow(/not valid UTF-8 at byte 1/);
    expect(() => llama.encode(new Uint8Array([0x61, 0xff]))).toThrow(TokenizerError);
    expect(() => llama.encode("ab\ud800c")).toThrow(/lone surrogate U\+D800 at UTF-16 index 2/);
    expect(llama.encode(new TextEncoder().encode("中文"))).toEqual(llama.encode("中文"));
  });

  it("rejects ids outside the vocabulary on decode", () => {
    expect(() => llama.decode([1, 32000])).toThrow(/token id 32000 is outside the vocabulary \(0\.\.31999\)/);
    expect(() => llama.decode([-1])).toThrow(TokenizerError);
    expect(() => llama.decode([1.5])).toThrow(TokenizerError);
    expect(() => llama.createStreamingDecoder().push(40000)).toThrow(TokenizerError);
  });

  it("rejects every truncation of a tokenizer.model with a typed error, never a crash", () => {
    for (const cut of [1, 2, 5, 17, 100, 1000, 40000, fixtureBytes.length - 1]) {
      let error: unknown;
      try {
        tokenizerFromSentencePieceBytes(fixtureBytes.subarray(0, cut), "cut.model");
      } catch (e) {
        error = e;
      }
      // A cut that lands exactly on a field boundary parses; the tokenizer then finds it incomplete.
      expect(error instanceof SentencePieceFormatError || error instanceof TokenizerError, `cut ${cut}: ${String(error)}`).toBe(true);
    }
    expect(() => parseSentencePieceModel(new TextEncoder().encode("not a model at all"), "junk.model")).toThrow(SentencePieceFormatError);
    expect(() => parseSentencePieceModel(new Uint8Array(0), "empty.model")).toThrow(/no pieces/);
  });

  it("survives random byte flips in a tokenizer.model with typed errors only", () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 300; trial++) {
      const bytes = fixtureBytes.slice();
      for (let k = 0; k < 3; k++) bytes[rand(bytes.length)] = rand(256);
      try {
        tokenizerFromSentencePieceBytes(bytes, "flipped.model").encode("白日依山尽 hello 🦙");
      } catch (e) {
        expect(e instanceof SentencePieceFormatError || e instanceof TokenizerError, String(e)).toBe(true);
      }
    }
  });

  it("names the broken piece of a model SentencePiece would refuse", () => {
    const model = parseSentencePieceModel(fixtureBytes);
    const dup = { ...model, pieces: [...model.pieces, { ...model.pieces[500]! }] };
    expect(() => tokenizerFromSentencePieceModel(dup, "dup.model")).toThrow(/dup\.model: piece 6000 .* is already defined as id 500/);
    const noUnk = { ...model, pieces: model.pieces.map((p, i) => (i === 0 ? { piece: "<unk>", score: 0, type: PieceType.Control } : p)) };
    expect(() => tokenizerFromSentencePieceModel(noUnk, "nounk.model")).toThrow(/no piece of type UNKNOWN/);
    const noByte = { ...model, pieces: model.pieces.filter((p) => p.piece !== "<0x41>") };
    expect(() => tokenizerFromSentencePieceModel(noByte, "nobyte.model")).toThrow(/no piece <0x41>/);
    const unigram = parseSentencePieceModel(new Uint8Array(readFileSync(join(FIXTURES, "zh-unigram.model"))));
    expect(() => tokenizerFromSentencePieceModel(unigram, "zh-unigram.model")).toThrow(/model_type is Unigram/);
  });

  it("rejects GGUF metadata with inconsistent tokenizer arrays or ids", () => {
    const good = tokenizerToGgufMetadata(llama);
    const tokens = good["tokenizer.ggml.tokens"] as string[];
    const broken = (patch: Record<string, unknown>): (() => void) => () => tokenizerFromGgufMetadata({ ...good, ...(patch as object) } as typeof good, "bad.gguf");
    expect(broken({ "tokenizer.ggml.scores": (good["tokenizer.ggml.scores"] as number[]).slice(1) })).toThrow(/bad\.gguf: tokenizer\.ggml\.scores has 31999 entries but there are 32000 tokens/);
    expect(broken({ "tokenizer.ggml.token_type": (good["tokenizer.ggml.token_type"] as number[]).slice(0, 10) })).toThrow(/token_type has 10 entries/);
    expect(broken({ "tokenizer.ggml.bos_token_id": 32000 })).toThrow(/bos_token_id = 32000 is outside the vocabulary/);
    expect(broken({ "tokenizer.ggml.unknown_token_id": 5 })).toThrow(/expected type UNKNOWN/);
    expect(broken({ "tokenizer.ggml.token_type": tokens.map(() => 9) })).toThrow(/token_type\[0\] is 9/);
    expect(broken({ "tokenizer.ggml.tokens": [...tokens.slice(0, 31999), 7] })).toThrow(/tokens\[31999\] is number/);
    expect(broken({ "tokenizer.ggml.model": "gpt2" })).toThrow(/expected "llama"/);
    expect(broken({ "tokenizer.ggml.tokens": undefined })).toThrow(/tokenizer\.ggml\.tokens is missing/);
    expect(broken({ "tokenizer.ggml.tokens": [...tokens.slice(0, 31999), tokens[500]] })).toThrow(/bad\.gguf: piece 31999 .* is already defined as id 500/);
  });

  it("rejects a vocabulary whose arrays disagree, when built directly", () => {
    const settings: TokenizerSettings = { ...llama.settings };
    expect(() => new SentencePieceTokenizer({ pieces: ["<unk>", "a"], scores: [0], types: [2, 1] }, settings, { kind: "memory", name: "mem" })).toThrow(/2 pieces but 1 scores/);
  });
});

describe("files", () => {
  it("a GGUF written from a tokenizer.model encodes identically", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-llama-tok-"));
    const path = join(dir, "vocab.gguf");
    await writeGguf(path, { metadata: { "general.architecture": "llama", ...tokenizerToGgufMetadata(llama) }, tensors: [] });
    const fromGguf = await loadTokenizer(path);
    expect(fromGguf.origin.kind).toBe("gguf");
    for (const c of readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl"))) expect(fromGguf.encode(c.text)).toEqual(llama.encode(c.text));
    const saved = join(dir, "tokenizer.model");
    await saveTokenizerModel(fromGguf, saved);
    const back = await loadTokenizer(saved);
    expect(back.origin.kind).toBe("sentencepiece");
    expect(back.encode("中文 text 🦙")).toEqual(llama.encode("中文 text 🦙"));
  });
});
