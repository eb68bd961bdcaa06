/**
 * Q3_K: 256 values in 110 bytes; 16 sub-blocks of 16, each with a signed 6-bit scale.
 *
 *   offset 0            32           96              108    110
 *          [ hmask[32] ][ qs[64]    ][ scales[12]   ][ d  ]
 *            high bits    low 2 bits   6-bit scales     f16
 *
 *   value 128h + 32s + l (h = 0..1, s = 0..3, l = 0..31):
 *     low bits  = bits 2s..2s+1 of qs[32h + l]
 *     high bit  = bit 4h + s of hmask[l];   q = low - (high ? 0 : 4),  q in -4..3
 *     sub-block = 8h + 2s + (l >= 16)
 *   scale j (0..15): low 4 bits in nibble (j >= 8) of scales[j % 8],
 *                    high 2 bits = bits 2(j/4)..+1 of scales[8 + j % 4];  sc = that - 32
 *
 *   x = d * sc_j * q
 *
 * Quantize (ggml quantize_row_q3_K_ref): per sub-block a symmetric search with iterative
 * refinement (makeQ3Quants, nmax 4); scales to 6 bits against the largest |scale|; values
 * re-rounded with the final scales.
 */
import { f, nearestInt, readF16, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { makeQ3Quants } from "./k-common.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** 110: the layout above, as ggml-types.ts records it. */
const BYTES = GGML_TYPES[GGMLType.Q3_K].bytesPerBlock;

/** Signed 6-bit scale j of the Q3_K block whose scales start at s. */
function scaleQ3(q: Uint8Array, s: number, j: number): number {
  const lowBits = j < 8 ? q[s + j] & 0xf : q[s + j - 8] >>> 4;
  return (lowBits | (((q[s + 8 + (j % 4)] >>> (2 * (j >>> 2))) & 3) << 4)) - 32;
}

export function dequantizeQ3_K(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * BYTES;
    const dAll = readF16(src, o + 108);
    const hm = o;
    let y = b * QK_K;
    let is = 0;
    let bit = 0; // hmask bit of the current 32 values
    for (let h = 0; h < 2; h++) {
      const q = o + 32 + 32 * h;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 32; half += 16) {
          const dl = f(dAll * scaleQ3(src, o + 96, is++));
          for (let l = 0; l < 16; l++) {
            const low = (src[q + half + l] >>> shift) & 3;
            const minus4 = ((~src[hm + half + l] >>> bit) & 1) << 2; // high bit clear: q - 4
            out[y + l] = dl * (low - minus4);
          }
          y += 16;
        }
        bit++;
      }
    }
  }
}

const L = new Int8Array(QK_K);
const scales = new Float32Array(QK_K / 16);

export function quantizeQ3_K(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const x0 = b * QK_K;
    const o = b * BYTES;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < QK_K / 16; j++) {
      scales[j] = makeQ3Quants(16, 4, src, x0 + 16 * j, L, 16 * j);
      const scale = Math.abs(scales[j]);
      if (scale > amax) {
        amax = scale;
        maxScale = scales[j];
      }
    }
    const s = o + 96;
    out.fill(0, s, s + 12);
    if (maxScale !== 0) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < QK_K / 16; j++) {
        let l = (nearestInt(f(iscale * scales[j])) << 24) >> 24; // C stores it in an int8_t
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) out[s + j] = l & 0xf;
        else out[s + j - 8] |= (l & 0xf) << 4;
        out[s + 8 + (j % 4)] |= (l >>> 4) << (2 * (j >>> 2));
      }
      writeU16(out, o + 108, f32ToF16(f(1 / iscale)));
    } else {
      writeU16(out, o + 108, 0);
    }
    const dAll = readF16(out, o + 108);
    for (let j = 0; j < QK_K / 16; j++) {
      const d = f(dAll * scaleQ3(out, s, j));
      if (d === 0) continue;
      for (let i = 0; i < 16; i++) {
        const l = nearestInt(f(src[x0 + 16 * j + i] / d));
        L[16 * j + i] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    out.fill(0, o, o + 32);
    for (let j = 0; j < QK_K; j++) {
      // value j's high bit goes to bit (j / 32) of hmask[j % 32]
      if (L[j] > 3) {
        out[o + (j % 32)] |= 1 << (j >>> 5);
        L[j] -= 4;
      }
    }
    for (let h = 0; h < 2; h++) {
      const q = o + 32 + 32 * h;
      const Lh = 128 * h;
      for (let l = 0; l < 32; l++) {
        out[q + l] = L[Lh + l] | (L[Lh + l + 32] << 2) | (L[Lh + l + 64] << 4) | (L[Lh + l + 96] << 6);
      }
    }
  }
}
