#!/usr/bin/env node
// Q4_K / Q5_K / Q6_K matmul kernels of two builds in one process: speed ratio and bit identity
// (the k-quant counterpart of bench-matmul-ab.mjs).
//
//   node tools/bench-kquants-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]
//   e.g. node tools/bench-kquants-ab.mjs /tmp/old/kernels.wasm build/kernels.wasm 9 1,64 q4_k,q6_k 11008x4096,4096x11008
//   (relaxed builds under Node 20: node --experimental-wasm-relaxed-simd ...)
//
// As bench-matmul-ab.mjs: one memory, one set of random weights (valid f16 scales) and
// activations, old and new timed back to back with the order alternating, process CPU time;
// the ratio is the median over rounds of old time / new time (> 1: the new build is faster).
// GB/s is weight bytes over the new build's median time. Outputs are compared bit for bit
// (all rows, then an odd row slice with one token fewer).
import { readFileSync } from "node:fs";

const [oldPath, newPath, roundsArg = "9", tokensArg = "1,64", typesArg = "q4_k,q5_k,q6_k", shapesArg = "11008x4096,4096x11008"] = process.argv.slice(2);
if (!oldPath || !newPath) {
  console.error("usage: node tools/bench-kquants-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]");
  process.exit(2);
}
const rounds = Number(roundsArg);
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
const instance = (path) =>
  new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory, abort() { throw new Error("kernel abort"); } } }).exports;
const builds = [instance(oldPath), instance(newPath)];

let seed = 12345;
const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
let top = 1 << 20;
const alloc = (n) => {
  const size = (n + 63) & ~63;
  top += size;
  const need = Math.ceil(top / 65536) - memory.buffer.byteLength / 65536;
  if (need > 0) memory.grow(need);
  return top - size;
};
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
/** f16 bits of a small normal number (enough for random block scales). */
const f16 = (v) => { const i = new Uint32Array(new Float32Array([v]).buffer)[0]; return ((i >>> 16) & 0x8000) | ((((i >>> 23) & 255) - 112) << 10) | ((i >>> 13) & 1023); };
const BLOCK = { q4_k: 144, q5_k: 176, q6_k: 210 };

for (const type of typesArg.split(",")) {
  const blockBytes = BLOCK[type];
  const i16 = type !== "q6_k";
  for (const [rows, cols] of shapesArg.split(",").map((s) => s.split("x").map(Number))) {
    for (const nTok of tokensArg.split(",").map(Number)) {
      const mark = top;
      const nBlocks = (rows * cols) / 256;
      const w = alloc(nBlocks * blockBytes);
      const bytes = new Uint8Array(memory.buffer, w, nBlocks * blockBytes);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (random() * 256) | 0;
      const put = (o, v) => { const h = f16(v); bytes[o] = h & 255; bytes[o + 1] = h >> 8; };
      for (let b = 0; b < nBlocks; b++) {
        const o = b * blockBytes;
        const scale = () => (0.5 + random()) * 0.002; // normal halves only
        if (type === "q6_k") put(o + 208, random() < 0.5 ? -scale() : scale());
        else { put(o, scale()); put(o + 2, scale()); }
      }
      const x = alloc(4 * nTok * cols);
      const xs = new Float32Array(memory.buffer, x, nTok * cols);
      for (let i = 0; i < xs.length; i++) xs[i] = (random() * 2 - 1) * 3;
      const stride = i16 ? builds[0].act_q8_K_i16_bytes(cols) : builds[0].act_q8_K_bytes(cols);
      // each build quantizes its own copy (their activation layouts may differ)
      const xqs = builds.map((b) => {
        const xq = alloc(stride * nTok);
        if (i16) b.quantize_q8_K_i16(x, xq, cols, 0, nTok);
        else b.quantize_q8_K(x, xq, cols, 0, nTok);
        return xq;
      });
      const ys = builds.map(() => alloc(4 * rows * nTok));
      const name = `matmul_${type.replace("_k", "_K")}`;
      const fns = builds.map((b) => b[name]);

      let mismatches = 0;
      for (const [r0, r1, nt] of [[0, rows, nTok], [Math.min(3, rows - 1), rows - (rows > 4 ? 2 : 0), Math.max(1, nTok - 1)]]) {
        fns.forEach((f, i) => { new Uint8Array(memory.buffer, ys[i], 4 * rows * nTok).fill(0); f(w, xqs[i], ys[i], cols, r0, r1, nt, rows); });
        const [a, b] = ys.map((y) => new Uint32Array(memory.buffer, y, rows * nTok));
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) { if (process.env.AB_DEBUG && mismatches < 5) console.log(r0, r1, nt, i, a[i].toString(16), b[i].toString(16)); mismatches++; }
      }

      const iters = Math.max(1, Math.round(3e8 / (rows * cols * nTok)));
      const time = (i) => { const t0 = cpuMs(); for (let k = 0; k < iters; k++) fns[i](w, xqs[i], ys[i], cols, 0, rows, nTok, rows); return (cpuMs() - t0) / iters; };
      time(0), time(1);
      const ratios = [], oldMs = [], newMs = [];
      for (let r = 0; r < rounds; r++) {
        const [first, second] = r & 1 ? [1, 0] : [0, 1];
        const t = [];
        t[first] = time(first);
        t[second] = time(second);
        ratios.push(t[0] / t[1]);
        oldMs.push(t[0]);
        newMs.push(t[1]);
      }
      const gbs = (ms) => (nBlocks * blockBytes / 1e6 / ms).toFixed(2);
      const tps = (ms) => (nTok * 1000 / ms).toFixed(1);
      console.log(`${type} ${rows}x${cols} x ${nTok} tokens: old ${median(oldMs).toFixed(2)} ms (${gbs(median(oldMs))} GB/s, ${tps(median(oldMs))} tok/s), ` +
        `new ${median(newMs).toFixed(2)} ms (${gbs(median(newMs))} GB/s, ${tps(median(newMs))} tok/s), new/old speed ${median(ratios).toFixed(3)}` +
        ` (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})${mismatches ? `, ${mismatches} outputs DIFFER` : ", bit-identical"}`);
      top = mark;
    }
  }
}
