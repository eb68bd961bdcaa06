/**
 * Runs an encoded program (program.ts) on one thread: thread `t` of `n` sharing one memory does
 * its slice of each op, then meets the others at the barrier. Used inside every worker, and
 * in-thread (n = 1) for tests and the single-threaded path.
 */
import type { Kernels, KvType, MatmulType } from "../kernels/types.js";
import type { Barrier } from "./barrier.js";
import { ARG, MAX_ARGS, OPCODES, OP_SLOTS } from "../kernels/program.js";

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
  /**
   * Work counters shared by the threads of this memory, one per op, zero at the start of a step
   * (pool.ts): a matmul's last rows are shared out through its counter (matmulShared). Absent:
   * fixed slices only.
   */
  counters?: Int32Array;
}

/**
 * How a matmul's rows are shared among n threads with a counter: the first `fixed` rows in fixed
 * contiguous slices (one stream of weights per thread: handing out chunks to all threads
 * interleaved their streams and ran 8% slower), the rest in chunks of `chunk` rows to whichever
 * thread is free, so a thread the machine slowed down (another process, an interrupt) leaves
 * its tail to the others instead of keeping them at the barrier (about a tenth of a two-thread
 * decode step was spent waiting there). Multiples of 8 rows: whole groups (kernels/layout.ts).
 */
export function sharedRows(rows: number, n: number): { fixed: number; chunk: number } {
  const chunk = Math.max(32, Math.ceil(rows / (32 * n) / 8) * 8);
  const tail = Math.min(rows, Math.ceil(rows / 8 / chunk) * chunk);
  return { fixed: rows - tail, chunk };
}

