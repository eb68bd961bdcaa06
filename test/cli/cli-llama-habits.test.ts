/** llama.cpp's spellings in run and bench, on the committed tiny models. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/shared.js";
import { runCli } from "../helpers/cli.js";

const MODEL = join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf");
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-llama-habits-"));
});

const run = runCli;

describe("run with llama.cpp's flags", () => {
  it("-f FILE reads the prompt; the same as -p with its text", async () => {
    const file = join(dir, "prompt.txt");
    await writeFile(file, "w263 w273 w283");
    const a = await run("run", "-m", MODEL, "-f", file, "-n", "6", "--temp", "0", "--ignore-eos", "--json");
    const b = await run("run", "-m", MODEL, "-p", "w263 w273 w283", "-n", "6", "--temp", "0", "--ignore-eos", "--json");
    expect(a.status, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).generated_ids).toEqual(JSON.parse(b.stdout).generated_ids);
    expect(JSON.parse(a.stdout).prompt_ids).toEqual(JSON.parse(b.stdout).prompt_ids);
  });

  it("--grammar TEXT, --grammar-file FILE, -j TEXT and -jf FILE", async () => {
    const gbnf = 'root ::= ("yes" | "no") "." [0-9]\n';
    const text = await run("run", "-m", MODEL, "-p", "answer", "--grammar", gbnf, "-n", "20", "-s", "5");
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.trim()).toMatch(/^(yes|no)\.[0-9]$/);
    const file = join(dir, "g.gbnf");
    await writeFile(file, gbnf);
    const fromFile = await run("run", "-m", MODEL, "-p", "answer", "--grammar-file", file, "-n", "20", "-s", "5");
    expect(fromFile.stdout).toBe(text.stdout);
    const schema = JSON.stringify({ type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] });
    const j = await run("run", "-m", MODEL, "-p", "json", "-j", schema, "-n", "60", "-s", "2", "--json");
    expect(j.status, j.stderr).toBe(0);
    expect(typeof JSON.parse(JSON.parse(j.stdout).text).ok).toBe("boolean");
    const schemaFile = join(dir, "s.json");
    await writeFile(schemaFile, schema);
    const jf = await run("run", "-m", MODEL, "-p", "json", "-jf", schemaFile, "-n", "60", "-s", "2", "--json");
    expect(JSON.parse(jf.stdout).text).toBe(JSON.parse(j.stdout).text);
    const bad = await run("run", "-m", MODEL, "-p", "x", "--grammar", "root ::= (");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^zh-llama run: GrammarError: --grammar: /);
    const two = await run("run", "-m", MODEL, "-p", "x", "--grammar", gbnf, "-jf", schemaFile);
    expect(two.status).toBe(2);
  });

  it("-md is the draft model; statistics go to stderr on their own line", async () => {
    const r = await run("run", "-m", MODEL, "-md", MODEL, "-p", "w263", "-n", "6", "--temp", "0", "--ignore-eos");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.endsWith("\n")).toBe(true);
    expect(r.stdout).not.toMatch(/tok\/s/);
    expect(r.stderr.split("\n")).toContainEqual(expect.stringMatching(/^\[\d+ prompt tokens at [\d.]+ tok\/s, 6 generated at [\d.]+ tok\/s, length, draft acceptance/));
  });
});

describe("bench like llama-bench", () => {
  it("-t and -p lists give a row per combination; -o json, csv, md", async () => {
    const json = await run("bench", "-m", MODEL, "-t", "1,2", "-p", "8,16", "-n", "2", "-r", "1", "-o", "json");
    expect(json.status, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<{ threads: number; prompt_tokens: number; gen_tokens: number; prompt_tokens_per_s: number }>;
    expect(rows.map((r) => [r.threads, r.prompt_tokens, r.gen_tokens])).toEqual([[1, 8, 2], [1, 16, 2], [2, 8, 2], [2, 16, 2]]);
    expect(rows.every((r) => r.prompt_tokens_per_s > 0)).toBe(true);
    const md = await run("bench", "-m", MODEL, "-t", "1", "-p", "8,16", "-n", "2", "-r", "1", "-o", "md");
    expect(md.stdout.trim().split("\n").slice(2).map((l) => l.split("|")[4]!.trim())).toEqual(["pp8", "tg2", "pp16", "tg2"]);
    const csv = await run("bench", "-m", MODEL, "-p", "8", "-n", "2", "-r", "1", "-o", "csv");
    expect(csv.stdout.split("\n")[0]).toBe("model,backend,threads,prompt_tokens,prompt_tokens_per_s,gen_tokens,decode_tokens_per_s");
    expect((await run("bench", "-m", MODEL, "-o", "xml")).status).toBe(2);
  });

  it("without -m benches the bundled model", async () => {
    const r = await run("bench", "-p", "4", "-n", "1", "-r", "1", "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).model).toBe("chinese-alpaca-tiny-q4_0.gguf");
  });
});
