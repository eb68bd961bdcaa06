/**
 * hubDownload against a local hub on 127.0.0.1 (test/hub/fake-hub.ts): the cache layout of
 * huggingface_hub, redirects to another origin without the token, Range resumes after a dropped
 * connection, sha256 checks, typed errors, split GGUFs, and the cache answering without network.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readFile, readlink, readdir, rm, stat, lstat, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  hubDownload, parseHfUri, hubCacheDir, splitParts, resolveHfPath,
  HubAuthError, HubNotFoundError, HubNetworkError, HubChecksumError, HubOfflineError,
  type HubProgress,
} from "../../src/hub/index.js";
import { openGguf, writeGgufSplit } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { FakeHub, fakeCommit, sha256, gitSha1 } from "./fake-hub.js";

const REPO = "hfl/chinese-alpaca-2-7b-gguf";
const COMMIT = fakeCommit("one");

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A URL on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

const big = bytes(300_000, 7);
const small = new TextEncoder().encode("---\nlicense: apache-2.0\n---\n# Chinese-Alpaca-2-7B-GGUF\n");

let hub: FakeHub;
let cache = "";
let root = "";

beforeAll(async () => {
  hub = await new FakeHub().start();
  root = await mkdtemp(join(tmpdir(), "zh-hub-"));
});
afterAll(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});
beforeEach(async () => {
  cache = await mkdtemp(join(root, "cache-"));
  hub.repos.clear();
  hub.log.length = 0;
  hub.dropAfter = [];
  hub.corrupt.clear();
  hub.ignoreRange = false;
  hub.renamed.clear();
  hub.repos.set(REPO, { commit: COMMIT, files: { "ggml-model-q4_0.gguf": { data: big }, "README.md": { data: small, lfs: false } } });
});

const opts = (extra: Parameters<typeof hubDownload>[2] = {}) => ({ endpoint: hub.hubUrl, cacheDir: cache, token: false as const, retryDelayMs: 5, env: {}, ...extra });

describe("hubDownload", () => {
  it("fetches an LFS file through the CDN redirect into huggingface_hub's cache layout", async () => {
    const progress: HubProgress[] = [];
    const r = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ onProgress: (p) => progress.push(p) }));
    const folder = join(cache, "models--hfl--chinese-alpaca-2-7b-gguf");
    const sha = sha256(big);
    expect(r.path).toBe(join(folder, "snapshots", COMMIT, "ggml-model-q4_0.gguf"));
    expect(r.commit).toBe(COMMIT);
    expect(r.bytes).toBe(big.byteLength);
    expect(r.downloaded).toBe(big.byteLength);
    // snapshots/<commit>/<file> -> ../../blobs/<sha256>, refs/main -> the commit
    expect((await lstat(r.path)).isSymbolicLink()).toBe(true);
    expect(await readlink(r.path)).toBe(join("..", "..", "blobs", sha));
    expect(sha256(await readFile(join(folder, "blobs", sha)))).toBe(sha);
    expect(await readFile(join(folder, "refs", "main"), "utf8")).toBe(COMMIT);
    expect(await readdir(join(folder, "blobs"))).toEqual([sha]);
    // HEAD on the resolve URL, then GET, redirected to the CDN.
    expect(hub.requests("hub", "HEAD").map((q) => q.path)).toEqual([`/${REPO}/resolve/main/ggml-model-q4_0.gguf`]);
    expect(hub.requests("hub", "GET")).toHaveLength(1);
    expect(hub.requests("cdn", "GET")).toHaveLength(1);
    expect(progress.at(-1)).toEqual({ file: "ggml-model-q4_0.gguf", part: 1, parts: 1, done: big.byteLength, total: big.byteLength });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.done).toBeGreaterThanOrEqual(progress[i - 1]!.done);
  });

  it("sends the token to the hub only, never to the CDN it redirects to", async () => {
    hub.repos.get(REPO)!.token = "hf_secret";
    await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ token: "hf_secret" }));
    expect(hub.requests("hub").every((q) => q.authorization === "Bearer hf_secret")).toBe(true);
    expect(hub.requests("cdn").length).toBeGreaterThan(0);
    expect(hub.requests("cdn").every((q) => q.authorization === undefined)).toBe(true);
  });

  it("reads HF_ENDPOINT, HF_TOKEN and HF_HOME from the environment", async () => {
    hub.repos.get(REPO)!.token = "hf_env";
    const home = join(root, "hf-home-" + Date.now());
    const env = { HF_ENDPOINT: hub.hubUrl, HF_TOKEN: "hf_env", HF_HOME: home };
    expect(hubCacheDir(env)).toBe(join(home, "hub"));
    expect(hubCacheDir({ HF_HOME: home, HF_HUB_CACHE: "/x/y" })).toBe("/x/y");
    const r = await hubDownload(REPO, "README.md", { env, retryDelayMs: 5 });
    expect(r.path).toBe(join(home, "hub", "models--hfl--chinese-alpaca-2-7b-gguf", "snapshots", COMMIT, "README.md"));
    // The token file `huggingface-cli login` writes is used when HF_TOKEN is not set.
    await writeFile(join(home, "token"), "hf_env\n");
    const again = await hubDownload(REPO, "ggml-model-q4_0.gguf", { env: { HF_ENDPOINT: hub.hubUrl, HF_HOME: home }, retryDelayMs: 5 });
    expect(again.downloaded).toBe(big.byteLength);
  });

  it("follows the hub's relative redirect for a renamed repository; the cache keeps the name asked for", async () => {
    hub.renamed.set("ymcui/chinese-alpaca-2-7b-gguf", REPO);
    const r = await hubDownload("ymcui/chinese-alpaca-2-7b-gguf", "ggml-model-q4_0.gguf", opts());
    expect(r.path).toBe(join(cache, "models--ymcui--chinese-alpaca-2-7b-gguf", "snapshots", COMMIT, "ggml-model-q4_0.gguf"));
    expect(sha256(await readFile(r.path))).toBe(sha256(big));
    expect(hub.requests("hub", "HEAD").map((q) => q.path)).toEqual([`/ymcui/chinese-alpaca-2-7b-gguf/resolve/main/ggml-model-q4_0.gguf`, `/${REPO}/resolve/main/ggml-model-q4_0.gguf`]);
  });

  it("a non-LFS file is served directly and stored under its git ETag", async () => {
    const r = await hubDownload(REPO, "README.md", opts());
    const folder = join(cache, "models--hfl--chinese-alpaca-2-7b-gguf");
    expect(await readlink(r.path)).toBe(join("..", "..", "blobs", gitSha1(small)));
    expect(await readFile(r.path, "utf8")).toContain("Chinese-Alpaca-2-7B-GGUF");
    expect(hub.requests("cdn")).toHaveLength(0);
    expect(await readdir(join(folder, "blobs"))).toEqual([gitSha1(small)]);
  });

  it("a second pull is served from the cache: one HEAD, no GET; and with the hub gone, no network at all", async () => {
    const first = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    hub.log.length = 0;
    const second = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    expect(second.path).toBe(first.path);
    expect(second.downloaded).toBe(0);
    expect(hub.requests("hub", "GET")).toHaveLength(0);
    expect(hub.requests("cdn")).toHaveLength(0);
    // Nothing listening at the endpoint: the cache answers and says why.
    const dead = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ endpoint: await closedPort() }));
    expect(dead.path).toBe(first.path);
    expect(dead.offline).toMatch(/could not be reached/);
    // HF_HUB_OFFLINE: the hub is not asked.
    hub.log.length = 0;
    const off = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ env: { HF_HUB_OFFLINE: "1" } }));
    expect(off.path).toBe(first.path);
    expect(hub.log).toHaveLength(0);
    // A commit hash names fixed content: served from the cache without a request.
    const pinned = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ revision: COMMIT }));
    expect(pinned.path).toBe(first.path);
    expect(hub.log).toHaveLength(0);
    await expect(hubDownload(REPO, "README.md", opts({ env: { HF_HUB_OFFLINE: "1" } }))).rejects.toThrow(HubOfflineError);
  });

  it("a blob already in the cache (another file, same content) is linked, not fetched", async () => {
    await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    hub.repos.get(REPO)!.files["copy.gguf"] = { data: big };
    hub.log.length = 0;
    const r = await hubDownload(REPO, "copy.gguf", opts());
    expect(r.downloaded).toBe(0);
    expect(hub.requests("cdn")).toHaveLength(0);
    expect(sha256(await readFile(r.path))).toBe(sha256(big));
  });

  it("resumes a connection dropped mid-file with a Range request, in the same call", async () => {
    hub.dropAfter = [100_000, 50_000];
    const r = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    expect(sha256(await readFile(r.path))).toBe(sha256(big));
    const gets = hub.requests("cdn", "GET");
    // Each resume starts where the bytes that arrived end: at most where the server dropped the
    // connection (bytes in flight when a socket is torn down may be lost on a loaded machine).
    const ranges = gets.map((q) => q.range);
    expect(ranges).toHaveLength(3);
    expect(ranges[0]).toBeUndefined();
    const starts = ranges.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r ?? "")?.[1]));
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[0]).toBeLessThanOrEqual(100_000);
    expect(starts[1]).toBeGreaterThanOrEqual(starts[0]!);
    expect(starts[1]).toBeLessThanOrEqual(starts[0]! + 50_000);
    expect(r.downloaded).toBe(big.byteLength);
  });

  it("keeps the .incomplete file when retries run out, and the next pull resumes it", async () => {
    hub.dropAfter = [120_000];
    const err = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ retries: 0 })).catch((e) => e);
    expect(err).toBeInstanceOf(HubNetworkError);
    expect(err.message).toMatch(/hfl\/chinese-alpaca-2-7b-gguf\/ggml-model-q4_0\.gguf: the download failed after 120000 of 300000 bytes/);
    const blob = join(cache, "models--hfl--chinese-alpaca-2-7b-gguf", "blobs", sha256(big));
    expect((await stat(blob + ".incomplete")).size).toBe(120_000);
    await expect(stat(blob)).rejects.toThrow();
    hub.log.length = 0;
    const r = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    expect(hub.requests("cdn", "GET").map((q) => q.range)).toEqual(["bytes=120000-"]);
    expect(r.downloaded).toBe(big.byteLength - 120_000);
    expect(sha256(await readFile(r.path))).toBe(sha256(big));
    await expect(stat(blob + ".incomplete")).rejects.toThrow();
  });

  it("starts over when the server ignores the Range", async () => {
    hub.dropAfter = [100_000];
    hub.ignoreRange = true;
    const r = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    expect(sha256(await readFile(r.path))).toBe(sha256(big));
  });

  it("refuses bytes whose sha256 is not the hub's etag, and keeps nothing", async () => {
    const wrong = big.slice();
    wrong[1234] ^= 0xff;
    hub.corrupt.set(sha256(big), wrong);
    const err = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts()).catch((e) => e);
    expect(err).toBeInstanceOf(HubChecksumError);
    expect(err.message).toContain(sha256(big));
    expect(err.message).toContain(sha256(wrong));
    const folder = join(cache, "models--hfl--chinese-alpaca-2-7b-gguf");
    expect(await readdir(join(folder, "blobs"))).toEqual([]);
    await expect(stat(join(folder, "snapshots", COMMIT, "ggml-model-q4_0.gguf"))).rejects.toThrow();
  });

  it("401 names the repository and file and suggests HF_TOKEN; a wrong token says so", async () => {
    hub.repos.get(REPO)!.token = "hf_right";
    const err = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts()).catch((e) => e);
    expect(err).toBeInstanceOf(HubAuthError);
    expect(err.status).toBe(401);
    expect(err.message).toContain("hfl/chinese-alpaca-2-7b-gguf/ggml-model-q4_0.gguf");
    expect(err.message).toContain("HF_TOKEN");
    const wrong = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ token: "hf_wrong" })).catch((e) => e);
    expect(wrong).toBeInstanceOf(HubAuthError);
    expect(wrong.message).toMatch(/repository not found, or the token in HF_TOKEN has no access to it/);
  });

  it("404 names the repository, the file and the revision", async () => {
    const err = await hubDownload(REPO, "ggml-model-q9_9.gguf", opts()).catch((e) => e);
    expect(err).toBeInstanceOf(HubNotFoundError);
    expect(err.message).toMatch(/^hfl\/chinese-alpaca-2-7b-gguf\/ggml-model-q9_9\.gguf: no such file in hfl\/chinese-alpaca-2-7b-gguf at revision main \(HTTP 404 from http:/);
    const rev = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ revision: "v9" })).catch((e) => e);
    expect(rev).toBeInstanceOf(HubNotFoundError);
    expect(rev.message).toContain('revision "v9" not found');
  });

  it("a hub that cannot be reached, with nothing cached, is one HubNetworkError", async () => {
    const dead = await closedPort();
    const err = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts({ endpoint: dead })).catch((e) => e);
    expect(err).toBeInstanceOf(HubNetworkError);
    expect(err.message.replace(dead, "DEAD")).toMatch(/cannot reach DEAD for hfl\/chinese-alpaca-2-7b-gguf\/ggml-model-q4_0\.gguf: ECONNREFUSED/);
  });

  it("fetches every part of a split GGUF; the path is the first part, which opens as one model", async () => {
    const dir = await mkdtemp(join(root, "split-"));
    const tensors = Array.from({ length: 3 }, (_, i) => ({ name: `t${i}`, type: GGMLType.F32, shape: [64], data: new Uint8Array(new Float32Array(64).fill(i).buffer) }));
    const written = await writeGgufSplit(join(dir, "chinese-mixtral-q4_0"), { metadata: { "general.architecture": "llama" }, tensors }, { maxTensorsPerPart: 1 });
    expect(written).toHaveLength(3);
    const files: Record<string, { data: Uint8Array }> = {};
    for (const p of written) files[p.split("/").pop()!] = { data: new Uint8Array(await readFile(p)) };
    hub.repos.set("hfl/chinese-mixtral-gguf", { commit: fakeCommit("mixtral"), files });
    expect(splitParts("q/chinese-mixtral-q4_0-00002-of-00003.gguf")).toEqual([1, 2, 3].map((i) => `q/chinese-mixtral-q4_0-0000${i}-of-00003.gguf`));
    const progress: HubProgress[] = [];
    // Asking for any part brings all three.
    const r = await hubDownload("hfl/chinese-mixtral-gguf", "chinese-mixtral-q4_0-00002-of-00003.gguf", opts({ onProgress: (p) => progress.push(p) }));
    expect(r.paths.map((p) => p.split("/").pop())).toEqual(Object.keys(files));
    expect(r.path).toBe(r.paths[0]);
    const total = Object.values(files).reduce((a, f) => a + f.data.byteLength, 0);
    expect(r.bytes).toBe(total);
    expect(progress.at(-1)).toMatchObject({ part: 3, parts: 3, done: total, total });
    const model = await openGguf(r.path);
    try {
      expect(model.tensors.map((t) => t.name)).toEqual(["t0", "t1", "t2"]);
      expect(Array.from((await model.readTensorF32("t2")).slice(0, 2))).toEqual([2, 2]);
    } finally {
      await model.close();
    }
    // A part missing from the cache is fetched; the others are not.
    await rm(r.paths[2]!);
    hub.log.length = 0;
    const again = await hubDownload("hfl/chinese-mixtral-gguf", "chinese-mixtral-q4_0-00001-of-00003.gguf", opts());
    expect(again.downloaded).toBe(0); // its blob was still there: relinked
    expect(hub.requests("cdn")).toHaveLength(0);
  });

  it("waits for another download of the same blob instead of appending to its .incomplete", async () => {
    const [a, b] = await Promise.all([hubDownload(REPO, "ggml-model-q4_0.gguf", opts()), hubDownload(REPO, "ggml-model-q4_0.gguf", opts())]);
    expect(a.path).toBe(b.path);
    expect(sha256(await readFile(a.path))).toBe(sha256(big));
    expect(a.downloaded + b.downloaded).toBe(big.byteLength);
    expect(hub.requests("cdn", "GET")).toHaveLength(1);
  });

  it("a stale lock left by a dead process is taken over", async () => {
    const sha = sha256(big);
    const lockDir = join(cache, ".locks", "models--hfl--chinese-alpaca-2-7b-gguf");
    await mkdir(lockDir, { recursive: true });
    await writeFile(join(lockDir, `${sha}.zh-llama.lock`), "999999999");
    const r = await hubDownload(REPO, "ggml-model-q4_0.gguf", opts());
    expect(r.downloaded).toBe(big.byteLength);
    expect(await readdir(lockDir)).toEqual([]);
  });

  it("parses hf:// paths and refuses bad repository ids and file paths", async () => {
    expect(parseHfUri("hf://hfl/chinese-alpaca-2-7b-gguf/ggml-model-q4_0.gguf")).toEqual({ repo: REPO, file: "ggml-model-q4_0.gguf", revision: undefined });
    expect(parseHfUri("hf://hfl/x@v1.0/sub/dir/f.gguf")).toEqual({ repo: "hfl/x", file: "sub/dir/f.gguf", revision: "v1.0" });
    expect(() => parseHfUri("hf://hfl/f.gguf")).toThrow(/hf:\/\/ORG\/NAME\/FILE/);
    await expect(hubDownload("../etc", "x", opts())).rejects.toThrow(/not a Hugging Face model repository id/);
    await expect(hubDownload(REPO, "../x", opts())).rejects.toThrow(/not a file path inside a repository/);
    expect(await resolveHfPath("/local/model.gguf")).toBe("/local/model.gguf");
    const p = await resolveHfPath(`hf://${REPO}/README.md`, opts());
    expect(await readFile(p, "utf8")).toContain("license");
  });

});
