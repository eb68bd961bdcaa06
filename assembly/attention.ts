/*
 * Causal multi-head attention of nTok queries over a KV cache, grouped-query heads.
 *
 *   q, out: nTok rows of nHead*headDim f32.    K, V cache: rows per position of nKvHead*headDim,
 *   f32 or f16 (kvF16 = 1). Query t sits at position pos0 + t and sees positions 0..pos0+t.
 *   Head h reads kv head h / (nHead / nKvHead).
 *
 *   score_j = (q_h . k_j) * scale;  p = softmax(score);  out_h = sum_j p_j v_j
 *
 * With an f16 cache llama.cpp rounds q and p to f16 before its two matrix products (the F16
 * matmul converts its input); we do the same so both engines see the same numbers.
 * Heads [h0, h1) only, so threads can split heads. scores: scratch of nKv f32 per thread,
 * qh: scratch of headDim f32 per thread.
 */
import { floatToHalf, halfToFloat, halves4, hsumF32, HALF_TO_SINGLE } from "./common";
import { softmaxRow } from "./norm";

// @ts-ignore: decorator
@inline
function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), v128.load(b + (<usize>j << 2))));
  let s = hsumF32(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

// @ts-ignore: decorator
@inline
function dotF16(a: usize, h: usize, n: i32): f32 {
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(0x7fff);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k = halves4(v128.load16x4_u(h + (<usize>j << 1)), magic, mask);
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), k));
  }
  let s = hsumF32(acc);
  for (; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * halfToFloat(load<u16>(h + (<usize>j << 1)));
  return s;
}

export function attention(
  q: usize, k: usize, v: usize, out: usize, scores: usize, qh: usize,
  nHead: i32, nKvHead: i32, headDim: i32, pos0: i32, nTok: i32, kvF16: i32, scale: f32,
  h0: i32, h1: i32,
): void {
  const group = nHead / nKvHead;
  const kvRow = <usize>(nKvHead * headDim);
  const elt: usize = kvF16 ? 2 : 4;
  const qRow = <usize>(nHead * headDim);
  const magic = f32x4.splat(HALF_TO_SINGLE);
  const mask = i32x4.splat(0x7fff);
  for (let t = 0; t < nTok; t++) {
    const nKv = pos0 + t + 1;
    for (let h = h0; h < h1; h++) {
      const kvOff = <usize>((h / group) * headDim) * elt;
      const qp = q + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      const op = out + ((<usize>t * qRow + <usize>(h * headDim)) << 2);
      if (kvF16) {
        for (let d = 0; d < headDim; d++) {
          store<f32>(qh + (<usize>d << 2), halfToFloat(floatToHalf(load<f32>(qp + (<usize>d << 2)))));
        }
        for (let j = 0; j < nKv; j++) {
          store<f32>(scores + (<usize>j << 2), dotF16(qh, k + <usize>j * kvRow * elt + kvOff, headDim) * scale);
        }
      } else {
        for (let j = 0; j < nKv; j++) {
          store<f32>(scores + (<usize>j << 2), dotF32(qp, k + <usize>j * kvRow * elt + kvOff, headDim) * scale);
        }
      }
      softmaxRow(scores, scores, nKv);
      memory.fill(op, 0, <usize>headDim << 2);
      for (let j = 0; j < nKv; j++) {
        const vp = v + <usize>j * kvRow * elt + kvOff;
        let p = load<f32>(scores + (<usize>j << 2));
        let d = 0;
        if (kvF16) {
          p = halfToFloat(floatToHalf(p));
          const pv = f32x4.splat(p);
          for (; d + 4 <= headDim; d += 4) {
            const o = op + (<usize>d << 2);
            v128.store(o, f32x4.add(v128.load(o), f32x4.mul(halves4(v128.load16x4_u(vp + (<usize>d << 1)), magic, mask), pv)));
          }
          for (; d < headDim; d++) {
            const o = op + (<usize>d << 2);
            store<f32>(o, load<f32>(o) + halfToFloat(load<u16>(vp + (<usize>d << 1))) * p);
          }
        } else {
          const pv = f32x4.splat(p);
          for (; d + 4 <= headDim; d += 4) {
            const o = op + (<usize>d << 2);
            v128.store(o, f32x4.add(v128.load(o), f32x4.mul(v128.load(vp + (<usize>d << 2)), pv)));
          }
          for (; d < headDim; d++) {
            const o = op + (<usize>d << 2);
            store<f32>(o, load<f32>(o) + load<f32>(vp + (<usize>d << 2)) * p);
          }
        }
      }
    }
  }
}

/** Write n f32 as halves (an f16 KV cache row). */
export function store_f16(x: usize, h: usize, n: i32): void {
  for (let j = 0; j < n; j++) store<u16>(h + (<usize>j << 1), <u16>floatToHalf(load<f32>(x + (<usize>j << 2))));
}
