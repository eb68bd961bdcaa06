#!/usr/bin/env node
/**
 * Records llama.cpp's tokenization of fixtures/tokenizer/cases.jsonl (plus cases with control
 * pieces written in the text) under the fixture BPE models, with and without special-token
 * parsing: the independent reference for `parseSpecial`, which SentencePiece itself lacks.
 *
 *   tools/install-llama-cpp.sh && npm run build:ts && node tools/golden-tokenizer-llamacpp.mjs
 *
 * Each model is written as a vocab-only GGUF (zh-llama's writer) and opened by llama.cpp
 * (node-llama-cpp's prebuilt CPU build) with vocabOnly. Output: fixtures/tokenizer/NAME.llamacpp.jsonl
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = join(root, "fixtures", "tokenizer");
const { getLlama } = await import(join(root, "tools", ".llama-cpp", "node_modules", "node-llama-cpp", "dist", "index.js"));
const { tokenizerFromSentencePieceBytes, tokenizerToGgufMetadata } = await import(join(root, "dist", "tokenizer", "index.js"));
const { writeGguf } = await import(join(root, "dist", "formats", "gguf", "index.js"));

const cases = readFileSync(join(fixtures, "cases.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
const extra = ["<s>你好</s>", "a <s> b", "<s> hi", "hi</s>x", "</s></s>", "<s><s>白日", "前<unk>后", "<s>\n换行", " <s> ", "<<s>>", "<s", "文</s", "<s>🦙</s>"];
const texts = [...cases.map((c) => c.text), ...extra];

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const dir = mkdtempSync(join(tmpdir(), "zh-llama-llamacpp-"));
for (const name of ["zh-bpe", "zh-merged"]) {
  const tok = tokenizerFromSentencePieceBytes(readFileSync(join(fixtures, `${name}.model`)), `${name}.model`);
  const path = join(dir, `${name}.gguf`);
  const metadata = {
    "general.architecture": "llama",
    "general.name": name,
    "llama.context_length": 2048,
    "llama.embedding_length": 64,
    "llama.block_count": 1,
    "llama.feed_forward_length": 128,
    "llama.attention.head_count": 2,
    "llama.attention.layer_norm_rms_epsilon": 1e-5,
    "llama.rope.dimension_count": 32,
    ...tokenizerToGgufMetadata(tok),
  };
  await writeGguf(path, { metadata, tensors: [] });
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  // "special" only where parsing specials changes the result.
  const rows = texts.map((text, i) => {
    const ids = Array.from(model.tokenize(text, false));
    const special = Array.from(model.tokenize(text, true));
    return { i, text: i < cases.length ? undefined : text, ids, special: JSON.stringify(special) === JSON.stringify(ids) ? undefined : special };
  });
  writeFileSync(join(fixtures, `${name}.llamacpp.jsonl`), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  await model.dispose();
  console.error(`${name}: ${rows.length} rows`);
}
await llama.dispose();
