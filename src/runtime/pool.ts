/**
 * The worker pool: N workers, each with the kernels instantiated over the shared memories, that
 * run a graph step together.
 *
 *   run(program):      one task per worker per step; inside the step the workers split every op
 *                      (rows, heads, elements) and meet at an Atomics barrier after each op.
 *   runPerOp(program): the alternative, one message round per op, no barrier; kept to measure
 *                      against (src/bench/kernels.ts) — barriers win, see the README.
 *
 * Memory layouts:
 *   one memory, T threads:          every worker reads the same weights and splits rows.
 *   M memories, T threads in all:   split "layers" (what models use, src/model/plan.ts): memory m
 *                                   holds whole layers; all T workers run one program that moves
 *                                   from memory to memory (`memory` ops), the residual stream copied
 *                                   across at the boundary (`transfer`). Any M with any T.
 *   M memories, T threads each:     split "tensor": memory m holds its own row slice of each matrix,
 *                                   runs its own program on its own T threads, and `gather` ops copy
 *                                   result slices to the others.
 *
 * Backends: Piscina (Node, Deno, Bun) or Web Workers (browsers, or Deno/Bun natively), chosen
 * automatically. Workers load compiled JS from dist/ (see workerUrl). create/dispose pairs:
 * always `await pool.dispose()`.
 */
import type { KernelMemory } from "../kernels/memory.js";
import { compileKernels, type KernelBuild } from "../kernels/wasm/loader.js";
import { BARRIER_WORDS, DEFAULT_SPINS } from "./barrier.js";
import type { EncodedProgram } from "../kernels/program.js";
import { CONTROL_BYTES, CONTROL_REGS, COUNTERS_PER_MEMORY, type PoolTask, type WorkerInit, type WorkerTask } from "./worker-core.js";

export type PoolBackend = "piscina" | "web";

export interface PoolOptions {
  /** One memory (threads share it) or one per tensor-parallel slice. */
  memories: readonly (KernelMemory | WebAssembly.Memory)[];
  /**
   * Split "tensor": threads per memory (default 1). Split "layers": all the threads, each
   * working on every memory in turn.
   */
  threadsPerMemory?: number;
  /** How several memories share the work (default "tensor"); see the header. */
  split?: "tensor" | "layers";
  /** Kernel build (default: relaxed SIMD where it validates). */
  build?: KernelBuild | "auto";
  /** Barrier spins before Atomics.wait. */
  spins?: number;
  /** Default: Piscina where `process.versions.node` exists (Node, Deno, Bun), else Web Workers. */
  backend?: PoolBackend;
}

export interface Pool {
  readonly backend: PoolBackend;
  readonly build: string;
  /** Total workers: memories x threadsPerMemory (split "tensor"), threadsPerMemory (split "layers"). */
  readonly threads: number;
  readonly threadsPerMemory: number;
  readonly memories: readonly WebAssembly.Memory[];
  /**
   * Run one step: programs[m] on memory m's threads (one program for a single memory), with
   * registers 0.. set from `regs`.
   */
  run(programs: EncodedProgram | readonly EncodedProgram[], regs?: readonly number[]): Promise<void>;
  /** The same with one message round per op instead of barriers. */
  runPerOp(programs: EncodedProgram | readonly EncodedProgram[], regs?: readonly number[]): Promise<void>;
  dispose(): Promise<void>;
}

export class PoolError extends Error {
  override name = "PoolError";
}

/** The worker script, compiled: a sibling when running from dist/, dist/runtime/ from sources. */
export function workerUrl(name: "worker-piscina" | "worker-web"): URL {
  const here = import.meta.url;
  return here.endsWith(".ts") ? new URL(`../../dist/runtime/${name}.js`, here) : new URL(`./${name}.js`, here);
}

/** @internal How tasks reach the workers; sync-pool.ts sends its long-lived ones through Piscina's. */
export interface Transport {
  send(worker: number, task: PoolTask): Promise<void>;
  close(): Promise<void>;
}

/** @internal */
export async function piscinaTransport(n: number, init: WorkerInit): Promise<Transport> {
  const url = workerUrl("worker-piscina");
  const { existsSync } = await import("node:fs");
  if (url.protocol === "file:" && !existsSync(url)) {
    throw new PoolError(`worker script ${url.pathname} is missing: run \`npm run build\` (workers load the compiled dist/)`);
  }
  const { Piscina } = await import("piscina");
  const pool = new Piscina({
    filename: url.href,
    minThreads: n,
    maxThreads: n,
    // A step's tasks wait for each other at barriers: each needs a worker of its own.
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    maxQueue: n * 4,
    workerData: init,
  });
  return {
    send: async (_w, task) => {
      await pool.run(task);
    },
    close: () => pool.destroy(),
  };
}

interface WebWorkerLike {
  postMessage(m: unknown): void;
  terminate(): void;
  onmessage: ((e: MessageEvent) => void) | null;
  onerror: ((e: unknown) => void) | null;
}

