/**
 * Training runs end to end: the loss falls, a resumed run equals the uninterrupted one bit for
 * bit, a checkpoint of another shape is refused, a NaN stops training naming the step, and the
 * `zh-llama train` command writes what it promises (full model, then a LoRA adapter on it).
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/index.js";
import { mergeLoraFiles } from "../../src/lora/index.js";
import { LlamaModel } from "../../src/model/index.js";
import { makeConfig } from "../../src/train/config.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.js";
import { DataLoader, PackedDataset } from "../../src/train/data.js";
import { initModel, saveModelGguf } from "../../src/train/io.js";
import { loadTokenizer, PieceType, saveTokenizerModel, SentencePieceTokenizer } from "../../src/tokenizer/index.js";
import { openSafetensors } from "../../src/formats/safetensors.js";
import { TrainRng } from "../../src/train/rng.js";
import { Trainer, type TrainerOptions } from "../../src/train/trainer.js";
import { TrainLog } from "../../src/train/log.js";

const cfg = makeConfig({ nVocab: 50, nEmbd: 32, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 48, nCtx: 32 });
const B = 2, T = 8;
const opts: TrainerOptions = { steps: 40, lr: 3e-3, warmup: 3, accum: 2, maxGradNorm: 1, weightDecay: 0.01 };
/** A repetitive stream, so a tiny model can learn it quickly. */
const stream = Int32Array.from({ length: 600 }, (_, i) => [3, 7, 11, 7, 3, 19, 23, 29][i % 8]! + (i % 24 === 0 ? 1 : 0));

async function makeTrainer(seed: number, lora = false) {
  const model = await initModel(cfg, { batch: B, seq: T, lora: lora ? { rank: 2, alpha: 4, targets: ["q_proj", "v_proj"], modulesToSave: ["lm_head"], dropout: 0.1 } : undefined }, seed);
  const rng = new TrainRng(seed);
  return new Trainer(model, new DataLoader(new PackedDataset(stream, T), B, rng), rng, opts);
}

