/**
 * Rotary position embedding and its context-extension scalings.
 *
 * Each pair of dimensions i (0 <= i < nDims/2) turns by theta_i = pos * invFreq_i, with
 *   invFreq_i = base^(-2i/nDims)                                          (none)
 *   invFreq_i = base^(-2i/nDims) / factor                                 (linear, "position interpolation")
 *   invFreq_i = base'^(-2i/nDims), base' = base * alpha^(nDims/(nDims-2)) (NTK-aware; Chinese-LLaMA-Alpaca's
 *               --alpha; "auto": alpha = (seqLen / (maxPositions/2) - 1) * coeff once seqLen > maxPositions)
 *   YaRN (jquesnelle/yarn, ggml rope_yarn): extrap_i = base^(-2i/d), interp_i = extrap_i / factor,
 *     corrDim(r) = d ln(origCtx / (2 pi r)) / (2 ln base), low = max(floor(corrDim(betaFast)), 0),
 *     high = min(ceil(corrDim(betaSlow)), d - 1), ramp_i = clamp((i - low) / max(high - low, 0.001), 0, 1),
 *     mask_i = (1 - ramp_i) * extFactor,  invFreq_i = interp_i (1 - mask_i) + extrap_i mask_i,
 *     and cos, sin scaled by mscale = (1 + 0.1 ln(factor)) * attnFactor (q and k both).
 * The formulas are UPSTREAM.md section 6; the scaled values are checked against numpy goldens.
 *
 * The rotation of a pair (a, b):  (a cos - b sin, a sin + b cos) with cos, sin times mscale.
 *   normal (GGUF LLaMA; llama.cpp's converter permuted q/k into adjacent pairs): a = x[2i], b = x[2i+1]
 *   neox (HF rotate_half):                                                      a = x[i],  b = x[i + nDims/2]
 */
import { fmaf } from "./k-quants-low.js";
import { cosf, sinf } from "./trig.js";

const f = Math.fround;

export type RopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | {
      type: "ntk";
      /** A fixed alpha, or "auto" to grow it with the sequence length. */
      alpha: number | "auto";
      /** "auto" only: the context the model was trained for (v2: max_position_embeddings; v1: 2048). */
      maxPositions?: number;
      /** "auto" only: AUTO_COEFF (v2: 1.0; v1 behaves as maxPositions 2048, coeff 1.1). */
      coeff?: number;
      /** Linear (PI) factor applied on top, as the v2 patch allows (default 1). */
      factor?: number;
    }
  | {
      type: "yarn";
      factor: number;
      originalContext: number;
      betaFast?: number;
      betaSlow?: number;
      extFactor?: number;
      attnFactor?: number;
    };

export interface RopeConfig {
  /** Rotated dimensions per head (<= head dimension; GGUF rope.dimension_count). */
  nDims: number;
  /** freq_base (rope_theta). */
  base: number;
  /** true: rotate_half pairs (x[i], x[i + nDims/2]); false: adjacent pairs (x[2i], x[2i+1]). */
  neox: boolean;
  scaling: RopeScaling;
}

/**
 * What every position needs: the per-pair frequencies and the cos/sin magnitude.
 * invFreq holds nDims/2 frequencies (f64, what the WebGPU shader reads), then llama.cpp's own
 * float32 parameters (GGML_ROPE_*, as f64 slots; what the CPU kernels read): the CPU kernels
 * turn each position as ggml-cpu's rope does (ops.cpp ggml_rope_cache_init / rope_yarn /
 * rotate_pairs), all in float32:
 *   theta_0 = pos, theta_{i+1} = theta_i * thetaScale (thetaScale = powf(base, -2/nDims)),
 *   t = freqScale * theta_i, mixed with theta_i by rampMix_i where extFactor != 0 (YaRN),
 *   cos_i = cosf(t) * mscale, sin_i = sinf(t) * mscale (glibc's cosf / sinf: trig.ts),
 *   (a, b) -> (fma(a, cos, -(b sin)), fma(a, sin, b cos))   (GCC contracts them so)
 */
