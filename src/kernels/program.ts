/**
 * A graph step as data: a list of kernel calls that every worker walks in order, each doing its
 * share (rows of a matmul, heads of attention, a slice of an element-wise op), meeting the others
 * at a barrier after each op (unless the op says `sync: false`, e.g. Q, K and V products that read
 * the same input and write different outputs).
 *
 * Arguments that change from step to step (the position, the number of cached tokens, where the
 * new K row goes) are not rewritten: an argument may read a register (`{ reg, mul, add }`, set per
 * run) or a value in the kernel memory (`{ i32At }` for a routed expert id, `{ f32At }` for its
 * weight), so one encoded program serves every token.
 *
 * Encoding, in a SharedArrayBuffer of f64 (OP_SLOTS per op):
 *   [opcode, sync, argCount, (kind, a, b, c) x MAX_ARGS]
 *   kind 0: a    kind 1: a + c * reg[b]    kind 2: a + c * i32(mem[b])    kind 3: f32(mem[b])
 */
import type { KvType, MatmulType } from "./types.js";

export type Arg =
  | number
  | { reg: number; mul?: number; add?: number }
  | { i32At: number; mul?: number; add?: number }
  | { f32At: number };

export type Op = (
  | {
      op: "quantize"; type: MatmulType; x: Arg; xq: Arg; cols: number; nTok: Arg;
      /**
       * Per-thread copies (src/runtime/executor.ts): with one token and several threads, thread t
       * rounds the whole token itself into own + t * ownStride, and the matmuls that read xq read
       * its copy, so no thread waits for another's rounding. 0 / absent: one shared xq.
       */
      own?: number; ownStride?: number;
    }
  | {
      op: "matmul"; type: MatmulType; w: Arg; xq: Arg; y: Arg; cols: number; rows: number; nTok: Arg; ldy: number;
      /** Sum in llama.cpp's order where the kernel has a faster one of its own (Kernels.matmul). */
      llamaOrder?: boolean;
    }
  | { op: "rmsnorm"; x: Arg; w: Arg; y: Arg; n: number; eps: number; nTok: Arg }
  | { op: "softmax"; x: Arg; y: Arg; n: Arg; nRows: Arg }
  | { op: "swiglu" | "add" | "mul"; a: Arg; b: Arg; out: Arg; n: Arg }
  | { op: "silu"; a: Arg; out: Arg; n: Arg }
  | { op: "axpy"; a: Arg; s: Arg; out: Arg; n: Arg }
  | {
      op: "rope"; x: Arg; cs: Arg; nHeads: number; headDim: number; nDims: number; pos: Arg;
      invFreq: Arg; mscale: number; neox: boolean; nTok: Arg; ld: number;
    }
  | {
      op: "attention"; q: Arg; k: Arg; v: Arg; out: Arg; scores: Arg; scoresStride: number; qh: Arg; qhStride: number;
      nHead: number; nKvHead: number; headDim: number; pos: Arg; nTok: Arg; kvType: KvType; scale: number;
      /** An f32 cache's P.V in llama.cpp's order (Kernels.attention). */
      llamaKqv?: boolean;
    }
  | { op: "copy"; src: Arg; dst: Arg; bytes: Arg }
  | { op: "storeF16"; x: Arg; h: Arg; n: Arg }
  /** n f32 at x as Q8_0 blocks at dst (n % 32 == 0): new rows of a Q8_0 KV cache. */
  | { op: "storeQ8_0"; x: Arg; dst: Arg; n: Arg }
  /** Walsh-Hadamard rotation in place of `count` chunks of n values at x. */
  | { op: "hadamard"; x: Arg; n: number; count: Arg }
  | { op: "moeRoute"; logits: Arg; probs: Arg; nExpert: number; k: number; norm: boolean; idx: Arg; wt: Arg }
  /** Tensor parallelism: copy nRows chunks of `bytes` at ptr + i*stride from this memory to the others. */
  | { op: "gather"; ptr: Arg; bytes: number; nRows: Arg; stride: number }
  /**
   * Models bigger than one 4 GiB wasm32 memory keep whole layers per memory (src/model/plan.ts).
   * `memory` makes the following ops run on memory `index` (every thread switches; the
   * addresses that follow are that memory's); `transfer` copies bytes from one memory to
   * another (the residual stream at a layer boundary).
   */
  | { op: "memory"; index: number }
  | { op: "transfer"; from: number; src: Arg; to: number; dst: Arg; bytes: Arg }
  /** Read [ptr, ptr + bytes) split among the threads: the memory-bandwidth yardstick. */
  | { op: "streamRead"; ptr: Arg; bytes: number }
) & { sync?: boolean };

export const OPCODES = {
  quantize: 1, matmul: 2, rmsnorm: 3, softmax: 4, swiglu: 5, add: 6, mul: 7, silu: 8, axpy: 9,
  rope: 10, attention: 11, copy: 12, storeF16: 13, moeRoute: 14, gather: 15, streamRead: 16, storeQ8_0: 17, hadamard: 18,
  memory: 19, transfer: 20,
} as const satisfies Record<Op["op"], number>;

