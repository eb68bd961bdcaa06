/*
 * Rotary position embedding over nTok rows of nHeads heads (row stride ld floats), as ggml-cpu's
 * rope computes it (ops.cpp ggml_rope_cache_init, rope_yarn, rotate_pairs), all in f32.
 *
 * invFreq: f64[nDims/2] frequencies (what the WebGPU shader reads), then llama.cpp's parameters
 * as f64 slots (src/kernels/reference/rope.ts, ropeFrequencies): thetaScale, freqScale,
 * extFactor, mscale, then rampMix[nDims/2]. Per position p:
 *   theta_0 = p, theta_{i+1} = theta_i * thetaScale,
 *   t_i = freqScale * theta_i;  with extFactor != 0 (YaRN): t_i = fma(t_i, 1 - rampMix_i, theta_i * rampMix_i)
 *   c_i = cos(t_i) * mscale,  s_i = sin(t_i) * mscale    (cos, sin of the f32 t_i, rounded to f32)
 * and each pair (a, b) becomes (fma(a, c, -(b s)), fma(a, s, b c)):
 *   normal (GGUF llama, adjacent pairs): a = x[2i], b = x[2i+1]
 *   neox (rotate_half):                  a = x[i],  b = x[i + nDims/2]
 * Dimensions nDims..headDim-1 pass through. cs: scratch of nDims f32 for one position's cos/sin.
 * (mscale, the argument, is the WebGPU shader's; the table's own is used here.)
 */
import { fmaf } from "./fma";

export function rope(
  x: usize, cs: usize, nHeads: i32, headDim: i32, nDims: i32, pos0: i32,
  invFreq: usize, mscale: f64, neox: i32, nTok: i32, ld: i32,
): void {
  const half = nDims >> 1;
  const params = invFreq + (<usize>half << 3);
  const thetaScale = <f32>load<f64>(params);
  const freqScale = <f32>load<f64>(params, 8);
  const ext = <f32>load<f64>(params, 16);
  const ms = <f32>load<f64>(params, 24);
  const ramp = params + 32;
  for (let t = 0; t < nTok; t++) {
    let theta = <f32>(pos0 + t);
    for (let i = 0; i < half; i++) {
      let th = freqScale * theta;
      if (ext != 0) {
        const rm = <f32>load<f64>(ramp + (<usize>i << 3));
        th = fmaf(th, <f32>1 - rm, theta * rm);
      }
      store<f32>(cs + (<usize>i << 3), <f32>Math.cos(<f64>th) * ms);
      store<f32>(cs + (<usize>i << 3), <f32>Math.sin(<f64>th) * ms, 4);
      theta = theta * thetaScale;
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
        store<f32>(hx + (ia << 2), fmaf(a, c, -(b * s)));
        store<f32>(hx + (ib << 2), fmaf(a, s, b * c));
      }
    }
  }
}
