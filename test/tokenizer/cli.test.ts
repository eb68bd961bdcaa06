import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { tokenizerFromSentencePieceBytes } from "../../src/tokenizer/index.js";
import { FIXTURES } from "./helpers.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTty: false };
  const code = await main(argv, io);
  return { code, out, err };
}

const model = join(FIXTURES, "zh-bpe.model");
const tok = tokenizerFromSentencePieceBytes(new Uint8Array(readFileSync(model)));

describe("zh-llama tokenize / detokenize", () => {
  it("prints ids with BOS, or JSON ids and pieces", async () => {
    const r = await run("tokenize", "--model", model, "床前明月光");
    expect(r.code).toBe(0);
    expect(r.out).toBe(tok.encode("床前明月光").join(",") + "\n");
    expect(r.out.startsWith("1,")).toBe(true);
    const j = await run("tokenize", "--model", model, "--json", "--no-bos", "a <s> b");
    const parsed = JSON.parse(j.out) as { ids: number[]; pieces: string[] };
    expect(parsed.ids).toEqual(tok.encode("a <s> b", { addBos: false }));
    expect(parsed.ids).not.toContain(1);
    expect(parsed.pieces).toEqual(parsed.ids.map((id) => tok.idToPiece(id)));
    const special = JSON.parse((await run("tokenize", "--model", model, "--json", "--no-bos", "--parse-special", "a <s> b")).out) as { ids: number[] };
    expect(special.ids).toContain(1);
  });

  it("tokenizes JSONL, one line out per object", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-llama-cli-"));
    const file = join(dir, "in.jsonl");
    writeFileSync(file, ['{"text":"你好"}', "", '{"text":"世界 hello"}', '{"text":""}'].join("\n") + "\n");
    const r = await run("tokenize", "--model", model, "--jsonl", file);
    expect(r.code).toBe(0);
    expect(r.out.trim().split("\n").map((l) => JSON.parse(l))).toEqual([
      { ids: tok.encode("你好") },
      { ids: tok.encode("世界 hello") },
      { ids: [1] },
    ]);
    writeFileSync(file, '{"text":"ok"}\n{"txt": 1}\n');
    const bad = await run("tokenize", "--model", model, "--jsonl", file);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/in\.jsonl:2/);
  });

  it("detokenizes comma, space or JSON lists", async () => {
    const ids = tok.encode("黄河入海流 ok");
    expect((await run("detokenize", "--model", model, ids.join(","))).out).toBe("黄河入海流 ok\n");
    expect((await run("detokenize", "--model", model, ...ids.map(String))).out).toBe("黄河入海流 ok\n");
    expect((await run("detokenize", "--model", model, JSON.stringify(ids))).out).toBe("黄河入海流 ok\n");
    const bad = await run("detokenize", "--model", model, "1,999999");
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/TokenizerError: .*999999 is outside the vocabulary/);
    expect((await run("detokenize", "--model", model, "1,x")).code).toBe(2);
  });
});

describe("zh-llama merge-tokenizer / tokenizer-stats", () => {
  it("merges like upstream, writes HF files, prints sizes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-llama-merge-"));
    const out = join(dir, "merged.model");
    const r = await run("merge-tokenizer", "--base", model, "--add", join(FIXTURES, "zh-unigram.model"), "--out", out, "--hf-dir", join(dir, "hf"), "--hf-pad-token", "[PAD]");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/6000 -> 11146/);
    expect(readFileSync(out).equals(readFileSync(join(FIXTURES, "zh-merged.model")))).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, "hf", "added_tokens.json"), "utf8"))).toEqual({ "[PAD]": 11146 });
    expect(existsSync(join(dir, "hf", "tokenizer_config.json"))).toBe(true);
    expect(readFileSync(join(dir, "hf", "tokenizer.model")).equals(readFileSync(out))).toBe(true);
    const again = await run("merge-tokenizer", "--base", model, "--add", join(FIXTURES, "zh-unigram.model"), "--out", out);
    expect(again.code).toBe(2);
    const pad = await run("merge-tokenizer", "--base", model, "--add", join(FIXTURES, "zh-unigram.model"), "--out", out, "--force", "--pad", "<pad>", "--pad-first");
    expect(pad.out).toMatch(/"<pad>" = id 6000/);
  });

  it("reports tokens per character for each model", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-llama-stats-"));
    const corpus = join(dir, "corpus.txt");
    writeFileSync(corpus, "白日依山尽，黄河入海流。\n\n欲穷千里目，更上一层楼。\n");
    const r = await run("tokenizer-stats", "--model", model, "--model", join(FIXTURES, "zh-merged.model"), "--file", corpus, "--json");
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.out) as { tokens: number; characters: number }[];
    expect(stats[0]!.characters).toBe(24);
    expect(stats[0]!.tokens).toBe(tok.encode("白日依山尽，黄河入海流。", { addBos: false }).length + tok.encode("欲穷千里目，更上一层楼。", { addBos: false }).length);
    expect(stats[1]!.tokens).toBeLessThan(stats[0]!.tokens);
    const table = await run("tokenizer-stats", "--model", model, "--file", corpus);
    expect(table.out).toMatch(/tokens\/char/);
  });
});

describe("missing files", () => {
  it("are reported, not thrown", async () => {
    for (const argv of [
      ["tokenize", "--model", "/nonexistent/m.model", "x"],
      ["tokenize", "--model", model, "--jsonl", "/nonexistent/in.jsonl"],
      ["merge-tokenizer", "--base", "/nonexistent/a.model", "--add", model, "--out", join(tmpdir(), "never.model")],
      ["tokenizer-stats", "--model", model, "--file", "/nonexistent/corpus.txt"],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(1);
      expect(r.err).toMatch(/nonexistent/);
    }
  });
});