export interface RopeFrequencies {
  invFreq: Float64Array;
  mscale: number;
}

/** Slots after the nDims/2 frequencies: thetaScale, freqScale, extFactor, mscale, then rampMix[nDims/2]. */
export const GGML_ROPE_THETA_SCALE = 0;
export const GGML_ROPE_FREQ_SCALE = 1;
export const GGML_ROPE_EXT_FACTOR = 2;
export const GGML_ROPE_MSCALE = 3;
export const GGML_ROPE_RAMP = 4;

/** llama.cpp's float32 rope parameters for cfg (see RopeFrequencies), 4 + nDims/2 values. */
function ggmlRopeParams(cfg: RopeConfig, seqLen: number): Float64Array {
  const d = cfg.nDims;
  const half = d / 2;
  const out = new Float64Array(GGML_ROPE_RAMP + half);
  const s = cfg.scaling;
  let base = cfg.base;
  let factor = 1;
  if (s.type === "linear" || s.type === "yarn") factor = s.factor;
  if (s.type === "ntk") {
    base = cfg.base * ntkAlpha(s, seqLen) ** (d / (d - 2));
    factor = s.factor ?? 1;
  }
  const freqScale = f(1 / factor);
  out[GGML_ROPE_THETA_SCALE] = f(Math.pow(f(base), f(-2 / d)));
  out[GGML_ROPE_FREQ_SCALE] = freqScale;
  out[GGML_ROPE_MSCALE] = 1;
  if (s.type === "yarn") {
    const ext = f(s.extFactor ?? 1);
    out[GGML_ROPE_EXT_FACTOR] = ext;
    const logf = (x: number) => f(Math.log(x));
    // llama_context: attn_factor = get_mscale(factor) / (1 + 0.1 logf(factor)) (ext != 0), then
    // rope_yarn: mscale = attn_factor * (1 + 0.1 logf(1 / freqScale)).
    const fac = f(1 / freqScale);
    const g = fac <= 1 ? 1 : fmaf(f(0.1), logf(fac), 1);
    let attn = ext !== 0 ? f(g * f(1 / fmaf(f(0.1), logf(fac), 1))) : g;
    attn = f(attn * f(s.attnFactor ?? 1));
    out[GGML_ROPE_MSCALE] = ext !== 0 ? f(attn * fmaf(f(0.1), logf(f(1 / freqScale)), 1)) : attn;
    const corrDim = (r: number) => f(f(d * logf(f(s.originalContext / f(f(r * 2) * f(Math.PI))))) / f(2 * logf(f(cfg.base))));
    const low = Math.max(0, Math.floor(corrDim(f(s.betaFast ?? 32))));
    const high = Math.min(d - 1, Math.ceil(corrDim(f(s.betaSlow ?? 1))));
    for (let i = 0; i < half; i++) {
      const y = f(f(i - low) / Math.max(f(0.001), f(high - low)));
      out[GGML_ROPE_RAMP + i] = f(f(1 - Math.min(1, Math.max(0, y))) * ext);
    }
  }
  return out;
}

/** cos, sin of each pair (2 * nDims/2 float32) at position pos, as ggml_rope_cache_init. */
export function ggmlRopeCache(table: Float64Array, half: number, pos: number, cache = new Float32Array(2 * half)): Float32Array {
  const ts = table[half + GGML_ROPE_THETA_SCALE];
  const fs = table[half + GGML_ROPE_FREQ_SCALE];
  const ext = table[half + GGML_ROPE_EXT_FACTOR];
  const ms = table[half + GGML_ROPE_MSCALE];
  let theta = f(pos);
  for (let i = 0; i < half; i++) {
    let t = f(fs * theta);
    if (ext !== 0) {
      const rm = table[half + GGML_ROPE_RAMP + i];
      t = fmaf(t, f(1 - rm), f(theta * rm));
    }
    cache[2 * i] = f(cosf(t) * ms);
    cache[2 * i + 1] = f(sinf(t) * ms);
    theta = f(theta * ts);
  }
  return cache;
}

