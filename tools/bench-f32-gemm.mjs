#!/usr/bin/env node
// GFLOP/s of the F32 matmul kernel on training-shaped products (npm run build first).
import { KernelMemory, createKernels } from "../dist/kernels/index.js";
import { GGMLType } from "../dist/internals.js";
const mem = KernelMemory.create({ initialBytes: 64 << 20 });
const k = await createKernels(mem, "wasm");
for (const [rows, cols, nTok] of [[32000, 128, 64], [512, 192, 256], [192, 512, 256]]) {
  const w = mem.alloc(rows * cols * 4), x = mem.alloc(nTok * cols * 4), xq = mem.alloc(k.actBytes(GGMLType.F32, cols) * nTok), y = mem.alloc(nTok * rows * 4);
  mem.f32(w, rows * cols).forEach((_, i, a) => (a[i] = Math.sin(i)));
  mem.f32(x, nTok * cols).forEach((_, i, a) => (a[i] = Math.cos(i)));
  k.quantize(GGMLType.F32, x, xq, cols, 0, nTok);
  k.matmul(GGMLType.F32, w, xq, y, cols, 0, rows, nTok, rows);
  const t0 = performance.now(); let it = 0;
  while (performance.now() - t0 < 1000) { k.matmul(GGMLType.F32, w, xq, y, cols, 0, rows, nTok, rows); it++; }
  const s = (performance.now() - t0) / 1000 / it;
  console.log(`${rows}x${cols} x ${nTok} tokens: ${(2 * rows * cols * nTok / s / 1e9).toFixed(2)} GFLOP/s`);
}
