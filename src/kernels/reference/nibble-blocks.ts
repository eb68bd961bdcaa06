/**
 * Q4_1, Q5_0, Q5_1 and IQ4_NL weights (32-weight blocks, codes packed as Q4_0's; layouts drawn
 * in assembly/nibble_blocks.ts) times activations rounded as llama.cpp rounds them for each
 * type's vec_dot, written as the maths. With c the block's codes and q the activation codes:
 *
 *   Q5_0  x Q8_0:   sum_b  dW_b * dX_b * sum_j (c_j - 16) q_j
 *   IQ4_NL x Q8_0:  sum_b  dW_b * dX_b * sum_j KVALUES[c_j] q_j
 *   Q4_1, Q5_1 x Q8_1:  sum_b  dW_b * dX_b * sum_j c_j q_j  +  mW_b * sX_b
 *
 * Q8_1 (ggml quantize_row_q8_1, x86 path): Q8_0's codes and d, plus s = f16(amax/127 * sum_j q_j),
 * the block's code sum times its scale before the scale's f16 rounding.
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import { KVALUES_IQ4NL } from "../../formats/quants/iq4.js";
import { f16ToF32 } from "../../formats/quants/half.js";
import type { KernelMemory } from "../memory.js";
import { Q8Row, quantizeQ8_0, roundF16 } from "./quantize.js";

/** Block bytes (20, 22, 24, 18), as ggml-types.ts records them. */
const BYTES = (type: GGMLType): number => GGML_TYPES[type].bytesPerBlock;
const Q4_1_BYTES = BYTES(GGMLType.Q4_1), Q5_0_BYTES = BYTES(GGMLType.Q5_0), Q5_1_BYTES = BYTES(GGMLType.Q5_1), IQ4_NL_BYTES = BYTES(GGMLType.IQ4_NL);

const f = Math.fround;

/** A Q8_1 activation row: Q8_0's fields plus s, each block's f16-rounded d * sum of codes. */
export interface Q8_1Row extends Q8Row {
  s: Float32Array;
}

export function quantizeQ8_1(x: Float32Array): Q8_1Row {
  const row = quantizeQ8_0(x);
  const s = new Float32Array(row.d.length);
  for (let b = 0; b < s.length; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    s[b] = roundF16(f(f(amax / 127) * row.sums[b]));
  }
  return { ...row, s };
}

const f16 = (w: Uint8Array, o: number): number => f16ToF32(w[o] | (w[o + 1] << 8));
const u32 = (w: Uint8Array, o: number): number => (w[o] | (w[o + 1] << 8) | (w[o + 2] << 16) | (w[o + 3] << 24)) >>> 0;

/** Code j (0..31) of the block whose 16 code bytes are at qs: a nibble, plus bit j of qh as 16 (qh = 0 for 4-bit types). */
function code(w: Uint8Array, qs: number, qh: number, j: number): number {
  const nibble = j < 16 ? w[qs + j] & 15 : w[qs + j - 16] >> 4;
  return nibble | (((qh >>> j) & 1) << 4);
}

export function dotQ5_0(w: Uint8Array, o: number, x: Q8Row): number {
  let y = 0;
  for (let b = 0; b < x.d.length; b++, o += Q5_0_BYTES) {
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += (code(w, o + 6, u32(w, o + 2), j) - 16) * x.qs[b * 32 + j];
    y += f16(w, o) * x.d[b] * sum;
  }
  return y;
}

export function dotIQ4_NL(w: Uint8Array, o: number, x: Q8Row): number {
  let y = 0;
  for (let b = 0; b < x.d.length; b++, o += IQ4_NL_BYTES) {
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += KVALUES_IQ4NL[code(w, o + 2, 0, j)] * x.qs[b * 32 + j];
    y += f16(w, o) * x.d[b] * sum;
  }
  return y;
}

/** Q4_1 and Q5_1 share everything but the fifth bit. */
function dotOffset(w: Uint8Array, o: number, x: Q8_1Row, fifthBit: boolean): number {
  let y = 0;
  for (let b = 0; b < x.d.length; b++, o += fifthBit ? Q5_1_BYTES : Q4_1_BYTES) {
    const qh = fifthBit ? u32(w, o + 4) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += code(w, o + (fifthBit ? 8 : 4), qh, j) * x.qs[b * 32 + j];
    y += f16(w, o) * x.d[b] * sum + f16(w, o + 2) * x.s[b];
  }
  return y;
}

export const dotQ4_1 = (w: Uint8Array, o: number, x: Q8_1Row): number => dotOffset(w, o, x, false);
export const dotQ5_1 = (w: Uint8Array, o: number, x: Q8_1Row): number => dotOffset(w, o, x, true);

/** The weight types whose activations use the layout below. */
export const NIBBLE_TYPES: ReadonlySet<GGMLType> = new Set([GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL]);

/**
 * Their activation rows, as the kernels read them (row stride: actBytes, as Q8_0's):
 *   | codes | d: f32[n/32] | Q8_0: block code sums i32[n/32], Q8_1: s f32[n/32] |
 * codes are i16 in Q8_0 order (per block: evens, odds of codes 0..15, then of 16..31), or plain
 * i8 in the relaxed build for every type but IQ4_NL (assembly/nibble_blocks.ts).
 */
function actLayout(type: GGMLType, layout: "simd" | "relaxed"): { wide: boolean; q8_1: boolean } {
  return { wide: layout === "simd" || type === GGMLType.IQ4_NL, q8_1: type === GGMLType.Q4_1 || type === GGMLType.Q5_1 };
}

/** Slot of code j (0..31) of a block in Q8_0 order. */
const orderQ8_0 = (j: number): number => (j & 16) + ((j & 1) << 3) + ((j & 15) >> 1);

export function writeNibbleAct(mem: KernelMemory, type: GGMLType, layout: "simd" | "relaxed", p: number, cols: number, row: Q8Row): void {
  const { wide, q8_1 } = actLayout(type, layout);
  const nb = cols / 32;
  const dAt = p + (wide ? 2 : 1) * cols;
  if (wide) {
    const codes = mem.u16(p, cols);
    for (let j = 0; j < cols; j++) codes[(j & ~31) + orderQ8_0(j & 31)] = row.qs[j] & 0xffff;
  } else {
    mem.i8(p, cols).set(row.qs);
  }
  mem.f32(dAt, nb).set(row.d);
  if (q8_1) mem.f32(dAt + 4 * nb, nb).set((row as Q8_1Row).s);
  else mem.i32(dAt + 4 * nb, nb).set(row.sums);
}

export function readNibbleAct(mem: KernelMemory, type: GGMLType, layout: "simd" | "relaxed", p: number, cols: number): Q8_1Row {
  const { wide, q8_1 } = actLayout(type, layout);
  const nb = cols / 32;
  const dAt = p + (wide ? 2 : 1) * cols;
  let qs: Int8Array;
  if (wide) {
    const codes = new Int16Array(mem.buffer, p, cols);
    qs = Int8Array.from({ length: cols }, (_, j) => codes[(j & ~31) + orderQ8_0(j & 31)]);
  } else {
    qs = mem.i8(p, cols).slice();
  }
  const sums = new Int32Array(nb);
  qs.forEach((v, j) => (sums[j >> 5] += v));
  return { qs, d: mem.f32(dAt, nb), sums, s: q8_1 ? mem.f32(dAt + 4 * nb, nb) : new Float32Array(nb) };
}
