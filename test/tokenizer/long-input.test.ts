/**
 * Issue 19, item 9: a long input is tokenized a piece at a time (cut only where no vocabulary
 * piece can span the cut), so memory stays near one piece's symbols, with exactly the ids of
 * encoding it whole. Checked by forcing tiny pieces on random text over every fixture vocabulary
 * (user-defined pieces, UNUSED pieces, NFKC, byte fallback) and LLaMA's (spaces joined by "▁▁").
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import llamaTokenizerJs from "llama-tokenizer-js";
import { describe, expect, it } from "vitest";
import { buildLlamaTokenizerModel, loadTokenizer, serializeSentencePieceModel, tokenizerFromSentencePieceBytes, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { main } from "../../src/cli/index.js";
import { FIXTURES, readJsonl } from "./helpers.js";

const llama = tokenizerFromSentencePieceBytes(serializeSentencePieceModel(buildLlamaTokenizerModel((llamaTokenizerJs as unknown as { vocabById: string[] }).vocabById)), "llama");
const fixtures = await Promise.all(["zh-bpe", "zh-bpe-nfkc", "zh-bpe-suffix", "zh-bpe-unused", "zh-merged"].map(async (n) => [n, await loadTokenizer(join(FIXTURES, `${n}.model`))] as const));
const tokenizers: Array<readonly [string, SentencePieceTokenizer]> = [...fixtures, ["llama", llama]];

/** Text drawn from the fixture corpus' characters plus spaces, runs of spaces, newlines, emoji, rare and replacement characters. */
function randomText(length: number, seed: number): string {
  const corpus = readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl")).map((c) => c.text).join("");
  const extra = [" ", " ", " ", "   ", "\n", "\t", "😀", "𠀀", "\uFFFD", "\u0000", "Ω", "ａ", "<s>", "ab", "the ", "▁"];
  let s = seed >>> 0;
  const rand = (n: number) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
  let out = "";
  while (out.length < length) {
    if (rand(4) === 0) out += extra[rand(extra.length)];
    else {
      const at = rand(corpus.length - 8);
      out += corpus.slice(at, at + 1 + rand(6));
    }
  }
  // No lone surrogates from the slicing above.
  return out.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "x");
}

function encodeWith(t: SentencePieceTokenizer, chunk: number, text: string, parseSpecial = false): number[] {
  const saved = t.chunkLength;
  t.chunkLength = chunk;
  try {
    return t.encode(text, { parseSpecial });
  } finally {
    t.chunkLength = saved;
  }
}

describe("long inputs are encoded in pieces with the same ids", () => {
  for (const [name, t] of tokenizers) {
    it(name, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const text = randomText(3000, seed * 7919);
        const whole = encodeWith(t, 1 << 30, text, seed % 2 === 0);
        for (const chunk of [1, 5, 37, 500]) expect(encodeWith(t, chunk, text, seed % 2 === 0), `${name} seed ${seed} chunk ${chunk}`).toEqual(whole);
      }
    });
  }

  it("runs of unknown characters stay one <unk> across a cut (no byte fallback)", () => {
    const t = fixtures.find(([n]) => n === "zh-bpe")![1];
    const text = "好" + "\u0378".repeat(50) + "好" + "\u0379\u037A".repeat(30);
    expect(encodeWith(t, 3, text)).toEqual(encodeWith(t, 1 << 30, text));
  });

  it("a 16 MB line of random characters is encoded with bounded scratch memory", () => {
    let s = 12345;
    const chars: string[] = [];
    for (let i = 0; i < 1 << 12; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      chars.push(String.fromCharCode(0x4e00 + (s % 0x5000)));
    }
    let text = "";
    for (let i = 0; text.length < 8 << 20; i++) text += chars[(i * 2654435761) % chars.length] + (i % 7 === 0 ? " " : "");
    const ids = llama.encode(text);
    expect(ids.length).toBeGreaterThan(text.length / 2);
    const scratch = (llama as unknown as { scratch: { start: Int32Array } }).scratch;
    expect(scratch.start.length).toBeLessThan(1 << 20);
  });
});

describe("text inputs must be UTF-8", () => {
  it("invalid UTF-8 in a --jsonl or --file input is a TokenizerError naming the file and byte, not U+FFFD", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-utf8-"));
    const jsonl = join(dir, "in.jsonl");
    writeFileSync(jsonl, Buffer.concat([Buffer.from('{"text": "好'), Buffer.from([0xe5, 0xa5]), Buffer.from('"}\n')]));
    const corpus = join(dir, "corpus.txt");
    writeFileSync(corpus, Buffer.concat([Buffer.from("床前明月光\n"), Buffer.from([0xff]), Buffer.from("\n")]));
    for (const [argv, file, at] of [[["tokenize", "--model", join(FIXTURES, "zh-bpe.model"), "--jsonl", jsonl], jsonl, 13], [["tokenizer-stats", "--model", join(FIXTURES, "zh-bpe.model"), "--file", corpus], corpus, 16]] as const) {
      let err = "";
      const code = await main([...argv], { stdout: () => undefined, stderr: (t) => void (err += t), isTty: false });
      expect(code).toBe(1);
      expect(err).toContain(`TokenizerError: `);
      expect(err).toContain(`${file}: not valid UTF-8 at byte ${at}`);
    }
  });

  it("the library: bytes are checked, strings cannot hold invalid UTF-8 (lone surrogates are refused), decode keeps U+FFFD", () => {
    const t = fixtures[0]![1];
    expect(() => t.encode(Uint8Array.from([0x61, 0xc3]))).toThrow(/not valid UTF-8 at byte 1/);
    expect(() => t.encode("a\uD800b")).toThrow(/lone surrogate/);
  });
});
