/**
 * Matrix products y = W x for every weight type the engine runs, written as the maths.
 *
 * W is row-major: `rows` rows of `cols` weights, each row a whole number of ggml blocks (the byte
 * layouts are drawn in assembly/q4_0.ts, q8_0.ts, k_quants.ts, f16.ts). x holds nTok rows of
 * `cols` floats; y gets nTok rows of `rows` floats: y[t][r] = sum_j W[r][j] * x'[t][j], where x'
 * is x rounded as llama.cpp rounds it (quantize.ts). Integer block sums are exact; the scales
 * multiply them once per block:
 *
 *   Q4_0 / Q8_0:  sum_b  dW_b * dX_b * sum_j qW_j qX_j, in llama.cpp's float order (dotQ4_0, dotQ8_0)
 *   Q4_K / Q5_K:  sum_B  dX_B * (d_B * sum_s sc_s (qW.qX)_s  -  dmin_B * sum_s m_s * sum(qX)_s)
 *   Q6_K:         sum_B  dX_B * d_B * sum_s sc_s * ((qW - 32).qX)_s
 *   Q2_K, Q3_K, IQ4_XS: k-quants-low.ts
 *   Q4_1, Q5_0, Q5_1, IQ4_NL (Q8_0 / Q8_1 activations): nibble-blocks.ts
 *   F16:          sum_j  W_j * f16(x_j), summed in llama.cpp's order (dotF16)
 *   F32:          sum_j  W_j x_j
 */
import { GGMLType, GGML_TYPES } from "../../formats/ggml-types.js";
import { f16ToF32 } from "../../formats/quants/half.js";
import { Q8Row, quantizeQ8_0, quantizeQ8_K, roundF16 } from "./quantize.js";
import { dotIQ4_XS, dotQ2_K, dotQ3_K, fmaf } from "./k-quants-low.js";
import { dotIQ4_NL, dotQ4_1, dotQ5_0, dotQ5_1, quantizeQ8_1, type Q8_1Row } from "./nibble-blocks.js";

/** The weight types with a matmul kernel. */
export type MatmulType = GGMLType.F32 | GGMLType.F16 | GGMLType.Q4_0 | GGMLType.Q8_0 | GGMLType.Q4_K | GGMLType.Q5_K | GGMLType.Q6_K
  | GGMLType.Q2_K | GGMLType.Q3_K | GGMLType.IQ4_XS
  | GGMLType.Q4_1 | GGMLType.Q5_0 | GGMLType.Q5_1 | GGMLType.IQ4_NL;

export const MATMUL_TYPES: readonly MatmulType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS,
  GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL,
];

/** How a type's activations are rounded before the product. */
export function activationKind(type: MatmulType): "q8_0" | "q8_1" | "q8_K" | "f16" | "f32" {
  switch (type) {
    case GGMLType.Q4_0:
    case GGMLType.Q8_0:
    case GGMLType.Q5_0:
    case GGMLType.IQ4_NL:
      return "q8_0";
    case GGMLType.Q4_1:
    case GGMLType.Q5_1:
      return "q8_1";
    case GGMLType.Q4_K:
    case GGMLType.Q5_K:
    case GGMLType.Q6_K:
    case GGMLType.Q2_K:
    case GGMLType.Q3_K:
    case GGMLType.IQ4_XS:
      return "q8_K";
    case GGMLType.F16:
      return "f16";
    case GGMLType.F32:
      return "f32";
  }
}

/** Bytes of one row of `cols` weights of `type`. */
export function rowBytes(type: MatmulType, cols: number): number {
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  return (cols / blockSize) * bytesPerBlock;
}

const f16 = (w: Uint8Array, o: number): number => f16ToF32(w[o] | (w[o + 1] << 8));

/** 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block (12 packed bytes at s). */
export function scaleMinK4(w: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [w[s + j] & 63, w[s + j + 4] & 63];
  return [(w[s + j + 4] & 15) | ((w[s + j - 4] >> 6) << 4), (w[s + j + 4] >> 4) | ((w[s + j] >> 6) << 4)];
}

/**
 * Q4_0 in llama.cpp's CPU_REPACK order (ggml_gemv / ggml_gemm_q4_0_8x8_q8_0 on AVX2 / AVX-512,
 * where llama.cpp loads every Q4_0 weight with rows % 8 == 0): acc = fma(S_b, dW_b * dX_b, acc)
 * over the blocks in order, S_b the exact integer block sum, each step rounded once.
 */
export function dotQ4_0(w: Uint8Array, o: number, x: Q8Row): number {
  let acc = 0;
  for (let b = 0; b < x.d.length; b++, o += 18) {
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      sum += ((w[o + 2 + j] & 15) - 8) * x.qs[b * 32 + j] + ((w[o + 2 + j] >> 4) - 8) * x.qs[b * 32 + 16 + j];
    }
    acc = fmaf(sum, Math.fround(f16(w, o) * x.d[b]), acc);
  }
  return acc;
}

