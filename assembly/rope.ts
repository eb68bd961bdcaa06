/*
 * Rotary position embedding over nTok rows of nHeads heads (row stride ld floats), as ggml-cpu's
 * rope computes it (ops.cpp ggml_rope_cache_init, rope_yarn, rotate_pairs), all in f32.
 *
 * invFreq: f64[nDims/2] frequencies (what the WebGPU shader reads), then llama.cpp's parameters
 * as f64 slots (src/kernels/reference/rope.ts, ropeFrequencies): thetaScale, freqScale,
 * extFactor, mscale, then rampMix[nDims/2]. Per position p:
 *   theta_0 = p, theta_{i+1} = theta_i * thetaScale,
 *   t_i = freqScale * theta_i;  with extFactor != 0 (YaRN): t_i = fma(t_i, 1 - rampMix_i, theta_i * rampMix_i)
 *   c_i = cosf(t_i) * mscale,  s_i = sinf(t_i) * mscale  (glibc's cosf / sinf: trig.ts)
 * and each pair (a, b) becomes (fma(a, c, -(b s)), fma(a, s, b c)):
 *   normal (GGUF llama, adjacent pairs): a = x[2i], b = x[2i+1]
 *   neox (rotate_half):                  a = x[i],  b = x[i + nDims/2]
 * Dimensions nDims..headDim-1 pass through. cs: scratch of nDims f32 for one position's cos/sin.
 * (mscale, the argument, is the WebGPU shader's; the table's own is used here.)
 */
import { fma4, fmaf, fusedMaddOk } from "./fma";
import { cosSinTo } from "./trig";

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
  const fused = fusedMaddOk();
  for (let t = 0; t < nTok; t++) {
    let theta = <f32>(pos0 + t);
    for (let i = 0; i < half; i++) {
      let th = freqScale * theta;
      if (ext != 0) {
        const rm = <f32>load<f64>(ramp + (<usize>i << 3));
        th = fmaf(th, <f32>1 - rm, theta * rm);
      }
      cosSinTo(th, ms, cs + (<usize>i << 3));
      theta = theta * thetaScale;
    }
    const row = x + (<usize>t * <usize>ld << 2);
    for (let h = 0; h < nHeads; h++) {
      const hx = row + (<usize>h * <usize>headDim << 2);
      let i = 0;
      if (neox) {
        // four pairs (x[i], x[i + half]) at once
        for (; i + 4 <= half; i += 4) {
          const pa = hx + (<usize>i << 2);
          const pb = hx + (<usize>(i + half) << 2);
          const cs0 = v128.load(cs + (<usize>i << 3));
          const cs1 = v128.load(cs + (<usize>i << 3), 16);
          const c = i32x4.shuffle(cs0, cs1, 0, 2, 4, 6);
          const sn = i32x4.shuffle(cs0, cs1, 1, 3, 5, 7);
          const a = v128.load(pa);
          const b = v128.load(pb);
          v128.store(pa, fma4(a, c, f32x4.neg(f32x4.mul(b, sn)), fused));
          v128.store(pb, fma4(a, sn, f32x4.mul(b, c), fused));
        }
      } else {
        // two adjacent pairs [a0 b0 a1 b1] against [c0 s0 c1 s1]
        const negEven = i32x4(0x80000000, 0, 0x80000000, 0);
        for (; i + 2 <= half; i += 2) {
          const p = hx + (<usize>i << 3);
          const v = v128.load(p);
          const csv = v128.load(cs + (<usize>i << 3));
          const bs = f32x4.mul(i32x4.shuffle(v, v, 1, 1, 3, 3), i32x4.shuffle(csv, csv, 1, 0, 3, 2)); // [b s, b c, ...]
          v128.store(p, fma4(i32x4.shuffle(v, v, 0, 0, 2, 2), csv, v128.xor(bs, negEven), fused));
        }
      }
      for (; i < half; i++) {
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
