/** Expected failures are one line and exit status 1; usage errors one line and a pointer to --help. */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectedFailure } from "../../src/cli/index.js";
import { translateLlamaCppArgs } from "../../src/cli/llama-compat.js";
import { writeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { runCli } from "../helpers/cli.js";

const run = runCli;

let dir = "";
let model = "";
const missing = () => join(dir, "nope.gguf");
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-cli-errors-"));
  model = join(dir, "tiny.gguf");
  await writeGguf(model, syntheticModel({ type: GGMLType.F32, dim: 64, layers: 1, heads: 2, ffn: 96, vocab: 300, ctx: 64 }));
  await writeFile(join(dir, "text.txt"), "w263 w273 w283 ".repeat(40));
  await mkdir(join(dir, "ceval", "dev"), { recursive: true });
  await mkdir(join(dir, "ceval", "val"), { recursive: true });
  await writeFile(join(dir, "ceval", "dev", "x_dev.csv"), "id,question,A,B,C,D,answer,explanation\n0,q,a,b,c,d,A,e\n");
  await writeFile(join(dir, "ceval", "val", "x_val.csv"), "id,question,A,B,C,D,answer\n0,q,a,b,c,d,A\n");
});

/** Each verb that reads a model, pointed at a file that is not there. */
const verbs: Array<[string, () => string[]]> = [
  ["inspect", () => [missing()]],
  ["inspect -m", () => ["-m", missing()]],
  ["dump-tensor", () => [missing(), "output.weight", "--out", join(dir, "t.f32")]],
  ["quantize", () => [missing(), join(dir, "q.gguf"), "Q4_0"]],
  ["run", () => ["-m", missing(), "-p", "hi"]],
  ["chat", () => ["-m", missing()]],
  ["serve", () => ["-m", missing(), "--port", "0"]],
  ["logits", () => ["-m", missing(), "--prompt-ids", "1,2", "--out", join(dir, "l.f32")]],
  ["perplexity", () => ["-m", missing(), "-f", join(dir, "text.txt")]],
  ["bench", () => ["-m", missing(), "-p", "4", "-n", "2"]],
  ["eval-choice", () => ["-m", missing(), "--data", join(dir, "ceval"), "--format", "ceval"]],
  ["quant-report", () => ["-m", missing(), "-f", join(dir, "text.txt"), "--types", "q8_0"]],
];

describe("zh-llama: expected failures are one line, exit status 1", () => {
  for (const [label, args] of verbs) {
    it(`${label} with a missing model file`, async () => {
      const name = label.split(" ")[0]!;
      const r = await run(name, ...args());
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^zh-llama ${name}: .*nope\\.gguf.*(no such file|not found|ENOENT)`, "i"));
      expect(r.stderr.trimEnd().split("\n"), r.stderr).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it("perplexity with a missing text file names it", async () => {
    const r = await run("perplexity", "-m", model, "-f", join(dir, "none.txt"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^zh-llama perplexity: .*none\.txt: no such file or directory \(ENOENT\)\n$/);
  });

  it("perplexity and quant-report refuse a text file that is not UTF-8 (TokenizerError naming file and byte, not U+FFFD)", async () => {
    const bad = join(dir, "latin1.txt");
    await writeFile(bad, Buffer.concat([Buffer.from("w263 w273 caf"), Buffer.from([0xe9]), Buffer.from(" w283\n")]));
    for (const argv of [["perplexity", "-m", model, "-f", bad], ["quant-report", "-m", model, "-f", bad, "--types", "q8_0"]]) {
      const r = await run(...argv);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`zh-llama ${argv[0]}: TokenizerError: text file ${bad}: not valid UTF-8 at byte 13 (0xe9); text inputs must be UTF-8\n`);
    }
  });

  it("--verbose adds the stack", async () => {
    const r = await run("inspect", missing(), "--verbose");
    expect(r.status).toBe(1);
    expect(r.stderr.split("\n")[0]).toMatch(/^zh-llama inspect: .*nope\.gguf/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it("serve on a busy port is one line naming the port", async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await run("serve", "-m", model, "--port", String(port));
      expect(r.status, r.stderr).toBe(1);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines.at(-1)).toBe(`zh-llama serve: cannot listen on 127.0.0.1:${port}: the port is already in use (EADDRINUSE); choose another with --port N (0 picks a free one)`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      busy.close();
    }
  });

  it("file-system errors map to one line each", () => {
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    expect(expectedFailure(enospc)).toBe("cannot write: no space left on device (ENOSPC)");
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/root/x.gguf'"), { code: "EACCES", syscall: "open", path: "/root/x.gguf" });
    expect(expectedFailure(eacces)).toBe("cannot open /root/x.gguf: permission denied (EACCES)");
    expect(expectedFailure(new TypeError("x is undefined"))).toBeUndefined();
  });
});

describe("zh-llama: usage and help", () => {
  it("a usage error is one line and a pointer to --help, exit 2", async () => {
    const r = await run("run", "-m", model);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("zh-llama run: give exactly one of -p TEXT, -f FILE or --prompt-ids IDS\nsee `zh-llama run --help`\n");
    const bogus = await run("inspect", "--bogus", "x");
    expect(bogus.stderr.trimEnd().split("\n")).toHaveLength(2);
    const unknown = await run("frobnicate");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('zh-llama: unknown command "frobnicate"; see `zh-llama --help`\n');
  });

  it("help CMD and --version", async () => {
    const help = await run("help", "quantize");
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: zh-llama quantize/);
    expect((await run("help")).stdout).toMatch(/commands:/);
    const v = await run("--version");
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^zh-llama \d+\.\d+\.\d+\n$/);
  });
});

describe("llama.cpp spellings", () => {
  it("renames and ignores with a note", () => {
    const t = translateLlamaCppArgs(["-m", "x.gguf", "--ctx-size", "256", "-ngl", "99", "--mlock", "-fa", "on", "-md", "d.gguf", "--n-gpu-layers=33", "-fa", "-p", "hi", "--", "-ngl"]);
    expect(t.args).toEqual(["-m", "x.gguf", "--ctx", "256", "--draft-model", "d.gguf", "-p", "hi", "--", "-ngl"]);
    expect(t.notes).toHaveLength(5);
    expect(t.notes[0]).toMatch(/^note: -ngl 99 ignored: /);
  });

  it("run takes --ctx-size, -ngl, --no-mmap and -fa with one note each", async () => {
    const r = await run("run", "-m", model, "--prompt-ids", "1,5,6", "-n", "2", "--ctx-size", "32", "-ngl", "99", "--no-mmap", "-fa", "--json");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.match(/^zh-llama run: note: /gm)).toHaveLength(3);
    expect(r.stderr).toMatch(/context 32/);
  });
});
