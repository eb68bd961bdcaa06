#!/usr/bin/env node
// Writes the small synthetic models committed under fixtures/models (deterministic random
// weights, zh-llama's own generator and GGUF writer): npm run build && node tools/make-fixtures.mjs
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { syntheticModel, writeGguf, GGMLType } = await import(join(root, "dist/internals.js"));

const fixtures = [
  { file: "tiny-random-q8_0.gguf", options: { name: "tiny-random-q8_0", dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 160, vocab: 300, ctx: 256, type: GGMLType.Q8_0, seed: 2026 } },
];
for (const f of fixtures) {
  const path = join(root, "fixtures/models", f.file);
  await writeGguf(path, syntheticModel(f.options), { overwrite: true });
  console.log(`wrote ${path}`);
}
