/**
 * A PEFT LoRA adapter directory: adapter_config.json, adapter_model.safetensors (or .bin),
 * and, for the Chinese LLaMA / Alpaca releases, the tokenizer it was trained with (and for
 * the 16K / 64K models a config.json carrying rope_scaling, plus custom *.py code).
 *
 * Saved keys look like `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`
 * (deltas) and `base_model.model.model.embed_tokens.weight` (modules_to_save: whole tensors);
 * newer PEFT versions may keep the adapter name (`lora_A.default.weight`,
 * `modules_to_save.default.weight`), which is stripped here.
 */
import { FormatError } from "../formats/errors.js";
import { parseAdapterConfig, loraScaling, type LoraAdapterConfig } from "../formats/hf-config.js";
import { openTensorFile, type TensorFile } from "../convert/model-source.js";
import { hfTokenizerSize } from "../convert/gguf-tokenizer.js";

export class LoraAdapterError extends FormatError {}

export interface LoraDelta {
  /** Base tensor (HF name) the delta applies to. */
  target: string;
  /** Adapter tensor names of A [r, in] and B [out, r]. */
  a: string;
  b: string;
  aShape: number[];
  bShape: number[];
  /** alpha / r (alpha / sqrt(r) with rsLoRA), with rank/alpha patterns applied. */
  scaling: number;
}

export interface LoraAdapter {
  dir: string;
  config: LoraAdapterConfig;
  weights: TensorFile;
  /** Base tensor name -> its delta. */
  deltas: Map<string, LoraDelta>;
  /** Base tensor name -> adapter tensor replacing it whole (modules_to_save). */
  full: Map<string, { name: string; shape: number[] }>;
  /** Files carried to the merged model: tokenizer files, config.json, generation_config.json, *.py. */
  files: Record<string, Uint8Array>;
  /** Tokens of the adapter's tokenizer (tokenizer.model pieces + added tokens), if it has one. */
  tokenizerSize?: number;
  /** The adapter's config.json, if it ships one (long-context releases). */
  configJson?: Record<string, unknown>;
  close(): Promise<void>;
}

const PREFIX = "base_model.model.";
const CARRIED = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json", "config.json", "generation_config.json"];

/** Normalises a saved key: no PEFT prefix, no adapter name. */
function normalise(key: string): string {
  let k = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
  k = k.replace(/\.(lora_[AB])\.[^.]+\.weight$/, ".$1.weight").replace(/\.modules_to_save\.[^.]+\./, ".");
  return k;
}

export async function openLoraAdapter(dir: string): Promise<LoraAdapter> {
  const fs = await import("node:fs/promises");
  const { join } = await import("node:path");
  const listing = await fs.readdir(dir).catch(() => {
    throw new LoraAdapterError(`${dir}: not a directory (expected a PEFT adapter directory)`);
  });
  if (!listing.includes("adapter_config.json")) throw new LoraAdapterError(`${dir}: no adapter_config.json (is this a PEFT LoRA adapter?)`);
  const config = parseAdapterConfig(await fs.readFile(join(dir, "adapter_config.json"), "utf8"), join(dir, "adapter_config.json"));
  const weightName = ["adapter_model.safetensors", "adapter_model.bin"].find((n) => listing.includes(n));
  if (!weightName) throw new LoraAdapterError(`${dir}: no adapter_model.safetensors or adapter_model.bin`);
  const weights = await openTensorFile(join(dir, weightName));
  try {
    const byNorm = new Map<string, { name: string; shape: number[] }>();
    for (const t of weights.tensors) {
      const k = normalise(t.name);
      if (/lora_embedding_[AB]|lora_magnitude_vector/.test(k)) {
        throw new LoraAdapterError(`${weights.name}: ${t.name}: LoRA on embeddings and DoRA are not supported (the Chinese LLaMA adapters train embed_tokens / lm_head fully instead)`);
      }
      if (byNorm.has(k)) throw new LoraAdapterError(`${weights.name}: two tensors normalise to ${k}`);
      byNorm.set(k, { name: t.name, shape: t.shape });
    }
    const deltas = new Map<string, LoraDelta>();
    const full = new Map<string, { name: string; shape: number[] }>();
    for (const [k, info] of byNorm) {
      if (k.endsWith(".lora_B.weight")) continue;
      const a = /^(.*)\.lora_A\.weight$/.exec(k);
      if (!a) {
        full.set(k, info);
        continue;
      }
      const module = a[1]!;
      const b = byNorm.get(`${module}.lora_B.weight`);
      if (!b) throw new LoraAdapterError(`${weights.name}: ${info.name} has no matching lora_B`);
      if (info.shape.length !== 2 || b.shape.length !== 2 || info.shape[0] !== b.shape[1]) {
        throw new LoraAdapterError(`${weights.name}: ${module}: lora_A [${info.shape.join(", ")}] and lora_B [${b.shape.join(", ")}] do not share a rank`);
      }
      deltas.set(`${module}.weight`, { target: `${module}.weight`, a: info.name, b: b.name, aShape: info.shape, bShape: b.shape, scaling: loraScaling(config, module) });
    }
    for (const [k, info] of byNorm) {
      if (k.endsWith(".lora_B.weight") && !byNorm.has(k.replace(/lora_B\.weight$/, "lora_A.weight"))) throw new LoraAdapterError(`${weights.name}: ${info.name} has no matching lora_A`);
    }
    const files: Record<string, Uint8Array> = {};
    for (const name of listing) {
      if (CARRIED.includes(name) || name.endsWith(".py")) files[name] = await fs.readFile(join(dir, name));
    }
    let configJson: Record<string, unknown> | undefined;
    if (files["config.json"]) {
      try {
        configJson = JSON.parse(new TextDecoder().decode(files["config.json"])) as Record<string, unknown>;
      } catch {
        throw new LoraAdapterError(`${join(dir, "config.json")}: not valid JSON`);
      }
    }
    return {
      dir,
      config,
      weights,
      deltas,
      full,
      files,
      tokenizerSize: hfTokenizerSize(files, dir),
      configJson,
      close: () => weights.close(),
    };
  } catch (error) {
    await weights.close();
    throw error;
  }
}
