/**
 * A whole training run, as `zh-llama train` does it: build or load the model, read the data,
 * train with checkpoints and a log, and save the result (an F32 GGUF for full training, a PEFT
 * adapter for LoRA). The CLI is a thin shell over `trainRun`.
 *
 * Output directory:
 *   checkpoint.safetensors   weights + AdamW moments + step + RNG + data position (--resume)
 *   train-log.csv, loss.svg  the log and the loss curve
 *   model.gguf               full training: the model with its tokenizer
 *   adapter/                 LoRA: adapter_config.json, adapter_model.safetensors, tokenizer.model
 *   merged.gguf              LoRA with saveMerged: the base with the adapter merged in
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { openGguf } from "../formats/gguf/index.js";
import { loadTokenizer, saveTokenizerModel, tokenizerFromGgufMetadata, tokenizerToGgufMetadata, type SentencePieceTokenizer } from "../tokenizer/index.js";
import { countNonEmbeddingParams, makeConfig, type TrainModelConfig } from "./config.js";
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint } from "./checkpoint.js";
import { DataLoader, InstructionDataset, PackedDataset, parseInstructions, textDocuments, tokenizeDocuments, type Dataset } from "./data.js";
import { configFromGguf, initModel, loadModel, saveModelGguf, TrainError } from "./io.js";
import { TrainLog } from "./log.js";
import type { LoraSettings, ModuleToSave, TrainableLlama } from "./model.js";
import { saveLoraAdapter } from "./peft.js";
import { TrainRng } from "./rng.js";
import { Trainer, type StepInfo } from "./trainer.js";

export type InitConfig = Partial<TrainModelConfig> & Pick<TrainModelConfig, "nEmbd" | "nLayer" | "nHead" | "nFf">;

export interface TrainRunOptions {
  /** Base model (GGUF), or `init` for a fresh one. */
  model?: string;
  init?: InitConfig;
  /** tokenizer.model or GGUF; default: the base model's own. Required with `init`. */
  tokenizer?: string;
  /** Plain-text files (one document per non-blank line). */
  data?: string[];
  /** JSONL instruction files (Alpaca-2 template, loss on the response only). */
  instructions?: string[];
  /** Held-out files of the same kind, evaluated every evalEvery steps. */
  evalData?: string[];
  lora?: LoraSettings;
  steps: number;
  lr: number;
  warmup: number;
  batch: number;
  seq: number;
  accum: number;
  seed: number;
  weightDecay?: number;
  decayEmbeddings?: boolean;
  decayNorms?: boolean;
  maxGradNorm?: number;
  out: string;
  resume?: string;
  /** Checkpoint and log every this many steps (and at the end). */
  saveEvery?: number;
  logEvery?: number;
  evalEvery?: number;
  /** Micro-batches of held-out data per evaluation (default: all of it). */
  evalBatches?: number;
  /** general.name of the written GGUF. */
  name?: string;
  /** adapter_config.json's base_model_name_or_path (default: the model path). */
  baseModelName?: string;
  saveMerged?: boolean;
  /** Threads for the matrix products (default 1). */
  threads?: number;
  /** Progress lines. */
  onLine?: (line: string) => void;
  /** Every step (after the line, if any). */
  onStep?: (info: StepInfo) => void;
}

export interface TrainRunResult {
  model: TrainableLlama;
  tokenizer: SentencePieceTokenizer;
  log: TrainLog;
  finalLoss: number;
  evalLoss?: number;
  /** Files written. */
  outputs: string[];
}

async function readDataset(tokenizer: SentencePieceTokenizer, o: TrainRunOptions, files: string[], kind: "text" | "instructions", say: (s: string) => void): Promise<Dataset> {
  if (kind === "instructions") {
    const records = [];
    for (const f of files) records.push(...parseInstructions(await readFile(f, "utf8"), f));
    const ds = new InstructionDataset(tokenizer, records, o.seq);
    say(`${files.join(", ")}: ${ds.size} instructions${ds.truncated ? `, ${ds.truncated} truncated to ${o.seq} tokens` : ""}${ds.empty ? ` (${ds.empty} keep no response token: raise --seq)` : ""}`);
    return ds;
  }
  let documents: string[] = [];
  let skipped = 0;
  for (const f of files) {
    const t = textDocuments(await readFile(f, "utf8"));
    documents = documents.concat(t.documents);
    skipped += t.skipped;
  }
  const stream = tokenizeDocuments(tokenizer, documents);
  const ds = new PackedDataset(stream, o.seq);
  say(`${files.join(", ")}: ${documents.length} documents (${skipped} blank lines skipped), ${stream.length} tokens, ${ds.size} sequences of ${o.seq}`);
  return ds;
}

