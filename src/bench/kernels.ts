/**
 * Kernel speed: matrix x vector for every weight type at real LLaMA sizes, on 1 and 2 worker
 * threads, against the memory bandwidth WebAssembly can stream on this machine; and the cost of
 * synchronising a graph step with barriers versus one message per op.
 *
 *   npm run bench -- kernels                 all sizes (4096x4096, 11008x4096, 32000x4096, 768x768)
 *   KERNEL_BENCH_QUICK=1 npm run bench -- kernels    768x768 and 4096x4096 only
 *   KERNEL_BENCH_RELAXED=1 ...   Node 20: turn on V8's experimental relaxed SIMD first (the
 *                                relaxed build is what Deno, Bun, Chromium and Node 22+ run)
 *
 * GB/s counts weight bytes streamed per product (GB = 10^9); GFLOP/s counts 2*rows*cols. Every
 * figure is the median of tinybench's samples; each step goes through the worker pool exactly as
 * a forward pass would (quantize the input, then the split matmul), so it includes the per-step
 * hand-off. Memory is filled with valid blocks (finite f16 scales: subnormal or NaN scales would
 * measure the FPU's slow paths, not the kernel).
 */
import { Bench } from "tinybench";
import { GGMLType, GGML_TYPES } from "../formats/ggml-types.js";
import { f32ToF16 } from "../formats/quants/half.js";
import { KernelMemory } from "../kernels/memory.js";
import { enableRelaxedSimd } from "../kernels/wasm/loader.js";
import { MATMUL_TYPES, rowBytes, type MatmulType } from "../kernels/reference/matmul.js";
import { groupRows, isGrouped } from "../kernels/layout.js";
import { actBytes } from "../kernels/reference/backend.js";
import { createPool, type Pool } from "../runtime/pool.js";
import { encodeProgram, type Op } from "../kernels/program.js";

const SIZES: Array<[rows: number, cols: number]> = process.env.KERNEL_BENCH_QUICK
  ? [[768, 768], [4096, 4096]]
  : [[4096, 4096], [11008, 4096], [32000, 4096], [768, 768]];
const THREADS = [1, 2];

/** Median and fastest seconds per call of an async step (declared `async`: tinybench then never probes it by calling). */
async function timing(name: string, fn: () => Promise<void>, time = 400): Promise<{ median: number; best: number }> {
  const bench = new Bench({ time, warmupTime: 50, warmupIterations: 3, iterations: 5 });
  bench.add(name, fn);
  const [task] = await bench.run();
  const r = task.result;
  if (r.state !== "completed") throw new Error(`${name}: ${r.state}`, { cause: "error" in r ? r.error : undefined });
  return { median: r.latency.p50 / 1000, best: r.latency.min / 1000 };
}

async function median(name: string, fn: () => Promise<void>, time = 400): Promise<number> {
  return (await timing(name, fn, time)).median;
}

/** xorshift32 stream, for filling memory quickly and deterministically. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** Fill `rows` rows of `type` at w: 64 distinct valid rows, tiled. */
function fillWeights(mem: KernelMemory, type: MatmulType, w: number, rows: number, cols: number): void {
  const rb = rowBytes(type, cols);
  const tile = Math.min(rows, 64);
  const bytes = mem.u8(w, rb * tile);
  const next = xorshift(type * 7919 + cols);
  for (let i = 0; i < bytes.length; i += 4) {
    const v = next();
    bytes[i] = v;
    bytes[i + 1] = v >>> 8;
    bytes[i + 2] = v >>> 16;
    bytes[i + 3] = v >>> 24;
  }
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  const setHalf = (o: number, x: number) => {
    const h = f32ToF16(x);
    bytes[o] = h & 255;
    bytes[o + 1] = h >> 8;
  };
  if (type === GGMLType.F32) {
    const f = mem.f32(w, (rb * tile) / 4);
    for (let i = 0; i < f.length; i++) f[i] = (next() / 2 ** 32 - 0.5) * 0.1;
  } else if (type === GGMLType.F16) {
    for (let i = 0; i < bytes.length; i += 2) setHalf(i, (next() / 2 ** 32 - 0.5) * 0.1);
  } else {
    // The f16 scale fields of each block: d (and dmin) at the front, Q6_K's, Q3_K's and Q2_K's at the end.
    const scaleOffsets = type === GGMLType.Q6_K ? [208] : type === GGMLType.Q3_K ? [108] : type === GGMLType.Q2_K ? [80, 82]
      : type === GGMLType.Q4_K || type === GGMLType.Q5_K || type === GGMLType.Q4_1 || type === GGMLType.Q5_1 ? [0, 2] : [0];
    for (let b = 0; b < (rb * tile) / bytesPerBlock; b++) {
      for (const o of scaleOffsets) setHalf(b * bytesPerBlock + o, 0.001 + (next() / 2 ** 32) * 0.01);
    }
  }
  void blockSize;
  const all = mem.u8(w, rb * rows);
  for (let r = tile; r < rows; r += tile) all.copyWithin(r * rb, 0, Math.min(tile, rows - r) * rb);
  // As the loader lays them out (src/kernels/layout.ts).
  if (isGrouped(type, rows)) groupRows(type, all, cols);
}

