import { describe, expect, it } from "vitest";
import { newRowSources, oldPieceIds } from "../../src/train/vocab-init.js";

// A LLaMA-like old vocabulary: specials, byte pieces, a few whole characters.
const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
const old = ["<unk>", "<s>", "</s>", ...bytes, "▁", "月", "▁the"];
const id = (p: string) => old.indexOf(p);

describe("new vocabulary rows from old pieces", () => {
  it("decomposes a piece into whole old characters, else their UTF-8 bytes", () => {
    const ids = new Map(old.map((p, i) => [p, i]));
    // 明 = E6 98 8E (not an old piece), 月 is one.
    expect(oldPieceIds("明月", ids)).toEqual([id("<0xE6>"), id("<0x98>"), id("<0x8E>"), id("月")]);
    expect(oldPieceIds("▁月", ids)).toEqual([id("▁"), id("月")]);
  });

  it("gives sources only for the new ids", () => {
    const pieces = [...old, "明月", "山"];
    const sources = newRowSources(pieces, old.length);
    expect(sources(id("月"))).toEqual([]);
    expect(sources(old.length)).toHaveLength(4);
    expect(sources(old.length + 1)).toEqual([id("<0xE5>"), id("<0xB1>"), id("<0xB1>")]);
    expect(sources(pieces.length)).toEqual([]);
  });
});
