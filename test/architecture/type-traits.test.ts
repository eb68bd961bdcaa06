/**
 * One table per fact: ggml's per-type facts (type ids, values per block, bytes per block) live in
 * src/formats/ggml-types.ts (GGMLType, GGML_TYPES), and the TypeScript side reads them there. The
 * AssemblyScript kernels cannot import TypeScript, so they write the same numbers as literals;
 * this test reads assembly/*.ts and fails when one of them drifts from the table:
 *
 *   type ids        every `const NAME: i32 = N;` whose NAME (or NAME after "KV_") is a GGMLType
 *   block strides   `w + <usize>b * N` (a weight block), `<usize>(n >> S) * N` (a row of blocks:
 *                   2^S values a block, N bytes): N must be the bytes of the type the enclosing
 *                   function is named after (dotRowQ2K, matmul_q6_K, matmulQ4_0Seq), or of one of
 *                   the file's types when the name says none
 *   type switches   the `type == Q4_1 ? 20 : ...` chains and matmulK45's byte arguments, listed below
 *
 * Every weight type the WebAssembly kernels multiply must be checked somewhere, so a rewrite that
 * no longer matches these patterns fails here too (then update the patterns, not the numbers).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GGML_TYPES, GGMLType } from "../../src/formats/ggml-types.js";
import { MATMUL_TYPES } from "../../src/kernels/index.js";
import { repoRoot } from "../helpers/shared.js";

const ASSEMBLY = join(repoRoot, "assembly");
type Sources = ReadonlyMap<string, string>;
const sources: Sources = new Map(readdirSync(ASSEMBLY).filter((f) => f.endsWith(".ts")).map((f) => [f, readFileSync(join(ASSEMBLY, f), "utf8")]));
const source = (src: Sources, file: string): string => {
  const text = src.get(file);
  if (text === undefined) throw new Error(`assembly/${file} is gone: update test/architecture/type-traits.test.ts`);
  return text;
};

const typeNamed = (name: string): GGMLType | undefined => {
  const v = (GGMLType as unknown as Record<string, number | undefined>)[name];
  return typeof v === "number" ? (v as GGMLType) : undefined;
};
const bytes = (t: GGMLType) => GGML_TYPES[t].bytesPerBlock;
const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

/** The weight types each kernel file handles (a function named after none may use any of them). */
const FILE_TYPES: Record<string, readonly GGMLType[]> = {
  "q4_0.ts": [GGMLType.Q4_0],
  "q8_0.ts": [GGMLType.Q8_0],
  "nibble_blocks.ts": [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL],
  "tiles.ts": [GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL],
  "k_quants.ts": [GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K],
  "k_quants_low.ts": [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS],
  // The Q8_0 KV cache.
  "attention.ts": [GGMLType.Q8_0],
};

/** Types whose name is in a function's ("dotRowQ2K", "matmul_q6_K", "dotRowIQ4XS"). */
function typesInName(fn: string, among: readonly GGMLType[]): GGMLType[] {
  const bare = (s: string) => s.toLowerCase().replaceAll("_", "");
  return among.filter((t) => bare(fn).includes(bare(GGMLType[t])));
}

/** The top-level function around `index` (the last `function NAME` at the start of a line before it). */
function enclosingFunction(text: string, index: number): string {
  let name = "(top level)";
  for (const m of text.slice(0, index).matchAll(/^(?:export )?function (\w+)/gm)) name = m[1]!;
  return name;
}

interface Check {
  where: string;
  what: string;
  got: number;
  /** The values the table allows here. */
  allowed: number[];
  types: GGMLType[];
}

function strideChecks(src: Sources): Check[] {
  const checks: Check[] = [];
  for (const [file, fileTypes] of Object.entries(FILE_TYPES)) {
    const text = source(src, file);
    const patterns: Array<{ re: RegExp; what: "block bytes" | "row of blocks" }> = [
      { re: /\bw \+ <usize>b \* (\d+)\b/g, what: "block bytes" },
      { re: /<usize>\(n >> (\d+)\) \* (\d+)\b/g, what: "row of blocks" },
      // The Q8_0 KV cache: rows of nb blocks, block b of a row.
      ...(file === "attention.ts" ? [{ re: /nb\) \* (\d+)\b|(?:vp|dst) \+ <usize>b \* (\d+)\b/g, what: "block bytes" as const }] : []),
    ];
    for (const { re, what } of patterns) {
      for (const m of text.matchAll(re)) {
        const fn = enclosingFunction(text, m.index!);
        const named = typesInName(fn, fileTypes);
        const types = named.length > 0 ? named : [...fileTypes];
        const where = `assembly/${file}:${lineOf(text, m.index!)} (${fn})`;
        if (what === "row of blocks") {
          checks.push({ where, what: "values per block (2^shift)", got: 2 ** Number(m[1]), allowed: types.map((t) => GGML_TYPES[t].blockSize), types });
          checks.push({ where, what, got: Number(m[2]), allowed: types.map(bytes), types });
        } else {
          checks.push({ where, what, got: Number(m[1] ?? m[2]), allowed: types.map(bytes), types });
        }
      }
    }
  }
  return checks;
}

