/**
 * The layering a reader can trust (README "Layout"): each src folder imports only the layers
 * below it. Read from the import statements of every file under src/, so a new upward import
 * fails here. The few known exceptions are listed with why; the list may only shrink.
 *
 *   cli, web (shells)  ->  server  ->  chat  ->  grammar  ->  generate  ->  model  ->  runtime  ->  kernels  ->  formats
 *                                                                                  tokenizer  ->  formats
 *   tools (lora, convert, train, eval, bench, hub): anything but the shells; nothing below uses them.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/shared.js";

const SRC = join(repoRoot, "src");
const TOOLS = ["lora", "convert", "train", "eval", "bench", "hub"];
const CORE = ["formats", "tokenizer", "kernels", "runtime", "model", "generate", "grammar", "chat", "server"];

/** What each layer may import (besides itself and the leaf modules src/errors.ts and src/bundled.ts). */
const ALLOWED: Record<string, readonly string[]> = {
  formats: [],
  tokenizer: ["formats"],
  kernels: ["formats"],
  runtime: ["kernels", "formats"],
  model: ["runtime", "kernels", "formats", "tokenizer"],
  generate: ["model", "runtime", "kernels", "formats", "tokenizer"],
  grammar: ["generate", "model", "kernels", "formats", "tokenizer"],
  chat: ["grammar", "generate", "model", "runtime", "kernels", "formats", "tokenizer"],
  server: ["chat", "grammar", "generate", "model", "runtime", "kernels", "formats", "tokenizer"],
  ...Object.fromEntries(TOOLS.map((t) => [t, [...CORE, ...TOOLS]])),
  cli: [...CORE, ...TOOLS, "cli"],
};

/**
 * Known upward imports still to remove, each "from -> to" with a comment saying why. None today
 * (the last, model/synthetic.ts -> convert/quantize.ts, went when the test-model generator moved
 * to src/convert, beside the quantization rules it uses).
 */
const KNOWN: readonly string[] = [];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const layerOf = (path: string): string => {
  const rel = relative(SRC, path);
  return rel.includes("/") ? rel.split("/")[0]! : rel; // top-level files are their own layer
};

function violations(): string[] {
  const found: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) continue; // index.ts, internals.ts, bundled.ts, errors.ts: the entry points and the base
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      const target = resolve(dirname(file), spec).replace(/\.js$/, ".ts");
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      if (to === from || to === "errors.ts" || to === "bundled.ts") continue; // leaf modules anyone may use
      if (!allowed.includes(to)) found.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  return [...new Set(found)].sort();
}

describe("layering of src/", () => {
  it("every import goes down a layer, except the listed ones", () => {
    expect(violations()).toEqual([...KNOWN].sort());
  });

  it("README's Layout names every src folder, and each folder has a layer here", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const layout = readme.slice(readme.indexOf("- Layout, one line per `src` folder"));
    const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());
    expect(folders.filter((f) => !new RegExp(`^  - \`src/${f}\``, "m").test(layout))).toEqual([]);
    expect(folders.filter((f) => !ALLOWED[f])).toEqual([]);
  });

  it("the rules read the code: an upward import is caught", () => {
    // model importing chat would be caught: model's allowed list does not contain chat.
    expect(ALLOWED.model).not.toContain("chat");
    expect(ALLOWED.kernels).not.toContain("runtime");
    expect(ALLOWED.model).not.toContain("generate");
  });
});
