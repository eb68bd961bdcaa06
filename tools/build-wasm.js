#!/usr/bin/env node
// Compiles assembly/ into the two kernel builds under build/ (see asconfig.json):
//   build/kernels.wasm          SIMD128 + threads, imported shared memory (up to 65536 pages)
//   build/kernels-relaxed.wasm  the same plus relaxed SIMD; chosen at run time by WebAssembly.validate
// Plain Node, no TypeScript, so that it runs straight after `npm install`.
import asc from "assemblyscript/asc";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
await mkdir("build", { recursive: true });

for (const target of ["simd", "relaxed"]) {
  const { error, stderr } = await asc.main(["assembly/index.ts", "--config", "asconfig.json", "--target", target], {
    // asc resolves paths against the working directory.
    stdout: process.stdout,
  });
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: target ${target} failed: ${error.message}`);
    process.exit(1);
  }
}
console.log("build-wasm: build/kernels.wasm, build/kernels-relaxed.wasm");