/** Byte counts chosen by type: each capture group is one type's bytes, in order. */
const SWITCHES: Array<{ file: string; re: RegExp; types: GGMLType[] }> = [
  { file: "tiles.ts", re: /type == Q4_0 \? (\d+) : type == Q8_0 \? (\d+) : blockBytes\(type\)/g, types: [GGMLType.Q4_0, GGMLType.Q8_0] },
  // nibble_blocks.ts blockBytes(type): the last branch is IQ4_NL.
  { file: "nibble_blocks.ts", re: /type == Q4_1 \? (\d+) : type == Q5_0 \? (\d+) : type == Q5_1 \? (\d+) : (\d+);/g, types: [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL] },
  // The last branch is IQ4_XS.
  { file: "k_quants_low.ts", re: /type == Q2_K \? (\d+) : type == Q3_K \? (\d+) : (\d+)\b/g, types: [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS] },
  // matmulK45(..., blockBytes, hasHigh): Q4_K has no high bits, Q5_K has.
  { file: "k_quants.ts", re: /matmulK45\([^;]*?, (\d+), false\)/g, types: [GGMLType.Q4_K] },
  { file: "k_quants.ts", re: /matmulK45\([^;]*?, (\d+), true\)/g, types: [GGMLType.Q5_K] },
];

function switchChecks(src: Sources): Check[] {
  const checks: Check[] = [];
  for (const { file, re, types } of SWITCHES) {
    const text = source(src, file);
    const found = [...text.matchAll(re)];
    if (found.length === 0) throw new Error(`assembly/${file} no longer has ${re}: update test/architecture/type-traits.test.ts`);
    for (const m of found) {
      types.forEach((t, i) => {
        checks.push({ where: `assembly/${file}:${lineOf(text, m.index!)}`, what: `${GGMLType[t]} block bytes`, got: Number(m[i + 1]), allowed: [bytes(t)], types: [t] });
      });
    }
  }
  return checks;
}

const describeCheck = (c: Check) => `${c.where}: ${c.what} ${c.got}, but ggml-types.ts has ${c.types.map((t, i) => `${GGMLType[t]} ${c.allowed[i]}`).join(" / ")}`;

/** The literals that disagree with the table, described. */
const drift = (src: Sources): string[] => [...strideChecks(src), ...switchChecks(src)].filter((c) => !c.allowed.includes(c.got)).map(describeCheck);

describe("the AssemblyScript kernels agree with ggml-types.ts", () => {
  it("type ids", () => {
    const seen: string[] = [];
    const wrong: string[] = [];
    for (const [file, text] of sources) {
      for (const m of text.matchAll(/\bconst (\w+): i32 = (-?\d+);/g)) {
        const name = m[1]!.replace(/^KV_/, "");
        const type = typeNamed(name);
        if (type === undefined) continue;
        seen.push(m[1]!);
        if (Number(m[2]) !== type) wrong.push(`assembly/${file}:${lineOf(text, m.index!)}: ${m[1]} = ${m[2]}, but GGMLType.${name} is ${type}`);
      }
    }
    expect(wrong).toEqual([]);
    // The ids the kernels switch on today; a rename would otherwise drop them from the check.
    expect(seen).toEqual(expect.arrayContaining(["Q4_0", "Q8_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS", "KV_F16", "KV_Q8_0"]));
  });

  it("block strides and row sizes", () => {
    expect(drift(sources)).toEqual([]);
    const checks = [...strideChecks(sources), ...switchChecks(sources)];
    // Every quantized weight type with a WebAssembly matmul has its bytes checked somewhere.
    const checked = new Set(checks.filter((c) => c.types.length === 1).map((c) => c.types[0]));
    const blockTypes = MATMUL_TYPES.filter((t) => GGML_TYPES[t].blockSize > 1);
    expect(blockTypes.filter((t) => !checked.has(t)).map((t) => GGMLType[t])).toEqual([]);
  });

  it("catches a drift: the same sources with one literal changed fail, naming it", () => {
    const edited = (file: string, from: string, to: string) => {
      const text = source(sources, file);
      expect(text).toContain(from);
      return drift(new Map([...sources, [file, text.replace(from, to)]]));
    };
    expect(edited("k_quants_low.ts", "type == Q3_K ? 110", "type == Q3_K ? 112")).toEqual([expect.stringMatching(/^assembly\/k_quants_low\.ts:\d+: Q3_K block bytes 112, but ggml-types\.ts has Q3_K 110$/)]);
    expect(edited("q8_0.ts", "w + <usize>b * 34", "w + <usize>b * 36")).toEqual([expect.stringMatching(/^assembly\/q8_0\.ts:\d+ \(\w+\): block bytes 36, but ggml-types\.ts has Q8_0 34$/)]);
  });
});
