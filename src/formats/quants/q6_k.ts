/**
 * Q6_K: 256 values in 210 bytes; 16 sub-blocks of 16, each with a signed 8-bit scale.
 *
 *   offset 0           128          192              208    210
 *          [ ql[128]  ][ qh[64]    ][ scales[16]    ][ d  ]
 *            low 4 bits  high 2 bits  int8             f16
 *
 *   value 128h + 32s + l (h = 0..1, s = 0..3, l = 0..31):
 *     low 4 bits  = nibble (s >= 2) of ql[64h + 32(s & 1) + l]
 *     high 2 bits = bits 2s..2s+1 of qh[32h + l]
 *     q = (high << 4 | low) - 32,  q in -32..31;  sub-block = 8h + 2s + (l >= 16)
 *
 *   x = d * sc_j * q
 *
 * Quantize (ggml quantize_row_q6_K_ref): per sub-block the symmetric weighted search
 * (makeQxQuants, nmax 32); scales to int8 against the largest |scale|; values re-rounded.
 */
import { GROUP_MAX_EPS, f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { makeQxQuants } from "./k-common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 210: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q6_K].bytesPerBlock;

export function dequantizeQ6_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const d = readF16(src, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const sc = o + 192 + 8 * h;
      const y = b * QK_K + 128 * h;
      for (let half = 0; half < 32; half += 16) {
        const is = half >>> 4;
        const d1 = f(d * ((src[sc + is] << 24) >> 24));
        const d2 = f(d * ((src[sc + is + 2] << 24) >> 24));
        const d3 = f(d * ((src[sc + is + 4] << 24) >> 24));
        const d4 = f(d * ((src[sc + is + 6] << 24) >> 24));
        for (let l = half; l < half + 16; l++) {
          const a = src[ql + l];
          const c = src[ql + l + 32];
          const hi = src[qh + l];
          out[y + l] = d1 * (((a & 0xf) | ((hi & 3) << 4)) - 32);
          out[y + l + 32] = d2 * (((c & 0xf) | (((hi >>> 2) & 3) << 4)) - 32);
          out[y + l + 64] = d3 * (((a >>> 4) | (((hi >>> 4) & 3) << 4)) - 32);
          out[y + l + 96] = d4 * (((c >>> 4) | (((hi >>> 6) & 3) << 4)) - 32);
        }
      }
    }
  }
}

const L = new Uint8Array(QK_K);
const scales = new Float32Array(QK_K / 16);

export function quantizeQ6_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < QK_K / 16; ib++) {
      const scale = makeQxQuants(16, 32, src, x0 + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, o, o + BYTES);
      continue;
    }
    const iscale = f(-128 / maxScale);
    writeU16(out, o + 208, f32ToF16(f(1 / iscale)));
    for (let ib = 0; ib < QK_K / 16; ib++) out[o + 192 + ib] = Math.min(127, nearestInt(f(iscale * scales[ib])));
    const dAll = readF16(out, o + 208);
    for (let j = 0; j < QK_K / 16; j++) {
      const d = f(dAll * ((out[o + 192 + j] << 24) >> 24));
      if (d === 0) continue;
      for (let i = 0; i < 16; i++) {
        const l = nearestInt(f(src[x0 + 16 * j + i] / d));
        L[16 * j + i] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const Lh = 128 * h;
      for (let l = 0; l < 32; l++) {
        const q1 = L[Lh + l];
        const q2 = L[Lh + l + 32];
        const q3 = L[Lh + l + 64];
        const q4 = L[Lh + l + 96];
        out[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        out[qh + l] = (q1 >>> 4) | ((q2 >>> 4) << 2) | ((q3 >>> 4) << 4) | ((q4 >>> 4) << 6);
      }
    }
  }
}
