/** Matrix products on two threads give the single-thread results bit for bit (rows are split, never sums). */
import { describe, expect, it } from "vitest";
import { makeConfig } from "../../src/train/config.js";
import { DataLoader, PackedDataset } from "../../src/train/data.js";
import { initModel } from "../../src/train/io.js";
import { TrainRng } from "../../src/train/rng.js";
import { createWasmKernels, KernelMemory } from "../../src/kernels/index.js";
import { kernelEngine } from "../../src/train/linear.js";
import { createMatmulTeam } from "../../src/train/team.js";
import { randomF32, rng } from "../kernels/helpers.js";
import { Trainer } from "../../src/train/trainer.js";

describe("matmul team", () => {
  it("two threads train exactly like one", async () => {
    const cfg = makeConfig({ nVocab: 1500, nEmbd: 64, nLayer: 1, nHead: 4, nFf: 128, nCtx: 32 });
    const stream = Int32Array.from({ length: 2000 }, (_, i) => (i * 37) % 1500);
    const run = async (threads: number) => {
      const model = await initModel(cfg, { batch: 2, seq: 32 }, 5, { threads });
      const rng = new TrainRng(5);
      const tr = new Trainer(model, new DataLoader(new PackedDataset(stream, 32), 2, rng), rng, { steps: 3, lr: 1e-3, warmup: 0, accum: 1 });
      for (let i = 0; i < 3; i++) tr.trainStep();
      const out = model.base.values.data.slice();
      await model.dispose();
      return out;
    };
    const one = await run(1);
    const two = await run(2);
    expect(two.length).toBe(one.length);
    let same = true;
    for (let i = 0; i < one.length; i++) if (one[i] !== two[i]) same = false;
    expect(same).toBe(true);
  });

  it("one product on src/runtime's synchronous pool: odd shapes, many token blocks over several steps, bit for bit", async () => {
    const mem = KernelMemory.create({ initialBytes: 32 << 20 });
    const k = await createWasmKernels(mem, "simd");
    // maxOps 2: a product of 5 token blocks runs as three steps.
    const team = await createMatmulTeam(k, 3, { maxOps: 2 });
    try {
      expect(team.threads).toBe(3);
      const r = rng(7);
      for (const [rows, cols, n] of [[1001, 67, 50], [96, 16384, 20], [257, 4096, 300]] as const) {
        const w = mem.put(randomF32(r, rows * cols));
        const x = mem.put(randomF32(r, n * cols));
        const y1 = mem.alloc(4 * rows * n), y3 = mem.alloc(4 * rows * n);
        kernelEngine(k).nt(y1, w, x, rows, cols, n);
        team.nt(y3, w, x, rows, cols, n);
        expect(mem.f32(y3, rows * n)).toEqual(mem.f32(y1, rows * n));
      }
    } finally {
      await team.dispose();
    }
  });
});