/**
 * ggml's x86 8-lane order for Q4_0 / Q8_0 (ggml_vec_dot_q4_0_q8_0 / q8_0_q8_0 with AVX2, and
 * tinyBLAS's Q0 kernels for 2+ tokens): lane i accumulates fma(dW_b * dX_b, S_b,i, lane i), S_b,i
 * the integer sum of codes 4i..4i+3 of block b; hsum_float_8 at the end. code(b, j): weight j of
 * block b (its scale at o + bytes * b).
 */
function dotLanes8(w: Uint8Array, o: number, x: Q8Row, bytes: number, code: (p: number, j: number) => number): number {
  const acc = new Float64Array(8);
  for (let b = 0; b < x.d.length; b++, o += bytes) {
    const d = Math.fround(f16(w, o) * x.d[b]);
    for (let i = 0; i < 8; i++) {
      let s = 0;
      for (let j = 4 * i; j < 4 * i + 4; j++) s += code(o, j) * x.qs[b * 32 + j];
      acc[i] = fmaf(d, s, acc[i]);
    }
  }
  const f = Math.fround;
  return f(f(f(acc[0] + acc[4]) + f(acc[2] + acc[6])) + f(f(acc[1] + acc[5]) + f(acc[3] + acc[7])));
}

/** Q4_0 in the 8-lane order: llama.cpp's for Q4_0 weights it does not repack (rows % 8 != 0). */
export const dotQ4_0Lanes = (w: Uint8Array, o: number, x: Q8Row): number =>
  dotLanes8(w, o, x, 18, (p, j) => (j < 16 ? w[p + 2 + j] & 15 : w[p + 2 + j - 16] >> 4) - 8);

/** Q8_0 in the 8-lane order (llama.cpp never repacks Q8_0 on x86). */
export const dotQ8_0 = (w: Uint8Array, o: number, x: Q8Row): number =>
  dotLanes8(w, o, x, 34, (p, j) => (w[p + 2 + j] << 24) >> 24);

/** Q4_0 for a row of a matrix of `rows` rows, as llama.cpp computes it (repacked when rows % 8 == 0). */
export const dotQ4_0For = (rows: number) => (rows % 8 === 0 ? dotQ4_0 : dotQ4_0Lanes);

/** Q4_K and Q5_K share everything but the 5th bit (qh = -1 for Q4_K). */
function dotQ45K(w: Uint8Array, o: number, x: Q8Row, blockBytes: number, qh: number): number {
  let y = 0;
  for (let B = 0; B < x.d.length; B++, o += blockBytes) {
    const qs = o + (qh < 0 ? 16 : 48);
    let dots = 0;
    let mins = 0;
    for (let s = 0; s < 8; s++) {
      const [sc, m] = scaleMinK4(w, o + 4, s);
      const c = s >> 1;
      let sum = 0;
      for (let l = 0; l < 32; l++) {
        let q = s & 1 ? w[qs + 32 * c + l] >> 4 : w[qs + 32 * c + l] & 15;
        if (qh >= 0) q |= ((w[o + 16 + l] >> s) & 1) << 4;
        sum += q * x.qs[B * 256 + 32 * s + l];
      }
      dots += sc * sum;
      mins += m * (x.sums[B * 16 + 2 * s] + x.sums[B * 16 + 2 * s + 1]);
    }
    y += x.d[B] * (f16(w, o) * dots - f16(w, o + 2) * mins);
  }
  return y;
}

export const dotQ4_K = (w: Uint8Array, o: number, x: Q8Row): number => dotQ45K(w, o, x, 144, -1);
export const dotQ5_K = (w: Uint8Array, o: number, x: Q8Row): number => dotQ45K(w, o, x, 176, 16);

/** The 6-bit code of value v (0..255) of the Q6_K super-block at o. */
export function codeQ6K(w: Uint8Array, o: number, v: number): number {
  const h = v >> 7;
  const k = (v >> 5) & 3;
  const l = v & 31;
  const ql = w[o + 64 * h + l + (k & 1) * 32];
  const low = k < 2 ? ql & 15 : ql >> 4;
  const high = (w[o + 128 + 32 * h + l] >> (2 * k)) & 3;
  return low | (high << 4);
}

export function dotQ6_K(w: Uint8Array, o: number, x: Q8Row): number {
  let y = 0;
  for (let B = 0; B < x.d.length; B++, o += 210) {
    let sum = 0;
    for (let s = 0; s < 16; s++) {
      const sc = (w[o + 192 + s] << 24) >> 24;
      let dot = 0;
      for (let l = 0; l < 16; l++) dot += (codeQ6K(w, o, 16 * s + l) - 32) * x.qs[B * 256 + 16 * s + l];
      sum += sc * dot;
    }
    y += x.d[B] * f16(w, o + 208) * sum;
  }
  return y;
}

