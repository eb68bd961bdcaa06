import { describe, expect, it } from "vitest";
import { loraScaling, parseAdapterConfig, parseLlamaConfig, HfConfigError } from "../../src/formats/hf-config.js";
import { addLoraDelta } from "../../src/lora/merge.js";

describe("HF configs", () => {
  it("adapter_config.json: scaling alpha/r, rsLoRA alpha/sqrt(r), rank and alpha patterns", () => {
    const c = parseAdapterConfig(JSON.stringify({ peft_type: "LORA", r: 64, lora_alpha: 128, target_modules: ["q_proj", "v_proj"], modules_to_save: ["embed_tokens", "lm_head"], fan_in_fan_out: false }));
    expect(loraScaling(c, "model.layers.0.self_attn.q_proj")).toBe(2);
    expect(c.modulesToSave).toEqual(["embed_tokens", "lm_head"]);
    const rs = parseAdapterConfig(JSON.stringify({ r: 16, lora_alpha: 8, use_rslora: true, rank_pattern: { "layers.0.self_attn.q_proj": 4 }, alpha_pattern: { v_proj: 32 } }));
    expect(loraScaling(rs, "model.layers.1.self_attn.q_proj")).toBe(2);
    expect(loraScaling(rs, "model.layers.0.self_attn.q_proj")).toBe(4);
    expect(loraScaling(rs, "model.layers.3.self_attn.v_proj")).toBe(8);
    expect(() => parseAdapterConfig(JSON.stringify({ peft_type: "PREFIX_TUNING", r: 8, lora_alpha: 16 }))).toThrow(HfConfigError);
    expect(() => parseAdapterConfig(JSON.stringify({ r: 0, lora_alpha: 16 }))).toThrow(/r should be a positive integer/);
    expect(() => parseAdapterConfig("{")).toThrow(/not valid JSON/);
  });

  it("config.json: Llama-2 GQA, Mixtral, rope scaling of the 16K / 64K releases", () => {
    const l = parseLlamaConfig(JSON.stringify({ architectures: ["LlamaForCausalLM"], hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, vocab_size: 32000, rms_norm_eps: 1e-5, max_position_embeddings: 65536, rope_scaling: { type: "yarn", factor: 16.0, original_max_position_embeddings: 4096, finetuned: true } }));
    expect([l.headDim, l.numKvHeads, l.ropeTheta]).toEqual([128, 8, 10000]);
    expect(l.ropeScaling).toEqual({ type: "yarn", factor: 16, originalContext: 4096, finetuned: true });
    const m = parseLlamaConfig(JSON.stringify({ architectures: ["MixtralForCausalLM"], hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 32000, num_local_experts: 8, num_experts_per_tok: 2 }));
    expect([m.numExperts, m.numExpertsPerTok, m.ropeTheta]).toEqual([8, 2, 1e6]);
    expect(parseLlamaConfig(JSON.stringify({ hidden_size: 64, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 10, rope_scaling: { rope_type: "dynamic", factor: 2 } })).ropeScaling).toEqual({ type: "dynamic", factor: 2 });
    expect(() => parseLlamaConfig(JSON.stringify({ architectures: ["GPT2LMHeadModel"] }))).toThrow(/not LlamaForCausalLM/);
    expect(() => parseLlamaConfig(JSON.stringify({ hidden_size: 64, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 3, vocab_size: 10 }))).toThrow(/multiple/);
  });
});

describe("addLoraDelta", () => {
  it("W + s * B @ A, and its transpose with fan_in_fan_out", () => {
    // A [r=2, in=3], B [out=2, r=2]
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([1, 0, 0.5, 2]);
    const w = new Float32Array(6);
    addLoraDelta(w, 2, 3, a, b, 2, 2);
    // B@A = [[1,2,3],[0.5+8, 1+10, 1.5+12]] = [[1,2,3],[8.5,11,13.5]]
    expect(Array.from(w)).toEqual([2, 4, 6, 17, 22, 27]);
    const wt = new Float32Array(6);
    addLoraDelta(wt, 3, 2, a, b, 2, 1, true);
    expect(Array.from(wt)).toEqual([1, 8.5, 2, 11, 3, 13.5]);
    expect(() => addLoraDelta(new Float32Array(4), 2, 2, a, b, 2, 1)).toThrow(/do not fit/);
  });
});
