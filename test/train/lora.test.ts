/**
 * LoRA adapters in PEFT format, and why q/k rows are un-permuted when saved: the trainer works
 * on GGUF rows (adjacent-pair RoPE), a merge applies the adapter to Hugging Face rows
 * (rotate_half). Saved in HF order, W_hf + s B_hf A converted to GGUF (llama.cpp's permute) is
 * exactly the model the trainer trained, and LlamaModel runs it with the trainer's logits.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors } from "../../src/formats/safetensors.js";
import { LlamaModel } from "../../src/model/index.js";
import { makeConfig } from "../../src/train/config.js";
import { initModel, mergedWeight, saveModelGguf } from "../../src/train/io.js";
import type { LoraSettings } from "../../src/train/model.js";
import { ggufRowsToHf, hfRowsToGguf, saveLoraAdapter } from "../../src/train/peft.js";
import { TrainRng } from "../../src/train/rng.js";

const settings: LoraSettings = {
  rank: 4, alpha: 8, targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], modulesToSave: ["embed_tokens", "lm_head"],
};

describe("LoRA adapters (PEFT format)", () => {
  it("permutation: GGUF rows -> HF rows -> GGUF rows is the identity; it matches llama.cpp's permute", () => {
    const rows = 8, cols = 3, heads = 2;
    const hf = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const gguf = hfRowsToGguf(hf, rows, cols, heads);
    // llama.cpp: w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2): per head, HF rows 0,2,1,3 -> ... concretely:
    // head 0 HF rows [0 1 | 2 3] (halves) become GGUF rows [0 2 1 3] (pairs (0,2), (1,3)).
    const rowOf = (w: Float32Array, r: number) => w[r * cols]! / cols;
    expect(Array.from({ length: rows }, (_, r) => rowOf(gguf, r))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(Array.from(ggufRowsToHf(gguf, rows, cols, heads))).toEqual(Array.from(hf));
  });

  it("saves PEFT names and shapes; an HF-side merge equals the trained GGUF model; LlamaModel runs it", async () => {
    const cfg = makeConfig({ nVocab: 70, nEmbd: 32, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 48, nCtx: 32 });
    const T = 10;
    const model = await initModel(cfg, { batch: 1, seq: T, lora: settings }, 3);
    const rng = new TrainRng(4);
    for (const p of model.base.params) if (p.kind !== "norm") for (let i = 0; i < p.size; i++) p.value.data[i] *= 10;
    for (const p of model.lora!.params) for (let i = 0; i < p.size; i++) p.value.data[i] = 0.3 * rng.nextNormal();
    const dir = mkdtempSync(join(tmpdir(), "zh-lora-"));
    try {
      await saveLoraAdapter(join(dir, "adapter"), model, settings, "tiny-base");
      const config = JSON.parse(readFileSync(join(dir, "adapter", "adapter_config.json"), "utf8"));
      expect(config).toMatchObject({
        r: 4, lora_alpha: 8, fan_in_fan_out: false, peft_type: "LORA", task_type: "CAUSAL_LM", base_model_name_or_path: "tiny-base",
        target_modules: settings.targets, modules_to_save: ["embed_tokens", "lm_head"],
      });
      const st = await openSafetensors(join(dir, "adapter", "adapter_model.safetensors"));
      const names = st.tensors.map((t) => t.name);
      expect(names).toContain("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
      expect(names).toContain("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
      expect(names).toContain("base_model.model.model.embed_tokens.weight");
      expect(names).toContain("base_model.model.lm_head.weight");
      expect(names).toHaveLength(2 * 7 * 2 + 2);
      expect(st.tensor("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight")!.shape).toEqual([4, 32]);
      expect(st.tensor("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight")!.shape).toEqual([16, 4]);
      expect(st.tensor("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight")!.shape).toEqual([4, 48]);

      // Upstream's merge on HF weights: W_hf + (alpha/r) B_hf A, then llama.cpp's permute to GGUF.
      const s = settings.alpha / settings.rank;
      for (let l = 0; l < cfg.nLayer; l++) {
        for (const [gguf, hf, heads] of [["attn_q", "self_attn.q_proj", cfg.nHead], ["attn_k", "self_attn.k_proj", cfg.nHeadKv], ["ffn_up", "mlp.up_proj", 0]] as const) {
          const w = model.base.get(`blk.${l}.${gguf}.weight`);
          const wHf = heads ? ggufRowsToHf(w.value.data, w.rows, w.cols, heads) : w.value.data.slice();
          const A = await st.readTensorF32(`base_model.model.model.layers.${l}.${hf}.lora_A.weight`);
          const B = await st.readTensorF32(`base_model.model.model.layers.${l}.${hf}.lora_B.weight`);
          for (let i = 0; i < w.rows; i++) for (let j = 0; j < w.cols; j++) {
            let d = 0;
            for (let k = 0; k < settings.rank; k++) d += B[i * settings.rank + k]! * A[k * w.cols + j]!;
            wHf[i * w.cols + j] += s * d;
          }
          const back = heads ? hfRowsToGguf(wHf, w.rows, w.cols, heads) : wHf;
          const trained = mergedWeight(model, w.name, w.value.data.slice());
          let diff = 0;
          for (let i = 0; i < back.length; i++) diff = Math.max(diff, Math.abs(back[i]! - trained[i]!));
          expect(diff, `${gguf} layer ${l}`).toBeLessThan(1e-5);
        }
      }
      await st.close();

      // The merged model, as GGUF, runs in LlamaModel with the trainer's (adapter) logits.
      const ids = Array.from({ length: T }, (_, i) => (i * 17 + 2) % cfg.nVocab);
      const mine = model.allLogits(ids);
      await saveModelGguf(join(dir, "merged.gguf"), model, { mergeLora: true });
      const ref = await LlamaModel.load(join(dir, "merged.gguf"), { backend: "reference", kvCacheType: "f32", nCtx: 16 });
      const theirs = await ref.evaluate(ids, { allLogits: true });
      let diff = 0;
      for (let i = 0; i < mine.length; i++) diff = Math.max(diff, Math.abs(mine[i]! - theirs[i]!));
      expect(diff).toBeLessThan(1e-4);
      await ref.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
