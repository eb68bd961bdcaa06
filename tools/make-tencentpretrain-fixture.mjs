#!/usr/bin/env node
// Writes the small TencentPretrain LLaMA checkpoint committed under
// fixtures/golden/tencentpretrain/linly-tiny (Linly's layout: state-dict keys
// embedding.word.*, encoder.transformer.N.*, target.lm.*; sharded with
// tencentpretrain_model.bin.index.json as TencentPretrain's convert_model_into_blocks.py does;
// F16 like Linly's releases; GQA through local_kv_heads_num) with zh-llama's torch-checkpoint
// writer and deterministic random weights, then runs the independent numpy forward pass
// (tools/tencentpretrain-forward.py) over it for the golden logits.
//
//   npm run build:ts && node tools/make-tencentpretrain-fixture.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { writeTorchCheckpoint, fromFloat32, serializeSentencePieceModel, PieceType, SentencePieceModelType } = await import(join(root, "dist/internals.js"));

const outDir = join(root, "fixtures/golden/tencentpretrain");
const modelDir = join(outDir, "linly-tiny");
const C = { emb_size: 32, hidden_size: 32, feedforward_size: 64, heads_num: 4, local_kv_heads_num: 2, layers_num: 2, vocab: 288, layernorm_eps: 1e-5 };
const IDS = [
  [1, 100, 7, 250, 33, 287, 4],
  [1, 5, 5, 5, 200, 31],
];

// mulberry32
let state = 20260419;
function rand() {
  state |= 0;
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function tensor(name, shape, scale, offset = 0) {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = offset + (rand() * 2 - 1) * scale;
  return { name, dtype: "F16", shape, data: fromFloat32("F16", f).slice() };
}

const H = C.hidden_size, F = C.feedforward_size, hd = H / C.heads_num, kv = C.local_kv_heads_num * hd, V = C.vocab;
const tensors = [tensor("embedding.word.embedding.weight", [V, H], 1.0)];
for (let l = 0; l < C.layers_num; l++) {
  const p = `encoder.transformer.${l}.`;
  // Large q/k so attention is far from uniform: a wrong head or pair layout shows in the logits.
  tensors.push(tensor(p + "self_attn.linear_layers.0.weight", [H, H], 0.6));
  tensors.push(tensor(p + "self_attn.linear_layers.1.weight", [kv, H], 0.6));
  tensors.push(tensor(p + "self_attn.linear_layers.2.weight", [kv, H], 0.3));
  tensors.push(tensor(p + "self_attn.final_linear.weight", [H, H], 0.3));
  tensors.push(tensor(p + "layer_norm_1.weight", [H], 0.2, 1.0));
  tensors.push(tensor(p + "feed_forward.linear_gate.weight", [F, H], 0.4));
  tensors.push(tensor(p + "feed_forward.linear_1.weight", [F, H], 0.4));
  tensors.push(tensor(p + "feed_forward.linear_2.weight", [H, F], 0.3));
  tensors.push(tensor(p + "layer_norm_2.weight", [H], 0.2, 1.0));
}
tensors.push(tensor("encoder.layer_norm.weight", [H], 0.2, 1.0));
tensors.push(tensor("target.lm.output_layer.weight", [V, H], 0.5));

rmSync(modelDir, { recursive: true, force: true });
mkdirSync(modelDir, { recursive: true });
// Two blocks, as convert_model_into_blocks.py cuts them (whole tensors, in state-dict order).
const cut = 1 + 9; // the embedding and layer 0 | layer 1 and the rest
const shards = [tensors.slice(0, cut), tensors.slice(cut)];
const weightMap = {};
for (let i = 0; i < shards.length; i++) {
  const file = `tencentpretrain_model-${i}.bin`;
  await writeTorchCheckpoint(join(modelDir, file), shards[i], { overwrite: true });
  for (const t of shards[i]) weightMap[t.name] = file;
}
const total = tensors.reduce((a, t) => a + t.data.length / 2, 0);
writeFileSync(join(modelDir, "tencentpretrain_model.bin.index.json"), JSON.stringify({ weight_map: weightMap, metadata: { total_size: total * 2 } }));

// TencentPretrain's config, as models/llama/7b_config.json spells it.
const config = {
  emb_size: C.emb_size, feedforward_size: C.feedforward_size, hidden_size: C.hidden_size, hidden_act: "silu",
  heads_num: C.heads_num, local_kv_heads_num: C.local_kv_heads_num, layers_num: C.layers_num, dropout: 0.0,
  data_processor: "lm", max_seq_length: 256, embedding: ["word"], remove_transformer_bias: true,
  remove_embedding_layernorm: true, rotary_position_embedding: true, encoder: "transformer", feed_forward: "gated",
  mask: "causal", layernorm_positioning: "pre", layernorm: "rms", layernorm_eps: C.layernorm_eps, target: ["lm"],
};
writeFileSync(join(outDir, "linly-tiny_config.json"), JSON.stringify(config, null, 2) + "\n");

// A byte-fallback BPE tokenizer.model of V pieces (LLaMA's id layout), as Linly ships one.
const pieces = [
  { piece: "<unk>", score: 0, type: PieceType.Unknown },
  { piece: "<s>", score: 0, type: PieceType.Control },
  { piece: "</s>", score: 0, type: PieceType.Control },
];
for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, score: 0, type: PieceType.Byte });
const extra = ["▁", "U", "s", "e", "r", ":", "B", "o", "t", "▁User", "▁Bot", "你", "好", "▁你好", "a", "b", "c", "d", "f", "g", "h", "i", "k", "l", "m", "n", "p", "▁a"];
for (let i = 0; pieces.length < V; i++) pieces.push({ piece: extra[i] ?? `▁w${i}`, score: -i });
writeFileSync(
  join(modelDir, "tokenizer.model"),
  serializeSentencePieceModel({
    pieces,
    trainerSpec: { modelType: SentencePieceModelType.Bpe, vocabSize: V, byteFallback: true, unkId: 0, bosId: 1, eosId: 2, padId: -1 },
    normalizerSpec: { name: "identity", addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  }),
);

const golden = { note: "tools/tencentpretrain-forward.py tp linly-tiny --config linly-tiny_config.json (float64 numpy, TencentPretrain's model definition)", cases: [] };
for (const ids of IDS) {
  const out = execFileSync("python3", [join(root, "tools/tencentpretrain-forward.py"), "tp", modelDir, "--config", join(outDir, "linly-tiny_config.json"), "--ids", ids.join(",")], { encoding: "utf8" });
  const { logits } = JSON.parse(out);
  golden.cases.push({ ids, last: logits[logits.length - 1].map((x) => Number(x.toPrecision(12))) });
}
writeFileSync(join(outDir, "linly-tiny.logits.json"), JSON.stringify(golden) + "\n");
console.log(`wrote ${modelDir} and ${join(outDir, "linly-tiny.logits.json")}`);
