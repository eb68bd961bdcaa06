/**
 * Conformance against ../shared/tokenizer: SentencePiece 0.1.97's encodings of 336 cases with
 * LLaMA's vocabulary, its decodings, and published tokenizations from llama-tokenizer-js and
 * llama.cpp. ../shared exists on developer machines and CI only; elsewhere this skips.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tokenizerFromGgufMetadata, loadTokenizer, type SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import type { GgufValue } from "../../src/formats/gguf/index.js";
import { SHARED_TOKENIZER, hasShared, readJsonl, skipNote } from "./helpers.js";

if (!hasShared) skipNote("../shared/tokenizer conformance", "../shared is absent (it only exists on developer machines and CI)");

interface EncodeCase { id: number; category: string; text: string; ids: number[]; pieces: string[]; decoded: string }
interface DecodeCase { name: string; ids: number[]; decoded: string }
interface ExternalCase { source: string; text: string; ids: number[] }

describe.skipIf(!hasShared)("LLaMA vocabulary vs ../shared goldens", () => {
  const load = (): SentencePieceTokenizer => {
    const metadata = JSON.parse(readFileSync(join(SHARED_TOKENIZER, "llama.json"), "utf8")) as Record<string, GgufValue>;
    return tokenizerFromGgufMetadata(metadata, "llama.json");
  };

  it("encodes all 336 SentencePiece cases identically", () => {
    const tok = load();
    const cases = readJsonl<EncodeCase>(join(SHARED_TOKENIZER, "llama.encode.jsonl"));
    const wrong = cases.filter((c) => JSON.stringify(tok.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids));
    expect(wrong.map((c) => c.id)).toEqual([]);
    expect(cases.length).toBe(336);
    for (const c of cases.slice(0, 50)) expect(tok.encodeToPieces(c.text, { addBos: false })).toEqual(c.pieces);
  });

  it("decodes the encodings back as SentencePiece does", () => {
    const tok = load();
    for (const c of readJsonl<EncodeCase>(join(SHARED_TOKENIZER, "llama.encode.jsonl"))) expect(tok.decode(c.ids)).toBe(c.decoded);
  });

  it("decodes the decode-only cases (control, unk, invalid bytes)", () => {
    const tok = load();
    for (const c of readJsonl<DecodeCase>(join(SHARED_TOKENIZER, "llama.decode.jsonl"))) {
      expect(tok.decode(c.ids), c.name).toBe(c.decoded);
      const stream = tok.createStreamingDecoder();
      expect(c.ids.map((id) => stream.push(id)).join("") + stream.flush(), c.name).toBe(c.decoded);
    }
  });

  it("matches the published llama-tokenizer-js and llama.cpp tokenizations", () => {
    const tok = load();
    const cases = readJsonl<ExternalCase>(join(SHARED_TOKENIZER, "llama.external.jsonl"));
    const wrong = cases.filter((c) => JSON.stringify(tok.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids));
    expect(wrong.map((c) => c.text)).toEqual([]);
  });

  it("reads the vocab-only GGUF to the same tokenizer", async () => {
    const fromJson = load();
    const fromGguf = await loadTokenizer(join(SHARED_TOKENIZER, "llama.gguf"));
    expect(fromGguf.vocabSize).toBe(32000);
    for (const c of readJsonl<EncodeCase>(join(SHARED_TOKENIZER, "llama.encode.jsonl"))) {
      expect(fromGguf.encode(c.text)).toEqual(fromJson.encode(c.text));
    }
    expect(fromGguf.encode("你好")[0]).toBe(1);
  });
});
