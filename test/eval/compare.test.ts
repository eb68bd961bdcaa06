/** The comparison report's table and chart, with and without a further peer (wllama). */
import { describe, expect, it } from "vitest";
import { compareMarkdown, compareSvg, type CompareRow } from "../../src/eval/compare.js";

const row = (model: string, extra?: CompareRow["extra"]): CompareRow => ({
  model,
  threads: 1,
  promptTokens: 128,
  genTokens: 64,
  zh: { promptTokensPerS: 200, decodeTokensPerS: 120 },
  llamaCpp: { promptTokensPerS: 800, decodeTokensPerS: 240 },
  promptRatio: 0.25,
  decodeRatio: 0.5,
  peer: "node-llama-cpp 3.22.1",
  ...(extra ? { extra } : {}),
});
const wllama = (pp: number, tg: number, promptTokens = 128, error?: string): NonNullable<CompareRow["extra"]> => ({
  name: "wllama",
  version: "wllama 3.8.1",
  promptTokens,
  promptTokensPerS: pp,
  decodeTokensPerS: tg,
  promptRatio: 200 / pp,
  decodeRatio: 120 / tg,
  ...(error ? { error } : {}),
});

describe("compareMarkdown", () => {
  it("keeps the two-engine table without a further peer", () => {
    const md = compareMarkdown([row("Q4_0")]);
    expect(md.split("\n")[0]).toBe("| model | threads | zh-llama pp tok/s | llama.cpp pp tok/s | ratio | zh-llama tg tok/s | llama.cpp tg tok/s | ratio |");
    expect(md).toContain("| Q4_0 | 1 | 200.0 | 800.0 | 0.25 | 120.0 | 240.0 | 0.50 |");
  });

  it("adds the peer's speeds and zh-llama / peer ratios, its own prompt count, and failures", () => {
    const md = compareMarkdown([row("Q4_0", wllama(20, 12)), row("Q8_0", wllama(25, 15, 127)), row("F16", wllama(NaN, NaN, NaN, "crashed")), row("Q5_0")]);
    const lines = md.trim().split("\n");
    expect(lines[0]).toContain("| wllama pp tok/s | ratio |");
    expect(lines[0]).toContain("| wllama tg tok/s | ratio |");
    expect(lines[2]).toBe("| Q4_0 | 1 | 200.0 | 800.0 | 0.25 | 20.0 | 10.00 | 120.0 | 240.0 | 0.50 | 12.0 | 10.00 |");
    expect(lines[3]).toContain("| 25.0 (127 tok) | 8.00 |");
    expect(lines[4]).toBe("| F16 | 1 | 200.0 | 800.0 | 0.25 | failed | – | 120.0 | 240.0 | 0.50 | failed | – |");
    expect(lines[5]).toBe("| Q5_0 | 1 | 200.0 | 800.0 | 0.25 | – | – | 120.0 | 240.0 | 0.50 | – | – |");
  });
});

describe("compareSvg", () => {
  it("draws the peer's speed relative to llama.cpp, and no bar for a failed peer", () => {
    const two = compareSvg([row("Q4_0")], "t");
    expect(two.match(/<rect x="\d/g)?.length).toBe(2 + 2); // two bars, two legend swatches
    const svg = compareSvg([row("Q4_0", wllama(80, 24)), row("F16", wllama(NaN, NaN, NaN, "crashed"))], "t");
    expect(svg).toContain(">0.10</text>"); // 80 / 800 and 24 / 240
    expect(svg).toContain("decode (wllama/llama.cpp)");
    expect(svg).not.toContain("NaN");
    expect(svg.match(/<rect x="\d/g)?.length).toBe(4 + 2 + 4);
  });
});
