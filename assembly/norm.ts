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
 * see src/kernels/reference/norm.ts for the formula. Its fmas are fmaf (one rounding); vexpf4 gives
 * the same bits four values at a time (fused madds, or exact f64 steps).
 */
import { fma4, fmaf, fusedMaddOk } from "./fma";

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

/**
 * vexpf on four lanes, the same bits. With a fused madd (fusedMaddOk(), hoisted by the caller as
 * `fused`): its steps with fma4. Otherwise in f64 (vexpf64). Then j * 2^n as one f32 multiply
 * (2^n a normal float for -126 <= n <= 127; the product exact or rounded once, as
 * _mm512_scalef_ps rounds it). A vector with a lane outside that range (|x| beyond ~87) goes
 * lane by lane to vexpf.
 */
// @ts-ignore: decorator
@inline
export function vexpf4(x: v128, fused: bool): v128 {
  return ASC_FEATURE_RELAXED_SIMD && fused ? vexpfFused(x) : vexpf64(x);
}

// @ts-ignore: decorator
@inline
function vexpfFused(x: v128): v128 {
  const shifter = f32x4.splat(SHIFTER);
  const n = f32x4.sub(fma4(x, f32x4.splat(LOG2E), shifter, true), shifter);
  const nn = f32x4.neg(n);
  const b = fma4(nn, f32x4.splat(LN2_LO), fma4(nn, f32x4.splat(LN2_HI), x, true), true);
  const u = f32x4.mul(b, b);
  const hi = fma4(fma4(f32x4.splat(C5), b, f32x4.splat(C4), true), u, fma4(f32x4.splat(C3), b, f32x4.splat(C2), true), true);
  return scale2n(x, fma4(hi, u, fma4(f32x4.splat(C1), b, f32x4.splat(1), true), true), n);
}

/** j * 2^n for the lanes of x (see vexpf4). */
// @ts-ignore: decorator
@inline
function scale2n(x: v128, j: v128, n: v128): v128 {
  const k = i32x4.trunc_sat_f32x4_s(n); // NaN: 0, and j is NaN
  if (v128.any_true(v128.or(i32x4.lt_s(k, i32x4.splat(-126)), i32x4.gt_s(k, i32x4.splat(127))))) return vexpfLanes(x);
  return f32x4.mul(j, i32x4.shl(i32x4.add(k, i32x4.splat(127)), 23));
}

