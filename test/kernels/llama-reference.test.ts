/**
 * The kernels against llama.cpp itself: a LLaMA forward pass over the prompt of
 * ../shared/reference (tiny GGUF models with random weights, and llama.cpp's logits for the last
 * prompt position), written directly on the Kernels interface, on both backends — the Mixtral
 * model through the MoE path (router, softmax, top-2, renormalise, weighted sum). With
 * llama.cpp's activation rounding reproduced, the logits should agree to float rounding.
 * Skips when ../shared is absent (it is not shipped to users).
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GgufFile } from "../../src/formats/gguf/index.js";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize } from "../../src/formats/quants/index.js";
import {
  createReferenceKernels, createWasmKernels, groupRows, isGrouped, KernelMemory, Kernels, MatmulType, ropeFrequencies, rowBytes,
} from "../../src/kernels/index.js";

const REF = new URL("../../../shared/reference/", import.meta.url);
const MODELS = ["llama-d128-l4-h4kv2-tied-q4_0", "llama-d64-l2-h4kv1-synthvocab-f32", "mixtral-d128-l2-e8top2-q8_0"];

interface Expected {
  prompt: { tokens: number[] };
  first_step: { logits_f32le_base64: string; argmax: number };
}

async function forward(gguf: GgufFile, mem: KernelMemory, k: Kernels, tokens: number[]): Promise<Float32Array> {
  const meta = gguf.metadata as Record<string, unknown>;
  const num = (key: string) => Number(meta[`llama.${key}`]);
  const dim = num("embedding_length"), nLayer = num("block_count"), nHead = num("attention.head_count");
  const nKvHead = num("attention.head_count_kv"), ffn = num("feed_forward_length");
  const eps = num("attention.layer_norm_rms_epsilon"), base = num("rope.freq_base") || 10000;
  const headDim = dim / nHead, kvDim = nKvHead * headDim, nTok = tokens.length;
  const f32 = async (name: string) => mem.put(await gguf.readTensorF32(name));
  const mat = async (name: string) => {
    const info = gguf.tensor(name);
    const bytes = await gguf.readTensorBytes(info);
    const w = mem.put(bytes);
    // The kernels' layout (src/kernels/layout.ts): Q4_0 matrices of a multiple of 8 rows, Q4_K and Q6_K of 4, in groups of four rows.
    if (isGrouped(info.type, info.shape[1]!)) groupRows(info.type, mem.u8(w, bytes.length), info.shape[0]!);
    return { w, type: info.type as MatmulType, rows: info.shape[1], cols: info.shape[0] };
  };
  // Embedding rows, dequantized.
  const embInfo = gguf.tensor("token_embd.weight");
  const embBytes = await gguf.readTensorBytes(embInfo);
  const embRow = embBytes.length / embInfo.shape[1];
  const x = mem.alloc(4 * nTok * dim);
  tokens.forEach((t, i) => mem.f32(x + 4 * i * dim, dim).set(dequantize(embInfo.type, embBytes.subarray(t * embRow, (t + 1) * embRow), dim)));

  const freqs = ropeFrequencies({ nDims: headDim, base, neox: false, scaling: { type: "none" } });
  const invFreq = mem.put(freqs.invFreq, 8), cs = mem.alloc(4 * headDim);
  const h = mem.alloc(4 * nTok * Math.max(dim, ffn)), xq = mem.alloc(nTok * 4 * Math.max(dim, ffn) * 2);
  const q = mem.alloc(4 * nTok * dim), kk = mem.alloc(4 * nTok * kvDim), vv = mem.alloc(4 * nTok * kvDim);
  const att = mem.alloc(4 * nTok * dim), o = mem.alloc(4 * nTok * dim);
  const g = mem.alloc(4 * nTok * ffn), u = mem.alloc(4 * nTok * ffn), s = mem.alloc(4 * nTok * ffn);
  const scores = mem.alloc(4 * nTok), qh = mem.alloc(4 * headDim);
  const matmul = (m: { w: number; type: MatmulType; rows: number; cols: number }, input: number, out: number) => {
    k.quantize(m.type, input, xq, m.cols, 0, nTok);
    k.matmul(m.type, m.w, xq, out, m.cols, 0, m.rows, nTok, m.rows);
  };
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    k.rmsnorm(x, await f32(p + "attn_norm.weight"), h, dim, eps, 0, nTok);
    matmul(await mat(p + "attn_q.weight"), h, q);
    matmul(await mat(p + "attn_k.weight"), h, kk);
    matmul(await mat(p + "attn_v.weight"), h, vv);
    k.rope(q, cs, nHead, headDim, headDim, 0, invFreq, freqs.mscale, false, nTok, dim);
    k.rope(kk, cs, nKvHead, headDim, headDim, 0, invFreq, freqs.mscale, false, nTok, kvDim);
    // The prompt's K and V rows are the whole cache (positions 0..nTok-1).
    k.attention(q, kk, vv, att, scores, qh, nHead, nKvHead, headDim, 0, nTok, GGMLType.F32, 1 / Math.sqrt(headDim), 0, nHead);
    matmul(await mat(p + "attn_output.weight"), att, o);
    k.add(x, o, x, 0, nTok * dim);
    k.rmsnorm(x, await f32(p + "ffn_norm.weight"), h, dim, eps, 0, nTok);
    if (!gguf.has(p + "ffn_gate_inp.weight")) {
      matmul(await mat(p + "ffn_gate.weight"), h, g);
      matmul(await mat(p + "ffn_up.weight"), h, u);
      k.swiglu(g, u, s, 0, nTok * ffn);
      matmul(await mat(p + "ffn_down.weight"), s, o);
      k.add(x, o, x, 0, nTok * dim);
      continue;
    }
    // Mixture of experts: stacked [nExpert][rows][cols] matrices (shape[1] = rows per expert).
    const nExpert = num("expert_count"), nUsed = num("expert_used_count");
    const router = await mat(p + "ffn_gate_inp.weight");
    const [eg, eu, ed] = await Promise.all(["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"].map((n) => mat(p + n + ".weight")));
    const rl = mem.alloc(4 * nTok * nExpert), probs = mem.alloc(4 * nExpert);
    const idx = mem.alloc(4 * nUsed), wt = mem.alloc(4 * nUsed);
    matmul(router, h, rl);
    const ht = mem.alloc(4 * dim), yt = mem.alloc(4 * dim), acc = mem.alloc(4 * dim);
    for (let t = 0; t < nTok; t++) {
      k.moeRoute(rl + 4 * t * nExpert, probs, nExpert, nUsed, true, idx, wt);
      mem.f32(ht, dim).set(mem.f32(h + 4 * t * dim, dim));
      mem.f32(acc, dim).fill(0);
      for (let i = 0; i < nUsed; i++) {
        const e = mem.i32(idx, nUsed)[i];
        const one = (m: typeof eg, input: number, out: number) => {
          k.quantize(m.type, input, xq, m.cols, 0, 1);
          k.matmul(m.type, m.w + e * m.rows * rowBytes(m.type, m.cols), xq, out, m.cols, 0, m.rows, 1, m.rows);
        };
        one(eg, ht, g);
        one(eu, ht, u);
        k.swiglu(g, u, s, 0, ffn);
        one(ed, s, yt);
        k.axpy(yt, mem.f32(wt, nUsed)[i], acc, 0, dim);
      }
      k.add(x + 4 * t * dim, acc, x + 4 * t * dim, 0, dim);
    }
  }
  const last = x + 4 * (nTok - 1) * dim;
  k.rmsnorm(last, await f32("output_norm.weight"), h, dim, eps, 0, 1);
  const out = await mat(gguf.has("output.weight") ? "output.weight" : "token_embd.weight");
  const logits = mem.alloc(4 * out.rows);
  k.quantize(out.type, h, xq, out.cols, 0, 1);
  k.matmul(out.type, out.w, xq, logits, out.cols, 0, out.rows, 1, out.rows);
  return mem.f32(logits, out.rows).slice();
}

describe.skipIf(!existsSync(REF))("forward pass on the kernels vs llama.cpp (../shared/reference)", () => {
  for (const model of MODELS) {
    for (const backend of ["wasm", "reference"] as const) {
      it(`${model}, ${backend} backend: last-position logits`, async () => {
        const expected = JSON.parse(readFileSync(new URL(`${model}.json`, REF), "utf8")) as Expected;
        const want = new Float32Array(Uint8Array.from(Buffer.from(expected.first_step.logits_f32le_base64, "base64")).buffer);
        const gguf = await GgufFile.open(new URL(`${model}.gguf`, REF));
        try {
          const mem = KernelMemory.create({ initialBytes: 32 << 20 });
          const k = backend === "wasm" ? await createWasmKernels(mem, "simd") : createReferenceKernels(mem);
          const got = await forward(gguf, mem, k, expected.prompt.tokens);
          expect(got.length).toBe(want.length);
          let maxDiff = 0;
          for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
          let argmax = 0;
          for (let i = 1; i < got.length; i++) if (got[i] > got[argmax]) argmax = i;
          expect(argmax).toBe(expected.first_step.argmax);
          expect(maxDiff).toBeLessThan(2e-5);
          console.log(`${model} ${backend}: max |logit - llama.cpp| = ${maxDiff.toExponential(2)}`);
        } finally {
          await gguf.close();
        }
      });
    }
  }
});
