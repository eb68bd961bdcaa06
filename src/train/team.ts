/**
 * Matrix products on several threads, synchronously: the trainer's graph code stays plain
 * sequential code, and each NT product (see linear.ts) is split by rows of W between the main
 * thread and `threads - 1` worker threads that share the kernel memory.
 *
 *   main:    write the arguments, bump `gen` and notify   ->  do rows [0, per)  ->  wait for `done`
 *   worker:  Atomics.wait on `gen`  ->  do its rows  ->  `done` += 1, notify
 *
 * Control block (SharedArrayBuffer): i32 gen, done, stop, failed | f64 y, w, x, rows, cols, n.
 *
 * The main thread blocks in Atomics.wait, which Node allows (browsers do not), so this is the
 * Node (and Deno/Bun, whose node:worker_threads behave the same) engine; elsewhere, and for
 * products too small to be worth a wake-up, the product runs on the calling thread. The workers
 * are instantiated from the same compiled kernels module as the main thread's.
 */
import { compileKernels, type Kernels } from "../kernels/index.js";
import { GGMLType } from "../formats/ggml-types.js";
import { kernelEngine, type MatmulEngine } from "./linear.js";

export interface MatmulTeam extends MatmulEngine {
  readonly threads: number;
  dispose(): Promise<void>;
}

/** Products below this many multiply-adds run on the calling thread. */
const MIN_PARALLEL_MACS = 1 << 18;
/** Token rows per kernel call: keep the x block (~256 KiB) in cache while W streams by. */
const BLOCK_BYTES = 256 << 10;

/**
 * Thread shares start at multiples of this many rows: the kernel sums blocks of rows together
 * and the last rows of a range apart, so shares aligned to its blocks give results bit-identical
 * to one thread's.
 */
const ROW_ALIGN = 16;

const GEN = 0, DONE = 1, STOP = 2, FAILED = 3;
/** Polls of the control word before Atomics.wait (tens of microseconds). */
const SPINS = 20000;

const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, control, index, parties, blockBytes } = workerData;
const ctl = new Int32Array(control, 0, 4);
const args = new Float64Array(control, 16, 6);
let matmul;
try {
  const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error("kernel abort"); } } });
  matmul = instance.exports.matmul_f32;
  parentPort.postMessage("ready");
} catch (e) {
  parentPort.postMessage("error: " + (e && e.message));
}
let gen = 0;
for (;;) {
  // Spin a little before sleeping: products come in quick succession, and a futex wake-up costs
  // more than most of them.
  for (let i = 0; i < ${SPINS} && Atomics.load(ctl, ${GEN}) === gen; i++);
  Atomics.wait(ctl, ${GEN}, gen);
  gen = Atomics.load(ctl, ${GEN});
  if (Atomics.load(ctl, ${STOP}) === 1) break;
  try {
    const y = args[0], w = args[1], x = args[2], rows = args[3], cols = args[4], n = args[5];
    const per = Math.ceil(rows / parties / ${ROW_ALIGN}) * ${ROW_ALIGN};
    const r0 = Math.min(rows, index * per), r1 = Math.min(rows, r0 + per);
    const tb = Math.max(1, Math.floor(blockBytes / (4 * cols)));
    if (r1 > r0) for (let t0 = 0; t0 < n; t0 += tb) matmul(w, x + 4 * t0 * cols, y + 4 * t0 * rows, cols, r0, r1, Math.min(tb, n - t0), rows);
  } catch (e) {
    Atomics.store(ctl, ${FAILED}, 1);
  }
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;

interface NodeWorker {
  on(event: "message" | "error" | "exit", f: (value: unknown) => void): void;
  once(event: "message" | "error" | "exit", f: (value: unknown) => void): void;
  unref(): void;
  ref(): void;
  terminate(): Promise<number>;
}

/**
 * A team of `threads` (the caller included). With threads <= 1, or without node:worker_threads,
 * it is the single-thread engine.
 */
export async function createMatmulTeam(k: Kernels, threads: number): Promise<MatmulTeam> {
  const single = kernelEngine(k);
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (threads <= 1 || k.backend !== "wasm" || !proc?.versions?.node) return { ...single, threads: 1, dispose: async () => undefined };
  const { Worker } = (await import("node:worker_threads")) as unknown as { Worker: new (src: string, o: object) => NodeWorker };
  const { module } = await compileKernels(k.build === "relaxed" ? "relaxed" : "simd");
  const control = new SharedArrayBuffer(16 + 6 * 8);
  const ctl = new Int32Array(control, 0, 4);
  const args = new Float64Array(control, 16, 6);
  const workers: NodeWorker[] = [];
  const ready: Promise<void>[] = [];
  for (let i = 1; i < threads; i++) {
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory: k.memory.memory, control, index: i, parties: threads, blockBytes: BLOCK_BYTES },
    });
    ready.push(
      new Promise((resolve, reject) => {
        w.once("message", (m) => (m === "ready" ? resolve() : reject(new Error(`matmul worker ${i}: ${String(m)}`))));
        w.once("error", (e) => reject(e instanceof Error ? e : new Error(String(e))));
      }),
    );
    workers.push(w);
  }
  await Promise.all(ready);
  // Idle workers must not keep the process alive (after start-up, which must).
  for (const w of workers) w.unref();
  let disposed = false;

  return {
    threads,
    nt(y, w, x, rows, cols, n) {
      if (disposed || rows < 2 * threads || rows * cols * n < MIN_PARALLEL_MACS) return single.nt(y, w, x, rows, cols, n);
      args[0] = y; args[1] = w; args[2] = x; args[3] = rows; args[4] = cols; args[5] = n;
      Atomics.store(ctl, DONE, 0);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
      // The caller's share: rows [0, per).
      const per = Math.ceil(rows / threads / ROW_ALIGN) * ROW_ALIGN;
      const tb = Math.max(1, Math.floor(BLOCK_BYTES / (4 * cols)));
      for (let t0 = 0; t0 < n; t0 += tb) k.matmul(GGMLType.F32, w, x + 4 * t0 * cols, y + 4 * t0 * rows, cols, 0, Math.min(per, rows), Math.min(tb, n - t0), rows);
      for (let i = 0; i < SPINS && Atomics.load(ctl, DONE) < threads - 1; i++);
      for (let d = Atomics.load(ctl, DONE); d < threads - 1; d = Atomics.load(ctl, DONE)) Atomics.wait(ctl, DONE, d);
      if (Atomics.load(ctl, FAILED) === 1) throw new Error("a matmul worker failed");
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      Atomics.store(ctl, STOP, 1);
      Atomics.add(ctl, GEN, 1);
      Atomics.notify(ctl, GEN);
      await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
        w.ref();
        w.once("exit", () => resolve());
        setTimeout(() => void w.terminate().then(() => resolve()), 2000).unref();
      })));
    },
  };
}
