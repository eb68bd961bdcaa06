#!/usr/bin/env node
/**
 * Builds the in-browser page's bundle (npm run build:web): web/main.ts and the pool's Web Worker
 * entry into web/dist/, with the compiled kernels beside them.
 *
 *   web/dist/main.js        the page (imports the library from src/, bundled)
 *   web/dist/worker-web.js  the pool's worker; pool.ts finds it as ./worker-web.js next to the
 *                           bundle that creates the pool (workerUrl)
 *   web/dist/kernels*.wasm  copied from build/ (npm run build:wasm makes them); main.ts points
 *                           the loader here with setKernelBaseUrl
 *
 * Node built-ins and piscina stay external: the library imports them only lazily, on Node-only
 * paths (FileSource, the Piscina transport, reading kernels from file: URLs), which a browser
 * never takes. The build fails if any other bare import would be left unbundled.
 */
import { build } from "esbuild";
import { copyFile, mkdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "web", "dist");
await mkdir(out, { recursive: true });

for (const f of ["kernels.wasm", "kernels-relaxed.wasm"]) {
  const src = join(root, "build", f);
  try {
    await stat(src);
  } catch {
    console.error(`build-web: ${src} is missing; run npm run build:wasm first`);
    process.exit(1);
  }
  await copyFile(src, join(out, f));
}

const result = await build({
  absWorkingDir: root,
  entryPoints: { main: "web/main.ts", "worker-web": "src/runtime/worker-web.ts" },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  metafile: true,
  external: ["node:*", "piscina"],
  logLevel: "warning",
});

// Every external import left in the bundle must be one of the lazily loaded Node-only ones.
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  for (const imp of info.imports) {
    if (imp.external && !imp.path.startsWith("node:") && imp.path !== "piscina") {
      console.error(`build-web: ${file} imports ${imp.path}, which a browser cannot load`);
      process.exit(1);
    }
    if (imp.external && imp.kind !== "dynamic-import") {
      console.error(`build-web: ${file} imports ${imp.path} statically; it must stay a lazy import()`);
      process.exit(1);
    }
  }
}
const size = (await readFile(join(out, "main.js"))).length;
console.log(`build-web: web/dist/main.js ${(size / 1024).toFixed(0)} KiB, worker-web.js, kernels*.wasm`);
