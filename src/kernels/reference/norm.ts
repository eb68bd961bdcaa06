/**
 * Element-wise kernels, as llama.cpp computes them (float32 storage, float64 where ggml sums).
 *
 *   rmsnorm(x)  = x * 1/sqrt(mean(x^2) + eps) * w
 *   softmax(x)  = exp(x - max x) / sum exp(x - max x)
 *   silu(x)     = x / (1 + exp(-x)),   swiglu(g, u) = silu(g) * u
 *
 * exp as ggml-cpu computes it on x86 with AVX-512 (vec.h ggml_v_expf, ARM's optimized-routines
 * expf, max error 1.45 + 0.5 ulp), not the correctly rounded one: with n = round(x log2 e)
 * (by adding and subtracting 1.5 * 2^23), b = x - n ln2 (ln2 in two parts, fused), and
 *   exp(x) = 2^n * (1 + c1 b + c2 b^2 + c3 b^3 + c4 b^4 + c5 b^5)
 * evaluated as fma(fma(fma(c5, b, c4), b^2, fma(c3, b, c2)), b^2, fma(c1, b, 1)), each fma
 * rounded once; |n| > 192 gives 0 or infinity. SiLU, SwiGLU and softmax use it on every
 * 16-value block of a row (the rest of a row, libm's expf: here the correctly rounded exp;
 * SiLU and SwiGLU take vexpf for every value, their rows being multiples of 16 in the models
 * here); softmax sums each block in float32 as _mm512_reduce_add_ps does, then in float64.
 */
import { fmaf } from "./k-quants-low.js";

const f = Math.fround;

/** A float32 from a hex-float mantissa and exponent. */
const hexf = (m: number, e: number): number => f(m * 2 ** e);
const SHIFTER = hexf(0x18, 19); // 0x1.8p23
const LOG2E = hexf(0x1715476, -24); // 0x1.715476p+0
const LN2_HI = hexf(0x162e4, -17); // 0x1.62e4p-1
const LN2_LO = hexf(0x17f7d1c, -44); // 0x1.7f7d1cp-20
const C5 = hexf(0x10e4020, -31); // 0x1.0e4020p-7
const C4 = hexf(0x1573e2e, -29); // 0x1.573e2ep-5
const C3 = hexf(0x1555e66, -27); // 0x1.555e66p-3
const C2 = hexf(0x1fffdb6, -26); // 0x1.fffdb6p-2
const C1 = hexf(0x1ffffec, -25); // 0x1.ffffecp-1

/** exp(x) for a float32 x, as ggml_v_expf (AVX-512) rounds it. */
export function vexpf(x: number): number {
  const z = fmaf(x, LOG2E, SHIFTER);
  const n = f(z - SHIFTER);
  const b = fmaf(-n, LN2_LO, fmaf(-n, LN2_HI, x));
  if (Math.abs(n) > 192) return n <= 0 ? 0 : Infinity;
  if (Number.isNaN(n)) return NaN;
  const u = f(b * b);
  const j = fmaf(fmaf(fmaf(C5, b, C4), u, fmaf(C3, b, C2)), u, fmaf(C1, b, 1));
  return f(j * 2 ** n); // _mm512_scalef_ps: one rounding
}

/** Sum of 16 float32 as _mm512_reduce_add_ps adds them (halves, quarters, then pairs). */
export function reduce16(v: Float32Array): number {
  const a = new Array<number>(8);
  for (let l = 0; l < 8; l++) a[l] = f(v[l + 8] + v[l]);
  const b0 = f(a[4] + a[0]), b1 = f(a[5] + a[1]), b2 = f(a[6] + a[2]), b3 = f(a[7] + a[3]);
  return f(f(b0 + b2) + f(b1 + b3));
}

/**
 * Softmax of one row of n values as ggml_vec_soft_max_f32 then the 1/sum scaling. `padded`:
 * the row continues with masked (-inf) entries up to a multiple of 16, as llama.cpp's KQ rows do
 * (n_kv is a multiple of 256 or the context), so a last partial block is a vector block too.
 */
export function softmaxRow(x: Float32Array, n: number, padded = false): Float32Array {
  const y = new Float32Array(n);
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, x[j]);
  let sum = 0;
  let i = 0;
  const block = new Float32Array(16);
  for (; i + 16 <= n || (padded && i < n); i += 16) {
    block.fill(0);
    for (let l = 0; l < 16 && i + l < n; l++) block[l] = y[i + l] = vexpf(f(x[i + l] - max));
    sum += reduce16(block);
  }
  for (; i < n; i++) {
    y[i] = Math.exp(f(x[i] - max));
    sum += y[i];
  }
  const inv = f(1 / sum);
  for (let j = 0; j < n; j++) y[j] = f(y[j] * inv);
  return y;
}

/** RMSNorm of each row of n values; `w` (length n) optional. */
export function rmsnorm(x: Float32Array, n: number, eps: number, w?: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let sumSq = 0;
    for (let j = 0; j < n; j++) sumSq += f(x[r * n + j] * x[r * n + j]);
    const scale = f(1 / f(Math.sqrt(f(f(sumSq / n) + f(eps)))));
    for (let j = 0; j < n; j++) {
      const v = f(x[r * n + j] * scale);
      y[r * n + j] = w ? f(v * w[j]) : v;
    }
  }
  return y;
}

/** Softmax of each row of n values. */
export function softmax(x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) y.set(softmaxRow(x.subarray(r * n, r * n + n), n), r * n);
  return y;
}

/**
 * Softmax of one row with the correctly rounded exp throughout (the Q8_0 cache's flash-attention
 * path, which does not go through ggml_vec_soft_max_f32).
 */
export function softmaxExact(x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n);
  let max = -Infinity;
  for (let j = 0; j < n; j++) max = Math.max(max, x[j]);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    y[j] = Math.exp(f(x[j] - max));
    sum += y[j];
  }
  const inv = f(1 / sum);
  for (let j = 0; j < n; j++) y[j] = f(y[j] * inv);
  return y;
}

/** silu(x) = x / (1 + exp(-x)) with ggml_v_expf (ggml_v_silu). */
export function silu(x: number): number {
  return f(x / f(1 + vexpf(f(0 - x))));
}

/** silu(gate) * up, element by element (the LLaMA feed-forward's gate). */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => f(silu(g) * up[i]));
}

export function add(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => f(v + b[i]));
}

export function mul(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => f(v * b[i]));
}
