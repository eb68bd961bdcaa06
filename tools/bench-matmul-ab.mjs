#!/usr/bin/env node
// Q4_0 / Q8_0 matmul kernels of two builds in one process: speed ratio and bit identity.
//
//   git show <commit>:build/...  (or keep a copy of build/kernels.wasm before a change), then
//   node tools/bench-matmul-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]
//   e.g. node tools/bench-matmul-ab.mjs /tmp/old/kernels.wasm build/kernels.wasm 9 1,128 q4_0,q8_0 768x768,2048x768
//
// Both instances share one memory and one set of random weights and activations (each build
// quantizes them into its own layout). Each round
// times old and new back to back (the order alternating) in process CPU time, which a busy
// shared machine disturbs less than wall time; the ratio printed is the median over rounds of
// old time / new time, so > 1 means the new build is faster. Any output that differs in a
// single bit (all rows, then an odd row slice with one token fewer) is reported.
import { readFileSync } from "node:fs";

const [oldPath, newPath, roundsArg = "9", tokensArg = "1,128", typesArg = "q4_0,q8_0", shapesArg = "768x768,2048x768,768x2048"] = process.argv.slice(2);
if (!oldPath || !newPath) {
  console.error("usage: node tools/bench-matmul-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]");
  process.exit(2);
}
const rounds = Number(roundsArg);
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const instance = (path) =>
  new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory, abort() { throw new Error("kernel abort"); } } }).exports;
const builds = [instance(oldPath), instance(newPath)];
// The relaxed build reads plain i8 codes for Q4_0 (assembly/q4_0.ts); both builds must be of one kind.
const relaxed = builds.map((b) => (b.relaxed ? b.relaxed() : 0));
if (relaxed[0] !== relaxed[1]) throw new Error("OLD and NEW must both be plain SIMD or both relaxed builds");

let seed = 12345;
const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
let top = 1 << 20;
const alloc = (n) => ((top += (n + 63) & ~63), top - ((n + 63) & ~63));
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
/** f16 bits of a small normal number (enough for random block scales). */
const f16 = (v) => { const i = new Uint32Array(new Float32Array([v]).buffer)[0]; return ((i >>> 16) & 0x8000) | ((((i >>> 23) & 255) - 112) << 10) | ((i >>> 13) & 1023); };

for (const type of typesArg.split(",")) {
  const blockBytes = type === "q4_0" ? 18 : 34;
  for (const [rows, cols] of shapesArg.split(",").map((s) => s.split("x").map(Number))) {
    for (const nTok of tokensArg.split(",").map(Number)) {
      const mark = top;
      const nBlocks = (rows * cols) / 32;
      const w = alloc(nBlocks * blockBytes);
      const bytes = new Uint8Array(memory.buffer, w, nBlocks * blockBytes);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (random() * 256) | 0;
      for (let b = 0; b < nBlocks; b++) {
        const h = f16((random() * 2 - 1) * 0.02);
        bytes[b * blockBytes] = h & 255;
        bytes[b * blockBytes + 1] = h >> 8;
        // ggml never writes a Q8_0 code of -128
        if (type === "q8_0") for (let j = 2; j < 34; j++) if (bytes[b * blockBytes + j] === 0x80) bytes[b * blockBytes + j] = 0x81;
      }
      const x = alloc(4 * nTok * cols);
      const xs = new Float32Array(memory.buffer, x, nTok * cols);
      for (let i = 0; i < xs.length; i++) xs[i] = (random() * 2 - 1) * 3;
      // Each build quantizes for itself: the activation layouts may differ between builds.
      const xqs = builds.map((b, i) => {
        const xq = alloc(b.act_q8_0_i16_bytes(cols) * nTok);
        if (type === "q4_0" && b.quantize_q4_0) b.quantize_q4_0(x, xq, cols, 0, nTok);
        else if (relaxed[i] && type === "q4_0") b.quantize_q8_0(x, xq, cols, 0, nTok);
        else b.quantize_q8_0_i16(x, xq, cols, 0, nTok, type === "q4_0" ? 4 : 8);
        return xq;
      });
      const ys = builds.map(() => alloc(4 * rows * nTok));
      const fns = builds.map((b) => b[`matmul_${type}`]);

      let mismatches = 0;
      for (const [r0, r1, nt] of [[0, rows, nTok], [Math.min(3, rows - 1), rows - (rows > 4 ? 2 : 0), Math.max(1, nTok - 1)]]) {
        fns.forEach((f, i) => { new Uint8Array(memory.buffer, ys[i], 4 * rows * nTok).fill(0); f(w, xqs[i], ys[i], cols, r0, r1, nt, rows); });
        const [a, b] = ys.map((y) => new Uint32Array(memory.buffer, y, rows * nTok));
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) mismatches++;
      }

      const iters = Math.max(1, Math.round(3e8 / (rows * cols * nTok)));
      const time = (i) => { const t0 = cpuMs(); for (let k = 0; k < iters; k++) fns[i](w, xqs[i], ys[i], cols, 0, rows, nTok, rows); return (cpuMs() - t0) / iters; };
      time(0), time(1);
      const ratios = [], oldMs = [];
      for (let r = 0; r < rounds; r++) {
        const [first, second] = r & 1 ? [1, 0] : [0, 1];
        const t = [];
        t[first] = time(first);
        t[second] = time(second);
        ratios.push(t[0] / t[1]);
        oldMs.push(t[0]);
      }
      const gbs = (nBlocks * blockBytes) / (median(oldMs) * 1e6);
      console.log(`${type} ${rows}x${cols} x ${nTok} tokens: old ${median(oldMs).toFixed(3)} ms (${gbs.toFixed(1)} GB/s, ${(nTok * 1000 / median(oldMs)).toFixed(0)} tok/s), new/old speed ${median(ratios).toFixed(3)}` +
        ` (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})${mismatches ? `, ${mismatches} outputs DIFFER` : ", bit-identical"}`);
      top = mark;
    }
  }
}
