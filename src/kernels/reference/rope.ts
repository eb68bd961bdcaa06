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

/** What every position needs: the per-pair frequencies and the cos/sin magnitude. */
export interface RopeFrequencies {
  invFreq: Float64Array;
  mscale: number;
}

/** NTK alpha in effect for a sequence of seqLen tokens. */
export function ntkAlpha(s: Extract<RopeScaling, { type: "ntk" }>, seqLen: number): number {
  if (s.alpha !== "auto") return s.alpha;
  const max = s.maxPositions ?? 2048;
  if (seqLen <= max) return 1;
  return (seqLen / (max / 2) - 1) * (s.coeff ?? 1);
}

/** invFreq and mscale for a sequence currently seqLen long (seqLen only matters for NTK "auto"). */
export function ropeFrequencies(cfg: RopeConfig, seqLen = 0): RopeFrequencies {
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

/**
 * Rotate nTok rows (row stride ld) of nHeads heads of headDim values in place; row t sits at
 * position pos0 + t.
 */
export function rope(
  x: Float32Array, nHeads: number, headDim: number, cfg: RopeConfig, freqs: RopeFrequencies,
  pos0: number, nTok = 1, ld = nHeads * headDim,
): void {
  const half = cfg.nDims / 2;
  for (let t = 0; t < nTok; t++) {
    for (let i = 0; i < half; i++) {
      const theta = (pos0 + t) * freqs.invFreq[i];
      const c = f(Math.cos(theta) * freqs.mscale);
      const s = f(Math.sin(theta) * freqs.mscale);
      for (let h = 0; h < nHeads; h++) {
        const o = t * ld + h * headDim;
        const ia = o + (cfg.neox ? i : 2 * i);
        const ib = o + (cfg.neox ? i + half : 2 * i + 1);
        const a = x[ia];
        const b = x[ib];
        x[ia] = f(f(a * c) - f(b * s));
        x[ib] = f(f(a * s) + f(b * c));
      }
    }
  }
}