describe("training runs", () => {
  it("the loss falls on learnable data", async () => {
    const tr = await makeTrainer(1);
    const losses: number[] = [];
    for (let i = 0; i < opts.steps; i++) losses.push(tr.trainStep().loss);
    expect(losses[0]).toBeGreaterThan(3.5);
    expect(losses[losses.length - 1]!).toBeLessThan(2.0); // from ln(50) = 3.9
  });

  for (const lora of [false, true]) {
    it(`resume equals the uninterrupted run exactly (${lora ? "LoRA with dropout" : "full"})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "zh-ckpt-"));
      try {
        const straight = await makeTrainer(2, lora);
        for (let i = 0; i < 6; i++) straight.trainStep();
        const first = await makeTrainer(2, lora);
        for (let i = 0; i < 3; i++) first.trainStep();
        await saveCheckpoint(join(dir, "c.safetensors"), first);
        const resumed = await makeTrainer(99, lora);
        await loadCheckpoint(join(dir, "c.safetensors"), resumed);
        expect(resumed.step).toBe(3);
        for (let i = 0; i < 3; i++) resumed.trainStep();
        const a = [...straight.model.base.params, ...(straight.model.lora?.params ?? [])];
        const b = [...resumed.model.base.params, ...(resumed.model.lora?.params ?? [])];
        a.forEach((p, i) => expect(Array.from(b[i]!.value.data), p.name).toEqual(Array.from(p.value.data)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("refuses a checkpoint of another shape, naming the difference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-ckpt-"));
    try {
      const tr = await makeTrainer(3);
      tr.trainStep();
      await saveCheckpoint(join(dir, "c.safetensors"), tr);
      const other = makeConfig({ ...cfg, nEmbd: 48, nHead: 4 });
      const model = await initModel(other, { batch: B, seq: T }, 3);
      const rng = new TrainRng(3);
      const wrong = new Trainer(model, new DataLoader(new PackedDataset(stream, T), B, rng), rng, opts);
      await expect(loadCheckpoint(join(dir, "c.safetensors"), wrong)).rejects.toThrow(/another model shape.*nEmbd 32 vs 48/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a NaN loss stops training with the step named", async () => {
    const tr = await makeTrainer(4);
    tr.trainStep();
    tr.model.base.get("blk.1.ffn_up.weight").value.data[5] = NaN;
    expect(() => tr.trainStep()).toThrow(/step 2: the loss is NaN/);
  });

  it("the log: CSV rows and an SVG curve", async () => {
    const tr = await makeTrainer(5);
    const log = new TrainLog();
    for (let i = 0; i < 3; i++) log.add(tr.trainStep(), i === 2 ? 3.5 : undefined);
    const csv = log.csv();
    expect(csv.split("\n")[0]).toBe("step,loss,lr,grad_norm,tokens_per_s,eval_loss");
    expect(TrainLog.parseCsv(csv).map((r) => r.step)).toEqual([1, 2, 3]);
    const svg = log.svg();
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain("<polyline");
    expect(svg).toContain("<circle");
  });
});

describe("zh-llama train", () => {
  const tokenizer = join(import.meta.dirname, "..", "..", "fixtures", "tokenizer", "zh-bpe.model");
  const poems = ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。", "白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"];

  function capture() {
    const out = { stdout: "", stderr: "" };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t), isTty: false } };
  }

  it("trains a model from a config, then a LoRA adapter on it, then refuses a mismatched resume", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-cli-train-"));
    try {
      writeFileSync(join(dir, "poems.txt"), Array.from({ length: 30 }, (_, i) => poems[i % 4]).join("\n\n") + "\n");
      writeFileSync(join(dir, "config.json"), JSON.stringify({ nEmbd: 32, nLayer: 1, nHead: 2, nFf: 64, tiedEmbeddings: true }));
      writeFileSync(join(dir, "sft.jsonl"), poems.map((p) => JSON.stringify({ instruction: "背诵", input: p.slice(0, 5), output: p })).join("\n") + "\n");
      const a = capture();
      const code = await main(["train", "--init", join(dir, "config.json"), "--tokenizer", tokenizer, "--data", join(dir, "poems.txt"), "--eval", join(dir, "poems.txt"),
        "--eval-every", "4", "--steps", "8", "--lr", "3e-3", "--batch", "2", "--seq", "32", "--out", join(dir, "base"), "--log-every", "4"], a.io);
      expect(code, a.out.stderr).toBe(0);
      expect(a.out.stderr).toMatch(/step 8\/8 {2}loss \d/);
      expect(a.out.stderr).toMatch(/held-out/);
      for (const f of ["model.gguf", "checkpoint.safetensors", "train-log.csv", "loss.svg"]) expect(existsSync(join(dir, "base", f)), f).toBe(true);
      expect(readFileSync(join(dir, "base", "train-log.csv"), "utf8").trim().split("\n")).toHaveLength(9);
      const m = await LlamaModel.load(join(dir, "base", "model.gguf"), { nCtx: 32 });
      expect(m.hp.nVocab).toBe(6000);
      await m.dispose();

      const b = capture();
      const code2 = await main(["train", "--model", join(dir, "base", "model.gguf"), "--instructions", join(dir, "sft.jsonl"), "--lora-r", "4", "--lora-targets", "q,v,down",
        "--modules-to-save", "embed_tokens", "--steps", "3", "--batch", "2", "--seq", "160", "--out", join(dir, "sft"), "--save-merged"], b.io);
      expect(code2, b.out.stderr).toBe(0);
      const config = JSON.parse(readFileSync(join(dir, "sft", "adapter", "adapter_config.json"), "utf8"));
      expect(config.target_modules).toEqual(["q_proj", "v_proj", "down_proj"]);
      expect(existsSync(join(dir, "sft", "adapter", "tokenizer.model"))).toBe(true);
      expect(existsSync(join(dir, "sft", "merged.gguf"))).toBe(true);

      // The project's merge-lora (HF-layout maths on the GGUF base) gives the trainer's merged model.
      const merged = await mergeLoraFiles({ base: join(dir, "base", "model.gguf"), adapters: [join(dir, "sft", "adapter")], out: join(dir, "by-merge-lora.gguf"), format: "gguf" });
      expect(merged.files[0]).toBe(join(dir, "by-merge-lora.gguf"));
      const ids = [1, 5, 9, 200, 3000, 17, 42, 2];
      const mineModel = await LlamaModel.load(join(dir, "sft", "merged.gguf"), { backend: "reference", kvCacheType: "f32", nCtx: 16 });
      const theirsModel = await LlamaModel.load(join(dir, "by-merge-lora.gguf"), { backend: "reference", kvCacheType: "f32", nCtx: 16 });
      const mine = await mineModel.evaluate(ids, { allLogits: true });
      const theirs = await theirsModel.evaluate(ids, { allLogits: true });
      let diff = 0;
      for (let i = 0; i < mine.length; i++) diff = Math.max(diff, Math.abs(mine[i]! - theirs[i]!));
      expect(diff).toBeLessThan(1e-4);
      await mineModel.dispose();
      await theirsModel.dispose();

      const c = capture();
      const code3 = await main(["train", "--init", join(dir, "config.json"), "--tokenizer", tokenizer, "--data", join(dir, "poems.txt"), "--steps", "9", "--batch", "2", "--seq", "32",
        "--lora-r", "2", "--out", join(dir, "again"), "--resume", join(dir, "base", "checkpoint.safetensors")], c.io);
      expect(code3).toBe(1);
      expect(c.out.stderr).toMatch(/another model shape.*LoRA null vs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("LoRA with a grown vocabulary needs the embeddings in modules_to_save, and carries the new rows", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zh-cli-grow-"));
    try {
      const tok = await loadTokenizer(tokenizer);
      const v = tok.vocabulary();
      const extra = ["月光", "故鄉", "明月光", "千里目", "黃河", "白日", "山盡", "海流", "床前明月", "舉頭望"].filter((p) => tok.pieceToId(p) < 0 || tok.idToPiece(tok.pieceToId(p)) !== p).slice(0, 5);
      expect(extra.length).toBeGreaterThan(0);
      const grown = new SentencePieceTokenizer(
        { pieces: [...v.pieces, ...extra], scores: [...Array.from(v.scores), ...extra.map(() => 0)], types: [...Array.from(v.types), ...extra.map(() => PieceType.Normal)] },
        tok.settings,
      );
      await saveTokenizerModel(grown, join(dir, "grown.model"));
      writeFileSync(join(dir, "poems.txt"), poems.join("\n") + "\n");
      const base = await initModel(makeConfig({ nVocab: tok.vocabSize, nEmbd: 16, nLayer: 1, nHead: 2, nFf: 32, nCtx: 16, tiedEmbeddings: true }), { batch: 1, seq: 8 }, 1);
      await saveModelGguf(join(dir, "base.gguf"), base, { tokenizer: tok });
      const args = ["train", "--model", join(dir, "base.gguf"), "--tokenizer", join(dir, "grown.model"), "--data", join(dir, "poems.txt"), "--lora-r", "2", "--steps", "2", "--batch", "1", "--seq", "8", "--threads", "1"];
      const a = capture();
      expect(await main([...args, "--out", join(dir, "a")], a.io)).toBe(1);
      expect(a.out.stderr).toMatch(/grows the vocabulary .*--modules-to-save embed_tokens/);
      const b = capture();
      expect(await main([...args, "--modules-to-save", "embed_tokens", "--out", join(dir, "b")], b.io), b.out.stderr).toBe(0);
      const st = await openSafetensors(join(dir, "b", "adapter", "adapter_model.safetensors"));
      expect(st.tensor("base_model.model.model.embed_tokens.weight")!.shape).toEqual([tok.vocabSize + extra.length, 16]);
      await st.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("usage errors", async () => {
    const a = capture();
    expect(await main(["train", "--data", "x.txt"], a.io)).toBe(2);
    expect(a.out.stderr).toMatch(/--out DIR is required/);
  });
});
