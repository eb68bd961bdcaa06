#!/usr/bin/env node
// Real-size test models, made on the fly, and a measured run of one.
//
//   node tools/big-model.mjs make --shape 7b|13b|mixtral[:LAYERS] --type q4_0|q4_k_m|q8_0|q5_0|q5_1|q5_k_m|q2_k|q3_k_m|q6_k|f16 --out FILE
//   node tools/big-model.mjs run FILE [--threads N] [--ctx N] [--prompt 100] [--tokens 8] [--memory-limit BYTES]
//   node tools/big-model.mjs compare FILE [--threads N] [--ctx N] [--tokens 2]   (wasm vs the reference backend)
//
// `make` writes a GGUF of the family's real shapes (Chinese-LLaMA-2 7B / 13B: vocabulary 55296;
// Mixtral 8x7B with fewer layers) whose blocks are random bytes with sane scales, written directly
// (no quantizer pass: a 13B takes seconds, not an hour). The type mixes follow llama-quantize
// (q4_k_m: Q4_K with Q6_K for attn_v / ffn_down in the layers llama.cpp gives more bits, and a
// Q6_K output). `run` loads it with zh-llama (the default context unless --ctx) and prints one
// JSON line: file size, load time, the memory plan, peak RSS, time to first token and decode
// tokens/s. The CI step (test/smoke/big-models.mjs) and the speed report use both.
import { open, stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { halfBits } from "./half-bits.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const zh = await import(pathToFileURL(join(root, "dist/internals.js")).href);
const { GGMLType, GGML_TYPES, layoutGguf, syntheticVocab, LlamaModel, describePlan } = zh;

export const SHAPES = {
  "7b": { dim: 4096, layers: 32, heads: 32, kvHeads: 32, ffn: 11008, vocab: 55296, ctx: 4096, name: "chinese-llama-2-7b-shaped" },
  "13b": { dim: 5120, layers: 40, heads: 40, kvHeads: 40, ffn: 13824, vocab: 55296, ctx: 4096, name: "chinese-llama-2-13b-shaped" },
  mixtral: { dim: 4096, layers: 4, heads: 32, kvHeads: 8, ffn: 14336, vocab: 32000, ctx: 32768, experts: 8, expertsUsed: 2, name: "chinese-mixtral-shaped" },
};

/**
 * Byte offsets of each block type's f16 scales, and the magnitude llama.cpp's quantizers give them
 * for weights of standard deviation ~0.02 (LLaMA-2 7B's), each offset its own: Q8_0 d = amax/127
 * (~4e-4), Q4_0 amax/8, Q4_K d = max scale/63 (~1e-4) and dmin ~8e-4, Q5_K d ~5e-5, Q6_K d =
 * max scale/128 (~1.5e-5), Q3_K ~4e-4, Q2_K ~2e-3 / 3e-3. Several are subnormal halves in real
 * files (Q6_K's always), which matters for speed: a float op on a subnormal single costs x86 a
 * microcode assist (assembly/common.ts, halfToFloat).
 */
const SCALES = {
  [GGMLType.Q4_0]: [[0], [0.006]], [GGMLType.Q4_1]: [[0, 2], [0.003, 0.05]], [GGMLType.Q5_0]: [[0], [0.003]], [GGMLType.Q5_1]: [[0, 2], [0.0015, 0.05]],
  [GGMLType.Q8_0]: [[0], [0.0004]], [GGMLType.Q2_K]: [[80, 82], [0.002, 0.003]], [GGMLType.Q3_K]: [[108], [0.0004]],
  [GGMLType.Q4_K]: [[0, 2], [0.0001, 0.0008]], [GGMLType.Q5_K]: [[0, 2], [0.00005, 0.0008]], [GGMLType.Q6_K]: [[208], [0.000015]],
  [GGMLType.IQ4_NL]: [[0], [0.0002]], [GGMLType.IQ4_XS]: [[0], [0.0002]],
};

const MIXES = {
  q4_0: { body: GGMLType.Q4_0, output: GGMLType.Q6_K },
  q4_k_m: { body: GGMLType.Q4_K, output: GGMLType.Q6_K, moreBits: GGMLType.Q6_K },
  q5_k_m: { body: GGMLType.Q5_K, output: GGMLType.Q6_K, moreBits: GGMLType.Q6_K },
  q3_k_m: { body: GGMLType.Q3_K, output: GGMLType.Q6_K, moreBits: GGMLType.Q4_K },
  q2_k: { body: GGMLType.Q2_K, output: GGMLType.Q6_K, moreBits: GGMLType.Q3_K },
  q5_0: { body: GGMLType.Q5_0, output: GGMLType.Q6_K },
  q5_1: { body: GGMLType.Q5_1, output: GGMLType.Q6_K },
  q6_k: { body: GGMLType.Q6_K, output: GGMLType.Q6_K },
  q8_0: { body: GGMLType.Q8_0, output: GGMLType.Q8_0 },
  f16: { body: GGMLType.F16, output: GGMLType.F16 },
};

/** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between. */
const moreBits = (l, n) => l < n / 8 || l >= (7 * n) / 8 || (l - Math.floor(n / 8)) % 3 === 2;


/** ~8 MiB of valid random blocks of `type`, repeated to fill each tensor. */
const patterns = new Map();
function pattern(type) {
  let p = patterns.get(type);
  if (p) return p;
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  if (type === GGMLType.F32) {
    p = new Uint8Array(new Float32Array(2 << 20).map(() => (Math.random() - 0.5) * 0.02).buffer);
  } else if (type === GGMLType.F16) {
    p = new Uint8Array(new Uint16Array(4 << 20).map(() => halfBits((Math.random() - 0.5) * 0.03)).buffer);
  } else {
    const blocks = Math.floor((8 << 20) / bytesPerBlock);
    p = randomBytes(blocks * bytesPerBlock);
    const [offsets, ds] = SCALES[type];
    for (let b = 0; b < blocks; b++) for (const [k, o] of offsets.entries()) {
      const h = halfBits(ds[k] * (0.5 + Math.random()));
      p[b * bytesPerBlock + o] = h & 255;
      p[b * bytesPerBlock + o + 1] = h >> 8;
    }
  }
  patterns.set(type, p);
  void blockSize;
  return p;
}

export async function makeBigModel(path, shapeName, mixName) {
  const [base, layerText] = shapeName.split(":");
  const shape = { ...SHAPES[base] };
  if (!SHAPES[base]) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
  if (layerText) shape.layers = Number(layerText);
  const mix = MIXES[mixName];
  if (!mix) throw new Error(`--type must be one of ${Object.keys(MIXES).join(", ")}`);
  const { dim, layers, heads, kvHeads, ffn, vocab } = shape;
  const kvDim = (dim / heads) * kvHeads;
  const tensors = [];
  const add = (name, type, dims) => tensors.push({ name, type, shape: dims, data: new Uint8Array(0) });
  add("token_embd.weight", mix.body, [dim, vocab]);
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    const more = mix.moreBits && moreBits(l, layers) ? mix.moreBits : mix.body;
    add(p + "attn_norm.weight", GGMLType.F32, [dim]);
    add(p + "attn_q.weight", mix.body, [dim, dim]);
    add(p + "attn_k.weight", mix.body, [dim, kvDim]);
    add(p + "attn_v.weight", more, [dim, kvDim]);
    add(p + "attn_output.weight", mix.body, [dim, dim]);
    add(p + "ffn_norm.weight", GGMLType.F32, [dim]);
    if (shape.experts) {
      add(p + "ffn_gate_inp.weight", GGMLType.F32, [dim, shape.experts]);
      add(p + "ffn_gate_exps.weight", mix.body, [dim, ffn, shape.experts]);
      add(p + "ffn_up_exps.weight", mix.body, [dim, ffn, shape.experts]);
      add(p + "ffn_down_exps.weight", more, [ffn, dim, shape.experts]);
    } else {
      add(p + "ffn_gate.weight", mix.body, [dim, ffn]);
      add(p + "ffn_up.weight", mix.body, [dim, ffn]);
      add(p + "ffn_down.weight", more, [ffn, dim]);
    }
  }
  add("output_norm.weight", GGMLType.F32, [dim]);
  add("output.weight", mix.output, [dim, vocab]);
  const v = syntheticVocab(vocab);
  const metadata = {
    "general.architecture": "llama", "general.name": `${shape.name}-${mixName}`,
    "llama.vocab_size": vocab, "llama.context_length": shape.ctx, "llama.embedding_length": dim, "llama.block_count": layers,
    "llama.feed_forward_length": ffn, "llama.attention.head_count": heads, "llama.attention.head_count_kv": kvHeads,
    "llama.rope.dimension_count": dim / heads, "llama.rope.freq_base": 10000, "llama.attention.layer_norm_rms_epsilon": 1e-5,
    "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": v.tokens, "tokenizer.ggml.scores": v.scores, "tokenizer.ggml.token_type": v.types,
    "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.add_bos_token": true,
  };
  if (shape.experts) Object.assign(metadata, { "llama.expert_count": shape.experts, "llama.expert_used_count": shape.expertsUsed });
  const layout = layoutGguf({ metadata, tensors });
  const h = await open(path, "w");
  try {
    await h.write(layout.header, 0, layout.header.length, 0);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const data = pattern(t.name.endsWith("norm.weight") ? GGMLType.F32 : t.type);
      let at = layout.dataOffsets[i];
      let left = layout.byteSizes[i];
      if (t.name.endsWith("norm.weight")) {
        // Norm weights near 1, so the residual stream stays finite through every layer.
        await h.write(new Uint8Array(new Float32Array(dim).fill(1).buffer), 0, 4 * dim, at);
        continue;
      }
      while (left > 0) {
        const n = Math.min(left, data.length);
        await h.write(data, 0, n, at);
        at += n;
        left -= n;
      }
    }
    await h.truncate(layout.fileSize);
  } finally {
    await h.close();
  }
  return { path, bytes: layout.fileSize, shape, mix: mixName };
}

