/**
 * The reference backend: the Kernels interface over the TypeScript twins. Slow and clear; it
 * reads its inputs out of the kernel memory, computes with the twins, and writes results back.
 */
import { GGMLType } from "../../formats/ggml-types.js";
import { f16ToF32, f32ToF16 } from "../../formats/quants/half.js";
import type { KernelMemory } from "../memory.js";
import type { Kernels } from "../types.js";
import { attention, attentionQ8_0, dotF32, dotF32Tiny } from "./attention.js";
import { walshHadamard } from "./hadamard.js";
import { groupedRowQ4_0, groupedRowQ4_K, groupedRowQ6_K, groupRows, isGrouped } from "../layout.js";
import { activationKind, dotF16, dotQ4_0, dotQ4_0For, dotQ4_K, dotQ5_K, dotQ6_K, dotQ8_0, f16Lanes, MatmulType, rowBytes } from "./matmul.js";
import { actBytesKLow, dotIQ4_XS, dotQ2_K, dotQ3_K, K_LOW_TYPES, readQ8_K_eo, writeQ8_K_eo } from "./k-quants-low.js";
import { dotIQ4_NL, dotQ4_1, dotQ5_0, dotQ5_1, NIBBLE_TYPES, quantizeQ8_1, readNibbleAct, writeNibbleAct, type Q8_1Row } from "./nibble-blocks.js";
import { route } from "./moe.js";
import { rmsnorm, silu, softmax } from "./norm.js";
import { q8_0Blocks, Q8Row, quantizeQ8_0, quantizeQ8_K, roundF16 } from "./quantize.js";
import { GGML_ROPE_RAMP, rope } from "./rope.js";

const f = Math.fround;

/**
 * Which build's activation layout: they differ only for Q4_0 (and Q4_1, Q5_0, Q5_1:
 * nibble-blocks.ts), where the relaxed-SIMD build keeps plain i8 codes (i8 codes | f32 scales |
 * i32 block sums) within the same row stride; Q4_0's i8 codes with each group of four blocks
 * transposed (groupedQ4_0). "relaxed-i8": the relaxed build where Q8_0 runs on the i8 dot-add
 * (assembly/q8_0.ts, q8_0DotAddOk), so Q8_0 takes plain i8 codes too.
 */
export type ActLayout = "simd" | "relaxed" | "relaxed-i8";

/**
 * Bytes of one token's rounded activations in the kernels' layout (assembly/quantize.ts):
 *   Q4_0 / Q8_0 weights: codes widened to i16 and permuted per block (ORDER_Q4_0 / ORDER_Q8_0),
 *                        then f32 scales, then i32 block sums;
 *   Q4_1, Q5_0, Q5_1, IQ4_NL: as Q8_0's (Q8_1 for Q4_1 / Q5_1: f32 s in place of the sums);
 *   Q4_K / Q5_K:         codes widened to i16 (ORDER_Q4_K), f32 scales, i32 sums of 32; in the
 *                        relaxed build Q6_K's layout at this row stride;
 *   Q6_K:                i8 codes, f32 scales, i32 sums of 16;
 *   Q2_K, Q3_K, IQ4_XS:  codes widened to i16, evens then odds per 16, f32 scales, i32 sums of 16
 *                        (k-quants-low.ts);
 *   F16 / F32:           plain f32 rows (f16-rounded for F16).
 */
export function actBytes(type: MatmulType, cols: number): number {
  const kind = activationKind(type);
  if (kind === "f16" || kind === "f32") return 4 * cols;
  if (K_LOW_TYPES.has(type)) return actBytesKLow(cols);
  // The relaxed Q4_0 layout is smaller but keeps this row stride, so callers may index token
  // rows with this function whatever the build.
  const raw =
    kind === "q8_0" || kind === "q8_1" ? 2 * cols + cols / 8 + cols / 8
    : type === GGMLType.Q6_K ? cols + cols / 64 + cols / 4
    : 2 * cols + cols / 64 + cols / 8;
  return Math.ceil(raw / 16) * 16;
}

