/*
 * RMSNorm, softmax, SiLU / SwiGLU and element-wise adds. Rows of f32, contiguous.
 *
 *   rmsnorm:  y = (x * f32(1 / sqrt(f32(sum(x*x) / n) + eps))) * w       (w = 0: no weight)
 *             sum in f64 as ggml's ggml_compute_forward_rms_norm does; the weight multiply is
 *             a separate rounding, as llama.cpp applies it with a second op.
 *   softmax:  y = e / sum(e), e = exp(x - max(x)), scaled by f32(1/sum): as ggml_vec_soft_max_f32
 *             with AVX-512, each block of 16 with vexpf and summed in f32 as _mm512_reduce_add_ps
 *             does ((l, l+8) pairs, then (l, l+4), then (0+2) + (1+3)), the blocks' sums and the
 *             rest of the row (exp rounded once) in f64.
 *   silu:     x / (1 + vexpf(-x));   swiglu: silu(g) * u;   add: a + b;   mul: a * b;   scale: a * s.
 * vexpf is ggml_v_expf (AVX-512), the exp llama.cpp's x86 build uses in SiLU, SwiGLU and softmax;
 * see src/kernels/reference/norm.ts for the formula. Its fmas are fmaf (one rounding).
 */
import { fmaf } from "./fma";

const SHIFTER: f32 = 12582912.0; // 0x1.8p23
const LOG2E: f32 = reinterpret<f32>(0x3fb8aa3b); // 0x1.715476p+0
const LN2_HI: f32 = reinterpret<f32>(0x3f317200); // 0x1.62e4p-1
const LN2_LO: f32 = reinterpret<f32>(0x35bfbe8e); // 0x1.7f7d1cp-20
const C5: f32 = reinterpret<f32>(0x3c072010); // 0x1.0e4020p-7
const C4: f32 = reinterpret<f32>(0x3d2b9f17); // 0x1.573e2ep-5
const C3: f32 = reinterpret<f32>(0x3e2aaf33); // 0x1.555e66p-3
const C2: f32 = reinterpret<f32>(0x3efffedb); // 0x1.fffdb6p-2
const C1: f32 = reinterpret<f32>(0x3f7ffff6); // 0x1.ffffecp-1

/** exp(x) as ggml_v_expf (AVX-512) rounds it. */
export function vexpf(x: f32): f32 {
  const z = fmaf(x, LOG2E, SHIFTER);
  const n = z - SHIFTER;
  const b = fmaf(-n, LN2_LO, fmaf(-n, LN2_HI, x));
  if (Mathf.abs(n) > <f32>192) return n <= 0 ? <f32>0 : <f32>Infinity;
  if (isNaN(n)) return n;
  const u = b * b;
  const j = fmaf(fmaf(fmaf(C5, b, C4), u, fmaf(C3, b, C2)), u, fmaf(C1, b, <f32>1));
  // _mm512_scalef_ps: j * 2^n rounded once (2^n exact in f64 for |n| <= 192).
  return <f32>(<f64>j * reinterpret<f64>(<i64>(<i32>n + 1023) << 52));
}

export function rmsnorm(x: usize, w: usize, y: usize, n: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = x + (<usize>r * <usize>n << 2);
    const yr = y + (<usize>r * <usize>n << 2);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const v = v128.load(xr + (<usize>j << 2));
      const sq = f32x4.mul(v, v);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(sq));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(sq, sq, 2, 3, 0, 1)));
    }
    const s = f64x2.add(s0, s1);
    let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    for (; j < n; j++) {
      const v = load<f32>(xr + (<usize>j << 2));
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>n);
    const scale: f32 = <f32>1.0 / Mathf.sqrt(mean + eps);
    const sv = f32x4.splat(scale);
    j = 0;
    if (w != 0) {
      for (; j + 4 <= n; j += 4) {
        const o = <usize>j << 2;
        v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), sv), v128.load(w + o)));
      }
      for (; j < n; j++) {
        const o = <usize>j << 2;
        store<f32>(yr + o, (load<f32>(xr + o) * scale) * load<f32>(w + o));
      }
    } else {
      for (; j + 4 <= n; j += 4) {
        const o = <usize>j << 2;
        v128.store(yr + o, f32x4.mul(v128.load(xr + o), sv));
      }
      for (; j < n; j++) {
        const o = <usize>j << 2;
        store<f32>(yr + o, load<f32>(xr + o) * scale);
      }
    }
  }
}

