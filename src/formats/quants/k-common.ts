/**
 * Shared pieces of the k-quants (super-blocks of QK_K = 256 values): ggml's scale search
 * routines (make_qx_quants, make_q3_quants, make_qkx2_quants in ggml-quants.c) replayed in
 * float32, and the 6-bit scale/min packing of Q4_K and Q5_K.
 *
 * Each search takes a group of n values x[xo .. xo+n), writes one small integer per value to
 * L[lo .. lo+n) and returns the group's scale. They are the "reference" (no importance
 * matrix) variants that ggml's quantize_row_*_ref functions use.
 */
import { F_0_1, GROUP_MAX_EPS, f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { QK_K } from "../ggml-types.js";

/**
 * Symmetric search, weights x^2 (ggml make_qx_quants with rmse_type 1, no quant weights):
 * L = clamp(round(x * iscale), -nmax, nmax - 1) + nmax for the iscale among -(nmax + 0.1 k)/max,
 * k = -9..9, that maximises (sum w x l)^2 / (sum w l^2); returns (sum w x l) / (sum w l^2).
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * xi))));
    L[lo + i] = l + nmax;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(F_0_1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * xi))));
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(f(iscale * x[xo + i]));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * Q3_K's symmetric search (ggml make_q3_quants with do_rmse): start from round(x * -nmax/max),
 * then up to 5 passes that move single values to their best level while that improves the
 * weighted (w = x^2) fit. L[i] is written in 0..2*nmax-1.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(iscale * xi))));
    L[lo + i] = l;
    const w = f(xi * xi);
    sumlx = f(sumlx + f(f(w * xi) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const li = L[lo + i];
      const w = f(xi * xi);
      let slx = f(sumlx - f(f(w * xi) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        const nl = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f(f(xi * sl2) / slx))));
        if (nl !== li) {
          slx = f(slx + f(f(w * xi) * nl));
          sl2 = f(sl2 + f(f(w * nl) * nl));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/**
 * Asymmetric search (ggml make_qkx2_quants): x ~ scale * L - min with L in 0..nmax and
 * min >= 0. Starts from the range [min(x, 0), max x], then tries nstep + 1 widened ranges
 * (rmin + rdelta * k), fitting scale and min by weighted least squares for each, and keeps the
 * one with the smallest weighted error (|diff| if useMad, else diff^2).
 * Returns the scale; the min goes to mins[mi].
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  mins: Float32Array,
  mi: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    mins[mi] = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(xi - min)))));
    L[lo + i] = l;
    let diff = f(f(f(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestError = f(bestError + f(weights[i] * diff));
  }
  for (let is = 0; is <= nstep; is++) {
    // min moves when a trial wins, and later trials use the moved range (as ggml does)
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(f(iscale * f(xi - min)))));
      Laux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * xi));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        curError = f(curError + f(weights[i] * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  mins[mi] = -min;
  return scale;
}

/**
 * The 8 six-bit (scale, min) pairs of Q4_K / Q5_K, packed in 12 bytes:
 *
 *   bytes 0-3:  scale j (j < 4) in bits 0-5; bits 6-7 = high bits of scale j+4
 *   bytes 4-7:  min j   (j < 4) in bits 0-5; bits 6-7 = high bits of min j+4
 *   bytes 8-11: low 4 bits of scale j+4 | low 4 bits of min j+4 << 4
 */
export function scaleK4(q: Uint8Array, o: number, j: number): number {
  return j < 4 ? q[o + j] & 63 : (q[o + j + 4] & 0xf) | ((q[o + j - 4] >>> 6) << 4);
}

export function minK4(q: Uint8Array, o: number, j: number): number {
  return j < 4 ? q[o + j + 4] & 63 : (q[o + j + 4] >>> 4) | ((q[o + j] >>> 6) << 4);
}

/** Pack 6-bit scale `ls` and min `lm` of sub-block j into the 12 bytes at out[o..]. */
export function packScaleMinK4(out: Uint8Array, o: number, j: number, ls: number, lm: number): void {
  if (j < 4) {
    out[o + j] = ls;
    out[o + j + 4] = lm;
  } else {
    out[o + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    out[o + j - 4] |= (ls >>> 4) << 6;
    out[o + j] |= (lm >>> 4) << 6;
  }
}

const kLaux = new Uint8Array(32);
const kWeights = new Float32Array(32);
const kMins = new Float32Array(QK_K / 32);
const kScales = new Float32Array(QK_K / 32);

/**
 * The shared half of Q4_K and Q5_K quantization (ggml's quantize_row_q4_K_ref / q5_K_ref): per
 * 32-value sub-block, a weighted scale/min search; the eight scales and mins packed as 6-bit
 * codes at out[o + 4], d and dmin as f16 at out[o], out[o + 2]; then every value re-quantized
 * against the packed scales into L[0..255] (levels 0..nmax). The caller packs L.
 */
export function quantizeScalesMinsK(src: Float32Array, x0: number, out: Uint8Array, o: number, L: Uint8Array, nmax: number, rmin: number, nstep: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < QK_K / 32; j++) {
    const xo = x0 + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(src[xo + l] * src[xo + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) kWeights[l] = avX + Math.abs(src[xo + l]);
    kScales[j] = makeQkx2Quants(32, nmax, src, xo, kWeights, L, 32 * j, kMins, j, kLaux, rmin, F_0_1, nstep, false);
    if (kScales[j] > maxScale) maxScale = kScales[j];
    if (kMins[j] > maxMin) maxMin = kMins[j];
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < QK_K / 32; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * kScales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * kMins[j])) & 0xff);
    packScaleMinK4(out, o + 4, j, ls, lm);
  }
  writeU16(out, o, f32ToF16(f(maxScale / 63)));
  writeU16(out, o + 2, f32ToF16(f(maxMin / 63)));
  const dAll = readF16(out, o);
  const dminAll = readF16(out, o + 2);
  for (let j = 0; j < QK_K / 32; j++) {
    const d = f(dAll * scaleK4(out, o + 4, j));
    if (d === 0) continue;
    const dm = f(dminAll * minK4(out, o + 4, j));
    for (let i = 0; i < 32; i++) {
      const l = nearestInt(f(f(src[x0 + 32 * j + i] + dm) / d));
      L[32 * j + i] = Math.max(0, Math.min(nmax, l));
    }
  }
}
