/**
 * Q2_K, Q3_K and IQ4_XS weights times Q8_K activations, as the maths (block layouts drawn in
 * assembly/k_quants_low.ts). Integer sums are exact; each super-block B then takes one float
 * expression, in ggml's order (ggml_vec_dot_*_q8_K), and the super-blocks are summed in order:
 *
 *   Q2_K:   sum_B  (dX*d) * sum_j sc_j (q.qX)_j  -  (dX*dmin) * sum_j m_j bsum_j
 *   Q3_K:   sum_B  (dX*d) * sum_j sc_j ((q - 4).qX)_j
 *   IQ4_XS: sum_B  (d*dX) * sum_s (ls_s - 32) (KV[q].qX)_s
 *
 * Every float operation is rounded to float32 (Math.fround), so the WASM kernels give these bits.
 * Their activations (i16 codes, evens then odds per 16 values) are read and written here too.
 */
import { GGMLType } from "../../formats/ggml-types.js";
import { KVALUES_IQ4NL } from "../../formats/quants/iq4.js";
import { f16ToF32 } from "../../formats/quants/half.js";
import type { KernelMemory } from "../memory.js";
import type { Q8Row } from "./quantize.js";

const f = Math.fround;
const f16 = (w: Uint8Array, o: number): number => f16ToF32(w[o] | (w[o + 1] << 8));

/** The weight types whose activations use the layout below. */
export const K_LOW_TYPES: ReadonlySet<GGMLType> = new Set([GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS]);

/** 2-bit code of value v (0..255) of the Q2_K / Q3_K super-block whose qs start at qs. */
const low2 = (w: Uint8Array, qs: number, v: number): number => (w[qs + 32 * (v >> 7) + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;

/** Super-block B of Q2_K at o: [sum_j sc_j (q.qX)_j, sum_j m_j bsum_j], exact integers. */
export function sumsQ2_K(w: Uint8Array, o: number, x: Q8Row, B: number): [isum: number, summs: number] {
  let isum = 0;
  let summs = 0;
  for (let j = 0; j < 16; j++) {
    let dot = 0;
    for (let l = 0; l < 16; l++) dot += low2(w, o + 16, 16 * j + l) * x.qs[256 * B + 16 * j + l];
    isum += (w[o + j] & 15) * dot;
    summs += (w[o + j] >> 4) * x.sums[16 * B + j];
  }
  return [isum, summs];
}

export function dotQ2_K(w: Uint8Array, o: number, x: Q8Row): number {
  let sum = 0;
  for (let B = 0; B < x.d.length; B++, o += 84) {
    const [isum, summs] = sumsQ2_K(w, o, x, B);
    const dall = f(x.d[B] * f16(w, o + 80));
    const dmin = f(x.d[B] * f16(w, o + 82));
    sum = f(sum + f(f(dall * f(isum)) - f(dmin * f(summs))));
  }
  return sum;
}

/** Signed 6-bit scale j of the Q3_K super-block at o. */
export function scaleQ3K(w: Uint8Array, o: number, j: number): number {
  const low = j < 8 ? w[o + 96 + j] & 15 : w[o + 96 + j - 8] >> 4;
  return (low | (((w[o + 104 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** Super-block B of Q3_K at o: sum_j sc_j ((q - 4).qX)_j, an exact integer. */
export function sumQ3_K(w: Uint8Array, o: number, x: Q8Row, B: number): number {
  let isum = 0;
  for (let j = 0; j < 16; j++) {
    let dot = 0;
    for (let l = 0; l < 16; l++) {
      const v = 16 * j + l;
      const high = (w[o + (v & 31)] >> (4 * (v >> 7) + ((v >> 5) & 3))) & 1;
      dot += (low2(w, o + 32, v) - (high ? 0 : 4)) * x.qs[256 * B + v];
    }
    isum += scaleQ3K(w, o, j) * dot;
  }
  return isum;
}

export function dotQ3_K(w: Uint8Array, o: number, x: Q8Row): number {
  let sum = 0;
  for (let B = 0; B < x.d.length; B++, o += 110) sum = f(sum + f(f(x.d[B] * f16(w, o + 108)) * f(sumQ3_K(w, o, x, B))));
  return sum;
}

/** Super-block B of IQ4_XS at o: sum_s (ls_s - 32) (KV[q].qX)_s, an exact integer. */
export function sumIQ4_XS(w: Uint8Array, o: number, x: Q8Row, B: number): number {
  const scalesH = w[o + 2] | (w[o + 3] << 8);
  let isum = 0;
  for (let s = 0; s < 8; s++) {
    const ls = ((w[o + 4 + (s >> 1)] >> (4 * (s & 1))) & 15) | (((scalesH >> (2 * s)) & 3) << 4);
    let dot = 0;
    for (let l = 0; l < 16; l++) {
      const q = w[o + 8 + 16 * s + l];
      dot += KVALUES_IQ4NL[q & 15] * x.qs[256 * B + 32 * s + l] + KVALUES_IQ4NL[q >> 4] * x.qs[256 * B + 32 * s + 16 + l];
    }
    isum += (ls - 32) * dot;
  }
  return isum;
}

export function dotIQ4_XS(w: Uint8Array, o: number, x: Q8Row): number {
  let sum = 0;
  for (let B = 0; B < x.d.length; B++, o += 136) sum = f(sum + f(f(f16(w, o) * x.d[B]) * f(sumIQ4_XS(w, o, x, B))));
  return sum;
}

/** Bytes of one token's activations in the layout these kernels read, rounded up to 16. */
export function actBytesKLow(cols: number): number {
  return Math.ceil((2 * cols + cols / 64 + cols / 4) / 16) * 16;
}

/** Position of value v (0..15) of a 16-value group in the i16 layout: evens, then odds. */
const eo = (v: number): number => (v & 1 ? 8 : 0) + (v >> 1);

/** Store a Q8_K row at p: i16 codes (evens | odds per 16), f32 scales, i32 sums of 16. */
export function writeQ8_K_eo(mem: KernelMemory, p: number, cols: number, row: Q8Row): void {
  const codes = mem.u16(p, cols);
  for (let j = 0; j < cols; j++) codes[(j & ~15) + eo(j & 15)] = row.qs[j] & 0xffff;
  mem.f32(p + 2 * cols, cols / 256).set(row.d);
  mem.i32(p + 2 * cols + cols / 64, cols / 16).set(row.sums);
}

/** The Q8_K row stored at p by writeQ8_K_eo (or the WASM quantizer). */
export function readQ8_K_eo(mem: KernelMemory, p: number, cols: number): Q8Row {
  const codes = new Int16Array(mem.buffer, p, cols);
  const qs = Int8Array.from({ length: cols }, (_, j) => codes[(j & ~15) + eo(j & 15)]);
  return { qs, d: mem.f32(p + 2 * cols, cols / 256), sums: mem.i32(p + 2 * cols + cols / 64, cols / 16) };
}
