#!/usr/bin/env node
// Matmul kernels of two builds in one process: speed ratio and bit identity, for Q4_0, Q8_0
// (32-value blocks) and Q4_K, Q5_K, Q6_K (256-value super-blocks).
//
//   git show <commit>:build/...  (or keep a copy of build/kernels.wasm before a change), then
//   node tools/bench-matmul-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]
//   e.g. node tools/bench-matmul-ab.mjs /tmp/old/kernels.wasm build/kernels.wasm 9 1,128 q4_0,q8_0 768x768,2048x768
//        node tools/bench-matmul-ab.mjs /tmp/old/kernels.wasm build/kernels.wasm 9 1,64 q4_k,q6_k 11008x4096,4096x11008
//   (relaxed builds under Node 20: node --experimental-wasm-relaxed-simd ...)
//
// Each instance has a memory of its own (a build's static data, its constant tables, sits at
// fixed low addresses, which another build would overwrite), holding the same random weights
// (valid f16 scales) and
// activations; each build quantizes the activations into its own layout. Each round times old
// and new back to back (the order alternating) in process CPU time, which a busy shared machine
// disturbs less than wall time; the ratio printed is the median over rounds of old time / new
// time, so > 1 means the new build is faster. GB/s is weight bytes over the median time. Any
// output that differs in a single bit (all rows, then an odd row slice with one token fewer) is
// reported.
import { readFileSync } from "node:fs";
import { halfBits } from "./half-bits.mjs";

const [oldPath, newPath, roundsArg = "9", tokensArg = "1,128", typesArg = "q4_0,q8_0", shapesArg = "768x768,2048x768,768x2048"] = process.argv.slice(2);
if (!oldPath || !newPath) {
  console.error("usage: node tools/bench-matmul-ab.mjs OLD.wasm NEW.wasm [rounds] [tokens] [types] [shapes]");
  process.exit(2);
}
const rounds = Number(roundsArg);
const memories = [0, 1].map(() => new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true }));
/** Setup writes go to the first memory; mirror() copies what it holds to the second. */
const memory = memories[0];
const mirror = (from, to) => new Uint8Array(memories[1].buffer, from, to - from).set(new Uint8Array(memory.buffer, from, to - from));
const instance = (path, memory) =>
  new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory, abort() { throw new Error("kernel abort"); } } }).exports;
const builds = [instance(oldPath, memories[0]), instance(newPath, memories[1])];
// As the loader does (src/kernels/wasm/loader.ts): Node before 22 never runs the i8 dot-add.
if (Number(process.versions.node.split(".")[0]) < 22) for (const b of builds) b.forbid_relaxed_dot_add?.();
// The relaxed build reads plain i8 codes for Q4_0 (assembly/q4_0.ts); both builds must be of one kind.
const relaxed = builds.map((b) => (b.relaxed ? b.relaxed() : 0));
if (relaxed[0] !== relaxed[1]) throw new Error("OLD and NEW must both be plain SIMD or both relaxed builds");

let seed = 12345;
const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
let top = 1 << 20;
const alloc = (n) => {
  const size = (n + 63) & ~63;
  top += size;
  for (const m of memories) {
    const need = Math.ceil(top / 65536) - m.buffer.byteLength / 65536;
    if (need > 0) m.grow(need);
  }
  return top - size;
};
/**
 * Blocks per panel in a build's layout of long rows (src/kernels/layout.ts): builds before panels
 * (no panel_columns export) keep whole rows.
 */
function panelBlocks(b, cols, blockSize) {
  if (!b.panel_columns || cols <= b.panel_min_columns()) return cols / blockSize;
  return b.panel_columns() / blockSize;
}

/**
 * The matrix at w (ggml's layout) copied to g in panels of P blocks (src/kernels/layout.ts),
 * each panel laid out by group(at, cols) in place; one panel (a plain copy) when P covers a row.
 */
function inPanels(mem, w, g, rows, cols, blockSize, blockBytes, P, group) {
  const nb = cols / blockSize;
  const rb = nb * blockBytes;
  for (let b0 = 0, at = g; b0 < nb; b0 += P) {
    const pb = Math.min(P, nb - b0);
    for (let r = 0; r < rows; r++) mem.copyWithin(at + r * pb * blockBytes, w + r * rb + b0 * blockBytes, w + r * rb + (b0 + pb) * blockBytes);
    group(at, pb * blockSize);
    at += rows * pb * blockBytes;
  }
}

