/*
 * How a matmul of 32-weight blocks (Q4_0, Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL) walks its rows and
 * tokens; the block formats' dot products are in q4_0.ts, q8_0.ts and nibble_blocks.ts.
 *
 * Each weight row is read front to back while its output is computed for every token: tokens in
 * fours with dot1x4 (prompt processing: each block decoded once, used for four tokens), the rest
 * one at a time with dotRow (decoding); in the relaxed build Q4_0 rows take tokens in eights
 * first (dot1x8: each group of blocks decoded once for eight tokens). Rows go one at a time, never interleaved: four rows
 * against one token would load each activation vector once for four rows, 1.1x faster with the
 * weights in cache, but four interleaved streams read from memory at a third of the speed of one
 * on the benchmark machine (two at half): 0.6x on a model that does not fit the cache.
 */
import { act_q4_0_bytes, dot1x4 as dot1x4Q4_0, dot1x8 as dot1x8Q4_0, dotRow as dotRowQ4_0, relaxedDotAddOk } from "./q4_0";
import { dot1x4 as dot1x4Q8_0, dot1x4I8 as dot1x4Q8_0I8, dotRow as dotRowQ8_0, dotRowI8 as dotRowQ8_0I8, q8_0DotAddOk } from "./q8_0";
import { matmul_q4_0_r4 } from "./q4_0_r4";
import { blockBytes, dot1x4 as dot1x4Nib, dotRow as dotRowNib, IQ4_NL, Q4_1, Q5_0, Q5_1 } from "./nibble_blocks";
import { act_q8_0_i16_bytes } from "./quantize";

const Q4_0: i32 = 2;
/** Q4_0 on i32x4.relaxed_dot_i8x16_i7x16_add_s (relaxed build, where the runtime gets it right). */
const Q4_0_DOT_ADD: i32 = -2;
const Q8_0: i32 = 8;
/** Q8_0 on the i8 dot-add (q8_0.ts, q8_0DotAddOk): i8 activations (quantize_q8_0). */
const Q8_0_DOT_ADD: i32 = -8;

/** y[t][r] for rows r0..r1-1 and tokens 0..nTok-1 (output rows ldy floats apart); type is a constant. */
// @ts-ignore: decorator
@inline
function matmulBlocks(type: i32, w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  const add = type == Q4_0_DOT_ADD || type == Q8_0_DOT_ADD;
  if (type == Q4_0_DOT_ADD) type = Q4_0;
  if (type == Q8_0_DOT_ADD) type = Q8_0;
  const rowBytes = <usize>(n >> 5) * (type == Q4_0 ? 18 : type == Q8_0 ? 34 : blockBytes(type));
  const qStride = <usize>(type == Q4_0 ? act_q4_0_bytes(n) : act_q8_0_i16_bytes(n));
  const yStride = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    const yr = y + (<usize>r << 2);
    let t = 0;
    // Relaxed build: Q4_0 rows decode each group once for eight tokens (q4_0.ts, dot1x8).
    if (ASC_FEATURE_RELAXED_SIMD && type == Q4_0) {
      for (; t + 7 < nTok; t += 8) dot1x8Q4_0(wr, q + <usize>t * qStride, qStride, n, yr + <usize>t * yStride, yStride, add);
    }
    for (; t < quads; t += 4) {
      const qt = q + <usize>t * qStride;
      const yp = yr + <usize>t * yStride;
      if (type == Q4_0) dot1x4Q4_0(wr, qt, qStride, n, yp, yStride, add);
      else if (type == Q8_0 && add) dot1x4Q8_0I8(wr, qt, qStride, n, yp, yStride);
      else if (type == Q8_0) dot1x4Q8_0(wr, qt, qStride, n, yp, yStride);
      else dot1x4Nib(type, wr, qt, qStride, n, yp, yStride);
    }
    for (; t < nTok; t++) {
      const qt = q + <usize>t * qStride;
      const yp = yr + <usize>t * yStride;
      store<f32>(yp, type == Q4_0 ? dotRowQ4_0(wr, qt, n, yp, add) : type == Q8_0 ? (add ? dotRowQ8_0I8(wr, qt, n, yp) : dotRowQ8_0(wr, qt, n, yp)) : dotRowNib(type, wr, qt, n, yp));
    }
  }
}

/** Q4_0; matrices of a multiple of 8 rows (ldy is the row count) are stored in groups of four rows (q4_0_r4.ts). */
export function matmul_q4_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  if (ldy % 8 == 0) matmul_q4_0_r4(w, q, y, n, r0, r1, nTok, ldy);
  else if (ASC_FEATURE_RELAXED_SIMD && relaxedDotAddOk()) matmulBlocks(Q4_0_DOT_ADD, w, q, y, n, r0, r1, nTok, ldy);
  else matmulBlocks(Q4_0, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_q8_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD && q8_0DotAddOk()) matmulBlocks(Q8_0_DOT_ADD, w, q, y, n, r0, r1, nTok, ldy);
  else matmulBlocks(Q8_0, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_q4_1(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulBlocks(Q4_1, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_q5_0(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulBlocks(Q5_0, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_q5_1(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulBlocks(Q5_1, w, q, y, n, r0, r1, nTok, ldy);
}

export function matmul_iq4_nl(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32): void {
  matmulBlocks(IQ4_NL, w, q, y, n, r0, r1, nTok, ldy);
}
