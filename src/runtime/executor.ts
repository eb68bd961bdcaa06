/**
 * Runs an encoded program (program.ts) on one thread: thread `t` of `n` sharing one memory does
 * its slice of each op, then meets the others at the barrier. Used inside every worker, and
 * in-thread (n = 1) for tests and the single-threaded path.
 */
import type { Kernels, KvType, MatmulType } from "../kernels/types.js";
import type { Barrier } from "./barrier.js";
import { MAX_ARGS, OPCODES, OP_SLOTS } from "./program.js";

/** Where this thread sits. */
export interface ThreadPlace {
  /** Index among the threads sharing this memory, and their count. */
  thread: number;
  threads: number;
  /** Other memories' bytes (tensor parallelism), for `gather`. */
  peers: readonly WebAssembly.Memory[];
  /**
   * The kernels over every memory, by index, for `memory` and `transfer` ops (layers spread over
   * several memories); a program without those ops needs none.
   */
  memories?: readonly Kernels[];
}

/** Start of slice t of n over [0, total): contiguous, sizes differ by at most one unit. */
export function sliceStart(total: number, t: number, n: number): number {
  return Math.floor((total * t) / n);
}

export function execute(
  k: Kernels, program: Float64Array, from: number, to: number, regs: Float64Array,
  place: ThreadPlace, barrier: Barrier | undefined,
): void {
  let mem = k.memory.memory;
  const args = new Float64Array(MAX_ARGS);
  const { thread: t, threads: n } = place;
  let i32 = new Int32Array(mem.buffer);
  let f32 = new Float32Array(mem.buffer);
  for (let op = from; op < to; op++) {
    const o = op * OP_SLOTS;
    const code = program[o];
    const count = program[o + 2];
    if (code === OPCODES.memory) {
      k = memoryAt(place, program[o + 4]);
      mem = k.memory.memory;
    }
    if (i32.buffer !== mem.buffer) {
      i32 = new Int32Array(mem.buffer);
      f32 = new Float32Array(mem.buffer);
    }
    for (let j = 0; j < count; j++) {
      const s = o + 3 + 4 * j;
      const kind = program[s];
      const a = program[s + 1];
      args[j] =
        kind === 0 ? a
        : kind === 1 ? a + program[s + 3] * regs[program[s + 2]]
        : kind === 2 ? a + program[s + 3] * i32[program[s + 2] >>> 2]
        : f32[program[s + 2] >>> 2];
    }
    if (code === OPCODES.transfer) {
      if (t === 0) {
        const bytes = args[4];
        const src = new Uint8Array(memoryAt(place, args[0]).memory.buffer, args[1], bytes);
        new Uint8Array(memoryAt(place, args[2]).memory.buffer, args[3], bytes).set(src);
      }
    } else if (code !== OPCODES.memory) runOp(k, code, args, t, n, place.peers);
    if (program[o + 1] !== 0 && barrier) barrier.wait();
  }
}

function memoryAt(place: ThreadPlace, index: number): Kernels {
  const k = place.memories?.[index];
  if (!k) throw new Error(`the program uses memory ${index}, but this thread has ${place.memories?.length ?? 0} memories`);
  return k;
}

function runOp(k: Kernels, code: number, a: Float64Array, t: number, n: number, peers: readonly WebAssembly.Memory[]): void {
  const lo = (total: number) => sliceStart(total, t, n);
  const hi = (total: number) => sliceStart(total, t + 1, n);
  switch (code) {
    case OPCODES.quantize: {
      const nTok = a[4];
      // One token is microseconds of work: not worth splitting.
      if (nTok < n) {
        if (t === 0) k.quantize(a[0] as MatmulType, a[1], a[2], a[3], 0, nTok);
      } else k.quantize(a[0] as MatmulType, a[1], a[2], a[3], lo(nTok), hi(nTok));
      return;
    }
    case OPCODES.matmul: {
      const rows = a[5];
      k.matmul(a[0] as MatmulType, a[1], a[2], a[3], a[4], lo(rows), hi(rows), a[6], a[7]);
      return;
    }
    case OPCODES.rmsnorm:
      return k.rmsnorm(a[0], a[1], a[2], a[3], a[4], lo(a[5]), hi(a[5]));
    case OPCODES.softmax:
      return k.softmax(a[0], a[1], a[2], lo(a[3]), hi(a[3]));
    case OPCODES.swiglu:
      return k.swiglu(a[0], a[1], a[2], lo(a[3]), hi(a[3]));
    case OPCODES.add:
      return k.add(a[0], a[1], a[2], lo(a[3]), hi(a[3]));
    case OPCODES.mul:
      return k.mul(a[0], a[1], a[2], lo(a[3]), hi(a[3]));
    case OPCODES.silu:
      return k.silu(a[0], a[1], lo(a[2]), hi(a[2]));
    case OPCODES.axpy:
      return k.axpy(a[0], a[1], a[2], lo(a[3]), hi(a[3]));
    case OPCODES.rope:
      if (t === 0) k.rope(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8] !== 0, a[9], a[10]);
      return;
    case OPCODES.attention: {
      const nHead = a[8];
      // Per-thread scratch: scores and the rounded (f16 or Q8_0) query.
      k.attention(
        a[0], a[1], a[2], a[3], a[4] + t * a[5], a[6] + t * a[7], nHead, a[9], a[10], a[11], a[12],
        a[13] as KvType, a[14], lo(nHead), hi(nHead),
      );
      return;
    }
    case OPCODES.copy:
      if (t === 0) new Uint8Array(k.memory.memory.buffer).copyWithin(a[1], a[0], a[0] + a[2]);
      return;
    case OPCODES.storeF16:
      if (t === 0) k.storeF16(a[0], a[1], a[2]);
      return;
    case OPCODES.storeQ8_0:
      if (t === 0) k.storeQ8_0(a[0], a[1], a[2]);
      return;
    case OPCODES.hadamard:
      return k.hadamard(a[0], a[1], lo(a[2]), hi(a[2]));
    case OPCODES.moeRoute:
      if (t === 0) k.moeRoute(a[0], a[1], a[2], a[3], a[4] !== 0, a[5], a[6]);
      return;
    case OPCODES.gather: {
      if (t !== 0) return;
      const src = new Uint8Array(k.memory.memory.buffer);
      for (const peer of peers) {
        const dst = new Uint8Array(peer.buffer);
        for (let r = 0; r < a[2]; r++) {
          const p = a[0] + r * a[3];
          dst.set(src.subarray(p, p + a[1]), p);
        }
      }
      return;
    }
    case OPCODES.streamRead: {
      // 64-byte granules so every thread's slice stays aligned.
      const units = Math.floor(a[1] / 64);
      const u0 = lo(units);
      k.streamRead(a[0] + 64 * u0, 64 * (hi(units) - u0));
      return;
    }
    default:
      throw new Error(`unknown opcode ${code}`);
  }
}