export const MAX_ARGS = 20;
export const OP_SLOTS = 3 + 4 * MAX_ARGS;
/** Registers a run may set (positions, lengths). */
export const REGISTERS = 16;

/** The argument order of each op: how ops are encoded, and (through ARG) how they are read. */
export const ARG_ORDER = {
  quantize: ["type", "x", "xq", "cols", "nTok", "own", "ownStride"],
  matmul: ["type", "w", "xq", "y", "cols", "rows", "nTok", "ldy", "llamaOrder"],
  rmsnorm: ["x", "w", "y", "n", "eps", "nTok"],
  softmax: ["x", "y", "n", "nRows"],
  swiglu: ["a", "b", "out", "n"],
  add: ["a", "b", "out", "n"],
  mul: ["a", "b", "out", "n"],
  silu: ["a", "out", "n"],
  axpy: ["a", "s", "out", "n"],
  rope: ["x", "cs", "nHeads", "headDim", "nDims", "pos", "invFreq", "mscale", "neox", "nTok", "ld"],
  attention: [
    "q", "k", "v", "out", "scores", "scoresStride", "qh", "qhStride", "nHead", "nKvHead", "headDim",
    "pos", "nTok", "kvType", "scale", "llamaKqv",
  ],
  copy: ["src", "dst", "bytes"],
  storeF16: ["x", "h", "n"],
  storeQ8_0: ["x", "dst", "n"],
  hadamard: ["x", "n", "count"],
  moeRoute: ["logits", "probs", "nExpert", "k", "norm", "idx", "wt"],
  gather: ["ptr", "bytes", "nRows", "stride"],
  streamRead: ["ptr", "bytes"],
  memory: ["index"],
  transfer: ["from", "src", "to", "dst", "bytes"],
} as const satisfies { [K in Op["op"]]: readonly string[] };

/**
 * Each op's argument positions by name (ARG.matmul.rows === 5): the executor and the WebGPU
 * runner read arguments through this, so the order is written once, in ARG_ORDER.
 */
export const ARG = Object.fromEntries(
  Object.entries(ARG_ORDER).map(([op, names]) => [op, Object.fromEntries(names.map((name, i) => [name, i]))]),
) as { [K in keyof typeof ARG_ORDER]: { readonly [N in (typeof ARG_ORDER)[K][number]]: number } };

export class ProgramError extends Error {
  override name = "ProgramError";
}

/** An encoded program: a SharedArrayBuffer every worker reads. */
export interface EncodedProgram {
  readonly sab: SharedArrayBuffer;
  readonly length: number;
}

function encodeArg(slots: Float64Array, o: number, v: unknown, where: string): void {
  if (typeof v === "number") slots.set([0, v, 0, 0], o);
  else if (typeof v === "boolean") slots.set([0, v ? 1 : 0, 0, 0], o);
  else if (v && typeof v === "object" && "reg" in v) {
    const r = v as { reg: number; mul?: number; add?: number };
    if (!(r.reg >= 0 && r.reg < REGISTERS)) throw new ProgramError(`${where}: register ${r.reg} out of range`);
    slots.set([1, r.add ?? 0, r.reg, r.mul ?? 1], o);
  } else if (v && typeof v === "object" && "i32At" in v) {
    const r = v as { i32At: number; mul?: number; add?: number };
    slots.set([2, r.add ?? 0, r.i32At, r.mul ?? 1], o);
  } else if (v && typeof v === "object" && "f32At" in v) {
    slots.set([3, 0, (v as { f32At: number }).f32At, 0], o);
  } else throw new ProgramError(`${where}: missing or bad argument ${JSON.stringify(v)}`);
}

/** Flags an op may leave out (encoded as false). */
const OPTIONAL_FLAGS: ReadonlySet<string> = new Set(["llamaOrder", "llamaKqv", "own", "ownStride"]);

export function encodeProgram(ops: readonly Op[]): EncodedProgram {
  const sab = new SharedArrayBuffer(Math.max(1, ops.length) * OP_SLOTS * 8);
  const slots = new Float64Array(sab);
  ops.forEach((op, i) => {
    const o = i * OP_SLOTS;
    const order: readonly string[] = ARG_ORDER[op.op];
    if (!order) throw new ProgramError(`op ${i}: unknown op ${JSON.stringify(op.op)}`);
    slots[o] = OPCODES[op.op];
    slots[o + 1] = op.sync === false ? 0 : 1;
    slots[o + 2] = order.length;
    const rec = op as unknown as Record<string, unknown>;
    order.forEach((name, j) => encodeArg(slots, o + 3 + 4 * j, rec[name] ?? (OPTIONAL_FLAGS.has(name) ? false : undefined), `op ${i} (${op.op}).${name}`));
  });
  return { sab, length: ops.length };
}
