/*
 * Walsh-Hadamard rotation of chunks of n values (n a power of two), in place:
 *
 *   x <- H_n x,   H_n = (1/sqrt(n)) * Sylvester's +-1 matrix  (orthonormal, symmetric, H_n H_n = I)
 *
 * llama.cpp rotates Q, K and V this way before they meet a quantized KV cache (and rotates the
 * attention output back): q.k and p.V are unchanged in exact arithmetic, but an outlier is spread
 * over the whole chunk, so the Q8_0 blocks lose less. The order of operations is ggml's CPU fast
 * transform (ggml_compute_forward_fwht): scale every value by f32(1/sqrtf(n)) first, then
 * butterflies (u, v) -> (u + v, u - v) at strides 1, 2, 4, .. n/2; each output is then the same
 * f32 sum however many lanes do it.
 * Chunks [c0, c1) only, so threads can split them.
 */
export function hadamard(x: usize, n: i32, c0: i32, c1: i32): void {
  const scale: f32 = <f32>1.0 / sqrt<f32>(<f32>n);
  const sv = f32x4.splat(scale);
  for (let c = c0; c < c1; c++) {
    const p = x + ((<usize>c * <usize>n) << 2);
    for (let i = 0; i < n; i += 4) {
      const q = p + (<usize>i << 2);
      v128.store(q, f32x4.mul(v128.load(q), sv));
    }
    for (let len = 1; len < n && len < 4; len <<= 1) {
      for (let i = 0; i < n; i += len << 1) {
        for (let j = i; j < i + len; j++) {
          const a = p + (<usize>j << 2);
          const b = a + (<usize>len << 2);
          const u = load<f32>(a);
          const v = load<f32>(b);
          store<f32>(a, u + v);
          store<f32>(b, u - v);
        }
      }
    }
    for (let len = 4; len < n; len <<= 1) {
      for (let i = 0; i < n; i += len << 1) {
        for (let j = i; j < i + len; j += 4) {
          const a = p + (<usize>j << 2);
          const b = a + (<usize>len << 2);
          const u = v128.load(a);
          const v = v128.load(b);
          v128.store(a, f32x4.add(u, v));
          v128.store(b, f32x4.sub(u, v));
        }
      }
    }
  }
}
