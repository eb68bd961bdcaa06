/**
 * LLaMA's real vocabulary, rebuilt from the npm package llama-tokenizer-js (never committed):
 * the rebuilt tokenizer.model must be Meta's file byte for byte, and must tokenize like
 * SentencePiece itself (live, when python3-sentencepiece is installed) and like ../shared.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import llamaTokenizerJs from "llama-tokenizer-js";
import { describe, expect, it } from "vitest";
import type { GgufValue } from "../../src/formats/gguf/index.js";
import {
  LLAMA_TOKENIZER_MODEL_SHA256,
  mergeSentencePieceModels,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  serializeTokenizer,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePieceBytes,
  tokenizerFromSentencePieceModel,
  tokenizerToGgufMetadata,
} from "../../src/tokenizer/index.js";
import { FIXTURES, SHARED_TOKENIZER, hasShared, python, readJsonl, skipNote, llamaModelBytes } from "./helpers.js";

const vocab = (llamaTokenizerJs as unknown as { vocabById: string[] }).vocabById;
const llamaBytes = llamaModelBytes();
const llama = tokenizerFromSentencePieceBytes(llamaBytes, "llama tokenizer.model (rebuilt)");
const cases = readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl")).map((c) => c.text);

if (!python) skipNote("live SentencePiece comparisons", "python3 with the sentencepiece module is not installed (apt-get install python3-sentencepiece)");

function spmLive(modelBytes: Uint8Array, texts: string[], decode: number[][] = []): { ids: number[][]; decoded: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "zh-llama-spm-"));
  const model = join(dir, "m.model");
  writeFileSync(model, modelBytes);
  const r = spawnSync(python!, [join(import.meta.dirname, "spm-live.py")], { input: JSON.stringify({ model, texts, decode }), encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { ids: number[][]; decoded: string[] };
}

/** Random strings over an alphabet that stresses merging, spaces and byte fallback. */
function fuzzTexts(count: number, seed: number): string[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const alphabet = [..."的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家可下而过天去能对小多然于心学么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期它头经长儿回位分爱老因很给名法间斯知世什两次使身者被高已亲其进此话常与活正感abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?，。！？、：；“”（）《》—…\t\n"];
  const rare = ["🦙", "😀", "𠀀", "𪚥", "\u3000", "   ", "<s>", "</s>", "▁", "é", "ß", "Ж", "ア", "한", "ꙋ", "\u200d", "\r\n", "  ", "\ufeff"];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(rand() * 60);
    let t = "";
    for (let k = 0; k < n; k++) t += rand() < 0.08 ? rare[Math.floor(rand() * rare.length)] : alphabet[Math.floor(rand() * alphabet.length)];
    out.push(t);
  }
  return out;
}

describe("LLaMA tokenizer.model rebuilt from llama-tokenizer-js", () => {
  it("is Meta's file byte for byte", () => {
    expect(llamaBytes.length).toBe(499723);
    expect(createHash("sha256").update(llamaBytes).digest("hex")).toBe(LLAMA_TOKENIZER_MODEL_SHA256);
  });

  it("equals the GGUF vocabulary of ../shared and encodes the same both ways", () => {
    if (!hasShared) return skipNote("GGUF comparison", "../shared is absent");
    const metadata = JSON.parse(readFileSync(join(SHARED_TOKENIZER, "llama.json"), "utf8")) as Record<string, GgufValue>;
    const fromGguf = tokenizerFromGgufMetadata(metadata, "llama.json");
    const ours = tokenizerToGgufMetadata(llama);
    for (const key of ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"]) expect(ours[key]).toEqual(metadata[key]);
    for (const t of cases) expect(fromGguf.encode(t, { parseSpecial: true })).toEqual(llama.encode(t, { parseSpecial: true }));
    for (const c of readJsonl<{ text: string; ids: number[] }>(join(SHARED_TOKENIZER, "llama.encode.jsonl"))) {
      expect(llama.encode(c.text, { addBos: false })).toEqual(c.ids);
    }
  });

  it.skipIf(!python)("encodes the fixture cases and 2000 random strings as SentencePiece does (live)", () => {
    const texts = [...cases, ...fuzzTexts(2000, 1234)];
    const live = spmLive(llamaBytes, texts);
    const wrong = texts.filter((t, i) => JSON.stringify(llama.encode(t, { addBos: false })) !== JSON.stringify(live.ids[i]));
    expect(wrong).toEqual([]);
    const decoded = spmLive(llamaBytes, [], live.ids).decoded;
    live.ids.forEach((ids, i) => expect(llama.decode(ids)).toBe(decoded[i]));
  });

  it.skipIf(!python)("a tokenizer.model saved from GGUF metadata loads in SentencePiece and encodes the same (live)", () => {
    const fromGguf = tokenizerFromGgufMetadata(tokenizerToGgufMetadata(llama), "llama.gguf");
    const saved = serializeTokenizer(fromGguf);
    const live = spmLive(saved, cases);
    cases.forEach((t, i) => expect(live.ids[i]).toEqual(llama.encode(t, { addBos: false })));
  });

  it.skipIf(!python)("extended with the chinese_sp-like fixture, tokenizes as SentencePiece does (live)", () => {
    const merged = mergeSentencePieceModels(parseSentencePieceModel(llamaBytes), parseSentencePieceModel(new Uint8Array(readFileSync(join(FIXTURES, "zh-unigram.model")))));
    expect(merged.before).toBe(32000);
    const bytes = serializeSentencePieceModel(merged.model);
    const tok = tokenizerFromSentencePieceModel(merged.model, "merged");
    const texts = [...cases, ...fuzzTexts(1000, 99)];
    const live = spmLive(bytes, texts);
    const wrong = texts.filter((t, i) => JSON.stringify(tok.encode(t, { addBos: false })) !== JSON.stringify(live.ids[i]));
    expect(wrong).toEqual([]);
  });
});