export async function runBigModel(path, o = {}) {
  const t0 = performance.now();
  const model = await LlamaModel.load(path, { threads: o.threads ?? 1, nCtx: o.ctx, memoryLimit: o.memoryLimit, batchSize: o.batch });
  const loadS = (performance.now() - t0) / 1000;
  try {
    const prompt = [1, ...Array.from({ length: (o.prompt ?? 100) - 1 }, (_, i) => 300 + ((i * 7919) % (model.hp.nVocab - 300)))];
    const t1 = performance.now();
    let logits = await model.evaluate(prompt);
    const ttftS = (performance.now() - t1) / 1000;
    const finite = logits.every(Number.isFinite);
    const t2 = performance.now();
    for (let i = 0; i < (o.tokens ?? 8); i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      logits = await model.evaluate([best]);
    }
    const decodeS = (performance.now() - t2) / 1000;
    const p = model.plan;
    return {
      file: path, fileBytes: (await stat(path)).size, loadS, threads: model.threads, nCtx: model.nCtx,
      plan: { memories: p.memories.length, weightBytes: p.weightBytes, kvBytes: p.kvBytes, scratchBytes: p.scratchBytes, totalBytes: p.totalBytes, kvBytesPerToken: p.kvBytesPerToken },
      planText: describePlan(p), conversions: model.weights.conversions.length,
      maxRssBytes: process.resourceUsage().maxRSS * 1024, promptTokens: prompt.length, ttftS, promptTokS: prompt.length / ttftS,
      decodeTokS: (o.tokens ?? 8) / decodeS, finite, kernelPath: model.kernels.path,
    };
  } finally {
    await model.dispose();
  }
}