function table(head: string[], rows: string[][]): string {
  const line = (c: string[]) => `| ${c.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Streaming-read GB/s by thread count, measured now (the machine's load drifts; see below). */
async function bandwidth(mem: KernelMemory, pools: Map<number, Pool>, time: number): Promise<Map<number, number>> {
  const bytes = 256 << 20;
  const mark = mem.mark();
  const p = mem.alloc(bytes);
  mem.u8(p, bytes).fill(1);
  const prog = encodeProgram([{ op: "streamRead", ptr: p, bytes }]);
  const out = new Map<number, number>();
  for (const t of THREADS) {
    const pool = pools.get(t)!;
    const s = await median(`stream ${t}t`, async () => { await pool.run(prog); }, time);
    out.set(t, bytes / s / 1e9);
  }
  mem.release(mark);
  return out;
}

/** A LLaMA-style layer of a 125M model (dim 768, 12 heads / 4 kv heads, ffn 2048) as one step. */
function layerProgram(mem: KernelMemory, type: MatmulType): Op[] {
  const dim = 768, kv = 256, ffn = 2048;
  const mat = (rows: number, cols: number) => {
    const w = mem.alloc(rowBytes(type, cols) * rows);
    fillWeights(mem, type, w, rows, cols);
    return w;
  };
  const wq = mat(dim, dim), wk = mat(kv, dim), wv = mat(kv, dim), wo = mat(dim, dim);
  const wg = mat(ffn, dim), wu = mat(ffn, dim), wd = mat(dim, ffn);
  const x = mem.alloc(4 * dim), h = mem.alloc(4 * dim), norm = mem.alloc(4 * dim);
  mem.f32(x, dim).fill(0.5);
  mem.f32(norm, dim).fill(1);
  const hq = mem.alloc(actBytes(type, dim)), fq = mem.alloc(actBytes(type, ffn));
  const q = mem.alloc(4 * dim), k = mem.alloc(4 * kv), v = mem.alloc(4 * kv), o = mem.alloc(4 * dim);
  const g = mem.alloc(4 * ffn), u = mem.alloc(4 * ffn), s = mem.alloc(4 * ffn), y = mem.alloc(4 * dim);
  const mm = (w: number, xq: number, out: number, rows: number, cols: number, sync = true): Op => ({
    op: "matmul", type, w, xq, y: out, cols, rows, nTok: 1, ldy: rows, sync,
  });
  return [
    { op: "rmsnorm", x, w: norm, y: h, n: dim, eps: 1e-5, nTok: 1 },
    { op: "quantize", type, x: h, xq: hq, cols: dim, nTok: 1 },
    mm(wq, hq, q, dim, dim, false), mm(wk, hq, k, kv, dim, false), mm(wv, hq, v, kv, dim),
    // (attention itself is a few microseconds at short contexts; o takes q's place here)
    { op: "quantize", type, x: q, xq: hq, cols: dim, nTok: 1 },
    mm(wo, hq, o, dim, dim),
    { op: "add", a: x, b: o, out: x, n: dim },
    { op: "rmsnorm", x, w: norm, y: h, n: dim, eps: 1e-5, nTok: 1 },
    { op: "quantize", type, x: h, xq: hq, cols: dim, nTok: 1 },
    mm(wg, hq, g, ffn, dim, false), mm(wu, hq, u, ffn, dim),
    { op: "swiglu", a: g, b: u, out: s, n: ffn },
    { op: "quantize", type, x: s, xq: fq, cols: ffn, nTok: 1 },
    mm(wd, fq, y, dim, ffn),
    { op: "add", a: x, b: y, out: x, n: dim },
  ];
}

export default async function kernelsBench(): Promise<void> {
  if (process.env.KERNEL_BENCH_RELAXED) await enableRelaxedSimd();
  const mem = KernelMemory.create({ initialBytes: 64 << 20 });
  const pools = new Map<number, Pool>();
  try {
    for (const t of THREADS) pools.set(t, await createPool({ memories: [mem], threadsPerMemory: t }));
    const build = pools.get(1)!.build;
    console.log(`kernel build: ${build}; backend: ${pools.get(1)!.backend}; node ${process.version}`);

    const { loadavg } = await import("node:os");
    console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    const bw = await bandwidth(mem, pools, 1500);
    console.log("\nWASM streaming read (v128 loads, 256 MiB):");
    console.log(table(["threads", "GB/s"], THREADS.map((t) => [String(t), bw.get(t)!.toFixed(1)])));

    // Each size's fractions use a streaming read measured just before it: on a shared machine
    // the available bandwidth moves with other processes' load.
    const rowsOut: string[][] = [];
    for (const [rows, cols] of SIZES) {
      const bwNow = await bandwidth(mem, pools, 400);
      for (const type of MATMUL_TYPES) {
        const mark = mem.mark();
        const rb = rowBytes(type, cols);
        const w = mem.alloc(rb * rows);
        fillWeights(mem, type, w, rows, cols);
        const x = mem.alloc(4 * cols);
        const xs = mem.f32(x, cols);
        for (let i = 0; i < cols; i++) xs[i] = Math.sin(i * 0.37);
        const xq = mem.alloc(actBytes(type, cols));
        const y = mem.alloc(4 * rows);
        const prog = encodeProgram([
          { op: "quantize", type, x, xq, cols, nTok: 1 },
          { op: "matmul", type, w, xq, y, cols, rows, nTok: 1, ldy: rows },
        ]);
        const cells: string[] = [`${GGMLType[type]}`, `${rows}x${cols}`];
        for (const t of THREADS) {
          const pool = pools.get(t)!;
          const { median: s, best } = await timing(`${GGMLType[type]} ${rows}x${cols} ${t}t`, async () => { await pool.run(prog); });
          const gbs = (rb * rows) / s / 1e9;
          cells.push(
            gbs.toFixed(2), ((rb * rows) / best / 1e9).toFixed(2), ((2 * rows * cols) / s / 1e9).toFixed(1),
            `${Math.round((100 * gbs) / bwNow.get(t)!)}%`,
          );
        }
        rowsOut.push(cells);
        mem.release(mark);
      }
      rowsOut.push(["(stream read)", `${rows}x${cols}`, bwNow.get(1)!.toFixed(1), "", "", "", bwNow.get(2)!.toFixed(1), "", "", ""]);
    }
    console.log(
      "\nMatrix x vector by threads: weight GB/s (median; fastest sample), GFLOP/s (median), and the median's" +
        " fraction of the streaming read measured just before:",
    );
    console.log(
      table(
        ["type", "rows x cols", "1t GB/s", "1t best", "1t GFLOP/s", "1t of bw", "2t GB/s", "2t best", "2t GFLOP/s", "2t of bw"],
        rowsOut,
      ),
    );

    const sync: string[][] = [];
    for (const type of [GGMLType.Q4_0, GGMLType.Q8_0] as const) {
      const mark = mem.mark();
      const prog = encodeProgram(layerProgram(mem, type));
      for (const t of THREADS) {
        const pool = pools.get(t)!;
        const barrier = await median(`layer barrier ${t}t`, async () => { await pool.run(prog); }, 800);
        const perOp = await median(`layer per-op ${t}t`, async () => { await pool.runPerOp(prog); }, 800);
        sync.push([GGMLType[type], String(t), (barrier * 1e6).toFixed(0), (perOp * 1e6).toFixed(0)]);
      }
      mem.release(mark);
    }
    console.log("\nOne 125M-model layer step (16 ops, 7 matvecs, dim 768), microseconds per step:");
    console.log(table(["type", "threads", "barriers (1 task/worker/step)", "1 message round per op"], sync));
    console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  } finally {
    for (const p of pools.values()) await p.dispose();
  }
}