/** A copy of the Q4_0 matrix at w in groups of four rows (layout: src/kernels/layout.ts), in panels of P blocks. */
function groupedCopy(w, rows, cols, P) {
  const g = alloc(rows * 18 * (cols / 32));
  inPanels(new Uint8Array(memory.buffer), w, g, rows, cols, 32, 18, P, (at, c) => groupInPlace(at, rows, c));
  return g;
}

/** The Q4_0 matrix at w (ggml's layout) in groups of four rows, in place. */
function groupInPlace(w, rows, cols) {
  const nb = cols / 32;
  const rowBytes = 18 * nb;
  const g = w;
  const src = new Uint8Array(memory.buffer, w, rows * rowBytes).slice();
  const dst = new Uint8Array(memory.buffer, g, rows * rowBytes);
  for (let r = 0; r < rows; r++) {
    const k = r & 3;
    for (let b = 0; b < nb; b++) {
      const o = r * rowBytes + 18 * b;
      const base = (r >> 2) * 4 * rowBytes + 72 * b;
      dst[base + 2 * k] = src[o];
      dst[base + 2 * k + 1] = src[o + 1];
      for (let c = 0; c < 16; c++) dst[base + 8 + 16 * (c >> 2) + 4 * k + (c & 3)] = src[o + 2 + c];
    }
  }
  return g;
}
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/**
 * Per type: values and bytes per block, where its f16 scales sit and how big they are (scale(k):
 * the k-th, with the magnitudes llama.cpp's quantizers give LLaMA-sized weights, as
 * tools/big-model.mjs: Q4_K's d and Q6_K's d are often or always subnormal halves, which the
 * kernels convert in their own way), and how a build quantizes activations for it (each build in
 * its own layout).
 */
const TYPES = {
  q4_0: { block: 32, bytes: 18, scales: [0], scale: () => (random() * 2 - 1) * 0.02, quantize: (b, i, x, xq, cols, nTok) => {
    if (b.quantize_q4_0) b.quantize_q4_0(x, xq, cols, 0, nTok);
    else if (relaxed[i]) b.quantize_q8_0(x, xq, cols, 0, nTok);
    else b.quantize_q8_0_i16(x, xq, cols, 0, nTok, 4);
  }, actBytes: (b, cols) => b.act_q8_0_i16_bytes(cols) },
  q8_0: { block: 32, bytes: 34, scales: [0], scale: () => (random() * 2 - 1) * 0.02, quantize: (b, i, x, xq, cols, nTok) => b.q8_0_act_i8?.() ? b.quantize_q8_0(x, xq, cols, 0, nTok) : b.quantize_q8_0_i16(x, xq, cols, 0, nTok, 8), actBytes: (b, cols) => b.act_q8_0_i16_bytes(cols),
    // ggml never writes a Q8_0 code of -128
    fix: (bytes, o) => { for (let j = 2; j < 34; j++) if (bytes[o + j] === 0x80) bytes[o + j] = 0x81; } },
  q4_k: { block: 256, bytes: 144, scales: [0, 2], scale: (k) => (0.5 + random()) * (k ? 0.0008 : 0.0001), quantize: (b, i, x, xq, cols, nTok) => b.quantize_q8_K_i16(x, xq, cols, 0, nTok), actBytes: (b, cols) => b.act_q8_K_i16_bytes(cols) },
  q5_k: { block: 256, bytes: 176, scales: [0, 2], scale: (k) => (0.5 + random()) * (k ? 0.0008 : 0.00005), quantize: (b, i, x, xq, cols, nTok) => b.quantize_q8_K_i16(x, xq, cols, 0, nTok), actBytes: (b, cols) => b.act_q8_K_i16_bytes(cols) },
  q6_k: { block: 256, bytes: 210, scales: [208], scale: () => (random() < 0.5 ? -1 : 1) * (0.5 + random()) * 0.000015, quantize: (b, i, x, xq, cols, nTok) => b.quantize_q8_K(x, xq, cols, 0, nTok), actBytes: (b, cols) => b.act_q8_K_bytes(cols) },
};

