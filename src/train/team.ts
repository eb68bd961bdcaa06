/**
 * Matrix products on several threads, synchronously: the trainer's graph code stays plain
 * sequential code, and each NT product (see linear.ts) is split by rows of W between the calling
 * thread and `threads - 1` workers of src/runtime's synchronous pool (createSyncPool), which share
 * the kernel memory. One product is one pool step: a program of F32 matmul ops, one per block of
 * tokens (as kernelEngine blocks them), whose addresses come from registers, so the program of a
 * shape is encoded once.
 *
 * The F32 kernel sums every row's dot product the same way whatever rows share a call
 * (assembly/f16.ts), so any row split gives the single thread's results bit for bit.
 *
 * The calling thread blocks while the workers finish, which Node (and Deno/Bun) allow and browsers
 * do not, so this is the Node engine; elsewhere, and for products too small to be worth a
 * wake-up, the product runs on the calling thread.
 */
import type { Kernels } from "../kernels/index.js";
import { GGMLType } from "../formats/ggml-types.js";
import { createSyncPool, encodeProgram, type EncodedProgram, type Op, type SyncPoolOptions } from "../runtime/index.js";
import { kernelEngine, type MatmulEngine } from "./linear.js";

export interface MatmulTeam extends MatmulEngine {
  readonly threads: number;
  dispose(): Promise<void>;
}

/** Products below this many multiply-adds run on the calling thread. */
const MIN_PARALLEL_MACS = 1 << 18;
/** Token rows per kernel call: keep the x block (~256 KiB) in cache while W streams by. */
const BLOCK_BYTES = 256 << 10;
/** Registers of a product step: y, w, x. */
const Y = 0, W = 1, X = 2;

/**
 * A team of `threads` (the caller included). With threads <= 1, or without node:worker_threads,
 * it is the single-thread engine.
 */
export async function createMatmulTeam(k: Kernels, threads: number, options: SyncPoolOptions = {}): Promise<MatmulTeam> {
  const single = kernelEngine(k);
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (threads <= 1 || k.backend !== "wasm" || !proc?.versions?.node) return { ...single, threads: 1, dispose: async () => undefined };
  const pool = await createSyncPool(k, threads, options);
  /** Each shape's program(s): the token blocks, at most pool.maxOps per step. */
  const programs = new Map<string, EncodedProgram[]>();
  const programsFor = (rows: number, cols: number, n: number): EncodedProgram[] => {
    const key = `${rows}x${cols}x${n}`;
    let list = programs.get(key);
    if (!list) {
      const tb = Math.max(1, Math.floor(BLOCK_BYTES / (4 * cols)));
      const ops: Op[] = [];
      for (let t0 = 0; t0 < n; t0 += tb) {
        ops.push({
          op: "matmul", type: GGMLType.F32, w: { reg: W }, xq: { reg: X, add: 4 * t0 * cols }, y: { reg: Y, add: 4 * t0 * rows },
          cols, rows, nTok: Math.min(tb, n - t0), ldy: rows, sync: false,
        });
      }
      list = [];
      for (let i = 0; i < ops.length; i += pool.maxOps) list.push(encodeProgram(ops.slice(i, i + pool.maxOps)));
      programs.set(key, list);
    }
    return list;
  };
  let disposed = false;

  return {
    threads,
    nt(y, w, x, rows, cols, n) {
      if (disposed || rows < 2 * threads || rows * cols * n < MIN_PARALLEL_MACS) return single.nt(y, w, x, rows, cols, n);
      const regs = [y, w, x];
      for (const program of programsFor(rows, cols, n)) pool.run(program, regs);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await pool.dispose();
    },
  };
}