/** Mean loss over a data set (or its first `batches` micro-batches). */
export function evaluateDataset(model: TrainableLlama, ds: Dataset, batches?: number): number {
  const loader = new DataLoader(ds, model.B, new TrainRng(0), false);
  const n = Math.min(batches ?? Infinity, Math.ceil(ds.size / model.B));
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    loader.next();
    const r = model.evaluate(loader.ids, loader.targets);
    sum += r.sum;
    count += r.count;
  }
  return count > 0 ? sum / count : NaN;
}

export async function trainRun(o: TrainRunOptions): Promise<TrainRunResult> {
  const say = o.onLine ?? (() => undefined);
  if (!o.model === !o.init) throw new TrainError("give a base model (--model) or a config to initialise (--init), not both");
  const kind = o.instructions?.length ? "instructions" : "text";
  if (o.instructions?.length && o.data?.length) throw new TrainError("train on --data or --instructions, not both at once");
  const files = (kind === "instructions" ? o.instructions : o.data) ?? [];
  if (files.length === 0) throw new TrainError("no training data (--data or --instructions)");

  // The tokenizer: given, or the base model's own.
  let tokenizer: SentencePieceTokenizer;
  if (o.tokenizer) tokenizer = await loadTokenizer(o.tokenizer);
  else if (o.model) {
    const f = await openGguf(o.model);
    try {
      tokenizer = tokenizerFromGgufMetadata(f.metadata, o.model);
    } finally {
      await f.close();
    }
  } else throw new TrainError("--init needs --tokenizer (the vocabulary decides the embedding size)");
  // A GGUF output needs the tokenizer as GGUF metadata: find out now, not after training.
  if (!o.lora || o.saveMerged) tokenizerToGgufMetadata(tokenizer);

  // The model (a resumed run's checkpoint must match it; its vocabulary may have been grown).
  const resumeMeta = o.resume ? await readCheckpointMeta(o.resume) : undefined;
  const shape = { batch: o.batch, seq: o.seq, lora: o.lora };
  let model: TrainableLlama;
  if (o.model && o.lora) {
    // A grown vocabulary's new rows only reach the adapter through modules_to_save (upstream
    // trains embed_tokens and lm_head in full for exactly this reason).
    const f = await openGguf(o.model);
    let cfg: TrainModelConfig;
    try {
      cfg = configFromGguf(f);
    } finally {
      await f.close();
    }
    const need: ModuleToSave[] = cfg.tiedEmbeddings ? ["embed_tokens"] : ["embed_tokens", "lm_head"];
    if (tokenizer.vocabSize > cfg.nVocab && !need.every((m) => o.lora!.modulesToSave.includes(m))) {
      throw new TrainError(`the tokenizer (${tokenizer.vocabSize} pieces) grows the vocabulary of ${o.model} (${cfg.nVocab}): train ${need.join(" and ")} in full (--modules-to-save ${need.join(",")}) so the adapter carries the new rows`);
    }
  }
  if (o.model) {
    model = (await loadModel(o.model, shape, o.seed, { nVocab: Math.max(tokenizer.vocabSize, resumeMeta?.config.nVocab ?? 0), pieces: Array.from({ length: tokenizer.vocabSize }, (_, id) => tokenizer.idToPiece(id)), threads: o.threads })).model;
  } else {
    const cfg = makeConfig({ nCtx: o.seq, ...o.init!, nVocab: tokenizer.vocabSize });
    model = await initModel(cfg, shape, o.seed, { threads: o.threads });
  }
  try {
    return await trainModel(o, model, tokenizer, kind, files, say);
  } finally {
    await model.dispose();
  }
}

