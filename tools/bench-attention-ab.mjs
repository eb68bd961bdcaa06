#!/usr/bin/env node
// The attention kernel of two builds in one process, over an f16 KV cache: speed ratio and bit
// identity (tools/bench-matmul-ab.mjs does the same for the matrix products).
//
//   node tools/bench-attention-ab.mjs OLD.wasm NEW.wasm [positions] [headDim] [heads] [kvHeads] [queries] [rounds]
//   e.g. node tools/bench-attention-ab.mjs /tmp/old/kernels-relaxed.wasm build/kernels-relaxed.wasm 1024 128 32 32 1 21
//   (relaxed builds under Node 20: node --experimental-wasm-relaxed-simd ...)
//
// Each build gets a memory of its own (their static data sits at the same low addresses) with the
// same random query rows and K / V cache (f16, `positions` past positions plus the queries'),
// and runs all heads for `queries` queries at positions positions.. (5 calls per round), old and
// new alternating; the ratio is the median over rounds of old time / new time (> 1: new is
// faster). Use 21 rounds or more: V8 tiers a kernel up during the first rounds.
import { readFileSync } from "node:fs";
const [oldPath, newPath, nKvArg = "1024", hdArg = "128", nHeadArg = "32", nKvHeadArg = "32", tokArg = "1", roundsArg = "21"] = process.argv.slice(2);
if (!oldPath || !newPath) {
  console.error("usage: node tools/bench-attention-ab.mjs OLD.wasm NEW.wasm [positions] [headDim] [heads] [kvHeads] [queries] [rounds]");
  process.exit(2);
}
const nKv = +nKvArg, headDim = +hdArg, nHead = +nHeadArg, nKvHead = +nKvHeadArg, nTok = +tokArg, rounds = +roundsArg;
const mk = (path) => { const memory = new WebAssembly.Memory({ initial: 2048, maximum: 65536, shared: true }); const ex = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory, abort() { throw new Error("abort"); } } }).exports; ex.forbid_relaxed_dot_add?.(); return { memory, ex }; };
const builds = [mk(oldPath), mk(newPath)];
const qRow = nHead * headDim, kvRow = nKvHead * headDim;
const base = 1 << 22;
const q = base, k = q + nTok * qRow * 4, v = k + (nKv + nTok) * kvRow * 2, out = v + (nKv + nTok) * kvRow * 2, scores = out + nTok * qRow * 4, qh = scores + (nKv + nTok) * 4 * 4 + 4096;
let seed = 1; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
/** f16 bits of x (truncated; values of normal range only, enough for random test data). */
const f16 = (x) => { const f = new Float32Array([x]); const i = new Uint32Array(f.buffer)[0]; const s = (i >>> 16) & 0x8000; const e = ((i >>> 23) & 255) - 112; if (e <= 0) return s; return s | (e << 10) | ((i >>> 13) & 1023); };
const Q = Float32Array.from({ length: nTok * qRow }, () => (rnd() * 2 - 1) * 3);
const K = Uint16Array.from({ length: (nKv + nTok) * kvRow }, () => f16((rnd() * 2 - 1) * 2));
const V = Uint16Array.from({ length: (nKv + nTok) * kvRow }, () => f16(rnd() * 2 - 1));
for (const b of builds) { new Float32Array(b.memory.buffer, q, Q.length).set(Q); new Uint16Array(b.memory.buffer, k, K.length).set(K); new Uint16Array(b.memory.buffer, v, V.length).set(V); }
const times = [[], []];
for (let r = 0; r < rounds; r++) for (const i of r % 2 ? [1, 0] : [0, 1]) {
  const t0 = process.hrtime.bigint();
  for (let it = 0; it < 5; it++) builds[i].ex.attention(q, k, v, out, scores, qh, nHead, nKvHead, headDim, nKv, nTok, 1, 0.125, 0, nHead, 0);
  times[i].push(Number(process.hrtime.bigint() - t0) / 5e6);
}
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const A = new Uint32Array(builds[0].memory.buffer, out, nTok * qRow), B = new Uint32Array(builds[1].memory.buffer, out, nTok * qRow);
let diff = 0; for (let i = 0; i < A.length; i++) if (A[i] !== B[i]) diff++;
console.log(`${process.version} attention f16 cache, ${nKv} positions, head ${headDim}, ${nHead}/${nKvHead} heads, ${nTok} queries: old ${med(times[0]).toFixed(3)} ms, new ${med(times[1]).toFixed(3)} ms, new/old speed ${(med(times[0]) / med(times[1])).toFixed(2)}, ${diff ? diff + " outputs DIFFER" : "bit-identical"}`);
