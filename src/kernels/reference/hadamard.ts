/**
 * Walsh-Hadamard rotation of each chunk of n values of x (n a power of two), in place:
 *
 *   x <- H_n x,   H_n = (1/sqrt(n)) * Sylvester's +-1 matrix   (orthonormal, symmetric: H_n H_n = I)
 *
 * llama.cpp applies it to Q, K and V before they meet a quantized KV cache, and to the attention
 * output after: dot products are unchanged in exact arithmetic, but outliers are spread over the
 * chunk, so the Q8_0 blocks lose less. Computed as ggml's CPU fast transform is: every value
 * scaled by f32(1/sqrt(n)) first, then butterflies (u, v) -> (u + v, u - v) at strides 1, 2, .. n/2,
 * all in f32.
 */
const f = Math.fround;

export function walshHadamard(x: Float32Array, n: number): void {
  const scale = f(1 / f(Math.sqrt(n)));
  for (let c = 0; c + n <= x.length; c += n) {
    for (let i = c; i < c + n; i++) x[i] = f(x[i] * scale);
    for (let len = 1; len < n; len *= 2) {
      for (let i = c; i < c + n; i += 2 * len) {
        for (let j = i; j < i + len; j++) {
          const u = x[j], v = x[j + len];
          x[j] = f(u + v);
          x[j + len] = f(u - v);
        }
      }
    }
  }
}
