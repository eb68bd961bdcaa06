/** Matrix products on two threads give the single-thread results bit for bit (rows are split, never sums). */
import { describe, expect, it } from "vitest";
import { makeConfig } from "../../src/train/config.js";
import { DataLoader, PackedDataset } from "../../src/train/data.js";
import { initModel } from "../../src/train/io.js";
import { TrainRng } from "../../src/train/rng.js";
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
});