async function trainModel(
  o: TrainRunOptions, model: TrainableLlama, tokenizer: SentencePieceTokenizer, kind: "text" | "instructions", files: string[], say: (s: string) => void,
): Promise<TrainRunResult> {
  if (model.cfg.nVocab < tokenizer.vocabSize) throw new TrainError(`the tokenizer has ${tokenizer.vocabSize} pieces, the model ${model.cfg.nVocab}`);
  const c = model.cfg;
  say(`model: ${c.nLayer} layers, width ${c.nEmbd}, ${c.nHead} heads (${c.nHeadKv} kv), ffn ${c.nFf}, vocabulary ${c.nVocab}${c.tiedEmbeddings ? " (tied)" : ""}; ${(countNonEmbeddingParams(c) / 1e6).toFixed(2)} M parameters outside the embeddings`);
  if (o.lora) {
    const n = model.lora!.count;
    say(`LoRA r=${o.lora.rank} alpha=${o.lora.alpha} on ${o.lora.targets.join(",")}: ${(n / 1e6).toFixed(3)} M adapter parameters; trained in full: ${o.lora.modulesToSave.join(",") || "nothing"}`);
  }

  const rng = new TrainRng(o.seed);
  const train = await readDataset(tokenizer, o, files, kind, say);
  const evalSet = o.evalData?.length ? await readDataset(tokenizer, o, o.evalData, kind, say) : undefined;
  const loader = new DataLoader(train, o.batch, rng);
  const trainer = new Trainer(model, loader, rng, {
    steps: o.steps, lr: o.lr, warmup: o.warmup, accum: o.accum, maxGradNorm: o.maxGradNorm ?? 1, weightDecay: o.weightDecay ?? 0,
    decayEmbeddings: o.decayEmbeddings, decayNorms: o.decayNorms,
  });
  await mkdir(o.out, { recursive: true });
  const log = new TrainLog();
  const csvPath = join(o.out, "train-log.csv");
  if (o.resume) {
    await loadCheckpoint(o.resume, trainer);
    log.rows.push(...TrainLog.parseCsv(await readFile(csvPath, "utf8").catch(() => "")).filter((r) => r.step <= trainer.step));
    say(`resumed from ${o.resume} at step ${trainer.step}`);
  }
  const checkpointPath = join(o.out, "checkpoint.safetensors");
  const save = async () => {
    await saveCheckpoint(checkpointPath, trainer, { data: files });
    await log.save(csvPath, join(o.out, "loss.svg"), `${o.name ?? "zh-llama"}: training loss`);
  };
  let last: StepInfo | undefined;
  let evalLoss: number | undefined;
  while (trainer.step < o.steps) {
    const info = trainer.trainStep();
    last = info;
    let ev: number | undefined;
    if (evalSet && o.evalEvery && (info.step % o.evalEvery === 0 || info.step === o.steps)) ev = evalLoss = evaluateDataset(model, evalSet, o.evalBatches);
    log.add(info, ev);
    if (info.step === 1 || info.step % (o.logEvery ?? 10) === 0 || info.step === o.steps) {
      say(`step ${info.step}/${o.steps}  loss ${info.loss.toFixed(4)}${ev !== undefined ? `  held-out ${ev.toFixed(4)} (ppl ${Math.exp(ev).toFixed(1)})` : ""}  lr ${info.lr.toExponential(2)}  grad-norm ${info.gradNorm.toFixed(3)}  ${info.tokensPerSecond.toFixed(0)} tok/s`);
    }
    o.onStep?.(info);
    if (o.saveEvery && info.step % o.saveEvery === 0 && info.step < o.steps) await save();
  }
  await save();
  const outputs = [checkpointPath, csvPath, join(o.out, "loss.svg")];
  if (o.lora) {
    const dir = join(o.out, "adapter");
    await saveLoraAdapter(dir, model, o.lora, o.baseModelName ?? o.model ?? "zh-llama");
    await saveTokenizerModel(tokenizer, join(dir, "tokenizer.model"));
    outputs.push(dir);
    if (o.saveMerged) {
      await saveModelGguf(join(o.out, "merged.gguf"), model, { name: o.name, tokenizer, mergeLora: true });
      outputs.push(join(o.out, "merged.gguf"));
    }
  } else {
    await saveModelGguf(join(o.out, "model.gguf"), model, { name: o.name, tokenizer });
    outputs.push(join(o.out, "model.gguf"));
  }
  return { model, tokenizer, log, finalLoss: last?.loss ?? NaN, evalLoss, outputs };
}
