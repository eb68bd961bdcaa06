/**
 * Q2_K, Q3_K and IQ4_XS weights times Q8_K activations, as the maths (block layouts drawn in
 * assembly/k_quants_low.ts), in llama.cpp's x86 order (ggml_vec_dot_*_q8_K, AVX2): per
 * super-block B, exact integer sums split over eight lanes, lane m holding the values v with
 * (v mod 32) / 4 == m, each lane then folded into a float accumulator by one fused multiply-add:
 *
 *   Q2_K:   acc_m <- fma(dX*d, S_m, fma(-(dX*dmin), P_m, acc_m))
 *           S_m = sum_{v in m} sc_j(v) q_v qX_v,   P_m = m_2m bsum_2m + m_2m+1 bsum_2m+1
 *   Q3_K:   acc_m <- fma(dX*d, S_m, acc_m),        S_m = sum_{v in m} sc_j(v) (q_v - 4) qX_v
 *   IQ4_XS: acc_m <- fma(d*dX, S_m, acc_m),        S_m = sum_{v in m} (ls_s(v) - 32) KV[q_v] qX_v
 *
 *   y = ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7))
 *
 * Every float operation is float32 (Math.fround; fmaf rounds once), so these are llama.cpp's
 * bits and the WASM kernels' bits. Their activations (i16 codes, evens then odds per 16 values)
 * are read and written here too.
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import { KVALUES_IQ4NL } from "../../formats/quants/iq4.js";
import { f16ToF32 } from "../../formats/quants/half.js";
import type { KernelMemory } from "../memory.js";
import type { Q8Row } from "./quantize.js";

/** Block bytes (84, 110, 136), as ggml-types.ts records them. */
const Q2_K_BYTES = GGML_TYPES[GGMLType.Q2_K].bytesPerBlock;
const Q3_K_BYTES = GGML_TYPES[GGMLType.Q3_K].bytesPerBlock;
const IQ4_XS_BYTES = GGML_TYPES[GGMLType.IQ4_XS].bytesPerBlock;

const f = Math.fround;
const f16 = (w: Uint8Array, o: number): number => f16ToF32(w[o] | (w[o + 1] << 8));

/** The weight types whose activations use the layout below. */
export const K_LOW_TYPES: ReadonlySet<GGMLType> = new Set([GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS]);

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/**
 * fma(x, y, z) for float32 x, y, z, rounded once (x86's vfmadd), as musl's fmaf: the float64
 * product is exact, the float64 sum rounds at most once more, and where that left it exactly
 * halfway between two floats the last bit moves toward the exact value.
 */
export function fmaf(x: number, y: number, z: number): number {
  const xy = x * y;
  const r = xy + z;
  F64[0] = r;
  if ((U32[0] & 0x1fffffff) !== 0x10000000 || !Number.isFinite(r) || (r - xy === z && r - z === xy)) return f(r);
  const neg = U32[1] >>> 31 === 1;
  const err = neg === z > xy ? xy - r + z : z - r + xy;
  U32[0] += neg === err < 0 ? 1 : -1;
  return f(F64[0]);
}

/** ggml's hsum_float_8. */
const hsum8 = (a: Float32Array): number => f(f(f(a[0] + a[4]) + f(a[2] + a[6])) + f(f(a[1] + a[5]) + f(a[3] + a[7])));

/** The lane of value v of a super-block. */
const lane = (v: number): number => (v & 31) >> 2;

/** 2-bit code of value v (0..255) of the Q2_K / Q3_K super-block whose qs start at qs. */
const low2 = (w: Uint8Array, qs: number, v: number): number => (w[qs + 32 * (v >> 7) + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;

/** Super-block B of Q2_K at o: the lane sums [S, P] (exact integers). */
export function lanesQ2_K(w: Uint8Array, o: number, x: Q8Row, B: number): [S: number[], P: number[]] {
  const S = new Array<number>(8).fill(0);
  const P = new Array<number>(8).fill(0);
  for (let v = 0; v < 256; v++) S[lane(v)] += (w[o + (v >> 4)] & 15) * low2(w, o + 16, v) * x.qs[256 * B + v];
  for (let j = 0; j < 16; j++) P[j >> 1] += (w[o + j] >> 4) * x.sums[16 * B + j];
  return [S, P];
}

export function dotQ2_K(w: Uint8Array, o: number, x: Q8Row): number {
  const acc = new Float32Array(8);
  for (let B = 0; B < x.d.length; B++, o += Q2_K_BYTES) {
    const [S, P] = lanesQ2_K(w, o, x, B);
    const dmin = f(-x.d[B] * f16(w, o + 82));
    const d = f(x.d[B] * f16(w, o + 80));
    for (let m = 0; m < 8; m++) acc[m] = fmaf(d, f(S[m]), fmaf(dmin, f(P[m]), acc[m]));
  }
  return hsum8(acc);
}

/** Signed 6-bit scale j of the Q3_K super-block at o. */
export function scaleQ3K(w: Uint8Array, o: number, j: number): number {
  const low = j < 8 ? w[o + 96 + j] & 15 : w[o + 96 + j - 8] >> 4;
  return (low | (((w[o + 104 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** Super-block B of Q3_K at o: the lane sums S (exact integers). q = low bits + 4 * hmask bit. */
export function lanesQ3_K(w: Uint8Array, o: number, x: Q8Row, B: number): number[] {
  const S = new Array<number>(8).fill(0);
  for (let v = 0; v < 256; v++) {
    const high = (w[o + (v & 31)] >> (4 * (v >> 7) + ((v >> 5) & 3))) & 1;
    S[lane(v)] += scaleQ3K(w, o, v >> 4) * (low2(w, o + 32, v) + 4 * high - 4) * x.qs[256 * B + v];
  }
  return S;
}

export function dotQ3_K(w: Uint8Array, o: number, x: Q8Row): number {
  const acc = new Float32Array(8);
  for (let B = 0; B < x.d.length; B++, o += Q3_K_BYTES) {
    const S = lanesQ3_K(w, o, x, B);
    const d = f(x.d[B] * f16(w, o + 108));
    for (let m = 0; m < 8; m++) acc[m] = fmaf(d, f(S[m]), acc[m]);
  }
  return hsum8(acc);
}

/** Super-block B of IQ4_XS at o: the lane sums S (exact integers). Value 32s + l: nibble l % 16 of qs[16s + l % 16]. */
export function lanesIQ4_XS(w: Uint8Array, o: number, x: Q8Row, B: number): number[] {
  const S = new Array<number>(8).fill(0);
  const scalesH = w[o + 2] | (w[o + 3] << 8);
  for (let v = 0; v < 256; v++) {
    const s = v >> 5;
    const ls = ((w[o + 4 + (s >> 1)] >> (4 * (s & 1))) & 15) | (((scalesH >> (2 * s)) & 3) << 4);
    const byte = w[o + 8 + 16 * s + (v & 15)];
    S[lane(v)] += (ls - 32) * KVALUES_IQ4NL[v & 16 ? byte >> 4 : byte & 15] * x.qs[256 * B + v];
  }
  return S;
}

export function dotIQ4_XS(w: Uint8Array, o: number, x: Q8Row): number {
  const acc = new Float32Array(8);
  for (let B = 0; B < x.d.length; B++, o += IQ4_XS_BYTES) {
    const S = lanesIQ4_XS(w, o, x, B);
    const d = f(f16(w, o) * x.d[B]);
    for (let m = 0; m < 8; m++) acc[m] = fmaf(d, f(S[m]), acc[m]);
  }
  return hsum8(acc);
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