for (const type of typesArg.split(",")) {
  const t = TYPES[type];
  if (!t) throw new Error(`unknown type ${type}: ${Object.keys(TYPES).join(", ")}`);
  for (const [rows, cols] of shapesArg.split(",").map((s) => s.split("x").map(Number))) {
    for (const nTok of tokensArg.split(",").map(Number)) {
      const mark = top;
      const nBlocks = (rows * cols) / t.block;
      const w = alloc(nBlocks * t.bytes);
      const bytes = new Uint8Array(memory.buffer, w, nBlocks * t.bytes);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (random() * 256) | 0;
      for (let b = 0; b < nBlocks; b++) {
        const o = b * t.bytes;
        for (const [k, at] of t.scales.entries()) {
          const h = halfBits(t.scale(k));
          bytes[o + at] = h & 255;
          bytes[o + at + 1] = h >> 8;
        }
        t.fix?.(bytes, o);
      }
      const x = alloc(4 * nTok * cols);
      const xs = new Float32Array(memory.buffer, x, nTok * cols);
      for (let i = 0; i < xs.length; i++) xs[i] = (random() * 2 - 1) * 3;
      // Builds with fma.ts (fused_madd) read Q4_0 matrices of a multiple of 8 rows in groups of
      // four rows (src/kernels/layout.ts): such a build gets its own grouped copy.
      const ws = builds.map((b) => (type === "q4_0" && rows % 8 === 0 && b.fused_madd ? groupedCopy(w, rows, cols, panelBlocks(b, cols, 32)) : w));
      mirror(mark, top);
      // Builds with group_q4_K (group_q6_K) read Q4_K (Q6_K) matrices of a multiple of 4 rows in
      // groups of four rows (assembly/q4_k_r4.ts, q6_k_r4.ts): such a build lays out a copy of its
      // own with that function.
      const group = { q4_k: "group_q4_K", q6_k: "group_q6_K" }[type];
      if (group && rows % 4 === 0) {
        const size = nBlocks * t.bytes;
        const g = alloc(size), tmp = alloc(4 * (cols / 256) * t.bytes);
        builds.forEach((b, i) => {
          if (!b[group]) return;
          const mem = new Uint8Array(memories[i].buffer);
          inPanels(mem, w, g, rows, cols, 256, t.bytes, panelBlocks(b, cols, 256), (at, c) => b[group](at, rows, c, tmp));
          ws[i] = g;
        });
      }
      const xqs = builds.map((b, i) => {
        const xq = alloc(t.actBytes(b, cols) * nTok);
        t.quantize(b, i, x, xq, cols, nTok);
        return xq;
      });
      const ys = builds.map(() => alloc(4 * rows * nTok));
      const fns = builds.map((b) => b[`matmul_${type.replace("_k", "_K")}`]);

      let mismatches = 0;
      for (const [r0, r1, nt] of [[0, rows, nTok], [Math.min(3, rows - 1), rows - (rows > 4 ? 2 : 0), Math.max(1, nTok - 1)]]) {
        fns.forEach((f, i) => { new Uint8Array(memories[i].buffer, ys[i], 4 * rows * nTok).fill(0); f(ws[i], xqs[i], ys[i], cols, r0, r1, nt, rows); });
        const [a, b] = ys.map((y, i) => new Uint32Array(memories[i].buffer, y, rows * nTok));
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) mismatches++;
      }

      const iters = Math.max(1, Math.round(3e8 / (rows * cols * nTok)));
      const time = (i) => { const t0 = cpuMs(); for (let k = 0; k < iters; k++) fns[i](ws[i], xqs[i], ys[i], cols, 0, rows, nTok, rows); return (cpuMs() - t0) / iters; };
      time(0), time(1);
      const ratios = [], oldMs = [], newMs = [];
      for (let r = 0; r < rounds; r++) {
        const [first, second] = r & 1 ? [1, 0] : [0, 1];
        const ms = [];
        ms[first] = time(first);
        ms[second] = time(second);
        ratios.push(ms[0] / ms[1]);
        oldMs.push(ms[0]);
        newMs.push(ms[1]);
      }
      const gbs = (ms) => ((nBlocks * t.bytes) / 1e6 / ms).toFixed(2);
      const tps = (ms) => ((nTok * 1000) / ms).toFixed(1);
      console.log(`${type} ${rows}x${cols} x ${nTok} tokens: old ${median(oldMs).toFixed(3)} ms (${gbs(median(oldMs))} GB/s, ${tps(median(oldMs))} tok/s), ` +
        `new ${median(newMs).toFixed(3)} ms (${gbs(median(newMs))} GB/s, ${tps(median(newMs))} tok/s), new/old speed ${median(ratios).toFixed(3)}` +
        ` (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})${mismatches ? `, ${mismatches} outputs DIFFER` : ", bit-identical"}`);
      top = mark;
    }
  }
}
