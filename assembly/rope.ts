/*
 * Rotary position embedding over nTok rows of nHeads heads (row stride ld floats).
 *
 * Frequencies come from the caller as f64 invFreq[nDims/2] with every scaling mode already
 * folded in (src/kernels/reference/rope.ts: none, linear/PI, NTK, YaRN), so here
 *   theta_i = pos * invFreq[i],  c_i = cos(theta_i) * mscale,  s_i = sin(theta_i) * mscale
 * and each pair (a, b) becomes (a c - b s, a s + b c):
 *   normal (GGUF llama, adjacent pairs): a = x[2i], b = x[2i+1]
 *   neox (rotate_half):                  a = x[i],  b = x[i + nDims/2]
 * Dimensions nDims..headDim-1 pass through. cs: scratch of nDims f32 for one position's cos/sin.
 */

export function rope(
  x: usize, cs: usize, nHeads: i32, headDim: i32, nDims: i32, pos0: i32,
  invFreq: usize, mscale: f64, neox: i32, nTok: i32, ld: i32,
): void {
  const half = nDims >> 1;
  for (let t = 0; t < nTok; t++) {
    const p = <f64>(pos0 + t);
    for (let i = 0; i < half; i++) {
      const th = p * load<f64>(invFreq + (<usize>i << 3));
      store<f32>(cs + (<usize>i << 3), <f32>(Math.cos(th) * mscale));
      store<f32>(cs + (<usize>i << 3), <f32>(Math.sin(th) * mscale), 4);
    }
    const row = x + (<usize>t * <usize>ld << 2);
    for (let h = 0; h < nHeads; h++) {
      const hx = row + (<usize>h * <usize>headDim << 2);
      for (let i = 0; i < half; i++) {
        const c = load<f32>(cs + (<usize>i << 3));
        const s = load<f32>(cs + (<usize>i << 3), 4);
        const ia: usize = neox ? <usize>i : <usize>(2 * i);
        const ib: usize = neox ? <usize>(i + half) : <usize>(2 * i + 1);
        const a = load<f32>(hx + (ia << 2));
        const b = load<f32>(hx + (ib << 2));
        store<f32>(hx + (ia << 2), a * c - b * s);
        store<f32>(hx + (ib << 2), a * s + b * c);
      }
    }
  }
}
