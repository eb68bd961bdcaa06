/**
 * Quantization of matmul INPUT activations, exactly as llama.cpp's CPU backend does it.
 *
 * llama.cpp never multiplies a quantized weight by float activations: it first rounds the
 * activations to 8-bit blocks (Q8_0 for Q4_0/Q8_0 weights, Q8_K for k-quants, f16 for F16
 * weights) and multiplies integers. Doing the same is what makes our logits match llama.cpp's to
 * ~1e-6 instead of ~0.3 (../../../../shared/reference/README.md, "What these numbers teach").
 *
 *   Q8_0, per block of 32 (ggml quantize_row_q8_0, x86 path):
 *     amax = max |x|;  d = f16(amax / 127);  q = roundHalfEven(x * (127 / amax))   (q = 0 if amax = 0)
 *   Q8_K, per block of 256 (ggml quantize_row_q8_K_ref):
 *     m = the x with the largest |x| (first one);  s = -127 / m;
 *     q = min(127, roundHalfEven(s * x));  d = 1 / s;  bsum = sums of 16 consecutive q
 *
 * All arithmetic is float32 (Math.fround) where ggml's is, so the codes agree bit for bit.
 */
import { f16ToF32, f32ToF16 } from "../../formats/quants/half.js";
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";

/** 34 bytes a Q8_0 block, as ggml-types.ts records it. */
const Q8_0_BYTES = GGML_TYPES[GGMLType.Q8_0].bytesPerBlock;

const f = Math.fround;

/** A quantized activation row: codes, one scale per block, integer block sums. */
export interface Q8Row {
  /** Codes, one per value. */
  qs: Int8Array;
  /** Scale of each block (32 values for Q8_0, 256 for Q8_K). */
  d: Float32Array;
  /** Q8_0: sum of each block's codes. Q8_K: sums of every 16 codes (ggml's bsums). */
  sums: Int32Array;
}

/** Round to nearest, ties to even (x86 `round` with _MM_ROUND_NEAREST, ggml's nearest_int). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Round to float16 precision, returned as a number (what an F16 matmul does to its input). */
export function roundF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

export function quantizeQ8_0(x: Float32Array): Q8Row {
  const nb = x.length / 32;
  const row: Q8Row = { qs: new Int8Array(x.length), d: new Float32Array(nb), sums: new Int32Array(nb) };
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    row.d[b] = roundF16(f(amax / 127));
    const id = amax !== 0 ? f(127 / amax) : 0;
    for (let j = 0; j < 32; j++) {
      const q = roundHalfEven(f(x[b * 32 + j] * id));
      row.qs[b * 32 + j] = q;
      row.sums[b] += q;
    }
  }
  return row;
}

/**
 * x (length a multiple of 32) as ggml block_q8_0 bytes, | d f16 | qs i8[32] | per block, with
 * the rounding above: how llama.cpp's CPU backend stores a row into a Q8_0 KV cache (through
 * the type's from_float, the quantizer it uses for matmul inputs too).
 */
export function q8_0Blocks(x: Float32Array): Uint8Array {
  const row = quantizeQ8_0(x);
  const out = new Uint8Array(row.d.length * Q8_0_BYTES);
  for (let b = 0; b < row.d.length; b++) {
    const h = f32ToF16(row.d[b]);
    out[b * Q8_0_BYTES] = h & 255;
    out[b * Q8_0_BYTES + 1] = h >> 8;
    out.set(new Uint8Array(row.qs.buffer, b * 32, 32), b * Q8_0_BYTES + 2);
  }
  return out;
}

export function quantizeQ8_K(x: Float32Array): Q8Row {
  const nb = x.length / 256;
  const row: Q8Row = { qs: new Int8Array(x.length), d: new Float32Array(nb), sums: new Int32Array(x.length / 16) };
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    let m = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[b * 256 + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        m = v;
      }
    }
    if (amax === 0) continue;
    const iscale = f(-127 / m);
    for (let j = 0; j < 256; j++) {
      const q = Math.min(127, roundHalfEven(f(iscale * x[b * 256 + j])));
      row.qs[b * 256 + j] = q;
      row.sums[b * 16 + (j >> 4)] += q;
    }
    row.d[b] = f(1 / iscale);
  }
  return row;
}
