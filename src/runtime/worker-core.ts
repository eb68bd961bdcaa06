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

export const CONTROL_BARRIER = 0;
/** Registers start after the barrier words, 8-byte aligned. */
export const CONTROL_REGS = 16;
export const CONTROL_BYTES = CONTROL_REGS + 16 * 8;

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

  run(task: WorkerTask): void {
    const k = this.kernels[task.memory];
    const peers = this.init.memories.filter((_, i) => i !== task.memory);
    try {
      execute(
        k, new Float64Array(task.program), task.from, task.to, this.regs,
        { thread: task.thread, threads: this.init.threadsPerMemory, peers, memories: this.kernels },
        task.barrier ? this.barrier : undefined,
      );
    } catch (e) {
      this.barrier.abort();
      throw e;
    }
  }
}
