/**
 * Normalizer settings the fixtures do not all cover (no charsmap + remove_extra_whitespaces,
 * no dummy prefix, unescaped spaces), made by editing zh-bpe.model's normalizer_spec and checked
 * live against SentencePiece. Also: corrupt normalization rules never crash or hang.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  SentencePieceFormatError,
  TokenizerError,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  tokenizerFromSentencePieceBytes,
  tokenizerFromSentencePieceModel,
  type NormalizerSpec,
} from "../../src/tokenizer/index.js";
import { FIXTURES, python, readJsonl } from "./helpers.js";

const base = parseSentencePieceModel(new Uint8Array(readFileSync(join(FIXTURES, "zh-bpe.model"))));
const texts = [
  ...readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl")).map((c) => c.text),
  "  两个前导空格", "中间   三个空格", "尾随空格   ", "   ", " ", "\t 制表 \t", "a ▁ b", "▁", "x▁", "▁▁ y ▁",
];

function live(bytes: Uint8Array, decode: number[][] = []): { ids: number[][]; decoded: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "zh-llama-variant-"));
  const model = join(dir, "m.model");
  writeFileSync(model, bytes);
  const r = spawnSync(python!, [join(import.meta.dirname, "spm-live.py")], { input: JSON.stringify({ model, texts, decode }), encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { ids: number[][]; decoded: string[] };
}

const variants: Record<string, NormalizerSpec> = {
  "remove_extra_whitespaces": { ...base.normalizerSpec, removeExtraWhitespaces: true },
  "no dummy prefix": { ...base.normalizerSpec, addDummyPrefix: false },
  "no dummy prefix, remove_extra_whitespaces": { ...base.normalizerSpec, addDummyPrefix: false, removeExtraWhitespaces: true },
  "spaces not escaped": { ...base.normalizerSpec, escapeWhitespaces: false },
};

describe.skipIf(!python)("normalizer variants vs SentencePiece (live)", () => {
  it.each(Object.keys(variants))("%s", (name) => {
    const model = { ...base, normalizerSpec: variants[name] };
    const tok = tokenizerFromSentencePieceModel(model, name);
    const bytes = serializeSentencePieceModel(model);
    const expected = live(bytes).ids;
    const wrong = texts.filter((t, i) => JSON.stringify(tok.encode(t, { addBos: false })) !== JSON.stringify(expected[i]));
    expect(wrong).toEqual([]);
    // Decoding drops one leading "▁" (all of them with remove_extra_whitespaces): check too.
    const withSpaces = [...expected, [3 + 0x20, tok.pieceToId("\u2581")], [tok.pieceToId("\u2581"), tok.pieceToId("\u2581"), 1, 2]].filter((ids) => ids.every((id) => id >= 0));
    const decoded = live(bytes, withSpaces).decoded;
    withSpaces.forEach((ids, i) => expect(tok.decode(ids)).toBe(decoded[i]));
  });
});

describe("corrupt normalization rules", () => {
  it("byte flips in the precompiled charsmap give typed errors or some encoding, never a crash or hang", () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, "zh-bpe-nfkc.model")));
    let seed = 3;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const b = bytes.slice();
      // The charsmap is most of this file: flip bytes in its second half.
      for (let k = 0; k < 8; k++) b[b.length - 1 - rand(b.length >> 1)] = rand(256);
      try {
        tokenizerFromSentencePieceBytes(b, "flipped-nfkc.model").encode("ﬁ ＡＢＣ　全角 ①② 白日依山尽 hello");
      } catch (e) {
        expect(e instanceof SentencePieceFormatError || e instanceof TokenizerError, String(e)).toBe(true);
      }
    }
  });
});
