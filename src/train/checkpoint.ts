/**
 * Checkpoints: everything a run needs to continue exactly where it stopped, in one safetensors
 * file (written atomically):
 *
 *   param/NAME      every weight (base model and LoRA), F32
 *   adam_m/NAME     AdamW first moments of the trained tensors
 *   adam_v/NAME     AdamW second moments
 *   __metadata__    "zh-llama.checkpoint": JSON { config, lora, step, adamT, rng, loader, options }
 *
 * Resuming checks the model shape, the LoRA settings and every tensor's shape first, and refuses
 * a checkpoint written for another model with an error naming what differs.
 */
import { openSafetensors, writeSafetensors, type SafetensorsTensorInput } from "../formats/safetensors.js";
import type { TrainModelConfig } from "./config.js";
import type { LoaderState } from "./data.js";
import { TrainError } from "./io.js";
import type { LoraSettings } from "./model.js";
import type { Trainer, TrainerOptions } from "./trainer.js";

export const CHECKPOINT_KEY = "zh-llama.checkpoint";

export interface CheckpointMeta {
  format: "zh-llama-train-checkpoint";
  version: 1;
  config: TrainModelConfig;
  lora: LoraSettings | null;
  /** Optimizer steps done. */
  step: number;
  adamT: number;
  rng: number[];
  /** The model's own generator (LoRA dropout masks), when it has one. */
  modelRng?: number[];
  loader: LoaderState;
  options: TrainerOptions;
  /** Free-form notes the caller wants back (e.g. the data files). */
  extra?: Record<string, unknown>;
}

export async function saveCheckpoint(path: string, trainer: Trainer, extra?: Record<string, unknown>): Promise<void> {
  const { model, optimizer } = trainer;
  const tensors: Record<string, SafetensorsTensorInput> = {};
  const all = [...model.base.params, ...(model.lora?.params ?? [])];
  for (const p of all) tensors[`param/${p.name}`] = { dtype: "F32", shape: [p.rows, p.cols], data: p.value.data.slice() };
  let o = 0;
  for (const p of optimizer.params) {
    tensors[`adam_m/${p.name}`] = { dtype: "F32", shape: [p.rows, p.cols], data: optimizer.m.slice(o, o + p.size) };
    tensors[`adam_v/${p.name}`] = { dtype: "F32", shape: [p.rows, p.cols], data: optimizer.v.slice(o, o + p.size) };
    o += p.size;
  }
  const meta: CheckpointMeta = {
    format: "zh-llama-train-checkpoint",
    version: 1,
    config: model.cfg,
    lora: model.loraSettings,
    step: trainer.step,
    adamT: optimizer.t,
    rng: trainer.rng.getState(),
    modelRng: model.rng?.getState(),
    loader: trainer.loader.getState(),
    options: trainer.options,
    extra,
  };
  await writeSafetensors(path, tensors, { [CHECKPOINT_KEY]: JSON.stringify(meta) }, { overwrite: true });
}

/** Reads only the checkpoint's metadata (to build a matching model before resuming). */
export async function readCheckpointMeta(path: string): Promise<CheckpointMeta> {
  const file = await openSafetensors(path);
  try {
    return parseMeta(path, file.metadata);
  } finally {
    await file.close();
  }
}

function parseMeta(path: string, metadata: Record<string, string>): CheckpointMeta {
  const raw = metadata[CHECKPOINT_KEY];
  if (raw === undefined) throw new TrainError(`${path}: not a zh-llama training checkpoint (no ${CHECKPOINT_KEY} metadata)`);
  const meta = JSON.parse(raw) as CheckpointMeta;
  if (meta.format !== "zh-llama-train-checkpoint" || meta.version !== 1) throw new TrainError(`${path}: unsupported checkpoint format ${JSON.stringify(meta.format)} version ${meta.version}`);
  return meta;
}

/** What differs between two model shapes, or "" when they match. */
function shapeDifference(a: TrainModelConfig, b: TrainModelConfig, la: LoraSettings | null, lb: LoraSettings | null): string {
  const diffs: string[] = [];
  for (const key of Object.keys(a) as (keyof TrainModelConfig)[]) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) diffs.push(`${key} ${JSON.stringify(a[key])} vs ${JSON.stringify(b[key])}`);
  }
  if (JSON.stringify(la) !== JSON.stringify(lb)) diffs.push(`LoRA ${JSON.stringify(la)} vs ${JSON.stringify(lb)}`);
  return diffs.join(", ");
}

/** Restores weights, optimizer moments, step, RNG and data position into `trainer`. */
export async function loadCheckpoint(path: string, trainer: Trainer): Promise<CheckpointMeta> {
  const file = await openSafetensors(path);
  try {
    const meta = parseMeta(path, file.metadata);
    const { model, optimizer } = trainer;
    const diff = shapeDifference(meta.config, model.cfg, meta.lora, model.loraSettings);
    if (diff) throw new TrainError(`${path}: the checkpoint is for another model shape (checkpoint vs this run: ${diff})`);
    const read = async (name: string, rows: number, cols: number): Promise<Float32Array> => {
      const info = file.tensor(name);
      if (!info) throw new TrainError(`${path}: missing tensor ${name}`);
      if (info.shape.length !== 2 || info.shape[0] !== rows || info.shape[1] !== cols) {
        throw new TrainError(`${path}: tensor ${name} has shape [${info.shape.join(", ")}], this model needs [${rows}, ${cols}]`);
      }
      return file.readTensorF32(name);
    };
    const all = [...model.base.params, ...(model.lora?.params ?? [])];
    for (const p of all) {
      p.value.data.set(await read(`param/${p.name}`, p.rows, p.cols));
      p.version++;
    }
    let o = 0;
    for (const p of optimizer.params) {
      optimizer.m.set(await read(`adam_m/${p.name}`, p.rows, p.cols), o);
      optimizer.v.set(await read(`adam_v/${p.name}`, p.rows, p.cols), o);
      o += p.size;
    }
    optimizer.t = meta.adamT;
    trainer.step = meta.step;
    trainer.rng.setState(meta.rng);
    if (meta.modelRng && model.rng) model.rng.setState(meta.modelRng);
    trainer.loader.setState(meta.loader);
    return meta;
  } finally {
    await file.close();
  }
}
