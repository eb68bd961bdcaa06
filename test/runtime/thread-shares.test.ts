/**
 * How the threads of a step share its ops (src/runtime/executor.ts):
 *   - a matmul's rows: fixed contiguous slices, then the rest in chunks from a per-op counter
 *     (sharedRows): every row exactly once, whatever the thread count;
 *   - decoding: every thread normalises the token and rounds it into a copy of its own (no
 *     barrier after either), the token's RoPE heads and its f16 cache stores are split;
 * and none of it changes a bit: 2 and 3 threads give the one-thread logits, prompt and every
 * decode step, on models of the types whose kernels lay rows out in groups (Q4_0, Q4_K, Q6_K),
 * two that do not (Q8_0, F16), and a mixture of experts (whose routing, written by one thread,
 * must still reach the others before the experts' products), with the default f16 cache.
 */
import { describe, expect, it } from "vitest";
import { encodeGguf } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { LlamaModel } from "../../src/model/index.js";
import { syntheticModel } from "../../src/convert/synthetic.js";
import { execute, fixedSlice, sharedRows } from "../../src/runtime/executor.js";
import { encodeProgram, type Op } from "../../src/kernels/program.js";
import type { Kernels } from "../../src/kernels/types.js";
import type { Barrier } from "../../src/runtime/barrier.js";

describe("sharedRows: a matmul's rows among n threads", () => {
  it("fixed slices and counter chunks cover every row once, in whole groups of 8", () => {
    for (const rows of [8, 32, 40, 256, 264, 768, 4096, 11008, 32000, 55296]) {
      for (const n of [2, 3, 4, 8]) {
        const { fixed, chunk } = sharedRows(rows, n);
        expect(fixed % 8).toBe(0);
        expect(chunk % 8).toBe(0);
        expect(fixed).toBeGreaterThanOrEqual(0);
        expect(fixed).toBeLessThanOrEqual(rows);
        // the executor's fixed slices, then chunks handed out in counter order
        const seen = new Uint8Array(rows);
        for (let t = 0; t < n; t++) {
          const [f0, f1] = fixedSlice(fixed, t, n);
          for (let r = f0; r < f1; r++) seen[r]!++;
        }
        for (let r0 = fixed; r0 < rows; r0 += chunk) for (let r = r0; r < Math.min(rows, r0 + chunk); r++) seen[r]!++;
        expect(seen.every((c) => c === 1)).toBe(true);
        // at least seven eighths stay in fixed slices once there are enough rows to share
        if (rows >= 64 * n) expect(fixed).toBeGreaterThanOrEqual(Math.floor((rows * 3) / 4));
      }
    }
  });
});

describe("one-token decoding: each thread's own rounding and norm, and the barriers they skip", () => {
  /** Runs `ops` as thread t of 2 against stub kernels: the calls made and where the barrier was met. */
  function trace(ops: Op[], t: number) {
    const calls: string[] = [];
    const stub = (name: string) => (...a: number[]) => void calls.push(`${name}(${a.slice(0, 3).join(",")})`);
    const k = {
      memory: { memory: new WebAssembly.Memory({ initial: 1 }) },
      quantize: stub("quantize"), matmul: stub("matmul"), rmsnorm: stub("rmsnorm"), moeRoute: stub("moeRoute"),
    } as unknown as Kernels;
    const barrier = { wait: () => void calls.push("barrier") } as unknown as Barrier;
    const program = encodeProgram(ops);
    execute(k, new Float64Array(program.sab), 0, program.length, new Float64Array(16), { thread: t, threads: 2, peers: [] }, barrier);
    return calls;
  }
  const Q4_0 = GGMLType.Q4_0;
  const norm: Op = { op: "rmsnorm", x: 1000, w: 2000, y: 3000, n: 64, eps: 1e-5, nTok: 1 };
  const round: Op = { op: "quantize", type: Q4_0, x: 3000, xq: 4000, cols: 64, nTok: 1, own: 8000, ownStride: 512 };
  const product: Op = { op: "matmul", type: Q4_0, w: 5000, xq: 4000, y: 6000, cols: 64, rows: 64, nTok: 1, ldy: 64 };

  it("every thread normalises and rounds the token itself, into its own copy, which its products read, with no barrier between", () => {
    for (const t of [0, 1]) {
      expect(trace([norm, round, product], t)).toEqual([
        "rmsnorm(1000,2000,3000)", `quantize(${Q4_0},3000,${8000 + 512 * t})`, `matmul(${Q4_0},5000,${8000 + 512 * t})`, "barrier",
      ]);
    }
  });

  it("waits at the barrier after them where an earlier op's writes (one thread's routing, unsynchronised) still need one", () => {
    const route: Op = { op: "moeRoute", logits: 100, probs: 200, nExpert: 4, k: 2, norm: true, idx: 300, wt: 400, sync: false };
    expect(trace([route, round, product], 0)).toEqual([
      "moeRoute(100,200,4)", `quantize(${Q4_0},3000,8000)`, "barrier", `matmul(${Q4_0},5000,8000)`, "barrier",
    ]);
  });

  it("a rounding of several tokens, or without copies, is shared as before and its barrier kept", () => {
    const shared: Op = { ...round, own: undefined, ownStride: undefined } as Op;
    expect(trace([shared, product], 0)).toEqual([`quantize(${Q4_0},3000,4000)`, "barrier", `matmul(${Q4_0},5000,4000)`, "barrier"]);
    expect(trace([shared, product], 1)).toEqual(["barrier", `matmul(${Q4_0},5000,4000)`, "barrier"]);
  });
});

/** Prompt logits (every position) and greedy decode steps' logits. */
async function run(bytes: Uint8Array, threads: number) {
  const model = await LlamaModel.load(bytes, { nCtx: 96, threads });
  try {
    const prompt = await model.evaluate(Array.from({ length: 19 }, (_, i) => (i === 0 ? 1 : 3 + ((i * 37) % 290))), { allLogits: true });
    const steps: Float32Array[] = [];
    let logits = prompt.slice(prompt.length - model.hp.nVocab);
    for (let s = 0; s < 6; s++) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      logits = await model.evaluate([best]);
      steps.push(logits);
    }
    return { prompt, steps };
  } finally {
    await model.dispose();
  }
}

describe("threads share a step without changing a bit", () => {
  const cases: Array<[string, GGMLType, number]> = [
    ["Q4_0 (grouped rows)", GGMLType.Q4_0, 0],
    ["Q4_K (grouped rows)", GGMLType.Q4_K, 0],
    ["Q6_K (grouped rows)", GGMLType.Q6_K, 0],
    ["Q8_0", GGMLType.Q8_0, 0],
    ["F16", GGMLType.F16, 0],
    ["Q4_0 mixture of 4 experts, 2 per token", GGMLType.Q4_0, 4],
  ];
  for (const [name, type, experts] of cases) {
    it(`${name}: 2 and 3 threads give the one-thread logits, prompt and decode`, async () => {
      // rows enough for the counter's chunks (ffn 1024: 896 fixed rows and chunks of 32 at 2 threads)
      const moe = experts ? { experts, expertsUsed: 2 } : {};
      const bytes = await encodeGguf(syntheticModel({ dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 1024, vocab: 300, type, seed: 5, ...moe }));
      const one = await run(bytes, 1);
      for (const threads of [2, 3]) {
        const many = await run(bytes, threads);
        expect(Array.from(many.prompt)).toEqual(Array.from(one.prompt));
        many.steps.forEach((s, i) => expect(Array.from(s)).toEqual(Array.from(one.steps[i]!)));
      }
    }, 120_000);
  }
});