/** f64 lanes rounded to f32 (and back). */
// @ts-ignore: decorator
@inline
function r32(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/** a * b + c in f64 for f32-valued lanes (the product exact; the sum rounded at most once). */
// @ts-ignore: decorator
@inline
function madd64(a: v128, b: v128, c: v128): v128 {
  return f64x2.add(f64x2.mul(a, b), c);
}

/**
 * The f64 lanes that lie exactly halfway between two floats (low 29 bits 0x10000000, as fma4
 * checks): only there can an f64 sum rounded again to f32 differ from the sum rounded once.
 */
// @ts-ignore: decorator
@inline
function tie(r: v128): v128 {
  return i64x2.eq(v128.and(r, i64x2.splat(0x1fffffff)), i64x2.splat(0x10000000));
}

/**
 * vexpf4 without a fused madd: each half of x as f64x2, every step exact in f64 and then rounded
 * once to f32. n = nearest(x log2e) is the fused z - shifter (x log2e exact; the shifter rounds
 * to an integer, ties to even). x - n ln2_hi and that minus n ln2_lo are exact in f64 (for
 * |n| <= 127: x a multiple of 2^-25 where n != 0, n ln2_hi of 2^-15, n ln2_lo of 2^-42, the sums
 * below 1/2). The polynomial's five fused steps may need more than 53 bits: a sum that lands on
 * a tie sends the vector to vexpf (fmaf settles it).
 */
// @ts-ignore: decorator
@inline
function vexpf64(x: v128): v128 {
  const log2e = f64x2.splat(<f64>LOG2E);
  const ln2hi = f64x2.splat(<f64>LN2_HI);
  const ln2lo = f64x2.splat(<f64>LN2_LO);
  const c5 = f64x2.splat(<f64>C5), c4 = f64x2.splat(<f64>C4), c3 = f64x2.splat(<f64>C3);
  const c2 = f64x2.splat(<f64>C2), c1 = f64x2.splat(<f64>C1), one = f64x2.splat(1);
  const x0 = f64x2.promote_low_f32x4(x);
  const x1 = f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 2, 3));
  const n0 = f64x2.nearest(f64x2.mul(x0, log2e));
  const n1 = f64x2.nearest(f64x2.mul(x1, log2e));
  const b0 = r32(f64x2.sub(r32(f64x2.sub(x0, f64x2.mul(n0, ln2hi))), f64x2.mul(n0, ln2lo)));
  const b1 = r32(f64x2.sub(r32(f64x2.sub(x1, f64x2.mul(n1, ln2hi))), f64x2.mul(n1, ln2lo)));
  const u0 = r32(f64x2.mul(b0, b0));
  const u1 = r32(f64x2.mul(b1, b1));
  let s0 = madd64(c5, b0, c4), s1 = madd64(c5, b1, c4);
  let t0 = madd64(c3, b0, c2), t1 = madd64(c3, b1, c2);
  let v0 = madd64(c1, b0, one), v1 = madd64(c1, b1, one);
  let ties = v128.or(v128.or(v128.or(tie(s0), tie(s1)), v128.or(tie(t0), tie(t1))), v128.or(tie(v0), tie(v1)));
  s0 = madd64(r32(s0), u0, r32(t0));
  s1 = madd64(r32(s1), u1, r32(t1));
  ties = v128.or(ties, v128.or(tie(s0), tie(s1)));
  const j0 = madd64(r32(s0), u0, r32(v0));
  const j1 = madd64(r32(s1), u1, r32(v1));
  ties = v128.or(ties, v128.or(tie(j0), tie(j1)));
  if (v128.any_true(ties)) return vexpfLanes(x);
  const j = i32x4.shuffle(f32x4.demote_f64x2_zero(j0), f32x4.demote_f64x2_zero(j1), 0, 1, 4, 5);
  const n = i32x4.shuffle(f32x4.demote_f64x2_zero(n0), f32x4.demote_f64x2_zero(n1), 0, 1, 4, 5);
  return scale2n(x, j, n);
}

