/**
 * Element-wise kernels, as llama.cpp computes them (float32 storage, float64 where ggml sums).
 *
 *   rmsnorm(x)  = x * 1/sqrt(mean(x^2) + eps) * w
 *   softmax(x)  = exp(x - max x) / sum exp(x - max x)
 *   silu(x)     = x / (1 + exp(-x)),   swiglu(g, u) = silu(g) * u
 */
const f = Math.fround;

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
  for (let r = 0; r < x.length / n; r++) {
    let max = -Infinity;
    for (let j = 0; j < n; j++) max = Math.max(max, x[r * n + j]);
    let sum = 0;
    for (let j = 0; j < n; j++) {
      y[r * n + j] = Math.exp(f(x[r * n + j] - max));
      sum += y[r * n + j];
    }
    const inv = f(1 / sum);
    for (let j = 0; j < n; j++) y[r * n + j] = f(y[r * n + j] * inv);
  }
  return y;
}

export function silu(x: number): number {
  return f(x / f(1 + Math.exp(-x)));
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