/** NTK alpha in effect for a sequence of seqLen tokens. */
export function ntkAlpha(s: Extract<RopeScaling, { type: "ntk" }>, seqLen: number): number {
  if (s.alpha !== "auto") return s.alpha;
  const max = s.maxPositions ?? 2048;
  if (seqLen <= max) return 1;
  return (seqLen / (max / 2) - 1) * (s.coeff ?? 1);
}

/** invFreq and mscale for a sequence currently seqLen long (seqLen only matters for NTK "auto"). */
function frequencies(cfg: RopeConfig, seqLen: number): RopeFrequencies {
  const d = cfg.nDims;
  const half = d / 2;
  const invFreq = new Float64Array(half);
  const s = cfg.scaling;
  let mscale = 1;
  if (s.type === "yarn") {
    const betaFast = s.betaFast ?? 32;
    const betaSlow = s.betaSlow ?? 1;
    const ext = s.extFactor ?? 1;
    const corrDim = (r: number) => (d * Math.log(s.originalContext / (r * 2 * Math.PI))) / (2 * Math.log(cfg.base));
    const low = Math.max(Math.floor(corrDim(betaFast)), 0);
    const high = Math.min(Math.ceil(corrDim(betaSlow)), d - 1);
    for (let i = 0; i < half; i++) {
      const extrap = 1 / cfg.base ** ((2 * i) / d);
      const interp = extrap / s.factor;
      const ramp = Math.min(1, Math.max(0, (i - low) / Math.max(high - low, 0.001)));
      const mask = (1 - ramp) * ext;
      invFreq[i] = interp * (1 - mask) + extrap * mask;
    }
    mscale = (s.factor <= 1 ? 1 : 0.1 * Math.log(s.factor) + 1) * (s.attnFactor ?? 1);
    return { invFreq, mscale };
  }
  let base = cfg.base;
  let factor = 1;
  if (s.type === "linear") factor = s.factor;
  if (s.type === "ntk") {
    base = cfg.base * ntkAlpha(s, seqLen) ** (d / (d - 2));
    factor = s.factor ?? 1;
  }
  for (let i = 0; i < half; i++) invFreq[i] = 1 / base ** ((2 * i) / d) / factor;
  return { invFreq, mscale };
}

/** ropeFrequencies followed by llama.cpp's float32 parameters (see RopeFrequencies). */
export function ropeFrequencies(cfg: RopeConfig, seqLen = 0): RopeFrequencies {
  const { invFreq, mscale } = frequencies(cfg, seqLen);
  const table = new Float64Array(invFreq.length + GGML_ROPE_RAMP + invFreq.length);
  table.set(invFreq);
  table.set(ggmlRopeParams(cfg, seqLen), invFreq.length);
  return { invFreq: table, mscale };
}

/**
 * Rotate nTok rows (row stride ld) of nHeads heads of headDim values in place; row t sits at
 * position pos0 + t.
 */
export function rope(
  x: Float32Array, nHeads: number, headDim: number, cfg: RopeConfig, freqs: RopeFrequencies,
  pos0: number, nTok = 1, ld = nHeads * headDim,
): void {
  const half = cfg.nDims / 2;
  const cache = new Float32Array(2 * half);
  for (let t = 0; t < nTok; t++) {
    ggmlRopeCache(freqs.invFreq, half, pos0 + t, cache);
    for (let i = 0; i < half; i++) {
      const c = cache[2 * i];
      const s = cache[2 * i + 1];
      for (let h = 0; h < nHeads; h++) {
        const o = t * ld + h * headDim;
        const ia = o + (cfg.neox ? i : 2 * i);
        const ib = o + (cfg.neox ? i + half : 2 * i + 1);
        const a = x[ia];
        const b = x[ib];
        x[ia] = fmaf(a, c, -f(b * s));
        x[ib] = fmaf(a, s, f(b * c));
      }
    }
  }
}