function vexpfLanes(x: v128): v128 {
  let r = f32x4.splat(vexpf(f32x4.extract_lane(x, 0)));
  r = f32x4.replace_lane(r, 1, vexpf(f32x4.extract_lane(x, 1)));
  r = f32x4.replace_lane(r, 2, vexpf(f32x4.extract_lane(x, 2)));
  return f32x4.replace_lane(r, 3, vexpf(f32x4.extract_lane(x, 3)));
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

/** The sixteen lanes v0..v3 summed as _mm512_reduce_add_ps sums them: (l, l+8), (l, l+4), then (0+2) + (1+3). */
// @ts-ignore: decorator
@inline
export function reduce16x4(v0: v128, v1: v128, v2: v128, v3: v128): f32 {
  const b = f32x4.add(f32x4.add(v3, v1), f32x4.add(v2, v0));
  return (f32x4.extract_lane(b, 0) + f32x4.extract_lane(b, 2)) + (f32x4.extract_lane(b, 1) + f32x4.extract_lane(b, 3));
}

/**
 * ggml_vec_dot_f32 with AVX-512 (llama.cpp's F32 product for one token, and its F32 KQ product): 64-value blocks into sixteen
 * f32x4 accumulators (ggml's four 16-lane ones), x*y + acc fused; then S0+S2, S1+S3, S0+S1 and
 * _mm512_reduce_add_ps's order; the rest one value at a time, sum + x*y rounded twice.
 * Accumulator by accumulator (partF32), in the order the sum takes them, so that few are live
 * at once. `fused`: a constant (the caller is specialised on fusedMaddOk()).
 */
// @ts-ignore: decorator
@inline
export function dotVecF32(a: usize, b: usize, n: i32, fused: bool): f32 {
  const np = n & ~63;
  let s: f32 = 0;
  if (np > 0) {
    s = reduce16x4(
      f32x4.add(f32x4.add(partF32(a, b, np, 0, fused), partF32(a, b, np, 128, fused)), f32x4.add(partF32(a, b, np, 64, fused), partF32(a, b, np, 192, fused))),
      f32x4.add(f32x4.add(partF32(a, b, np, 16, fused), partF32(a, b, np, 144, fused)), f32x4.add(partF32(a, b, np, 80, fused), partF32(a, b, np, 208, fused))),
      f32x4.add(f32x4.add(partF32(a, b, np, 32, fused), partF32(a, b, np, 160, fused)), f32x4.add(partF32(a, b, np, 96, fused), partF32(a, b, np, 224, fused))),
      f32x4.add(f32x4.add(partF32(a, b, np, 48, fused), partF32(a, b, np, 176, fused)), f32x4.add(partF32(a, b, np, 112, fused), partF32(a, b, np, 240, fused))),
    );
  }
  for (let j = np; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

/** One of dotVecF32's accumulators: the f32x4 at byte `off` of every 64-value block, fused in order. */
// @ts-ignore: decorator
@inline
function partF32(a: usize, b: usize, np: i32, off: usize, fused: bool): v128 {
  // The first block: fma(a, b, +0) is a * b rounded once (and -0 made +0), fused or not.
  const z = f32x4.splat(0);
  let c = fused ? fma4(v128.load(a + off), v128.load(b + off), z, true) : f32x4.add(f32x4.mul(v128.load(a + off), v128.load(b + off)), z);
  for (let i = 64; i < np; i += 64) c = fma4(v128.load(a + (<usize>i << 2) + off), v128.load(b + (<usize>i << 2) + off), c, fused);
  return c;
}

/**
 * Softmax of one row of n floats from x to y (may alias), as ggml_vec_soft_max_f32 and its 1/sum
 * scaling. `padded`: the row goes on with masked entries up to a multiple of 16 (llama.cpp's KQ
 * rows, n_kv long), so its last partial block is a vector block too.
 */
export function softmaxRow(x: usize, y: usize, n: i32, padded: bool = false): void {
  if (ASC_FEATURE_RELAXED_SIMD && fusedMaddOk()) softmaxRowWith(x, y, n, padded, true);
  else softmaxRowWith(x, y, n, padded, false);
}

/** softmaxRow's body, for a constant `fused` (each of the two copies has one exp path). */
// @ts-ignore: decorator
@inline
function softmaxRowWith(x: usize, y: usize, n: i32, padded: bool, fused: bool): void {
  let mv = f32x4.splat(-Infinity);
  let j = 0;
  for (; j + 4 <= n; j += 4) mv = f32x4.max(mv, v128.load(x + (<usize>j << 2)));
  let m = max<f32>(max<f32>(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max<f32>(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; j < n; j++) m = max<f32>(m, load<f32>(x + (<usize>j << 2)));
  const mx = f32x4.splat(m);
  let sum: f64 = 0;
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = <usize>i << 2;
    const e0 = vexpf4(f32x4.sub(v128.load(x + o), mx), fused);
    const e1 = vexpf4(f32x4.sub(v128.load(x + o, 16), mx), fused);
    const e2 = vexpf4(f32x4.sub(v128.load(x + o, 32), mx), fused);
    const e3 = vexpf4(f32x4.sub(v128.load(x + o, 48), mx), fused);
    v128.store(y + o, e0);
    v128.store(y + o, e1, 16);
    v128.store(y + o, e2, 32);
    v128.store(y + o, e3, 48);
    sum += <f64>reduce16x4(e0, e1, e2, e3);
  }
  if (padded && i < n) {
    // The last, partial block; its masked lanes are exp(-inf) = 0.
    const xb = x + (<usize>i << 2);
    const yb = y + (<usize>i << 2);
    const cnt = n - i;
    const e0 = expPart(xb, 0, cnt, mx, fused);
    const e1 = expPart(xb, 4, cnt, mx, fused);
    const e2 = expPart(xb, 8, cnt, mx, fused);
    const e3 = expPart(xb, 12, cnt, mx, fused);
    storePart(yb, 0, cnt, e0);
    storePart(yb, 4, cnt, e1);
    storePart(yb, 8, cnt, e2);
    storePart(yb, 12, cnt, e3);
    sum += <f64>reduce16x4(e0, e1, e2, e3);
    i = n;
  }
  for (; i < n; i++) {
    const e = <f32>Math.exp(<f64>(load<f32>(x + (<usize>i << 2)) - m));
    sum += <f64>e;
    store<f32>(y + (<usize>i << 2), e);
  }
  const inv = <f32>(1.0 / sum);
  const iv = f32x4.splat(inv);
  j = 0;
  for (; j + 4 <= n; j += 4) v128.store(y + (<usize>j << 2), f32x4.mul(v128.load(y + (<usize>j << 2)), iv));
  for (; j < n; j++) store<f32>(y + (<usize>j << 2), load<f32>(y + (<usize>j << 2)) * inv);
}

/** exp(x[k..k+4) - m) of a block of cnt values at x, 0 in the lanes from cnt on. */
// @ts-ignore: decorator
@inline
function expPart(x: usize, k: i32, cnt: i32, mx: v128, fused: bool): v128 {
  let v = mx; // the masked lanes: exp(0), then zeroed
  if (k + 4 <= cnt) v = v128.load(x + (<usize>k << 2));
  else {
    if (k < cnt) v = f32x4.replace_lane(v, 0, load<f32>(x + (<usize>k << 2)));
    if (k + 1 < cnt) v = f32x4.replace_lane(v, 1, load<f32>(x + (<usize>(k + 1) << 2)));
    if (k + 2 < cnt) v = f32x4.replace_lane(v, 2, load<f32>(x + (<usize>(k + 2) << 2)));
  }
  const live = i32x4.lt_s(i32x4.add(i32x4.splat(k), i32x4(0, 1, 2, 3)), i32x4.splat(cnt));
  return v128.and(vexpf4(f32x4.sub(v, mx), fused), live);
}

/** The lanes of v that hold values k..cnt-1 (at most four) to y + 4k. */
// @ts-ignore: decorator
@inline
function storePart(y: usize, k: i32, cnt: i32, v: v128): void {
  if (k + 4 <= cnt) {
    v128.store(y + (<usize>k << 2), v);
    return;
  }
  if (k < cnt) store<f32>(y + (<usize>k << 2), f32x4.extract_lane(v, 0));
  if (k + 1 < cnt) store<f32>(y + (<usize>(k + 1) << 2), f32x4.extract_lane(v, 1));
  if (k + 2 < cnt) store<f32>(y + (<usize>(k + 2) << 2), f32x4.extract_lane(v, 2));
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

/** silu(v) = v / (1 + vexpf(0 - v)) on four lanes (ggml_v_silu). */
// @ts-ignore: decorator
@inline
function silu4(v: v128, fused: bool): v128 {
  return f32x4.div(v, f32x4.add(f32x4.splat(1), vexpf4(f32x4.sub(f32x4.splat(0), v), fused)));
}

/** out[i] = silu(g[i]) * u[i] for i in [i0, i1). */
export function swiglu(g: usize, u: usize, out: usize, i0: i32, i1: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD && fusedMaddOk()) siluSpan(g, u, out, i0, i1, true);
  else siluSpan(g, u, out, i0, i1, false);
}

/** out[i] = silu(x[i]) for i in [i0, i1). */
export function silu(x: usize, out: usize, i0: i32, i1: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD && fusedMaddOk()) siluSpan(x, 0, out, i0, i1, true);
  else siluSpan(x, 0, out, i0, i1, false);
}

/** out[i] = silu(x[i]) * u[i] (u = 0: silu alone), for a constant `fused`. */
// @ts-ignore: decorator
@inline
function siluSpan(x: usize, u: usize, out: usize, i0: i32, i1: i32, fused: bool): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const s = silu4(v128.load(x + o), fused);
    v128.store(out + o, u != 0 ? f32x4.mul(s, v128.load(u + o)) : s);
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const s = v / (<f32>1.0 + vexpf(<f32>0 - v));
    store<f32>(out + o, u != 0 ? s * load<f32>(u + o) : s);
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
