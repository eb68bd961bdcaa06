/**
 * What a pool worker does, whatever started it (Piscina on Node/Deno/Bun, a Web Worker in a
 * browser): instantiate the kernels over every memory once, then run steps of a program.
 */
import { KernelMemory } from "../kernels/memory.js";
import type { Kernels } from "../kernels/types.js";
import { instantiateKernels } from "../kernels/wasm/loader.js";
import { wasmKernelsFromExports } from "../kernels/wasm/backend.js";
import { Barrier } from "./barrier.js";
import { execute } from "./executor.js";

/** Sent once when the worker starts. */
export interface WorkerInit {
  module: WebAssembly.Module;
  build: string;
  memories: WebAssembly.Memory[];
  /** Barrier words and registers (pool.ts lays it out). */
  control: SharedArrayBuffer;
  /** Threads in the whole pool (the barrier's parties) and per memory. */
  parties: number;
  threadsPerMemory: number;
  spins: number;
  /** Per-op work counters (executor.ts ThreadPlace.counters), COUNTERS_PER_MEMORY per memory's threads; zeroed by the pool before each step. */
  counters?: SharedArrayBuffer;
}

/** Counters per memory's threads: ops past this many split their rows in fixed slices only. */
export const COUNTERS_PER_MEMORY = 16384;

/** Memory m's threads' counters in `counters` (WorkerInit.counters). */
export function countersFor(counters: SharedArrayBuffer | undefined, m: number): Int32Array | undefined {
  return counters && new Int32Array(counters, 4 * COUNTERS_PER_MEMORY * m, COUNTERS_PER_MEMORY);
}

/** One task: run ops [from, to) of the program as `thread` of `memory`. */
export interface WorkerTask {
  program: SharedArrayBuffer;
  from: number;
  to: number;
  memory: number;
  thread: number;
  /** false: the caller synchronises by messages (one task per op), so no barrier. */
  barrier: boolean;
}

/**
 * A synchronous pool's worker (sync-pool.ts): it stays inside this one task, running each step the
 * caller starts through the control words, until told to stop.
 */
export interface ServeTask {
  serve: {
    /** The program slot: the caller copies each step's program here (capacity: its length in ops). */
    program: SharedArrayBuffer;
    /** This worker's index among the pool's threads (the caller is thread 0). */
    thread: number;
  };
}

export type PoolTask = WorkerTask | ServeTask;

export const CONTROL_BARRIER = 0;
/** Registers start after the barrier words, 8-byte aligned. */
export const CONTROL_REGS = 16;
export const CONTROL_BYTES = CONTROL_REGS + 16 * 8;
/**
 * A synchronous pool's words (Int32 indices), after the registers:
 * gen (bumped to start a step, or to stop), done (workers finished with the step), stop, failed,
 * ready (workers waiting for steps), ops (the program's length).
 */
export const SYNC = { gen: CONTROL_BYTES / 4, done: CONTROL_BYTES / 4 + 1, stop: CONTROL_BYTES / 4 + 2, failed: CONTROL_BYTES / 4 + 3, ready: CONTROL_BYTES / 4 + 4, ops: CONTROL_BYTES / 4 + 5 } as const;
/** Then the first failure's message, UTF-8, its byte length in the word before it. */
export const SYNC_ERROR = { length: CONTROL_BYTES / 4 + 6, at: CONTROL_BYTES + 8 * 4, bytes: 1024 } as const;
export const SYNC_CONTROL_BYTES = SYNC_ERROR.at + SYNC_ERROR.bytes;

export class WorkerState {
  private readonly kernels: Kernels[];
  private readonly barrier: Barrier;
  private readonly regs: Float64Array;

  constructor(readonly init: WorkerInit) {
    this.kernels = init.memories.map((m) =>
      wasmKernelsFromExports(new KernelMemory(m), instantiateKernels(init.module, m), init.build),
    );
    this.barrier = new Barrier(init.control, CONTROL_BARRIER, init.parties, init.spins);
    this.regs = new Float64Array(init.control, CONTROL_REGS, 16);
  }

  /**
   * Serve a synchronous pool: wait for `gen` to move (spinning first: steps come in quick
   * succession, and a futex wake-up costs more than most of them), run this thread's share of the
   * program in the slot, count itself `done`; until `stop`.
   */
  serve({ program, thread }: ServeTask["serve"]): void {
    const ctl = new Int32Array(this.init.control);
    const slots = new Float64Array(program);
    const place = { thread, threads: this.init.parties, peers: [] };
    let gen = Atomics.load(ctl, SYNC.gen);
    Atomics.add(ctl, SYNC.ready, 1);
    Atomics.notify(ctl, SYNC.ready);
    for (;;) {
      for (let i = 0; i < this.init.spins && Atomics.load(ctl, SYNC.gen) === gen; i++);
      Atomics.wait(ctl, SYNC.gen, gen);
      gen = Atomics.load(ctl, SYNC.gen);
      if (Atomics.load(ctl, SYNC.stop) === 1) return;
      try {
        execute(this.kernels[0], slots, 0, Atomics.load(ctl, SYNC.ops), this.regs, place, this.barrier);
      } catch (e) {
        // The first failure tells its message; a peer the abort released has nothing to add.
        if (Atomics.compareExchange(ctl, SYNC.failed, 0, 1) === 0) {
          const text = new TextEncoder().encode(`thread ${thread}: ${String((e as Error)?.message ?? e)}`).subarray(0, SYNC_ERROR.bytes);
          new Uint8Array(this.init.control, SYNC_ERROR.at, SYNC_ERROR.bytes).set(text);
          Atomics.store(ctl, SYNC_ERROR.length, text.length);
        }
        this.barrier.abort();
      }
      Atomics.add(ctl, SYNC.done, 1);
      Atomics.notify(ctl, SYNC.done);
    }
  }

  run(task: WorkerTask): void {
    const k = this.kernels[task.memory];
    const peers = this.init.memories.filter((_, i) => i !== task.memory);
    try {
      execute(
        k, new Float64Array(task.program), task.from, task.to, this.regs,
        { thread: task.thread, threads: this.init.threadsPerMemory, peers, memories: this.kernels, counters: countersFor(this.init.counters, task.memory) },
        task.barrier ? this.barrier : undefined,
      );
    } catch (e) {
      this.barrier.abort();
      throw e;
    }
  }
}
