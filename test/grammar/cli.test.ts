/** `zh-llama run --grammar / --json-schema` on the committed tiny model. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/shared.js";
import { runCli } from "../helpers/cli.js";

const MODEL = join(repoRoot, "fixtures/models/tiny-random-q8_0.gguf");
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-grammar-cli-"));
});

const run = runCli;

describe("zh-llama run with constraints", () => {
  it("--json-schema: the output parses and fits", async () => {
    const schema = join(dir, "schema.json");
    await writeFile(schema, JSON.stringify({ type: "object", properties: { colour: { enum: ["red", "green"] }, ok: { type: "boolean" } }, required: ["colour", "ok"] }));
    for (const seed of ["1", "2", "3"]) {
      const r = await run("run", "-m", MODEL, "-p", "json", "--json-schema", schema, "-n", "120", "--temp", "1", "-s", seed, "--json");
      expect(r.status, r.stderr).toBe(0);
      const value = JSON.parse((JSON.parse(r.stdout) as { text: string }).text) as { colour: string; ok: boolean };
      expect(["red", "green"]).toContain(value.colour);
      expect(typeof value.ok).toBe("boolean");
    }
  });

  it("--grammar: the output is in the language", async () => {
    const file = join(dir, "yes-no.gbnf");
    await writeFile(file, 'root ::= ("yes" | "no") "." [0-9]\n');
    const r = await run("run", "-m", MODEL, "-p", "answer", "--grammar", file, "-n", "20", "-s", "5");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^(yes|no)\.[0-9]$/);
  });

  it("a bad grammar file is an error naming line and column; both flags together are a usage error", async () => {
    const file = join(dir, "bad.gbnf");
    await writeFile(file, 'root ::= item\nitem ::= "a" (\n');
    const r = await run("run", "-m", MODEL, "-p", "x", "--grammar", file);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/GrammarError: .*bad\.gbnf: expected "\)" to close the group opened at line 2, column 14, found the end of the grammar at line 3, column 1/);
    const both = await run("run", "-m", MODEL, "-p", "x", "--grammar", file, "--json-schema", file);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/at most one of --grammar and --json-schema/);
  });

  it("serve --help describes the server", async () => {
    const r = await run("serve", "--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--api-key KEY/);
    expect(r.stdout).toMatch(/--parallel N/);
  });
});