/** The wasm backend (threads as given) against the reference backend on the same prompt. */
export async function compareBackends(path, o = {}) {
  const prompt = [1, 1000, 2000, 3000];
  const runOne = async (backend, threads) => {
    const model = await LlamaModel.load(path, { backend, threads, nCtx: o.ctx ?? 256, batchSize: 4 });
    try {
      const out = [await model.evaluate(prompt)];
      for (let i = 0; i < (o.tokens ?? 2); i++) {
        const last = out[out.length - 1];
        let best = 0;
        for (let j = 1; j < last.length; j++) if (last[j] > last[best]) best = j;
        out.push(await model.evaluate([best]));
      }
      return { out, memories: model.plan.memories.length, experts: model.hp.nExpert };
    } finally {
      await model.dispose();
    }
  };
  const t0 = performance.now();
  const wasm = await runOne("wasm", o.threads ?? 2);
  const t1 = performance.now();
  const ref = await runOne("reference", 1);
  const t2 = performance.now();
  let maxDiff = 0, maxAbs = 0, sameArgmax = true;
  wasm.out.forEach((w, s) => {
    const r = ref.out[s];
    let bw = 0, br = 0;
    for (let i = 0; i < w.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(w[i] - r[i]));
      maxAbs = Math.max(maxAbs, Math.abs(r[i]));
      if (w[i] > w[bw]) bw = i;
      if (r[i] > r[br]) br = i;
    }
    if (bw !== br) sameArgmax = false;
  });
  return { file: path, steps: wasm.out.length, experts: wasm.experts, memories: wasm.memories, maxDiff, maxAbs, sameArgmax, finite: wasm.out.every((x) => x.every(Number.isFinite)), wasmS: (t1 - t0) / 1000, referenceS: (t2 - t1) / 1000 };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [verb, ...rest] = process.argv.slice(2);
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: { shape: { type: "string" }, type: { type: "string" }, out: { type: "string" }, threads: { type: "string" }, ctx: { type: "string" }, prompt: { type: "string" }, tokens: { type: "string" }, "memory-limit": { type: "string" }, batch: { type: "string" } },
  });
  const num = (v) => (v === undefined ? undefined : Number(v));
  if (verb === "make") {
    const t0 = performance.now();
    const r = await makeBigModel(values.out, values.shape ?? "7b", values.type ?? "q4_0");
    console.log(JSON.stringify({ ...r, seconds: (performance.now() - t0) / 1000 }));
  } else if (verb === "run") {
    const r = await runBigModel(positionals[0], { threads: num(values.threads), ctx: num(values.ctx), prompt: num(values.prompt), tokens: num(values.tokens), memoryLimit: num(values["memory-limit"]), batch: num(values.batch) });
    console.log(JSON.stringify(r));
  } else if (verb === "compare") {
    console.log(JSON.stringify(await compareBackends(positionals[0], { threads: num(values.threads), ctx: num(values.ctx), tokens: num(values.tokens) })));
  } else {
    console.error("usage: node tools/big-model.mjs make|run ... (see the header)");
    process.exit(2);
  }
}
