/**
 * llama.cpp's tokenization (tools/golden-tokenizer-llamacpp.mjs) of the fixture cases, with
 * and without parsing special tokens: the reference for `parseSpecial`, and a second,
 * independent implementation agreeing on the plain encodings.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tokenizerFromGgufMetadata, tokenizerFromSentencePieceBytes, tokenizerToGgufMetadata } from "../../src/tokenizer/index.js";
import { FIXTURES, readJsonl } from "./helpers.js";

interface Row { i: number; text?: string; ids: number[]; special?: number[] }
const cases = readJsonl<{ text: string }>(join(FIXTURES, "cases.jsonl"));

describe.each(["zh-bpe", "zh-merged"])("%s vs llama.cpp", (name) => {
  const tok = tokenizerFromGgufMetadata(tokenizerToGgufMetadata(tokenizerFromSentencePieceBytes(new Uint8Array(readFileSync(join(FIXTURES, `${name}.model`))))), `${name}.gguf`);
  const rows = readJsonl<Row>(join(FIXTURES, `${name}.llamacpp.jsonl`));

  it("encodes like llama.cpp, with and without special-token parsing", () => {
    const wrong: string[] = [];
    for (const row of rows) {
      const text = row.text ?? cases[row.i]!.text;
      if (JSON.stringify(tok.encode(text, { addBos: false })) !== JSON.stringify(row.ids)) wrong.push(`plain ${row.i} ${JSON.stringify(text.slice(0, 30))}`);
      const special = row.special ?? row.ids;
      if (JSON.stringify(tok.encode(text, { addBos: false, parseSpecial: true })) !== JSON.stringify(special)) wrong.push(`special ${row.i} ${JSON.stringify(text.slice(0, 30))}`);
    }
    expect(wrong).toEqual([]);
    expect(rows.filter((r) => r.special).length).toBeGreaterThan(5);
  });
});
