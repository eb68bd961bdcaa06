/**
 * Synchronous steps: the calling thread runs a program together with the pool's workers and
 * blocks until they are done, so plain sequential code (the trainer's graph, src/train/team.ts)
 * can hand out work without awaiting. The workers are the pool's (Piscina, worker-core.ts), each
 * inside one long task (`serve`) that waits on a control word between steps:
 *
 *   caller:  copy the program into the slot (if new), set registers, bump `gen`, notify
 *            ->  its own share, as thread 0  ->  wait for `done` = threads - 1
 *   worker:  Atomics.wait on `gen`  ->  its share of every op  ->  `done` += 1, notify
 *
 * Ops split as in any step (executor.ts) and meet at the same barrier, the caller included. The
 * caller blocks in Atomics.wait, which Node, Deno and Bun allow on the main thread and browsers do
 * not: there, use createPool's asynchronous steps. Always `await pool.dispose()`.
 */
import type { Kernels } from "../kernels/types.js";
import { compileKernels } from "../kernels/wasm/loader.js";
import { OP_SLOTS, REGISTERS, type EncodedProgram } from "../kernels/program.js";
import { Barrier, BarrierAborted, DEFAULT_SPINS } from "./barrier.js";
import { execute } from "./executor.js";
import { piscinaTransport, PoolError } from "./pool.js";
import { CONTROL_BARRIER, CONTROL_REGS, SYNC, SYNC_CONTROL_BYTES, SYNC_ERROR, type WorkerInit } from "./worker-core.js";

export interface SyncPoolOptions {
  /** Longest program a step may run, in ops (default 256): the size of the shared program slot. */
  maxOps?: number;
  /** Spins before Atomics.wait, for the caller and the workers (default DEFAULT_SPINS). */
  spins?: number;
}

export interface SyncPool {
  /** Threads in a step, the caller included. */
  readonly threads: number;
  /** The longest program run() takes, in ops. */
  readonly maxOps: number;
  /** Run `program` with registers 0.. set from `regs`, the caller as thread 0; returns when every thread is done. */
  run(program: EncodedProgram, regs?: readonly number[]): void;
  dispose(): Promise<void>;
}

/**
 * A synchronous pool of `threads` over the wasm kernels `k` (their memory and build): the caller
 * and `threads - 1` workers.
 */
export async function createSyncPool(k: Kernels, threads: number, options: SyncPoolOptions = {}): Promise<SyncPool> {
  if (!Number.isInteger(threads) || threads < 2) throw new PoolError(`a synchronous pool needs 2 or more threads, got ${threads}`);
  if (k.backend !== "wasm") throw new PoolError("a synchronous pool runs the wasm kernels");
  const maxOps = options.maxOps ?? 256;
  const spins = options.spins ?? DEFAULT_SPINS;
  const { module, build } = await compileKernels(k.build === "relaxed" ? "relaxed" : "simd");
  const control = new SharedArrayBuffer(SYNC_CONTROL_BYTES);
  const ctl = new Int32Array(control);
  const regs = new Float64Array(control, CONTROL_REGS, REGISTERS);
  const slot = new SharedArrayBuffer(maxOps * OP_SLOTS * 8);
  const slots = new Float64Array(slot);
  const barrier = new Barrier(control, CONTROL_BARRIER, threads, spins);
  const workers = threads - 1;
  const init: WorkerInit = { module, build, memories: [k.memory.memory], control, parties: threads, threadsPerMemory: threads, spins };
  const transport = await piscinaTransport(workers, init);

  // Each worker's task lasts until dispose; one that fails to start rejects at once.
  let startError: unknown;
  const tasks = Array.from({ length: workers }, (_, i) =>
    transport.send(i, { serve: { program: slot, thread: i + 1 } }).catch((e: unknown) => {
      startError ??= e;
    }),
  );
  while (Atomics.load(ctl, SYNC.ready) < workers && startError === undefined) await new Promise((r) => setTimeout(r, 1));
  if (startError !== undefined) {
    Atomics.store(ctl, SYNC.stop, 1);
    Atomics.add(ctl, SYNC.gen, 1);
    Atomics.notify(ctl, SYNC.gen);
    await transport.close();
    throw startError instanceof Error ? startError : new PoolError(String(startError));
  }

  let loaded: EncodedProgram | undefined;
  let disposed = false;
  const place = { thread: 0, threads, peers: [] };

  return {
    threads,
    maxOps,
    run(program, r) {
      if (disposed) throw new PoolError("pool is disposed");
      if (program.length > maxOps) throw new PoolError(`a program of ${program.length} ops; this pool takes ${maxOps}`);
      if (program !== loaded) {
        slots.set(new Float64Array(program.sab, 0, program.length * OP_SLOTS));
        Atomics.store(ctl, SYNC.ops, program.length);
        loaded = program;
      }
      if (r) regs.set(r);
      // Nobody is inside a step: clear what a failed one may have left (arrivals, abort).
      barrier.reset();
      Atomics.store(ctl, SYNC.done, 0);
      Atomics.store(ctl, SYNC.failed, 0);
      Atomics.store(ctl, SYNC_ERROR.length, 0);
      Atomics.add(ctl, SYNC.gen, 1);
      Atomics.notify(ctl, SYNC.gen);
      let error: unknown;
      try {
        execute(k, slots, 0, program.length, regs, place, barrier);
      } catch (e) {
        error = e;
        barrier.abort();
      }
      // Every worker finishes the step, failed or not, before the next may start.
      for (let i = 0; i < spins && Atomics.load(ctl, SYNC.done) < workers; i++);
      for (let d = Atomics.load(ctl, SYNC.done); d < workers; d = Atomics.load(ctl, SYNC.done)) Atomics.wait(ctl, SYNC.done, d);
      // Report the failure itself, not the caller's release from the barrier because of it.
      const released = error instanceof BarrierAborted;
      if (error !== undefined && !released) throw error;
      if (released || Atomics.load(ctl, SYNC.failed) === 1) {
        const text = new Uint8Array(control, SYNC_ERROR.at, Atomics.load(ctl, SYNC_ERROR.length)).slice();
        throw new PoolError(`a synchronous step failed in ${new TextDecoder().decode(text) || "a worker"}`);
      }
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      Atomics.store(ctl, SYNC.stop, 1);
      Atomics.add(ctl, SYNC.gen, 1);
      Atomics.notify(ctl, SYNC.gen);
      // A worker stuck in a kernel is terminated with the pool after a while.
      await Promise.race([
        Promise.all(tasks),
        new Promise<void>((resolve) => (setTimeout(resolve, 2000) as { unref?: () => void }).unref?.()),
      ]);
      await transport.close();
    },
  };
}
