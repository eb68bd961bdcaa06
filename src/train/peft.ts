/**
 * Saving LoRA adapters the way PEFT does, so that upstream's merge scripts (and zh-llama
 * merge-lora) apply them to Hugging Face weights:
 *
 *   adapter_config.json          r, lora_alpha, target_modules, modules_to_save, fan_in_fan_out
 *                                false, peft_type "LORA", task_type "CAUSAL_LM", ...
 *   adapter_model.safetensors    base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight [r][in]
 *                                base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight [out][r]
 *                                base_model.model.model.embed_tokens.weight, base_model.model.lm_head.weight
 *                                (modules_to_save: 'base_model.model.' + the HF key, full tensors;
 *                                a tied model saves its one matrix as embed_tokens)
 *
 * Row order of q and k. HF's q_proj/k_proj rows are in rotate_half order (per head: the first
 * halves of the rotated pairs, then the second halves); llama.cpp's converter permutes them so
 * GGUF's attn_q/attn_k rows hold adjacent pairs (convert_hf_to_gguf.py `permute`):
 *
 *   GGUF row h*hd + 2i + j  =  HF row h*hd + j*hd/2 + i      (j in {0, 1}, i < hd/2)
 *
 * The trainer works on GGUF rows, so B (whose rows are output rows) of q and k is un-permuted
 * when saved; A (rows over r, columns over the model width) and every other module are the same
 * in both layouts. Then  W_hf + s B_hf A  is exactly the un-permuted  W_gguf + s B A.
 */
import { writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeSafetensors, type SafetensorsTensorInput } from "../formats/safetensors.js";
import type { TrainModelConfig } from "./config.js";
import { LORA_TARGETS, type LoraSettings, type LoraTarget, type ModuleToSave, type TrainableLlama } from "./model.js";
import { hfName, HF_LAYER_MODULES } from "./params.js";

/** Rows of a [rows][cols] matrix of nHead heads, GGUF adjacent-pair order -> HF rotate_half order. */
export function ggufRowsToHf(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return permuteRows(w, rows, cols, nHead, false);
}

/** The inverse: HF rotate_half rows -> GGUF adjacent pairs (what llama.cpp's converter does). */
export function hfRowsToGguf(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return permuteRows(w, rows, cols, nHead, true);
}

function permuteRows(w: Float32Array, rows: number, cols: number, nHead: number, toGguf: boolean): Float32Array {
  const hd = rows / nHead;
  const half = hd / 2;
  const out = new Float32Array(rows * cols);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const g = h * hd + 2 * i + j;
        const f = h * hd + j * half + i;
        const [src, dst] = toGguf ? [f, g] : [g, f];
        out.set(w.subarray(src * cols, src * cols + cols), dst * cols);
      }
    }
  }
  return out;
}

/**
 * The modules_to_save written. With tied embeddings one tensor is both modules and the HF
 * checkpoint holds it only as model.embed_tokens.weight (no lm_head.weight), so training either
 * saves it once, as embed_tokens.
 */
export function savedModules(c: TrainModelConfig, settings: LoraSettings): ModuleToSave[] {
  if (c.tiedEmbeddings) return settings.modulesToSave.length > 0 ? ["embed_tokens"] : [];
  return (["embed_tokens", "lm_head"] as const).filter((m) => settings.modulesToSave.includes(m));
}

/** Heads whose rows a tensor holds, for the q/k permutation (0: not permuted). */
function permutedHeads(c: TrainModelConfig, ggufModule: string): number {
  if (ggufModule === "attn_q") return c.nHead;
  if (ggufModule === "attn_k") return c.nHeadKv;
  return 0;
}

export interface AdapterConfig {
  base_model_name_or_path: string;
  bias: "none";
  fan_in_fan_out: false;
  inference_mode: true;
  init_lora_weights: true;
  lora_alpha: number;
  lora_dropout: number;
  modules_to_save: string[] | null;
  peft_type: "LORA";
  r: number;
  target_modules: string[];
  task_type: "CAUSAL_LM";
}

export function adapterConfig(settings: LoraSettings, baseModel: string, modulesToSave: readonly string[] = settings.modulesToSave): AdapterConfig {
  return {
    base_model_name_or_path: baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout ?? 0,
    modules_to_save: modulesToSave.length > 0 ? [...modulesToSave] : null,
    peft_type: "LORA",
    r: settings.rank,
    target_modules: [...settings.targets],
    task_type: "CAUSAL_LM",
  };
}

/** The adapter's tensors under PEFT's names, in HF row order, F32. */
export function adapterTensors(model: TrainableLlama, settings: LoraSettings): Record<string, SafetensorsTensorInput> {
  const lora = model.lora;
  if (!lora) throw new Error("the model has no LoRA adapter");
  const c = model.cfg;
  const out: Record<string, SafetensorsTensorInput> = {};
  for (let l = 0; l < c.nLayer; l++) {
    for (const target of settings.targets as LoraTarget[]) {
      const module = LORA_TARGETS[target];
      const a = lora.get(`blk.${l}.${module}.lora_a`);
      const b = lora.get(`blk.${l}.${module}.lora_b`);
      const heads = permutedHeads(c, module);
      const bData = heads > 0 ? ggufRowsToHf(b.value.data, b.rows, b.cols, heads) : b.value.data.slice();
      const prefix = `base_model.model.model.layers.${l}.${HF_LAYER_MODULES[module]}`;
      out[`${prefix}.lora_A.weight`] = { dtype: "F32", shape: [a.rows, a.cols], data: a.value.data.slice() };
      out[`${prefix}.lora_B.weight`] = { dtype: "F32", shape: [b.rows, b.cols], data: bData };
    }
  }
  for (const m of savedModules(c, settings)) {
    const p = m === "embed_tokens" ? model.base.get("token_embd.weight") : model.outputWeight();
    const key = m === "embed_tokens" ? hfName("token_embd.weight") : "lm_head.weight";
    out[`base_model.model.${key}`] = { dtype: "F32", shape: [p.rows, p.cols], data: p.value.data.slice() };
  }
  return out;
}

/** Writes adapter_config.json and adapter_model.safetensors into dir. */
export async function saveLoraAdapter(dir: string, model: TrainableLlama, settings: LoraSettings, baseModel: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, "adapter_model.safetensors"), adapterTensors(model, settings), { format: "pt" }, { overwrite: true });
  const tmp = join(dir, `adapter_config.json.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(adapterConfig(settings, baseModel, savedModules(model.cfg, settings)), null, 2) + "\n");
  const { rename } = await import("node:fs/promises");
  await rename(tmp, join(dir, "adapter_config.json"));
}
