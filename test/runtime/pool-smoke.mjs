// Runs under Node, Deno and Bun (test/runtime/cross-runtime.test.ts): a 2-thread pool step on the
// compiled dist/ must give exactly the single-threaded product. Argument: "piscina" or "web".
import { KernelMemory, createWasmKernels, rowBytes } from "../../dist/kernels/index.js";
import { createPool, encodeProgram } from "../../dist/runtime/index.js";

const args = globalThis.Deno ? globalThis.Deno.args : globalThis.process.argv.slice(2);
const backend = args[0] === "web" ? "web" : "piscina";
const mem = KernelMemory.create({ initialBytes: 16 << 20 });
const k = await createWasmKernels(mem);
const rows = 256, cols = 512, type = 2; // Q4_0
const rb = rowBytes(type, cols);
const w = mem.alloc(rb * rows);
const u8 = mem.u8(w, rb * rows);
for (let i = 0; i < u8.length; i++) u8[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
for (let b = 0; b < (rows * cols) / 32; b++) { u8[b * 18] = 0; u8[b * 18 + 1] = 0x20; }
const x = mem.alloc(4 * cols);
mem.f32(x, cols).forEach((_, i, a) => { a[i] = Math.sin(i); });
const xq = mem.alloc(k.actBytes(type, cols));
const y = mem.alloc(4 * rows), want = mem.alloc(4 * rows);
k.quantize(type, x, xq, cols, 0, 1);
k.matmul(type, w, xq, want, cols, 0, rows, 1, rows);
const prog = encodeProgram([
  { op: "quantize", type, x, xq, cols, nTok: 1 },
  { op: "matmul", type, w, xq, y, cols, rows, nTok: 1, ldy: rows },
]);
const pool = await createPool({ memories: [mem], threadsPerMemory: 2, backend });
for (let i = 0; i < 20; i++) await pool.run(prog);
await pool.runPerOp(prog);
const same = mem.f32(y, rows).every((v, i) => v === mem.f32(want, rows)[i]);
await pool.dispose();
console.log(JSON.stringify({ backend: pool.backend, build: pool.build, threads: pool.threads, same }));
