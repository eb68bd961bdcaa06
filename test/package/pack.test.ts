/**
 * The package a project depends on: `npm pack`, install the tarball into a fresh project (its
 * dependencies from the npm registry, nothing of this checkout), then run the README's library
 * example against it, type-check that example with `moduleResolution: NodeNext` and
 * `skipLibCheck: false`, and run the CLI from it. Also checks what the tarball leaves out.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../helpers/shared.js";

const run = promisify(execFile);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** The README's example ("Use it as a library"), as a consumer writes it. */
const EXAMPLE = `import { LlamaModel, bundledModelPath, generate, tokenizerFromGgufMetadata, getTemplate } from "zh-llama";

const model = await LlamaModel.load(bundledModelPath(), { nCtx: 256 });
const tokenizer = tokenizerFromGgufMetadata(model.file.metadata);
const template = getTemplate("alpaca-2");
const prompt = template.render([{ role: "user", content: "续写这首诗：床前明月光" }], tokenizer);
let text = "";
for await (const event of generate(model, tokenizer, prompt, { maxTokens: 16, temperature: 0, stop: template.stop })) {
  if (event.type === "token") text += event.text;
}
await model.dispose();
console.log(JSON.stringify({ text, threads: model.threads }));
`;

describe("the npm package", () => {
  let dir: string;
  let tarball: string;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "zh-llama-pack-"));
    // npm test has built dist/ and build/ already; --ignore-scripts keeps pack from building again.
    const { stdout } = await run(npm, ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: repoRoot, maxBuffer: 1 << 26 });
    const info = JSON.parse(stdout)[0] as { filename: string; files: Array<{ path: string }> };
    tarball = join(dir, info.filename);
    files = info.files.map((f) => f.path);
    const project = join(dir, "app");
    await run("mkdir", ["-p", project]);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await run(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: project, maxBuffer: 1 << 26 });
    await writeFile(join(project, "example.mjs"), EXAMPLE);
    await writeFile(join(project, "example.ts"), EXAMPLE);
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: false, noEmit: true,
          types: ["node"], typeRoots: [join(repoRoot, "node_modules/@types")],
        },
        files: ["example.ts"],
      }),
    );
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("ships the built library, the kernels, the default model and the sources its maps name; no goldens, no .wat, no other models", () => {
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("build/kernels.wasm");
    expect(files).toContain("build/kernels-relaxed.wasm");
    expect(files).toContain("fixtures/models/chinese-alpaca-tiny-q4_0.gguf");
    expect(files.filter((f) => /golden|\.wat$|q8_0\.gguf$|^test\//.test(f))).toEqual([]);
    // Source maps point at src/, which ships: every map's sources resolve inside the package.
    for (const map of files.filter((f) => f.endsWith(".js.map")).slice(0, 20)) {
      const source = map.replace(/^dist\//, "src/").replace(/\.js\.map$/, ".ts");
      expect(files, map).toContain(source);
    }
  });

  it("runs the README's example from an installed tarball", async () => {
    const project = join(dir, "app");
    const { stdout } = await run(process.execPath, ["example.mjs"], { cwd: project, timeout: 120_000 });
    const result = JSON.parse(stdout.trim().split("\n").pop()!) as { text: string; threads: number };
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.threads).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("type-checks the example under NodeNext with skipLibCheck off", async () => {
    const project = join(dir, "app");
    const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
    const result = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: project }).catch((e: { stdout?: string; stderr?: string }) => e);
    expect("stdout" in result ? `${result.stdout ?? ""}${result.stderr ?? ""}` : "").toBe("");
  }, 180_000);

  it("installs the CLI: zh-llama inspect on the bundled model", async () => {
    const project = join(dir, "app");
    const bin = join(project, "node_modules/.bin/zh-llama");
    expect(existsSync(bin)).toBe(true);
    const { stdout } = await run(bin, ["inspect", join(project, "node_modules/zh-llama/fixtures/models/chinese-alpaca-tiny-q4_0.gguf")], { cwd: project });
    expect(stdout).toMatch(/architecture:\s+llama/);
    expect(readdirSync(join(project, "node_modules/zh-llama"))).not.toContain("test");
  }, 120_000);
});
