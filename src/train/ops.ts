/**
 * The LLaMA graph's operations, each forward beside its backward (llm.c's train_gpt2.c layout):
 * outputs first in the argument lists, activations as flat float32 rows ([N][C] with N = B*T
 * token rows), nothing allocated. Backward functions ADD into parameter gradients (so gradient
 * accumulation over micro-batches is free) and into input gradients where the comment says so.
 *
 * The linear layers (y = x W^T) are in linear.ts, on the WASM matmul kernel.
 */

/**
 * Float32 in training; the gradient checks run the same code in float64 (test/train).
 */
export type Floats = Float32Array | Float64Array;

// ---------------------------------------------------------------------------------------------
// Embedding: out[t] = table[ids[t]]

export function embeddingForward(out: Floats, ids: Int32Array, table: Floats, N: number, C: number): void {
  for (let t = 0; t < N; t++) out.set(table.subarray(ids[t]! * C, ids[t]! * C + C), t * C);
}

/** dtable[ids[t]] += dout[t] */
export function embeddingBackward(dtable: Floats, dout: Floats, ids: Int32Array, N: number, C: number): void {
  for (let t = 0; t < N; t++) {
    const o = ids[t]! * C;
    const i = t * C;
    for (let j = 0; j < C; j++) dtable[o + j] += dout[i + j]!;
  }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: out = x * rstd * w,  rstd = 1 / sqrt(mean(x^2) + eps)   (llama.cpp: x*scale, then *w)

export function rmsnormForward(out: Floats, rstd: Floats, x: Floats, w: Floats, N: number, C: number, eps: number): void {
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let ss = 0;
    for (let j = 0; j < C; j++) ss += x[o + j]! * x[o + j]!;
    const s = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = s;
    for (let j = 0; j < C; j++) out[o + j] = x[o + j]! * s * w[j]!;
  }
}

/**
 * With xhat = x * rstd:  dw += sum_r dout * xhat;  dx += rstd * (g - xhat * mean(g * xhat)),
 * g = dout * w. dx is accumulated (the residual stream's gradient flows through it).
 */
export function rmsnormBackward(
  dx: Floats, dw: Floats | null, dout: Floats, x: Floats, w: Floats, rstd: Floats, N: number, C: number,
): void {
  for (let r = 0; r < N; r++) {
    const o = r * C;
    const s = rstd[r]!;
    let dot = 0;
    for (let j = 0; j < C; j++) dot += dout[o + j]! * w[j]! * x[o + j]! * s;
    dot /= C;
    for (let j = 0; j < C; j++) {
      const xhat = x[o + j]! * s;
      if (dw) dw[j] += dout[o + j]! * xhat;
      dx[o + j] += s * (dout[o + j]! * w[j]! - xhat * dot);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RoPE, GGUF's adjacent-pair layout: pair i of a head is (x[2i], x[2i+1]), turned by
// theta = pos * invFreq[i]; cos and sin carry mscale (YaRN) as the kernels do. Row r of the
// micro-batch sits at position r % T (every sequence starts at 0).

/** cos/sin tables [T][nRot/2], rounded to float32 exactly as the inference kernel rounds them. */
export function ropeTables(T: number, nRot: number, invFreq: Float64Array, mscale: number): { cos: Float32Array; sin: Float32Array } {
  const half = nRot / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let p = 0; p < T; p++) {
    for (let i = 0; i < half; i++) {
      const theta = p * invFreq[i]!;
      cos[p * half + i] = Math.cos(theta) * mscale;
      sin[p * half + i] = Math.sin(theta) * mscale;
    }
  }
  return { cos, sin };
}

/** In place: (a, b) -> (a c - b s, a s + b c). */
export function ropeForward(x: Floats, N: number, T: number, nHeads: number, headDim: number, nRot: number, cos: Floats, sin: Floats): void {
  rotate(x, N, T, nHeads, headDim, nRot, cos, sin, 1);
}

/** The rotation is orthogonal (times mscale), so its backward is the transposed rotation: turn by -theta. */
export function ropeBackward(dx: Floats, N: number, T: number, nHeads: number, headDim: number, nRot: number, cos: Floats, sin: Floats): void {
  rotate(dx, N, T, nHeads, headDim, nRot, cos, sin, -1);
}

function rotate(x: Floats, N: number, T: number, nHeads: number, headDim: number, nRot: number, cos: Floats, sin: Floats, sign: number): void {
  const half = nRot / 2;
  const ld = nHeads * headDim;
  for (let r = 0; r < N; r++) {
    const cs = (r % T) * half;
    for (let h = 0; h < nHeads; h++) {
      const o = r * ld + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[cs + i]!;
        const s = sign * sin[cs + i]!;
        const a = x[o + 2 * i]!;
        const b = x[o + 2 * i + 1]!;
        x[o + 2 * i] = a * c - b * s;
        x[o + 2 * i + 1] = a * s + b * c;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Causal self-attention with grouped-query heads: query head h reads kv head g = h / (nHead/nHeadKv)
// (llama.cpp's mapping). For each sequence b, head h, query t:
//   S_s = scale * q_t . k_s (s <= t),  P = softmax(S),  out_t = sum_s P_s v_s.
// probs: [B][nHead][T][T], the lower triangle kept for the backward pass.

export interface AttentionShape {
  B: number;
  T: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  scale: number;
}

export function attentionForward(out: Floats, probs: Floats, q: Floats, k: Floats, v: Floats, a: AttentionShape): void {
  const { B, T, nHead, nHeadKv, headDim: hd, scale } = a;
  const group = nHead / nHeadKv;
  const qLd = nHead * hd;
  const kvLd = nHeadKv * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qLd + h * hd;
        const po = ((b * nHead + h) * T + t) * T;
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          const ko = (b * T + s) * kvLd + g * hd;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d]! * k[ko + d]!;
          const sc = dot * scale;
          probs[po + s] = sc;
          if (sc > max) max = sc;
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) {
          const e = Math.exp(probs[po + s]! - max);
          probs[po + s] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let d = 0; d < hd; d++) out[qo + d] = 0;
        for (let s = 0; s <= t; s++) {
          const p = probs[po + s]! * inv;
          probs[po + s] = p;
          const vo = (b * T + s) * kvLd + g * hd;
          for (let d = 0; d < hd; d++) out[qo + d] += p * v[vo + d]!;
        }
      }
    }
  }
}