async function webTransport(n: number, init: WorkerInit): Promise<Transport> {
  const W = (globalThis as unknown as { Worker?: new (u: URL, o: { type: "module" }) => WebWorkerLike }).Worker;
  if (!W) throw new PoolError("no Worker in this runtime");
  const workers: WebWorkerLike[] = [];
  const pending: Array<{ resolve: () => void; reject: (e: Error) => void } | undefined> = [];
  const reply = (i: number, data: { ok?: boolean; error?: string }) => {
    const p = pending[i];
    pending[i] = undefined;
    if (!p) return;
    if (data.error) p.reject(new PoolError(`worker ${i}: ${data.error}`));
    else p.resolve();
  };
  const post = (i: number, m: unknown) =>
    new Promise<void>((resolve, reject) => {
      pending[i] = { resolve, reject };
      workers[i].postMessage(m);
    });
  for (let i = 0; i < n; i++) {
    const w = new W(workerUrl("worker-web"), { type: "module" });
    w.onmessage = (e) => reply(i, e.data as { ok?: boolean; error?: string });
    w.onerror = (e) => reply(i, { error: String((e as { message?: string })?.message ?? e) });
    workers.push(w);
  }
  await Promise.all(workers.map((_, i) => post(i, { init })));
  return {
    send: (i, task) => post(i, { task }),
    close: async () => workers.forEach((w) => w.terminate()),
  };
}

function detectBackend(): PoolBackend {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return proc?.versions?.node ? "piscina" : "web";
}

export async function createPool(options: PoolOptions): Promise<Pool> {
  const memories = options.memories.map((m) => ("memory" in m ? m.memory : m));
  if (memories.length === 0) throw new PoolError("a pool needs at least one memory");
  const threadsPerMemory = options.threadsPerMemory ?? 1;
  const layers = options.split === "layers";
  const threads = layers ? threadsPerMemory : memories.length * threadsPerMemory;
  const { module, build } = await compileKernels(options.build ?? "auto");
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  if (CONTROL_REGS < BARRIER_WORDS * 4) throw new PoolError("control layout");
  const regs = new Float64Array(control, CONTROL_REGS, 16);
  // per-op work counters, one set per memory's threads (a layer split's all share set 0)
  const groups = layers ? 1 : memories.length;
  const counters = new SharedArrayBuffer(4 * COUNTERS_PER_MEMORY * groups);
  const counterWords = new Int32Array(counters);
  const init: WorkerInit = {
    module, build, memories, control, parties: threads, threadsPerMemory, spins: options.spins ?? DEFAULT_SPINS, counters,
  };
  const backend = options.backend ?? detectBackend();
  const transport = backend === "piscina" ? await piscinaTransport(threads, init) : await webTransport(threads, init);
  let disposed = false;
  let busy = false;

  const programsFor = (p: EncodedProgram | readonly EncodedProgram[]): readonly EncodedProgram[] => {
    const list = "sab" in p ? [p] : p;
    if (layers ? list.length !== 1 : list.length !== memories.length) {
      throw new PoolError(`${list.length} programs for ${layers ? "a layer split (one program)" : `${memories.length} memories`}`);
    }
    return list;
  };
  const barrierWords = new Int32Array(control, 0, BARRIER_WORDS);
  const begin = (list: readonly EncodedProgram[], r?: readonly number[]) => {
    if (disposed) throw new PoolError("pool is disposed");
    if (busy) throw new PoolError("a step is already running");
    busy = true;
    // no worker is inside a step: every op's counter back to zero
    const ops = Math.min(COUNTERS_PER_MEMORY, Math.max(...list.map((x) => x.length)));
    for (let g = 0; g < groups; g++) counterWords.fill(0, g * COUNTERS_PER_MEMORY, g * COUNTERS_PER_MEMORY + ops);
    // No worker is inside a step now: clear what a failed step may have left (arrivals, abort).
    Atomics.store(barrierWords, 0, 0);
    Atomics.store(barrierWords, 2, 0);
    if (r) regs.set(r);
  };
  // Every worker's task settles before a step ends, failed or not: returning at the first
  // failure would let the next step reset the barrier while a released worker is still inside
  // this one, and the two steps' barrier arrivals would then pair up wrongly and hang.
  const all = async (from: number, to: number, list: readonly EncodedProgram[], barrier: boolean): Promise<void> => {
    const results = await Promise.allSettled(
      Array.from({ length: threads }, (_, w) => {
        // A layer split starts every worker on memory 0; the program's `memory` ops move them on.
        const memory = layers ? 0 : Math.floor(w / threadsPerMemory);
        const task: WorkerTask = { program: list[memory].sab, from, to, memory, thread: w % threadsPerMemory, barrier };
        return transport.send(w, task);
      }),
    );
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    // Report the failure itself, not the peers the barrier released because of it.
    if (errors.length > 0) throw errors.find((e) => !/BarrierAborted|another thread failed/.test(String(e?.message ?? e))) ?? errors[0];
  };

  return {
    backend, build, threads, threadsPerMemory, memories,
    async run(p, r) {
      const list = programsFor(p);
      begin(list, r);
      try {
        await all(0, Math.max(...list.map((x) => x.length)), list, true);
      } finally {
        busy = false;
      }
    },
    async runPerOp(p, r) {
      const list = programsFor(p);
      begin(list, r);
      try {
        const n = Math.max(...list.map((x) => x.length));
        for (let op = 0; op < n; op++) await all(op, op + 1, list, false);
      } finally {
        busy = false;
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await transport.close();
    },
  };
}
