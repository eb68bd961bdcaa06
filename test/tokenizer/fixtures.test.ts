/**
 * Conformance against SentencePiece 0.1.97 on the project's own fixtures (always present):
 * small models trained by tools/golden-tokenizer.py on chinese-poetry, and SentencePiece's
 * encodings/decodings of fixtures/tokenizer/cases.jsonl under each.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  loadTokenizer,
  mergeSentencePieceModels,
  parseSentencePieceModel,
  serializeSentencePieceModel,
  serializeTokenizer,
  tokenizerFromGgufMetadata,
  tokenizerFromSentencePieceBytes,
  tokenizerToGgufMetadata,
} from "../../src/tokenizer/index.js";
import { FIXTURES, readJsonl } from "./helpers.js";

interface Case { id: number; category: string; text: string }
interface Golden { id: number; ids: number[]; decoded?: string }
interface DecodeGolden { ids: number[]; decoded: string }

const MODELS = ["zh-bpe", "zh-bpe-nfkc", "zh-bpe-suffix", "zh-bpe-unused", "zh-merged"] as const;
const cases = readJsonl<Case>(join(FIXTURES, "cases.jsonl"));
const bytesOf = (name: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, `${name}.model`)));

describe.each(MODELS)("%s vs SentencePiece", (name) => {
  const tok = tokenizerFromSentencePieceBytes(bytesOf(name), `${name}.model`);
  const goldens = readJsonl<Golden>(join(FIXTURES, `${name}.encode.jsonl`));

  it("encodes every case identically", () => {
    expect(goldens.length).toBe(cases.length);
    const wrong: string[] = [];
    for (const g of goldens) {
      const got = tok.encode(cases[g.id].text, { addBos: false });
      if (JSON.stringify(got) !== JSON.stringify(g.ids)) wrong.push(`${g.id} ${cases[g.id].category} ${JSON.stringify(cases[g.id].text.slice(0, 40))}`);
    }
    expect(wrong).toEqual([]);
  });

  it("encodes every case identically when loaded from the file (loadTokenizer: a Node Buffer)", async () => {
    // A Buffer's slice() is a view, not a copy: the nmt_nfkc charsmap once read its trie from the
    // start of the file and left tabs and newlines unnormalized.
    const loaded = await loadTokenizer(join(FIXTURES, `${name}.model`));
    for (const g of goldens) expect(loaded.encode(cases[g.id].text, { addBos: false }), `${g.id} ${JSON.stringify(cases[g.id].text.slice(0, 40))}`).toEqual(g.ids);
  });

  it("decodes the encodings as SentencePiece does", () => {
    for (const g of goldens) expect(tok.decode(g.ids)).toBe(g.decoded ?? cases[g.id].text);
  });

  it("decodes random id runs (bytes, control, unknown) in one go and streamed", () => {
    for (const g of readJsonl<DecodeGolden>(join(FIXTURES, `${name}.decode.jsonl`))) {
      expect(tok.decode(g.ids)).toBe(g.decoded);
      const stream = tok.createStreamingDecoder();
      expect(g.ids.map((id) => stream.push(id)).join("") + stream.flush()).toBe(g.decoded);
    }
  });

  it("re-serializes the tokenizer.model byte for byte", () => {
    const bytes = bytesOf(name);
    expect(Buffer.from(serializeSentencePieceModel(parseSentencePieceModel(bytes))).equals(bytes)).toBe(true);
  });

  it("encodes the same after tokenizer.model -> save -> load", () => {
    const again = tokenizerFromSentencePieceBytes(serializeTokenizer(tok), "saved.model");
    for (const c of cases) expect(again.encode(c.text)).toEqual(tok.encode(c.text));
  });

  it.skipIf(name === "zh-bpe-suffix")("encodes the same through GGUF metadata", () => {
    const viaGguf = tokenizerFromGgufMetadata(tokenizerToGgufMetadata(tok), `${name}.gguf`);
    for (const c of cases) expect(viaGguf.encode(c.text, { parseSpecial: true })).toEqual(tok.encode(c.text, { parseSpecial: true }));
  });
});

describe("vocabulary merge", () => {
  it("is byte-identical to the upstream merge script's output", () => {
    const spec = JSON.parse(readFileSync(join(FIXTURES, "merge.json"), "utf8")) as { before: number; after: number };
    const result = mergeSentencePieceModels(parseSentencePieceModel(bytesOf("zh-bpe")), parseSentencePieceModel(bytesOf("zh-unigram")));
    expect(result.before).toBe(spec.before);
    expect(result.after).toBe(spec.after);
    expect(Buffer.from(serializeSentencePieceModel(result.model)).equals(bytesOf("zh-merged"))).toBe(true);
  });

  it("keeps the base ids and shortens Chinese text", () => {
    const base = tokenizerFromSentencePieceBytes(bytesOf("zh-bpe"));
    const merged = tokenizerFromSentencePieceBytes(bytesOf("zh-merged"));
    for (let id = 0; id < base.vocabSize; id++) expect(merged.idToPiece(id)).toBe(base.idToPiece(id));
    const zh = cases.filter((c) => c.category === "zh_simplified").map((c) => c.text).join("");
    expect(merged.encode(zh).length).toBeLessThan(base.encode(zh).length);
  });

  it("adds a pad piece at the end (Alpaca) or right after the base (Chinese-LLaMA-2)", () => {
    const base = parseSentencePieceModel(bytesOf("zh-bpe"));
    const add = parseSentencePieceModel(bytesOf("zh-unigram"));
    const end = mergeSentencePieceModels(base, add, { padPiece: "<pad>" });
    expect(end.padId).toBe(end.after - 1);
    const first = mergeSentencePieceModels(base, add, { padPiece: "<pad>", padFirst: true });
    expect(first.padId).toBe(base.pieces.length);
    expect(first.model.pieces[base.pieces.length]).toEqual({ piece: "<pad>", score: 0 });
    expect(() => mergeSentencePieceModels(base, add, { padPiece: "<s>" })).toThrow(/already/);
  });
});