/**
 *   dP_s = dout_t . v_s;  dv_s += P_s dout_t;  dS_s = P_s (dP_s - sum_u P_u dP_u);
 *   dq_t = scale sum_s dS_s k_s;  dk_s += scale dS_s q_t.
 * dq, dk, dv are overwritten (zeroed here first). dp: scratch of T floats.
 */
export function attentionBackward(
  dq: Floats, dk: Floats, dv: Floats, dp: Floats,
  dout: Floats, q: Floats, k: Floats, v: Floats, probs: Floats, a: AttentionShape,
): void {
  const { B, T, nHead, nHeadKv, headDim: hd, scale } = a;
  const group = nHead / nHeadKv;
  const qLd = nHead * hd;
  const kvLd = nHeadKv * hd;
  dq.fill(0, 0, B * T * qLd);
  dk.fill(0, 0, B * T * kvLd);
  dv.fill(0, 0, B * T * kvLd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qLd + h * hd;
        const po = ((b * nHead + h) * T + t) * T;
        let pdp = 0;
        for (let s = 0; s <= t; s++) {
          const vo = (b * T + s) * kvLd + g * hd;
          const p = probs[po + s]!;
          let dot = 0;
          for (let d = 0; d < hd; d++) {
            dot += dout[qo + d]! * v[vo + d]!;
            dv[vo + d] += p * dout[qo + d]!;
          }
          dp[s] = dot;
          pdp += p * dot;
        }
        for (let s = 0; s <= t; s++) {
          const ds = probs[po + s]! * (dp[s]! - pdp) * scale;
          const ko = (b * T + s) * kvLd + g * hd;
          for (let d = 0; d < hd; d++) {
            dq[qo + d] += ds * k[ko + d]!;
            dk[ko + d] += ds * q[qo + d]!;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out = silu(g) * u,  silu(g) = g * sigmoid(g)

export function swigluForward(out: Floats, g: Floats, u: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    out[i] = (x / (1 + Math.exp(-x))) * u[i]!;
  }
}

/** dg = dout * u * silu'(g),  silu'(g) = sig(g) (1 + g (1 - sig(g)));  du = dout * silu(g). Overwrites. */
export function swigluBackward(dg: Floats, du: Floats, dout: Floats, g: Floats, u: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    const sig = 1 / (1 + Math.exp(-x));
    dg[i] = dout[i]! * u[i]! * sig * (1 + x * (1 - sig));
    du[i] = dout[i]! * x * sig;
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy over the vocabulary, fused with its gradient (llm.c's crossentropy_softmax_backward):
// loss_t = -log softmax(logits_t)[target_t]; targets < 0 (-100, HF's IGNORE_INDEX) are skipped.

/**
 * Rows [0, rows) of `logits` ([rows][V]) with their targets. Returns the summed loss over counted
 * rows. With `gradScale` set, logits are replaced by dloss/dlogits = (softmax - onehot) * gradScale
 * (zeros on skipped rows).
 */
export function crossEntropy(logits: Floats, targets: Int32Array, targetFrom: number, rows: number, V: number, gradScale: number | null): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const target = targets[targetFrom + r]!;
    if (target < 0) {
      if (gradScale !== null) logits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j]! > max) max = logits[o + j]!;
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j]! - max);
    total += Math.log(sum) + max - logits[o + target]!;
    if (gradScale !== null) {
      const inv = gradScale / sum;
      for (let j = 0; j < V; j++) logits[o + j] = Math.exp(logits[o + j]! - max) * inv;
      logits[o + target] -= gradScale;
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Transpose, cache-blocked: dst[cols][rows] = src[rows][cols]. The matmul kernel computes
// y = x W^T with both operands row-major, so the two backward products need transposed operands.

const TILE = 64;

/** Four source rows per pass write four adjacent destination floats per column (about 2x faster). */
export function transpose(dst: Float32Array, src: Float32Array, rows: number, cols: number): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      let r = r0;
      for (; r + 4 <= r1; r += 4) {
        const s0 = r * cols, s1 = s0 + cols, s2 = s1 + cols, s3 = s2 + cols;
        for (let c = c0; c < c1; c++) {
          const d = c * rows + r;
          dst[d] = src[s0 + c]!;
          dst[d + 1] = src[s1 + c]!;
          dst[d + 2] = src[s2 + c]!;
          dst[d + 3] = src[s3 + c]!;
        }
      }
      for (; r < r1; r++) {
        const so = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[so + c]!;
      }
    }
  }
}