/** Thread t's fixed slice [r0, r1) of the first `fixed` rows (sharedRows), in whole groups of 8 but the last. */
export function fixedSlice(fixed: number, t: number, n: number): [number, number] {
  return [8 * sliceStart(fixed / 8, t, n), t === n - 1 ? fixed : 8 * sliceStart(fixed / 8, t + 1, n)];
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
  /**
   * One-token decoding on several threads: each thread rounds the token into its own copy
   * (quantize's `own`) and normalises it itself (rmsnorm), so neither op needs the others, nor
   * a barrier after it unless an earlier op's shared writes still wait for one (`unordered`).
   * `copies`: xq address -> this thread's copy, for the matmuls that read it.
   */
  const copies = new Map<number, number>();
  let unordered = false;
  for (let op = from; op < to; op++) {
    const o = op * OP_SLOTS;
    const code = program[o];
    const count = program[o + 2];
    if (code === OPCODES.memory) {
      k = memoryAt(place, program[o + 3 + 4 * ARG.memory.index + 1]);
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
    let own = false;
    // (only inside one task with barriers: in per-op mode each op is a call of its own, and the copies would be forgotten)
    if (n > 1 && barrier && code === OPCODES.quantize && args[Q.nTok] === 1 && args[Q.own] !== 0) {
      const copy = args[Q.own] + t * args[Q.ownStride];
      k.quantize(args[Q.type] as MatmulType, args[Q.x], copy, args[Q.cols], 0, 1);
      copies.set(args[Q.xq], copy);
      own = true;
    } else if (n > 1 && barrier && code === OPCODES.rmsnorm && args[RN.nTok] === 1 && args[RN.x] !== args[RN.y]) {
      k.rmsnorm(args[RN.x], args[RN.w], args[RN.y], args[RN.n], args[RN.eps], 0, 1);
      own = true;
    } else if (code === OPCODES.transfer) {
      if (t === 0) {
        const bytes = args[TR.bytes];
        const src = new Uint8Array(memoryAt(place, args[TR.from]).memory.buffer, args[TR.src], bytes);
        new Uint8Array(memoryAt(place, args[TR.to]).memory.buffer, args[TR.dst], bytes).set(src);
      }
    } else {
      if (code === OPCODES.quantize) copies.delete(args[Q.xq]);
      if (code === OPCODES.matmul) args[MM.xq] = copies.get(args[MM.xq]) ?? args[MM.xq];
      if (code === OPCODES.matmul && n > 1 && place.counters && op < place.counters.length) matmulShared(k, args, t, n, place.counters, op);
      else if (code !== OPCODES.memory) runOp(k, code, args, t, n, place.peers);
    }
    if (program[o + 1] !== 0 && barrier && (unordered || !own)) {
      barrier.wait();
      unordered = false;
    } else if (!own) unordered = true;
  }
}

/** A matmul's fixed slice for thread t, then chunks of the shared rest from its counter until none are left (sharedRows). */
function matmulShared(k: Kernels, a: Float64Array, t: number, n: number, counters: Int32Array, op: number): void {
  const rows = a[MM.rows];
  const { fixed, chunk } = sharedRows(rows, n);
  const run = (r0: number, r1: number) =>
    k.matmul(a[MM.type] as MatmulType, a[MM.w], a[MM.xq], a[MM.y], a[MM.cols], r0, r1, a[MM.nTok], a[MM.ldy], a[MM.llamaOrder] !== 0);
  const [f0, f1] = fixedSlice(fixed, t, n);
  if (f1 > f0) run(f0, f1);
  for (let r0 = fixed + Atomics.add(counters, op, chunk); r0 < rows; r0 = fixed + Atomics.add(counters, op, chunk)) run(r0, Math.min(rows, r0 + chunk));
}

function memoryAt(place: ThreadPlace, index: number): Kernels {
  const k = place.memories?.[index];
  if (!k) throw new Error(`the program uses memory ${index}, but this thread has ${place.memories?.length ?? 0} memories`);
  return k;
}

// Argument positions by name (src/kernels/program.ts), looked up once.
const { quantize: Q, matmul: MM, rmsnorm: RN, softmax: SM, swiglu: EW, silu: SI, axpy: AX, rope: RP, attention: AT } = ARG;
const { copy: CP, storeF16: SF, storeQ8_0: SQ, hadamard: HD, moeRoute: MR, gather: GA, streamRead: SR, transfer: TR } = ARG;

function runOp(k: Kernels, code: number, a: Float64Array, t: number, n: number, peers: readonly WebAssembly.Memory[]): void {
  const lo = (total: number) => sliceStart(total, t, n);
  const hi = (total: number) => sliceStart(total, t + 1, n);
  switch (code) {
    case OPCODES.quantize: {
      const nTok = a[Q.nTok];
      // One token is microseconds of work: not worth splitting. Nor can every thread round it
      // itself: the relaxed Q4_0 layout is written, then transposed in place.
      if (nTok < n) {
        if (t === 0) k.quantize(a[Q.type] as MatmulType, a[Q.x], a[Q.xq], a[Q.cols], 0, nTok);
      } else k.quantize(a[Q.type] as MatmulType, a[Q.x], a[Q.xq], a[Q.cols], lo(nTok), hi(nTok));
      return;
    }
    case OPCODES.matmul: {
      const rows = a[MM.rows];
      k.matmul(a[MM.type] as MatmulType, a[MM.w], a[MM.xq], a[MM.y], a[MM.cols], lo(rows), hi(rows), a[MM.nTok], a[MM.ldy], a[MM.llamaOrder] !== 0);
      return;
    }
    case OPCODES.rmsnorm:
      // (one token with barriers: every thread normalises it itself, in execute)
      return k.rmsnorm(a[RN.x], a[RN.w], a[RN.y], a[RN.n], a[RN.eps], lo(a[RN.nTok]), hi(a[RN.nTok]));
    case OPCODES.softmax:
      return k.softmax(a[SM.x], a[SM.y], a[SM.n], lo(a[SM.nRows]), hi(a[SM.nRows]));
    // swiglu, add and mul share one argument layout (a, b, out, n).
    case OPCODES.swiglu:
      return k.swiglu(a[EW.a], a[EW.b], a[EW.out], lo(a[EW.n]), hi(a[EW.n]));
    case OPCODES.add:
      return k.add(a[EW.a], a[EW.b], a[EW.out], lo(a[EW.n]), hi(a[EW.n]));
    case OPCODES.mul:
      return k.mul(a[EW.a], a[EW.b], a[EW.out], lo(a[EW.n]), hi(a[EW.n]));
    case OPCODES.silu:
      return k.silu(a[SI.a], a[SI.out], lo(a[SI.n]), hi(a[SI.n]));
    case OPCODES.axpy:
      return k.axpy(a[AX.a], a[AX.s], a[AX.out], lo(a[AX.n]), hi(a[AX.n]));
    case OPCODES.rope: {
      // One token (decoding): its heads split among the threads. Each computes the position's
      // cos / sin into the shared table first, the same bits from every thread, so their writes
      // agree. Several tokens: one thread, as the table is rewritten per token.
      const heads = a[RP.nHeads];
      const h0 = a[RP.nTok] === 1 ? lo(heads) : 0, h1 = a[RP.nTok] === 1 ? hi(heads) : t === 0 ? heads : 0;
      if (h1 > h0) {
        k.rope(a[RP.x] + 4 * h0 * a[RP.headDim], a[RP.cs], h1 - h0, a[RP.headDim], a[RP.nDims], a[RP.pos], a[RP.invFreq], a[RP.mscale], a[RP.neox] !== 0, a[RP.nTok], a[RP.ld]);
      }
      return;
    }
    case OPCODES.attention: {
      const nHead = a[AT.nHead];
      // Per-thread scratch: scores and the rounded (f16 or Q8_0) query.
      k.attention(
        a[AT.q], a[AT.k], a[AT.v], a[AT.out], a[AT.scores] + t * a[AT.scoresStride], a[AT.qh] + t * a[AT.qhStride], nHead,
        a[AT.nKvHead], a[AT.headDim], a[AT.pos], a[AT.nTok], a[AT.kvType] as KvType, a[AT.scale], lo(nHead), hi(nHead),
        a[AT.llamaKqv] !== 0,
      );
      return;
    }
    case OPCODES.copy:
      if (t === 0) new Uint8Array(k.memory.memory.buffer).copyWithin(a[CP.dst], a[CP.src], a[CP.src] + a[CP.bytes]);
      return;
    case OPCODES.storeF16: {
      // elements split among the threads, in runs of 8
      const units = Math.floor(a[SF.n] / 8), e0 = 8 * lo(units), e1 = t === n - 1 ? a[SF.n] : 8 * hi(units);
      if (e1 > e0) k.storeF16(a[SF.x] + 4 * e0, a[SF.h] + 2 * e0, e1 - e0);
      return;
    }
    case OPCODES.storeQ8_0:
      if (t === 0) k.storeQ8_0(a[SQ.x], a[SQ.dst], a[SQ.n]);
      return;
    case OPCODES.hadamard:
      return k.hadamard(a[HD.x], a[HD.n], lo(a[HD.count]), hi(a[HD.count]));
    case OPCODES.moeRoute:
      if (t === 0) k.moeRoute(a[MR.logits], a[MR.probs], a[MR.nExpert], a[MR.k], a[MR.norm] !== 0, a[MR.idx], a[MR.wt]);
      return;
    case OPCODES.gather: {
      if (t !== 0) return;
      const src = new Uint8Array(k.memory.memory.buffer);
      for (const peer of peers) {
        const dst = new Uint8Array(peer.buffer);
        for (let r = 0; r < a[GA.nRows]; r++) {
          const p = a[GA.ptr] + r * a[GA.stride];
          dst.set(src.subarray(p, p + a[GA.bytes]), p);
        }
      }
      return;
    }
    case OPCODES.streamRead: {
      // 64-byte granules so every thread's slice stays aligned.
      const units = Math.floor(a[SR.bytes] / 64);
      const u0 = lo(units);
      k.streamRead(a[SR.ptr] + 64 * u0, 64 * (hi(units) - u0));
      return;
    }
    default:
      throw new Error(`unknown opcode ${code}`);
  }
}
