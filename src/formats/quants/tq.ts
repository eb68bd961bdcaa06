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
 * Quantize (ggml quantize_row_tq1_0_ref / _tq2_0_ref): d = max |x|, t = roundf(x / d).
 */
import { f, readF16, roundf, writeU16 } from "./common.js";
import { f32ToF16 } from "./half.js";
import { GGML_TYPES, GGMLType, QK_K } from "../ggml-types.js";

/** Block bytes (54 and 66), as ggml-types.ts records them. */
const TQ1_BYTES = GGML_TYPES[GGMLType.TQ1_0].bytesPerBlock;
const TQ2_BYTES = GGML_TYPES[GGMLType.TQ2_0].bytesPerBlock;

const POW3 = [1, 3, 9, 27, 81, 243];

/** Trit n (as -1, 0, 1) of a TQ1_0 byte. */
function trit(byte: number, n: number): number {
  const q = (byte * POW3[n]) & 0xff;
  return ((q * 3) >>> 8) - 1;
}

export function dequantizeTQ1_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * TQ1_BYTES;
    const d = readF16(src, o + 52);
    let y = b * QK_K;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) out[y++] = trit(src[o + m], n) * d;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) out[y++] = trit(src[o + 32 + m], n) * d;
    for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) out[y++] = trit(src[o + 48 + j], n) * d;
  }
}

export function dequantizeTQ2_0(src: Uint8Array, out: Float32Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * TQ2_BYTES;
    const d = readF16(src, o + 64);
    let y = b * QK_K;
    for (let h = 0; h < 2; h++) {
      for (let s = 0; s < 4; s++) {
        for (let m = 0; m < 32; m++) out[y++] = (((src[o + 32 * h + m] >>> (2 * s)) & 3) - 1) * d;
      }
    }
  }
}

/** d = max |x| of the 256 values at x[x0..]; writes it as F16 at out[o] and returns 1/d. */
function ternaryScale(x: Float32Array, x0: number, out: Uint8Array, o: number): number {
  let amax = 0;
  for (let j = 0; j < QK_K; j++) {
    const a = Math.abs(x[x0 + j]);
    if (amax < a) amax = a;
  }
  writeU16(out, o, f32ToF16(amax));
  return amax !== 0 ? f(1 / amax) : 0;
}

/**
 * Trit code 0..2 of x (ggml: `int xi = lroundf(x * id) + 1`). When 1/d overflowed (d tiny),
 * x * id is infinite or NaN; glibc's lroundf then returns LONG_MIN, and the int keeps the low
 * 32 bits of LONG_MIN + 1, i.e. 1 (a zero trit). That is reproduced so such blocks match too.
 */
function code(x: number, id: number): number {
  const v = f(x * id);
  return Math.abs(v) < 2147483648 ? roundf(v) + 1 : 1;
}

/** The base-3 number T (first trit most significant) as the TQ1_0 byte ceil(T * 256 / 243). */
function packTrits(T: number): number {
  return Math.floor(((T & 0xff) * 256 + 242) / 243) & 0xff;
}

export function quantizeTQ1_0(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * TQ1_BYTES;
    const x0 = b * QK_K;
    const id = ternaryScale(src, x0, out, o + 52);
    for (let m = 0; m < 32; m++) {
      let T = 0;
      for (let n = 0; n < 5; n++) T = (T * 3 + code(src[x0 + m + 32 * n], id)) & 0xff;
      out[o + m] = packTrits(T);
    }
    for (let m = 0; m < 16; m++) {
      let T = 0;
      for (let n = 0; n < 5; n++) T = (T * 3 + code(src[x0 + 160 + m + 16 * n], id)) & 0xff;
      out[o + 32 + m] = packTrits(T);
    }
    for (let j = 0; j < 4; j++) {
      let T = 0;
      for (let m = 0; m < 4; m++) T = (T * 3 + code(src[x0 + 240 + j + 4 * m], id)) & 0xff;
      out[o + 48 + j] = packTrits((T * 3) & 0xff); // the first of 4 trits sits in the top digit
    }
  }
}

export function quantizeTQ2_0(src: Float32Array, out: Uint8Array, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = b * TQ2_BYTES;
    const x0 = b * QK_K;
    const id = ternaryScale(src, x0, out, o + 64);
    for (let h = 0; h < 2; h++) {
      for (let m = 0; m < 32; m++) {
        let q = 0;
        for (let s = 0; s < 4; s++) q += (code(src[x0 + 128 * h + m + 32 * s], id) & 3) << (2 * s);
        out[o + 32 * h + m] = q & 0xff;
      }
    }
  }
}