/**
 * The summation order of llama.cpp's F16 matrix product on x86 with AVX-512 (libggml-cpu's
 * zen4 / icelake builds, which node-llama-cpp loads on this project's reference machines).
 * Every product of two halves is exact in f32 (11 x 11 significant bits), so FMA and mul+add
 * agree and only the order of the additions matters. Two orders, chosen per call:
 *
 *   16 lanes (tinyBLAS, llamafile_sgemm): when the call has nTok >= 2 tokens, cols % 16 == 0 and
 *     the matrix's row count % 4 == 0. Lane i (0..15) sums the products of columns i, i+16,
 *     i+32, ... in f32, in column order; then _mm512_reduce_add_ps halves the lanes pairwise
 *     (i + i+8, then i + i+4, i + i+2, i + i+1).
 *   64 lanes (ggml_vec_dot_f16, four 16-wide accumulators), otherwise: one token (decode), any
 *     MoE expert product (ggml_mul_mat_id always takes this path; zh-llama runs experts one
 *     token at a time), and the shapes tinyBLAS declines. Lane i (0..63) sums columns i, i+64,
 *     ... over the first cols & ~63 columns; the lanes halve pairwise as above (i + i+32 first),
 *     and the tree's f32 result widens to f64, which adds the leftover columns' products one by
 *     one in order and rounds to f32 once at the end.
 *
 * Checked to the bit against llama.cpp's own mul_mat and mul_mat_id (tools/golden-f16-matmul.py,
 * fixtures/golden/kernels/matmul-f16.json).
 */
export function f16Lanes(nTok: number, cols: number, rows: number): 16 | 64 {
  return nTok >= 2 && cols % 16 === 0 && rows % 4 === 0 ? 16 : 64;
}

/** One F16 dot product: halves at w[o..], f16-rounded activations x[0..cols), in `lanes` order. */
export function dotF16(w: Uint8Array, o: number, x: ArrayLike<number>, cols: number, lanes: 16 | 64): number {
  const fr = Math.fround;
  const acc = new Array<number>(lanes).fill(0);
  const body = cols - (cols % lanes);
  for (let j = 0; j < body; j += lanes) {
    for (let i = 0; i < lanes; i++) acc[i] = fr(acc[i] + f16(w, o + 2 * (j + i)) * x[j + i]);
  }
  for (let half = lanes >> 1; half >= 1; half >>= 1) {
    for (let i = 0; i < half; i++) acc[i] = fr(acc[i] + acc[i + half]);
  }
  let sum = acc[0]; // f64 from here on: only the 64-lane order has leftover columns
  for (let j = body; j < cols; j++) sum += f16(w, o + 2 * j) * x[j];
  return fr(sum);
}

/**
 * y (nTok x rows) = W (rows x cols, bytes w) times x (nTok x cols), with llama.cpp's rounding
 * of x. This is the specification the WASM kernels are tested against.
 */
export function matmul(type: MatmulType, w: Uint8Array, x: Float32Array, rows: number, cols: number, nTok = 1): Float32Array {
  const y = new Float32Array(nTok * rows);
  const rb = rowBytes(type, cols);
  for (let t = 0; t < nTok; t++) {
    const xt = x.subarray(t * cols, (t + 1) * cols);
    const kind = activationKind(type);
    const xq = kind === "q8_0" ? quantizeQ8_0(xt) : kind === "q8_1" ? quantizeQ8_1(xt) : kind === "q8_K" ? quantizeQ8_K(xt) : undefined;
    const xh = kind === "f16" ? xt.map(roundF16) : undefined;
    for (let r = 0; r < rows; r++) {
      const o = r * rb;
      let v = 0;
      switch (type) {
        case GGMLType.Q4_0: v = dotQ4_0For(rows)(w, o, xq!); break;
        case GGMLType.Q8_0: v = dotQ8_0(w, o, xq!); break;
        case GGMLType.Q4_K: v = dotQ4_K(w, o, xq!); break;
        case GGMLType.Q5_K: v = dotQ5_K(w, o, xq!); break;
        case GGMLType.Q6_K: v = dotQ6_K(w, o, xq!); break;
        case GGMLType.Q2_K: v = dotQ2_K(w, o, xq!); break;
        case GGMLType.Q3_K: v = dotQ3_K(w, o, xq!); break;
        case GGMLType.IQ4_XS: v = dotIQ4_XS(w, o, xq!); break;
        case GGMLType.Q4_1: v = dotQ4_1(w, o, xq as Q8_1Row); break;
        case GGMLType.Q5_0: v = dotQ5_0(w, o, xq!); break;
        case GGMLType.Q5_1: v = dotQ5_1(w, o, xq as Q8_1Row); break;
        case GGMLType.IQ4_NL: v = dotIQ4_NL(w, o, xq!); break;
        case GGMLType.F16:
          v = dotF16(w, o, xh!, cols, f16Lanes(nTok, cols, rows));
          break;
        case GGMLType.F32: {
          const dv = new DataView(w.buffer, w.byteOffset + o, 4 * cols);
          for (let j = 0; j < cols; j++) v += dv.getFloat32(4 * j, true) * xt[j];
          break;
        }
      }
      y[t * rows + r] = v;
    }
  }
  return y;
}
