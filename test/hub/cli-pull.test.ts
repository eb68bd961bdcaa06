/** `zh-llama pull` and `-m hf://ORG/NAME/FILE` against the local hub of fake-hub.ts (HF_ENDPOINT, HF_HOME). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/index.js";
import type { CliIo } from "../../src/cli/command.js";
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { FakeHub, fakeCommit, sha256 } from "./fake-hub.js";

const REPO = "hfl/chinese-alpaca-2-7b-gguf";
const COMMIT = fakeCommit("cli");
let hub: FakeHub;
let home = "";
let model: Uint8Array;
const saved: Record<string, string | undefined> = {};
const VARS = ["HF_ENDPOINT", "HF_HOME", "HF_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"];

async function cli(...argv: string[]) {
  return cliTty(false, ...argv);
}

async function cliTty(isTty: boolean, ...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), isTty };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

beforeAll(async () => {
  for (const v of VARS) saved[v] = process.env[v];
  for (const v of VARS) delete process.env[v];
  hub = await new FakeHub().start();
  home = await mkdtemp(join(tmpdir(), "zh-hub-cli-"));
  process.env.HF_ENDPOINT = hub.hubUrl;
  process.env.HF_HOME = home;
  model = await encodeGguf(syntheticModel({ type: GGMLType.F32, vocab: 300, dim: 32, layers: 1, heads: 2, kvHeads: 2, ffn: 64, ctx: 64 }));
  hub.repos.set(REPO, { commit: COMMIT, files: { "ggml-model-f32.gguf": { data: model } } });
});

afterAll(async () => {
  await hub.stop();
  for (const v of VARS) {
    if (saved[v] === undefined) delete process.env[v];
    else process.env[v] = saved[v];
  }
  await rm(home, { recursive: true, force: true });
});

describe("zh-llama pull", () => {
  it("downloads into $HF_HOME/hub and prints the local path", async () => {
    const r = await cli("pull", REPO, "ggml-model-f32.gguf");
    expect(r.status).toBe(0);
    const path = join(home, "hub", "models--hfl--chinese-alpaca-2-7b-gguf", "snapshots", COMMIT, "ggml-model-f32.gguf");
    expect(r.stdout).toBe(path + "\n");
    expect(await readlink(path)).toBe(join("..", "..", "blobs", sha256(model)));
    expect(r.stderr).toMatch(/hfl\/chinese-alpaca-2-7b-gguf\/ggml-model-f32\.gguf: 100%/);
    expect(r.stderr).toMatch(/fetched, commit [0-9a-f]{10} in [\d.]+ s\n$/);
    // Again: the cache answers (one HEAD, no download) and says so.
    hub.log.length = 0;
    const again = await cli("pull", `hf://${REPO}/ggml-model-f32.gguf`);
    expect(again.stdout).toBe(path + "\n");
    expect(again.stderr).toMatch(/in the cache, commit/);
    expect(hub.requests("cdn")).toHaveLength(0);
  });

  it("draws a progress bar in place on a terminal", async () => {
    hub.repos.get(REPO)!.files["other.gguf"] = { data: new Uint8Array(200_000).fill(7) };
    const r = await cliTty(true, "pull", REPO, "other.gguf");
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/\rhfl\/chinese-alpaca-2-7b-gguf\/other\.gguf \[#+-*\] +\d+% /);
    expect(r.stderr).toMatch(/\[#{30}\] 100% 196 KiB of 196 KiB/);
  });

  it("errors are one line: 404 and 401 name the file; 401 suggests HF_TOKEN", async () => {
    const missing = await cli("pull", REPO, "nope.gguf");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`zh-llama pull: HubNotFoundError: ${REPO}/nope.gguf: no such file in ${REPO} at revision main (HTTP 404 from ${hub.hubUrl})\n`);
    const priv = await cli("pull", "hfl/private-gguf", "x.gguf");
    expect(priv.status).toBe(1);
    expect(priv.stderr.split("\n")).toHaveLength(2);
    expect(priv.stderr).toMatch(/^zh-llama pull: HubAuthError: hfl\/private-gguf\/x\.gguf: repository not found, or private or gated: set HF_TOKEN to an access token/);
    const usage = await cli("pull", "only-one-arg");
    expect(usage.status).toBe(2);
  });

  it("-m hf://REPO/FILE works for commands that take a model (inspect, run)", async () => {
    const inspect = await cli("inspect", "-m", `hf://${REPO}/ggml-model-f32.gguf`);
    expect(inspect.status).toBe(0);
    expect(inspect.stdout).toContain(join("snapshots", COMMIT, "ggml-model-f32.gguf"));
    const positional = await cli("inspect", "--json", `hf://${REPO}@main/ggml-model-f32.gguf`);
    expect(positional.status).toBe(0);
    expect(JSON.parse(positional.stdout).version).toBe(3);
    const run = await cli("run", `--model=hf://${REPO}/ggml-model-f32.gguf`, "--prompt-ids", "1,2,3", "-n", "2", "--temp", "0", "-t", "1", "--json");
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!).generated_ids).toHaveLength(2);
    const bad = await cli("run", "-m", `hf://${REPO}/missing.gguf`, "--prompt-ids", "1");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^zh-llama run: HubNotFoundError: .*missing\.gguf/);
  });
});
