#!/usr/bin/env node
// Training speed of zh-llama's TypeScript trainer: tokens/s of full optimizer steps (forward,
// backward, AdamW) on random data, for a model of the given shape. Needs the compiled library
// (npm run build:ts).
//
//   node tools/train-bench.mjs [--vocab 40000] [--dim 256] [--layers 4] [--heads 8] [--kv-heads 8]
//        [--ffn 688] [--seq 128] [--batch 4] [--threads N] [--steps 4] [--lora R] [--untied]
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as train from "../dist/train/index.js";

const { values } = parseArgs({
  options: {
    vocab: { type: "string", default: "40000" }, dim: { type: "string", default: "256" }, layers: { type: "string", default: "4" },
    heads: { type: "string", default: "8" }, "kv-heads": { type: "string" }, ffn: { type: "string", default: "688" },
    seq: { type: "string", default: "128" }, batch: { type: "string", default: "4" }, threads: { type: "string", default: String(availableParallelism()) },
    steps: { type: "string", default: "4" }, lora: { type: "string" }, untied: { type: "boolean" },
  },
});
const n = (k) => Number(values[k]);
const cfg = train.makeConfig({
  nVocab: n("vocab"), nEmbd: n("dim"), nLayer: n("layers"), nHead: n("heads"), nHeadKv: values["kv-heads"] ? n("kv-heads") : n("heads"),
  nFf: n("ffn"), nCtx: n("seq"), tiedEmbeddings: !values.untied,
});
const lora = values.lora
  ? { rank: n("lora"), alpha: 2 * n("lora"), targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], modulesToSave: ["embed_tokens"] }
  : undefined;
const model = await train.initModel(cfg, { batch: n("batch"), seq: n("seq"), lora }, 1, { threads: n("threads") });
const rng = new train.TrainRng(1);
const stream = Int32Array.from({ length: Math.max(100000, 4 * n("batch") * n("seq")) }, () => rng.nextInt(cfg.nVocab));
const loader = new train.DataLoader(new train.PackedDataset(stream, n("seq")), n("batch"), rng);
const trainer = new train.Trainer(model, loader, rng, { steps: 1000, lr: 1e-4, warmup: 0, accum: 1 });
console.log(
  `model: vocab ${cfg.nVocab}${cfg.tiedEmbeddings ? " (tied)" : ""}, dim ${cfg.nEmbd}, ${cfg.nLayer} layers, ${cfg.nHead}/${cfg.nHeadKv} heads, ffn ${cfg.nFf}; ` +
    `${(train.countNonEmbeddingParams(cfg) / 1e6).toFixed(2)} M parameters outside the embeddings; batch ${n("batch")} x ${n("seq")}; ${n("threads")} thread(s)${lora ? `; LoRA r=${lora.rank}` : ""}`,
);
trainer.trainStep(); // warm-up (JIT, transposes)
let tokens = 0, seconds = 0;
for (let i = 0; i < n("steps"); i++) {
  const s = trainer.trainStep();
  tokens += s.tokens;
  seconds += s.seconds;
  console.log(`step ${s.step}: ${s.tokensPerSecond.toFixed(0)} tok/s (${s.seconds.toFixed(2)} s)`);
}
console.log(`mean: ${(tokens / seconds).toFixed(0)} tokens/s`);
await model.dispose();