/** Position of code j (0..31) of a block in the i16 layout each weight type reads. */
export const ORDER_Q4_0: readonly number[] = Array.from({ length: 32 }, (_, s) => {
  const part = s >> 3, k = s & 7;
  return [2 * k, 2 * k + 16, 2 * k + 1, 2 * k + 17][part];
}).reduce<number[]>((pos, j, s) => ((pos[j] = s), pos), []);
export const ORDER_Q8_0: readonly number[] = Array.from({ length: 32 }, (_, s) => {
  const part = s >> 3, k = s & 7;
  return [2 * k, 2 * k + 1, 2 * k + 16, 2 * k + 17][part];
}).reduce<number[]>((pos, j, s) => ((pos[j] = s), pos), []);
/** Q4_K / Q5_K: per 64-value chunk and half h, A even, A odd, B even, B odd (A = values 0..31). */
export const ORDER_Q4_K: readonly number[] = Array.from({ length: 64 }, (_, s) => {
  const h = s >> 5, part = (s >> 3) & 3, k = s & 7;
  return [16 * h + 2 * k, 16 * h + 2 * k + 1, 32 + 16 * h + 2 * k, 32 + 16 * h + 2 * k + 1][part];
}).reduce<number[]>((pos, j, s) => ((pos[j] = s), pos), []);

/**
 * Where code j of a row of `cols` sits in the relaxed build's Q4_0 activations (assembly/q4_0.ts,
 * quantize_q4_0): each full group of four blocks (128 bytes) transposed so that i32 lane k of
 * vector (i, h), at 32 i + 16 h, holds codes 16 h + 4 i .. 16 h + 4 i + 3 of block k; the blocks
 * after the last full group in place.
 */
export function groupedQ4_0(j: number, cols: number): number {
  const b = j >> 5;
  if (b >= ((cols >> 5) & ~3)) return j;
  const c = j & 31;
  return ((b >> 2) << 7) + 32 * ((c >> 2) & 3) + 16 * (c >> 4) + 4 * (b & 3) + (c & 3);
}

