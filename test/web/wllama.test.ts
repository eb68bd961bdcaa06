/**
 * Smoke test of the wllama benchmark peer (tools/wllama-peer.mjs, used by tools/bench-report.mjs):
 * llama.cpp's WebAssembly build (npm @wllama/wllama) loads a tiny GGUF with LLaMA's vocabulary
 * from the local cross-origin-isolated server in headless Chromium, at 1 and 2 threads, and
 * reports its own prompt/decode timings for a text prompt. A few seconds; skips (with a message)
 * where Chromium or the package is missing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zh from "../../src/internals.js";
import * as wl from "../../tools/wllama-peer.mjs";

interface PeerRun { promptTokens: number; promptMs: number; genTokens: number; decodeMs: number; wallMs: number }
interface Started {
  version: string;
  libllama: string;
  open(file: string, threads: number, ctx: number): Promise<{ run(prompt: string, gen: number): Promise<PeerRun>; dispose(): Promise<void> }>;
  close(): Promise<void>;
}

const unavailable: string | undefined = wl.wllamaUnavailableReason();
if (unavailable) console.warn(`test/web/wllama: skipping: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("wllama peer in Chromium", () => {
  let dir: string;
  let started: Started;
  let prompt: string;
  const file = () => join(dir, "tiny-llama-vocab.gguf");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "zh-wllama-test-"));
    const vocab = wl.llamaVocabulary(zh);
    const spec = zh.syntheticModel({ name: "tiny", dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 32000, ctx: 256, type: zh.GGMLType.Q8_0, seed: 7 });
    Object.assign(spec.metadata, vocab.metadata);
    await zh.writeGguf(file(), spec);
    prompt = wl.benchPromptText(vocab.tokenizer, 24);
    expect(vocab.tokenizer.encode(prompt, { addBos: true }).length).toBeLessThanOrEqual(24);
    started = await wl.startWllama(dir, undefined, 120);
  });

  afterAll(async () => {
    await started?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const threads of [1, 2]) {
    it(`runs a text prompt and greedy decode steps with ${threads} thread(s), timed by wllama`, async () => {
      expect(started.version).toMatch(/^wllama \d+\.\d+\.\d+$/);
      const peer = await started.open(file(), threads, 64);
      try {
        const r = await peer.run(prompt, 4);
        // Its own token count agrees with zh-llama's tokenizer (same vocabulary, BOS included).
        expect(r.promptTokens).toBe(zh.tokenizerFromGgufMetadata(wl.llamaVocabulary(zh).metadata).encode(prompt, { addBos: true }).length);
        expect(r.genTokens).toBe(4);
        expect(r.promptMs).toBeGreaterThan(0);
        expect(r.decodeMs).toBeGreaterThan(0);
        expect(r.wallMs).toBeGreaterThanOrEqual(r.promptMs);
      } finally {
        await peer.dispose();
      }
    });
  }
});
