/*
 * RMSNorm, softmax, SiLU / SwiGLU and element-wise adds. Rows of f32, contiguous.
 *
 *   rmsnorm:  y = (x * f32(1 / sqrt(f32(sum(x*x) / n) + eps))) * w       (w = 0: no weight)
 *             sum in f64 as ggml's ggml_compute_forward_rms_norm does; the weight multiply is
 *             a separate rounding, as llama.cpp applies it with a second op.
 *   softmax:  y = e / sum(e), e = exp(x - max(x)), sum in f64, scaled by f32(1/sum).
 *   silu:     x / (1 + exp(-x));   swiglu: silu(g) * u;   add: a + b;   mul: a * b;   scale: a * s.
 */

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

/** Softmax of one row of n floats from x to y (may alias). */
export function softmaxRow(x: usize, y: usize, n: i32): void {
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
    store<f32>(out + o, (v / (<f32>1.0 + Mathf.exp(-v))) * load<f32>(u + o));
  }
}

/** out[i] = silu(x[i]) for i in [i0, i1). */
export function silu(x: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(out + o, v / (<f32>1.0 + Mathf.exp(-v)));
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
