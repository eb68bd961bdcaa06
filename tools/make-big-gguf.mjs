#!/usr/bin/env node
// A 7B-shaped Q8_0 GGUF header (55296-token vocabulary) with its data left as a sparse hole:
// what `inspect` peak memory is measured on.  node tools/make-big-gguf.mjs /tmp/big7b.gguf
// then: /usr/bin/time -v node bin/zh-llama.js inspect /tmp/big7b.gguf
import { layoutGguf, GGMLType } from "../dist/internals.js";
import { open } from "node:fs/promises";
const dim = 4096, ff = 11008, layers = 32, vocab = 55296;
const tensors = [{ name: "token_embd.weight", type: GGMLType.Q8_0, shape: [dim, vocab] }];
for (let l = 0; l < layers; l++) {
  for (const n of ["attn_q", "attn_k", "attn_v", "attn_output"]) tensors.push({ name: `blk.${l}.${n}.weight`, type: GGMLType.Q8_0, shape: [dim, dim] });
  tensors.push({ name: `blk.${l}.ffn_gate.weight`, type: GGMLType.Q8_0, shape: [dim, ff] }, { name: `blk.${l}.ffn_up.weight`, type: GGMLType.Q8_0, shape: [dim, ff] }, { name: `blk.${l}.ffn_down.weight`, type: GGMLType.Q8_0, shape: [ff, dim] });
  tensors.push({ name: `blk.${l}.attn_norm.weight`, type: GGMLType.F32, shape: [dim] }, { name: `blk.${l}.ffn_norm.weight`, type: GGMLType.F32, shape: [dim] });
}
tensors.push({ name: "output_norm.weight", type: GGMLType.F32, shape: [dim] }, { name: "output.weight", type: GGMLType.Q8_0, shape: [dim, vocab] });
const tokens = Array.from({ length: vocab }, (_, i) => `tok${i}`);
const layout = layoutGguf({ metadata: { "general.architecture": "llama", "llama.context_length": 4096, "llama.embedding_length": dim, "llama.block_count": layers, "llama.feed_forward_length": ff, "llama.attention.head_count": 32, "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": tokens.map(() => 0), "tokenizer.ggml.token_type": tokens.map(() => 1) }, tensors: tensors.map((t) => ({ ...t, data: new Uint8Array(0) })) });
const h = await open(process.argv[2], "w");
await h.write(layout.header, 0, layout.header.length, 0);
await h.truncate(layout.fileSize);
await h.close();
console.log(`${process.argv[2]}: ${(layout.fileSize / 1e9).toFixed(2)} GB, header ${layout.header.length} bytes`);