/**
 * Softmax of one row of n floats from x to y (may alias), as ggml_vec_soft_max_f32 and its 1/sum
 * scaling. `padded`: the row goes on with masked entries up to a multiple of 16 (llama.cpp's KQ
 * rows, n_kv long), so its last partial block is a vector block too. blk: 64 bytes of scratch.
 */
export function softmaxRow(x: usize, y: usize, n: i32, padded: bool = false): void {
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) m = max<f32>(m, load<f32>(x + (<usize>j << 2)));
  let sum: f64 = 0;
  let i = 0;
  for (; i + 16 <= n || (padded && i < n); i += 16) {
    for (let l = 0; l < 16 && i + l < n; l++) {
      const o = <usize>(i + l) << 2;
      store<f32>(y + o, vexpf(load<f32>(x + o) - m));
    }
    // the block's sixteen lanes (zeros past n) in four v128
    const base = y + (<usize>i << 2);
    const cnt = min<i32>(16, n - i);
    const v0 = lanes(base, 0, cnt);
    const v1 = lanes(base, 4, cnt);
    const v2 = lanes(base, 8, cnt);
    const v3 = lanes(base, 12, cnt);
    const a0 = f32x4.add(v2, v0);
    const a1 = f32x4.add(v3, v1);
    const b = f32x4.add(a1, a0);
    sum += <f64>((f32x4.extract_lane(b, 0) + f32x4.extract_lane(b, 2)) + (f32x4.extract_lane(b, 1) + f32x4.extract_lane(b, 3)));
  }
  for (; i < n; i++) {
    const e = <f32>Math.exp(<f64>(load<f32>(x + (<usize>i << 2)) - m));
    sum += <f64>e;
    store<f32>(y + (<usize>i << 2), e);
  }
  const inv = <f32>(1.0 / sum);
  for (let j = 0; j < n; j++) store<f32>(y + (<usize>j << 2), load<f32>(y + (<usize>j << 2)) * inv);
}

/** Lanes k..k+3 of a block of cnt values at p (zeros from cnt on). */
// @ts-ignore: decorator
@inline
function lanes(p: usize, k: i32, cnt: i32): v128 {
  if (k + 4 <= cnt) return v128.load(p + (<usize>k << 2));
  let v = f32x4.splat(0);
  if (k < cnt) v = f32x4.replace_lane(v, 0, load<f32>(p + (<usize>k << 2)));
  if (k + 1 < cnt) v = f32x4.replace_lane(v, 1, load<f32>(p + (<usize>(k + 1) << 2)));
  if (k + 2 < cnt) v = f32x4.replace_lane(v, 2, load<f32>(p + (<usize>(k + 2) << 2)));
  return v;
}

/** Softmax of one row with exp rounded once throughout (the Q8_0 cache's flash-attention path). */
export function softmaxRowExact(x: usize, y: usize, n: i32): void {
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) m = max<f32>(m, load<f32>(x + (<usize>j << 2)));
  let sum: f64 = 0;
  for (let j = 0; j < n; j++) {
    const e = Mathf.exp(load<f32>(x + (<usize>j << 2)) - m);
    sum += <f64>e;
    store<f32>(y + (<usize>j << 2), e);
  }
  const inv = <f32>(1.0 / sum);
  for (let j = 0; j < n; j++) store<f32>(y + (<usize>j << 2), load<f32>(y + (<usize>j << 2)) * inv);
}

export function softmax(x: usize, y: usize, n: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) softmaxRow(x + (<usize>r * <usize>n << 2), y + (<usize>r * <usize>n << 2), n);
}

/** out[i] = silu(g[i]) * u[i] for i in [i0, i1). */
export function swiglu(g: usize, u: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(g + o);
    store<f32>(out + o, (v / (<f32>1.0 + vexpf(<f32>0 - v))) * load<f32>(u + o));
  }
}

/** out[i] = silu(x[i]) for i in [i0, i1). */
export function silu(x: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v / (<f32>1.0 + vexpf(<f32>0 - v)));
  }
}

/** out[i] = a[i] + b[i] for i in [i0, i1). */
export function add(a: usize, b: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** out[i] = a[i] * b[i] for i in [i0, i1). */
export function mul(a: usize, b: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) * load<f32>(b + o));
  }
}

/** out[i] += s * a[i] for i in [i0, i1): the weighted sum of expert outputs, attention's P.V. */
export function axpy(a: usize, s: f32, out: usize, i0: i32, i1: i32): void {
  const sv = f32x4.splat(s);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(out + o), f32x4.mul(v128.load(a + o), sv)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(out + o) + load<f32>(a + o) * s);
  }
}
