/**
 * Issue 19, item 9: a long input is tokenized a piece at a time, so memory stays near one
 * piece's symbols, with exactly the ids of encoding it whole. Hard cuts (between two characters
 * no vocabulary piece has side by side) are checked by forcing tiny pieces on random text over
 * every fixture vocabulary (user-defined pieces, UNUSED pieces, NFKC, byte fallback) and LLaMA's;
 * soft cuts inside long runs of one joinable character (LLaMA's "▁▁".."▁"×16, "--".."-"×16, the
 * Chinese-extended "人人") by forcing them everywhere, with margins so small that their exact
 * check fails and the fallback runs, and against SentencePiece itself on runs of many lengths
 * with text around them.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  loadTokenizer,
  mergeSentencePieceModels,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  tokenizerFromSentencePieceBytes,
  type SentencePieceTokenizer,
} from "../../src/tokenizer/index.js";
import { main } from "../../src/cli/index.js";
import { FIXTURES, python, readJsonl, llamaModelBytes } from "./helpers.js";

const llamaBytes = llamaModelBytes();
const llama = tokenizerFromSentencePieceBytes(llamaBytes, "llama");
// As Chinese-LLaMA was made: LLaMA + a chinese_sp-like model, every added piece scoring 0.
const unigram = parseSentencePieceModel(new Uint8Array(readFileSync(join(FIXTURES, "zh-unigram.model"))));
const chineseBytes = serializeSentencePieceModel(mergeSentencePieceModels(parseSentencePieceModel(llamaBytes), unigram).model);
const chinese = tokenizerFromSentencePieceBytes(chineseBytes, "chinese-llama");
const FIXTURE_NAMES = ["zh-bpe", "zh-bpe-nfkc", "zh-bpe-suffix", "zh-bpe-unused", "zh-merged"];
const fixtures = await Promise.all(FIXTURE_NAMES.map(async (n) => [n, await loadTokenizer(join(FIXTURES, `${n}.model`))] as const));
const tokenizers: Array<readonly [string, SentencePieceTokenizer]> = [...fixtures, ["llama", llama]];
const allTokenizers: Array<readonly [string, SentencePieceTokenizer]> = [...tokenizers, ["chinese-llama", chinese]];
const modelBytes: Record<string, Uint8Array> = {
  ...Object.fromEntries(FIXTURE_NAMES.map((n) => [n, new Uint8Array(readFileSync(join(FIXTURES, `${n}.model`)))])),
  llama: llamaBytes,
  "chinese-llama": chineseBytes,
};

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

function encodeWith(t: SentencePieceTokenizer, chunk: number, text: string, parseSpecial = false, hardCutSearch = t.hardCutSearch, cutMargin = t.cutMargin): number[] {
  const saved = [t.chunkLength, t.hardCutSearch, t.cutMargin] as const;
  t.chunkLength = chunk;
  t.hardCutSearch = hardCutSearch;
  t.cutMargin = cutMargin;
  try {
    return t.encode(text, { parseSpecial });
  } finally {
    [t.chunkLength, t.hardCutSearch, t.cutMargin] = saved;
  }
}

/** Long runs of one character (each joinable in some vocabulary) with short text between. */
function runText(seed: number): string {
  let s = seed >>> 0;
  const rand = (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const runChars = [" ", "-", "人", "a", "□", "/", ".", "▁", "w", "=", "─", "😀", "x", "\t"];
  const between = ["", "a", "t", "the", "人", "好", "-", "x-", "<s>", "ab", "\n", "😀", "。", " "];
  let out = "";
  for (let parts = 1 + rand(5); parts > 0; parts--) {
    out += between[rand(between.length)];
    const c = runChars[rand(runChars.length)]!;
    out += c.repeat(rand(4) === 0 ? rand(20) : rand(300));
    if (rand(3) === 0) out += (c + runChars[rand(runChars.length)]).repeat(rand(40));
  }
  return out;
}

/** Counts the soft-cut checks `t` makes (and how many fail) while `fn` runs; `always` overrides their answer. */
function countingChecks<T>(t: SentencePieceTokenizer, fn: () => T, always?: boolean): { result: T; checks: number; failed: number } {
  const target = t as unknown as { softCutHolds: (...args: unknown[]) => boolean };
  const original = target.softCutHolds;
  let checks = 0;
  let failed = 0;
  target.softCutHolds = function (this: unknown, ...args: unknown[]) {
    checks++;
    const ok = always ?? original.apply(this, args);
    if (!ok) failed++;
    return ok;
  };
  try {
    return { result: fn(), checks, failed };
  } finally {
    target.softCutHolds = original;
  }
}

/** SentencePiece's own ids (python3-sentencepiece), without BOS. */
function spmIds(model: Uint8Array, texts: string[]): number[][] {
  const dir = mkdtempSync(join(tmpdir(), "zh-llama-spm-"));
  const path = join(dir, "m.model");
  writeFileSync(path, model);
  const r = spawnSync(python!, [join(import.meta.dirname, "spm-live.py")], { input: JSON.stringify({ model: path, texts }), encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { ids: number[][] }).ids;
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

describe("long runs of one joinable character: soft cuts give the ids of the whole", () => {
  // [chunkLength, hardCutSearch, cutMargin]: soft cuts everywhere; margins of 0 make checks fail.
  const SETTINGS = [[1, 0, 0], [3, 0, 0], [7, 0, 2], [16, 0, 20], [50, 0, 5], [100, 0, 64], [37, 1024, 1024]] as const;

  it("random text with long runs, over every fixture vocabulary, LLaMA's and a Chinese-extended one", () => {
    let checks = 0;
    let failed = 0;
    for (const [name, t] of allTokenizers) {
      for (let seed = 1; seed <= 50; seed++) {
        const text = runText(seed * 7919 + name.length);
        const special = seed % 2 === 0;
        const whole = encodeWith(t, 1 << 30, text, special);
        for (const [chunk, search, margin] of SETTINGS) {
          const r = countingChecks(t, () => encodeWith(t, chunk, text, special, search, margin));
          expect(r.result, `${name} seed ${seed} settings ${chunk}/${search}/${margin}`).toEqual(whole);
          checks += r.checks;
          failed += r.failed;
        }
      }
    }
    // Both outcomes ran: soft cuts that hold, and ones that do not (then the fallback).
    expect(checks).toBeGreaterThan(10_000);
    expect(failed).toBeGreaterThan(100);
    expect(failed).toBeLessThan(checks / 2);
  });

  it("the check is what makes them safe: trusting every soft cut gives wrong ids", () => {
    let wrong = 0;
    for (const t of [llama, fixtures[0]![1]]) {
      for (let seed = 1; seed <= 40; seed++) {
        const text = runText(seed);
        const trusted = countingChecks(t, () => encodeWith(t, 1, text, false, 0, 0), true);
        if (JSON.stringify(trusted.result) !== JSON.stringify(encodeWith(t, 1 << 30, text))) wrong++;
      }
    }
    expect(wrong).toBeGreaterThan(0);
  });

  it("the default settings on runs longer than a piece: the ids of the whole, no failed check, bounded scratch", () => {
    for (const [t, c, n] of [[llama, " ", 150_000], [llama, "-", 100_000], [llama, "a", 100_000], [chinese, "人", 100_000], [chinese, "□", 100_000], [fixtures[0]![1], " ", 100_000]] as const) {
      const text = "x" + c.repeat(n) + "the end" + c.repeat(n >> 1);
      const r = countingChecks(t, () => t.encode(text));
      expect(r.result, `${t.origin.name} ${JSON.stringify(c)}`).toEqual(encodeWith(t, 1 << 30, text));
      expect(r.checks).toBeGreaterThan(0);
      expect(r.failed).toBe(0);
    }
    // 2 MB of spaces: "▁" + 2M "▁" is LLaMA's 16-"▁" piece over and over, then what is left.
    const n = 2_000_000;
    const fresh = tokenizerFromSentencePieceBytes(llamaBytes, "llama");
    const ids = fresh.encode(" ".repeat(n), { addBos: false });
    expect(ids.length).toBe(Math.ceil((n + 1) / 16));
    const sixteen = llama.pieceToId("▁".repeat(16));
    expect(ids.slice(0, -1).every((id) => id === sixteen)).toBe(true);
    expect(ids.at(-1)).toBe(llama.pieceToId("▁".repeat((n + 1) % 16 || 16)));
    const scratch = (fresh as unknown as { scratch: { start: Int32Array } }).scratch;
    expect(scratch.start.length).toBeLessThan(1 << 18);
  });

  it.skipIf(!python)("runs of many lengths with text around them tokenize as SentencePiece does (live)", () => {
    const runChars = [" ", "-", "人", "a", "□", ".", "w", "😀", "\t"];
    const around = [["", ""], ["a", "b"], ["the", " cat"], ["人", "好"], ["x-", "-y"], ["😀", "😀"], ["hello ", " t"]];
    const lengths = [1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 48, 49, 100, 255, 1000];
    const texts: string[] = [];
    for (const c of runChars) for (const [a, b] of around) for (const n of lengths) texts.push(a + c.repeat(n) + b);
    // Longer than a piece of 2048 with the default margins: soft cuts as 10 MB of them would get.
    const long = ["the" + " ".repeat(5001) + "-".repeat(5003) + "a".repeat(5000) + " end", "□".repeat(5001) + "人".repeat(5002) + "." + "w".repeat(4099)];
    for (const [name, t] of allTokenizers) {
      const want = spmIds(modelBytes[name]!, [...texts, ...long]);
      const wrong: string[] = [];
      texts.forEach((text, i) => {
        for (const [chunk, search, margin] of [[1 << 30, 0, 0], [7, 0, 0], [50, 0, 16], [300, 16, 64]] as const) {
          const got = encodeWith(t, chunk, text, false, search, margin).slice(t.settings.addBos ? 1 : 0);
          if (JSON.stringify(got) !== JSON.stringify(want[i])) wrong.push(`${chunk}/${search}/${margin} ${JSON.stringify(text.slice(0, 30))} (${text.length})`);
        }
      });
      long.forEach((text, i) => {
        const got = encodeWith(t, 2048, text, false, 1024, 1024).slice(t.settings.addBos ? 1 : 0);
        if (JSON.stringify(got) !== JSON.stringify(want[texts.length + i])) wrong.push(`2048 ${JSON.stringify(text.slice(0, 10))} (${text.length})`);
      });
      expect(wrong, name).toEqual([]);
    }
  });

  it("encodeInBlocks hands over encode's ids a block at a time, and their count", () => {
    const text = randomText(400_000, 5) + "-".repeat(100_000) + randomText(200_000, 6);
    const blocks: number[][] = [];
    const count = llama.encodeInBlocks(text, {}, (ids) => blocks.push(ids));
    const all = llama.encode(text);
    expect(blocks.length).toBeGreaterThan(2);
    expect(count).toBe(all.length);
    expect(blocks.flat()).toEqual(all);
  });

  it("tokenize --jsonl writes a long line's ids a block at a time, as JSON.stringify would", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-long-"));
    const text = randomText(300_000, 9);
    const jsonl = join(dir, "in.jsonl");
    writeFileSync(jsonl, JSON.stringify({ text }) + "\n" + JSON.stringify({ text: "短" }) + "\n");
    const model = join(FIXTURES, "zh-merged.model");
    const t = await loadTokenizer(model);
    let out = "";
    const code = await main(["tokenize", "--model", model, "--jsonl", jsonl], { stdout: (s) => void (out += s), stderr: () => undefined, isTty: false });
    expect(code).toBe(0);
    expect(out).toBe(JSON.stringify({ ids: t.encode(text) }) + "\n" + JSON.stringify({ ids: t.encode("短") }) + "\n");
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
