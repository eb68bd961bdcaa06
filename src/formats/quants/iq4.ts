/**
 * IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear table of 16 levels.
 *
 *   IQ4_NL, 32 values in 18 bytes:
 *     offset 0      2                   18
 *            [ d  ][ qs[16]            ]   value j = KVALUES[qs[j] & 15], value j + 16 = KVALUES[qs[j] >> 4]
 *     x = d * KVALUES[q]
 *
 *   IQ4_XS, 256 values in 136 bytes; 8 sub-blocks of 32 with 6-bit scales:
 *     offset 0      2            4              8                136
 *            [ d  ][ scales_h ][ scales_l[4] ][ qs[128]          ]
 *             f16   u16: 2 high bits per sub-block; scales_l: 4 low bits per sub-block
 *     sub-block s uses qs[16s .. 16s+15] as IQ4_NL does;  ls = low | high << 4
 *     x = d * (ls - 32) * KVALUES[q]
 *
 * Quantize (ggml quantize_row_iq4_nl_ref / _iq4_xs_ref, both through quantize_row_iq4_nl_impl):
 * per 32 values, weights x^2, d from the value of largest |x| mapped to the table's end, each
 * value to the nearest table level, then d refitted by weighted least squares. IQ4_XS also
 * tries 15 more scales per sub-block and then quantizes the sub-block scales to 6 bits.
 * One deliberate difference: for an IQ4_NL block of zeros (max |x| < 1e-15) ggml packs
 * indices it never wrote (stale stack memory); here they are 0. d is 0 either way.
 */
import { GROUP_MAX_EPS, f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** Block bytes (18 and 136), as ggml-types.ts records them. */
const NL_BYTES = GGML_TYPES[GGMLType.IQ4_NL].bytesPerBlock;
const XS_BYTES = GGML_TYPES[GGMLType.IQ4_XS].bytesPerBlock;

/** ggml's kvalues_iq4nl. */
export const KVALUES_IQ4NL = new Int8Array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

export function dequantizeIQ4_NL(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * NL_BYTES;
    const d = readF16(src, o);
    const y = b * 32;
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j];
      out[y + j] = d * KVALUES_IQ4NL[q & 0xf];
      out[y + j + 16] = d * KVALUES_IQ4NL[q >>> 4];
    }
  }
}

export function dequantizeIQ4_XS(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * XS_BYTES;
    const d = readF16(src, o);
    const scalesH = src[o + 2] | (src[o + 3] << 8);
    for (let s = 0; s < 8; s++) {
      const ls = ((src[o + 4 + (s >>> 1)] >>> (4 * (s & 1))) & 0xf) | (((scalesH >>> (2 * s)) & 3) << 4);
      const dl = f(d * (ls - 32));
      const q = o + 8 + 16 * s;
      const y = b * QK_K + 32 * s;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * KVALUES_IQ4NL[src[q + j] & 0xf];
        out[y + j + 16] = dl * KVALUES_IQ4NL[src[q + j] >>> 4];
      }
    }
  }
}

/** ggml's best_index_int8 over KVALUES_IQ4NL: the nearest level, ties to the upper one. */
function bestIndex(x: number): number {
  const v = KVALUES_IQ4NL;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  let ml = 0;
  let mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >>> 1;
    if (x < v[mav]) mu = mav;
    else ml = mav;
  }
  return f(x - v[mu - 1]) < f(v[mu] - x) ? mu - 1 : mu;
}

const L = new Uint8Array(QK_K);
const weight = new Float32Array(32);
const scales = new Float32Array(QK_K / 32);

/**
 * The scale of the 32 values at x[xo..]: ggml's first pass (and, for ntry > 0, its 2 * ntry
 * further trial scales). Levels go to L[lo..]; returns 0 for a group of zeros (L untouched).
 */
function iq4Group(x: Float32Array, xo: number, lo: number, ntry: number): number {
  const v0 = KVALUES_IQ4NL[0];
  let amax = 0;
  let max = 0;
  for (let j = 0; j < 32; j++) {
    const xj = x[xo + j];
    weight[j] = xj * xj;
    const ax = Math.abs(xj);
    if (ax > amax) {
      amax = ax;
      max = xj;
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  let d = ntry > 0 ? f(-max / v0) : f(max / v0);
  let id = f(1 / d);
  let sumqx = 0;
  let sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const l = bestIndex(f(id * x[xo + j]));
    L[lo + j] = l;
    const q = KVALUES_IQ4NL[l];
    const w = weight[j];
    sumqx = f(sumqx + f(f(w * q) * x[xo + j]));
    sumq2 = f(sumq2 + f(f(w * q) * q));
  }
  d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
  let best = f(d * sumqx);
  for (let itry = -ntry; itry <= ntry; itry++) {
    id = f((itry + v0) / max);
    sumqx = 0;
    sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const q = KVALUES_IQ4NL[bestIndex(f(id * x[xo + j]))];
      const w = weight[j];
      sumqx = f(sumqx + f(f(w * q) * x[xo + j]));
      sumq2 = f(sumq2 + f(f(w * q) * q));
    }
    if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
      d = f(sumqx / sumq2);
      best = f(d * sumqx);
    }
  }
  return d;
}

/** Pack 32 levels from L[lo..] into 16 bytes at out[o..] (value j low nibble, j + 16 high). */
function pack32(out: Uint8Array, o: number, lo: number): void {
  for (let j = 0; j < 16; j++) out[o + j] = L[lo + j] | (L[lo + 16 + j] << 4);
}

export function quantizeIQ4_NL(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * NL_BYTES;
    L.fill(0, 0, 32);
    writeU16(out, o, f32ToF16(iq4Group(src, b * 32, 0, -1)));
    pack32(out, o + 2, 0);
  }
}

export function quantizeIQ4_XS(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * XS_BYTES;
    const x0 = b * QK_K;
    let maxScale = 0;
    let amaxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const d = iq4Group(src, x0 + 32 * ib, 32 * ib, 7);
      scales[ib] = d;
      if (Math.abs(d) > amaxScale) {
        amaxScale = Math.abs(d);
        maxScale = d;
      }
    }
    const d = f(-maxScale / 32);
    writeU16(out, o, f32ToF16(d));
    const id = d !== 0 ? f(1 / d) : 0;
    let scalesH = 0;
    for (let ib = 0; ib < 8; ib++) {
      const l = Math.max(-32, Math.min(31, nearestInt(f(id * scales[ib]))));
      const dl = f(d * l);
      const idl = dl !== 0 ? f(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(f(idl * src[x0 + 32 * ib + j]));
      const ls = l + 32;
      if (ib % 2 === 0) out[o + 4 + (ib >>> 1)] = ls & 0xf;
      else out[o + 4 + (ib >>> 1)] |= (ls & 0xf) << 4;
      scalesH |= (ls >>> 4) << (2 * ib);
    }
    writeU16(out, o + 2, scalesH);
    for (let i = 0; i < 8; i++) pack32(out, o + 8 + 16 * i, 32 * i);
  }
}