export function createReferenceKernels(mem: KernelMemory, layout: ActLayout = "simd"): Kernels {
  const order = (type: MatmulType) => (type === GGMLType.Q4_0 ? ORDER_Q4_0 : ORDER_Q8_0);
  // Q6_K always, Q4_0 / Q4_K / Q5_K in the relaxed build (rows still act_q8_K_i16_bytes apart for the k-quants)
  const relaxed = layout !== "simd";
  const nibbleLayout = relaxed ? "relaxed" : "simd";
  const plainI8 = (type: MatmulType) =>
    type === GGMLType.Q6_K || ((type === GGMLType.Q4_0 || type === GGMLType.Q4_K || type === GGMLType.Q5_K) && relaxed) ||
    (type === GGMLType.Q8_0 && layout === "relaxed-i8");
  const q8Write = (type: MatmulType, p: number, cols: number, row: Q8Row): void => {
    if (K_LOW_TYPES.has(type)) return writeQ8_K_eo(mem, p, cols, row);
    if (NIBBLE_TYPES.has(type)) return writeNibbleAct(mem, type, nibbleLayout, p, cols, row);
    if (plainI8(type)) {
      const nd = activationKind(type) === "q8_K" ? cols / 256 : cols / 32;
      if (type === GGMLType.Q4_0) {
        const codes = mem.i8(p, cols);
        for (let j = 0; j < cols; j++) codes[groupedQ4_0(j, cols)] = row.qs[j];
      } else mem.i8(p, cols).set(row.qs);
      mem.f32(p + cols, nd).set(row.d);
      mem.i32(p + cols + 4 * nd, row.sums.length).set(row.sums);
      return;
    }
    if (type === GGMLType.Q6_K) {
      mem.i8(p, cols).set(row.qs);
      mem.f32(p + cols, cols / 256).set(row.d);
      mem.i32(p + cols + cols / 64, cols / 16).set(row.sums);
      return;
    }
    if (activationKind(type) === "q8_K") {
      const codes = mem.u16(p, cols);
      for (let j = 0; j < cols; j++) codes[(j & ~63) + ORDER_Q4_K[j & 63]] = row.qs[j] & 0xffff;
      mem.f32(p + 2 * cols, cols / 256).set(row.d);
      const sums = mem.i32(p + 2 * cols + cols / 64, cols / 32);
      for (let s = 0; s < cols / 32; s++) sums[s] = row.sums[2 * s] + row.sums[2 * s + 1];
      return;
    }
    const codes = mem.u16(p, cols);
    const pos = order(type);
    for (let j = 0; j < cols; j++) codes[(j & ~31) + pos[j & 31]] = row.qs[j] & 0xffff;
    mem.f32(p + 2 * cols, cols / 32).set(row.d);
    mem.i32(p + 2 * cols + cols / 8, cols / 32).set(row.sums);
  };
  const q8View = (type: MatmulType, p: number, cols: number): Q8Row => {
    if (K_LOW_TYPES.has(type)) return readQ8_K_eo(mem, p, cols);
    if (NIBBLE_TYPES.has(type)) return readNibbleAct(mem, type, nibbleLayout, p, cols);
    if (plainI8(type)) {
      const nd = activationKind(type) === "q8_K" ? cols / 256 : cols / 32;
      const ns = activationKind(type) === "q8_K" ? cols / 16 : cols / 32;
      const codes = mem.i8(p, cols);
      const qs = type === GGMLType.Q4_0 ? Int8Array.from({ length: cols }, (_, j) => codes[groupedQ4_0(j, cols)]) : codes;
      return { qs, d: mem.f32(p + cols, nd), sums: mem.i32(p + cols + 4 * nd, ns) };
    }
    if (type === GGMLType.Q6_K) {
      return { qs: mem.i8(p, cols), d: mem.f32(p + cols, cols / 256), sums: mem.i32(p + cols + cols / 64, cols / 16) };
    }
    if (activationKind(type) === "q8_K") {
      const codes = new Int16Array(mem.buffer, p, cols);
      const qs = Int8Array.from({ length: cols }, (_, j) => codes[(j & ~63) + ORDER_Q4_K[j & 63]]);
      const sums = new Int32Array(cols / 16);
      qs.forEach((v, j) => (sums[j >> 4] += v));
      return { qs, d: mem.f32(p + 2 * cols, cols / 256), sums };
    }
    const codes = new Int16Array(mem.buffer, p, cols);
    const pos = order(type);
    const qs = Int8Array.from({ length: cols }, (_, j) => codes[(j & ~31) + pos[j & 31]]);
    return { qs, d: mem.f32(p + 2 * cols, cols / 32), sums: mem.i32(p + 2 * cols + cols / 8, cols / 32) };
  };
  const f16View = (p: number, n: number) => Float32Array.from(mem.u16(p, n), (h) => f16ToF32(h));

  return {
    backend: "reference",
    build: "ts",
    path: "TypeScript reference",
    actLayout: layout,
    fusedMadd: true,
    memory: mem,
    actBytes,
    quantize(type, x, xq, cols, t0, t1) {
      const stride = actBytes(type, cols);
      for (let t = t0; t < t1; t++) {
        const xt = mem.f32(x + 4 * t * cols, cols);
        const kind = activationKind(type);
        if (kind === "q8_0" || kind === "q8_1" || kind === "q8_K") {
          q8Write(type, xq + t * stride, cols, kind === "q8_0" ? quantizeQ8_0(xt) : kind === "q8_1" ? quantizeQ8_1(xt) : quantizeQ8_K(xt));
        } else {
          mem.f32(xq + t * stride, cols).set(kind === "f16" ? xt.map(roundF16) : xt);
        }
      }
    },
    layMatrix(type, w, rows, cols) {
      if (isGrouped(type, rows)) groupRows(type, mem.u8(w, rows * rowBytes(type as MatmulType, cols)), cols);
    },
    matmul(type, w, xq, y, cols, r0, r1, nTok, ldy, llamaOrder = false) {
      const rb = rowBytes(type, cols);
      const wb = mem.u8(w, rb * r1);
      const stride = actBytes(type, cols);
      for (let t = 0; t < nTok; t++) {
        const out = mem.f32(y + 4 * t * ldy, ldy);
        const kind = activationKind(type);
        const xr = kind === "q8_0" || kind === "q8_1" || kind === "q8_K" ? q8View(type, xq + t * stride, cols) : undefined;
        const xf = xr ? undefined : mem.f32(xq + t * stride, cols);
        for (let r = r0; r < r1; r++) {
          const o = r * rb;
          switch (type) {
            // ldy is the matrix's row count: llama.cpp repacks Q4_0 when it is a multiple of 8, and
            // so does our loader (kernels/layout.ts); the order follows (dotQ4_0For).
            case GGMLType.Q4_0:
              out[r] = isGrouped(type, ldy) ? dotQ4_0(groupedRowQ4_0(mem.u8(w, rb * ldy), r, cols), 0, xr!) : dotQ4_0For(ldy)(wb, o, xr!);
              break;
            case GGMLType.Q8_0: out[r] = dotQ8_0(wb, o, xr!); break;
            // Q4_K matrices of a multiple of 4 rows lie in groups of four rows (kernels/layout.ts);
            // each row's float order is the plain layout's.
            case GGMLType.Q4_K:
              out[r] = isGrouped(type, ldy) ? dotQ4_K(groupedRowQ4_K(mem.u8(w, rb * ldy), r, cols), 0, xr!) : dotQ4_K(wb, o, xr!);
              break;
            case GGMLType.Q5_K: out[r] = dotQ5_K(wb, o, xr!); break;
            // Q6_K likewise (groups of four rows where the row count is a multiple of 4)
            case GGMLType.Q6_K:
              out[r] = isGrouped(type, ldy) ? dotQ6_K(groupedRowQ6_K(mem.u8(w, rb * ldy), r, cols), 0, xr!) : dotQ6_K(wb, o, xr!);
              break;
            case GGMLType.Q2_K: out[r] = dotQ2_K(wb, o, xr!); break;
            case GGMLType.Q3_K: out[r] = dotQ3_K(wb, o, xr!); break;
            case GGMLType.IQ4_XS: out[r] = dotIQ4_XS(wb, o, xr!); break;
            case GGMLType.Q4_1: out[r] = dotQ4_1(wb, o, xr as Q8_1Row); break;
            case GGMLType.Q5_0: out[r] = dotQ5_0(wb, o, xr!); break;
            case GGMLType.Q5_1: out[r] = dotQ5_1(wb, o, xr as Q8_1Row); break;
            case GGMLType.IQ4_NL: out[r] = dotIQ4_NL(wb, o, xr!); break;
            case GGMLType.F16:
              // ldy is the matrix's row count in every caller: llama.cpp's order depends on it.
              out[r] = dotF16(wb, o, xf!, cols, f16Lanes(nTok, cols, ldy));
              break;
            case GGMLType.F32: {
              const wr = mem.f32(w + o, cols);
              if (llamaOrder) {
                // tinyBLAS where llama.cpp hands it the product, else ggml_vec_dot_f32
                out[r] = nTok >= 2 && cols % 16 === 0 && ldy % 4 === 0 ? dotF32Tiny(wr, xf!, cols) : dotF32(wr, xf!, cols);
              } else out[r] = wr.reduce((s, v, j) => s + v * xf![j], 0);
              break;
            }
          }
        }
      }
    },
    rmsnorm(x, w, y, n, eps, r0, r1) {
      const rows = r1 - r0;
      const out = rmsnorm(mem.f32(x + 4 * r0 * n, rows * n), n, eps, w ? mem.f32(w, n) : undefined);
      mem.f32(y + 4 * r0 * n, rows * n).set(out);
    },
    softmax(x, y, n, r0, r1) {
      mem.f32(y + 4 * r0 * n, (r1 - r0) * n).set(softmax(mem.f32(x + 4 * r0 * n, (r1 - r0) * n), n));
    },
    swiglu(g, u, out, i0, i1) {
      const gv = mem.f32(g, i1), uv = mem.f32(u, i1), ov = mem.f32(out, i1);
      for (let i = i0; i < i1; i++) ov[i] = f(silu(gv[i]) * uv[i]);
    },
    silu(x, out, i0, i1) {
      const xv = mem.f32(x, i1), ov = mem.f32(out, i1);
      for (let i = i0; i < i1; i++) ov[i] = silu(xv[i]);
    },
    add(a, b, out, i0, i1) {
      const av = mem.f32(a, i1), bv = mem.f32(b, i1), ov = mem.f32(out, i1);
      for (let i = i0; i < i1; i++) ov[i] = f(av[i] + bv[i]);
    },
    mul(a, b, out, i0, i1) {
      const av = mem.f32(a, i1), bv = mem.f32(b, i1), ov = mem.f32(out, i1);
      for (let i = i0; i < i1; i++) ov[i] = f(av[i] * bv[i]);
    },
    axpy(a, s, out, i0, i1) {
      const av = mem.f32(a, i1), ov = mem.f32(out, i1);
      for (let i = i0; i < i1; i++) ov[i] = f(ov[i] + f(av[i] * f(s)));
    },
    rope(x, _cs, nHeads, headDim, nDims, pos0, invFreq, mscale, neox, nTok, ld) {
      const view = mem.f32(x, (nTok - 1) * ld + nHeads * headDim);
      const cfg = { nDims, base: 1, neox, scaling: { type: "none" as const } };
      rope(view, nHeads, headDim, cfg, { invFreq: mem.f64(invFreq, nDims + GGML_ROPE_RAMP), mscale }, pos0, nTok, ld);
    },
    attention(q, k, v, out, _scores, _qh, nHead, nKvHead, headDim, pos0, nTok, kvType, scale, h0, h1, llamaKqv = false) {
      const nKv = pos0 + nTok;
      const shape = { nHead, nKvHead, headDim };
      const qRow = nHead * headDim;
      const qv = mem.f32(q, nTok * qRow);
      let o: Float32Array;
      if (kvType === GGMLType.Q8_0) {
        const bytes = rowBytes(kvType, nKv * nKvHead * headDim);
        o = attentionQ8_0(qv, mem.u8(k, bytes), mem.u8(v, bytes), shape, pos0, nTok, scale);
      } else {
        const kvLen = nKv * nKvHead * headDim;
        const kvF16 = kvType === GGMLType.F16;
        const read = (p: number) => (kvF16 ? f16View(p, kvLen) : mem.f32(p, kvLen));
        o = attention(qv, read(k), read(v), shape, pos0, nTok, scale, kvF16, llamaKqv);
      }
      const ov = mem.f32(out, nTok * qRow);
      for (let t = 0; t < nTok; t++) {
        for (let i = h0 * headDim; i < h1 * headDim; i++) ov[t * qRow + i] = o[t * qRow + i];
      }
    },
    storeF16(x, h, n) {
      const xv = mem.f32(x, n), hv = mem.u16(h, n);
      for (let i = 0; i < n; i++) hv[i] = f32ToF16(xv[i]);
    },
    storeQ8_0(x, dst, n) {
      mem.u8(dst, rowBytes(GGMLType.Q8_0, n)).set(q8_0Blocks(mem.f32(x, n)));
    },
    hadamard(x, n, c0, c1) {
      walshHadamard(mem.f32(x + 4 * c0 * n, (c1 - c0) * n), n);
    },
    streamRead(p, bytes) {
      return mem.u8(p, bytes).reduce((a, b) => a | b, 0);
    },
    moeRoute(logits, _probs, nExpert, k, norm, idx, wt) {
      const r = route(mem.f32(logits, nExpert), k, norm);
      mem.i32(idx, k).set(r.experts);
      mem.f32(wt, k).set(r.weights);
    },
  };
}
