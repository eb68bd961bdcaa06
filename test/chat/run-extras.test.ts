/** `zh-llama run` with the decoding extras: --cfg-scale / --negative-prompt, --draft-model / --draft-k. */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { GGMLType, tinyModelBytes } from "./helpers.js";

let dir = "";
let target = "";
let draft = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zh-run-extras-"));
  target = join(dir, "target.gguf");
  draft = join(dir, "draft.gguf");
  await writeFile(target, await tinyModelBytes());
  await writeFile(draft, await tinyModelBytes({ type: GGMLType.Q8_0 }));
});

async function run(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), isTty: false };
  const status = await main(["run", "-m", target, "--ctx", "128", "--kv-type", "f32", "--prompt-ids", "1,270,281,262", "-n", "24", "--ignore-eos", ...argv], io);
  return { status, stdout, stderr, json: () => JSON.parse(stdout) };
}

describe("zh-llama run: decoding extras", () => {
  it("--cfg-scale 1 is the unguided output; > 1 guides", async () => {
    const plain = (await run("--temp", "0", "--json")).json();
    const one = await run("--temp", "0", "--json", "--cfg-scale", "1", "--negative-prompt", "w280 w281");
    expect(one.status, one.stderr).toBe(0);
    expect(one.json().generated_ids).toEqual(plain.generated_ids);
    const guided = await run("--temp", "0", "--json", "--cfg-scale", "3", "--negative-prompt", "w280 w281");
    expect(guided.status, guided.stderr).toBe(0);
    expect(guided.json().generated_ids).not.toEqual(plain.generated_ids);
    const lastToken = await run("--temp", "0", "--json", "--cfg-scale", "3");
    expect(lastToken.status, lastToken.stderr).toBe(0);
  });

  it("--draft-model: greedy output unchanged, acceptance reported", async () => {
    const plain = (await run("--temp", "0", "--json")).json();
    for (const k of [[], ["--draft-k", "3"]]) {
      const r = await run("--temp", "0", "--json", "--draft-model", draft, ...k);
      expect(r.status, r.stderr).toBe(0);
      const out = r.json();
      expect(out.generated_ids).toEqual(plain.generated_ids);
      expect(Object.keys(out.speculative)).toEqual(["rounds", "drafted", "accepted", "acceptance_rate", "tokens_per_target_pass"]);
      expect(out.speculative.acceptance_rate).toBeGreaterThan(0.5);
    }
    const streamed = await run("--temp", "0", "--draft-model", draft);
    expect(streamed.stderr).toMatch(/draft acceptance [\d.]+% \(\d+\/\d+\), [\d.]+ tokens per target pass\]/);
  });

  it("bad combinations are usage errors", async () => {
    expect((await run("--cfg-scale", "2", "--draft-model", draft)).stderr).toMatch(/--draft-model and --cfg-scale cannot be combined/);
    expect((await run("--draft-model", draft, "--draft-k", "0")).stderr).toMatch(/--draft-k expects a number in \[1, 64\], got "0"/);
    expect((await run("--cfg-scale", "x")).stderr).toMatch(/--cfg-scale expects a number/);
    const small = join(dir, "small.gguf");
    await writeFile(small, await tinyModelBytes({ vocab: 280 }));
    expect((await run("--draft-model", small)).stderr).toMatch(/has 280 tokens, the model 300: they must share one vocabulary/);
  });
});
