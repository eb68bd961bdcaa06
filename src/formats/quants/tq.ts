/**
 * TQ1_0 and TQ2_0: ternary weights (BitNet b1.58, TriLMs), x = d * t with t in {-1, 0, 1}.
 *
 *   TQ2_0, 256 values in 66 bytes:
 *     offset 0            64     66
 *            [ qs[64]    ][ d  ]     value 128h + 32s + m = ((qs[32h + m] >> 2s) & 3) - 1
 *
 *   TQ1_0, 256 values in 54 bytes; 5 (or 4) trits per byte, stored as a fixed-point
 *   fraction q = ceil(T * 256 / 243) of the base-3 number T, so trit n is (q * 3^n * 3) >> 8:
 *     offset 0            48          52     54
 *            [ qs[48]    ][ qh[4]    ][ d  ]
 *     qs[0..31]:  trit n of qs[m] -> value 32n + m          (values 0..159)
 *     qs[32..47]: trit n of qs[32 + m] -> value 160 + 16n + m (values 160..239)
 *     qh[0..3]:   trit n of qh[j] -> value 240 + 4n + j     (values 240..255)
 *
 * Dequantize only (ggml dequantize_row_tq1_0 / _tq2_0).
 */
import { readF16 } from "./common.js";
import { QK_K } from "../ggml-types.js";

const POW3 = [1, 3, 9, 27, 81, 243];

/** Trit n (as -1, 0, 1) of a TQ1_0 byte. */
function trit(byte: number, n: number): number {
  const q = (byte * POW3[n]) & 0xff;
  return ((q * 3) >>> 8) - 1;
}

export function dequantizeTQ1_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 54;
    const d = readF16(src, o + 52);
    let y = b * QK_K;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) out[y++] = trit(src[o + m], n) * d;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) out[y++] = trit(src[o + 32 + m], n) * d;
    for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) out[y++] = trit(src[o + 48 + j], n) * d;
  }
}

export function dequantizeTQ2_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * 66;
    const d = readF16(src, o + 64);
    let y = b * QK_K;
    for (let h = 0; h < 2; h++) {
      for (let s = 0; s < 4; s++) {
        for (let m = 0; m < 32; m++) out[y++] = (((src[o + 32 * h + m] >>> (2 * s)) & 3) - 1) * d;
      }
    }
  }
}
