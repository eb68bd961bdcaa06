/**
 * The kernel interface the model runtime codes against. Two backends implement it with the same
 * behaviour: `reference` (the plain TypeScript twins in ./reference) and `wasm` (the SIMD build in
 * assembly/). Both work on the same KernelMemory: tensors are byte addresses, so a forward pass
 * written once runs on either, and tests compare them address for address.
 *
 * Shapes: a "row" is one token's vector; matrices are row-major with `rows` output rows of
 * `cols` inputs. Every call with a range ([r0, r1), [i0, i1), [h0, h1)) does only that slice, which
 * is how threads share a call.
 */
import type { GGMLType } from "../formats/ggml-types.js";
import type { MatmulType } from "./reference/matmul.js";
import type { KernelMemory } from "./memory.js";
import type { ActLayout } from "./reference/backend.js";

export type { MatmulType };

/**
 * Element type of a KV cache, as a ggml type id (llama.cpp's type_k / type_v): f32, f16, or
 * Q8_0 blocks of 32 values along each head (34 bytes per block; needs headDim % 32 == 0).
 * A cache row of n values takes rowBytes(type, n) bytes.
 */
export type KvType = GGMLType.F32 | GGMLType.F16 | GGMLType.Q8_0;

export interface Kernels {
  readonly backend: "reference" | "wasm";
  /** "simd" or "relaxed" for the wasm backend, "ts" for the reference. */
  readonly build: string;
  /**
   * The code path the products take, for reports: "TypeScript reference", "SIMD128",
   * "relaxed SIMD (i8 dot-add)" where the start-up probe found the runtime's i8 dot-add exact,
   * or "relaxed SIMD (i16 dot)" where it did not (Node 20).
   */
  readonly path: string;
  /**
   * The layout quantize writes and matmul reads activations in (src/kernels/reference/backend.ts,
   * ActLayout): the plain build's, the relaxed build's, or the relaxed build's with Q8_0 in i8
   * codes (where Q8_0 runs on the i8 dot-add). The reference backend writes whichever it is given.
   */
  readonly actLayout: ActLayout;
  /**
   * Whether a multiply-add rounds once where llama.cpp's order needs it (relaxed_madd fused; the
   * reference computes it exactly). Without it the WASM Q8_0 product keeps a faster order a few
   * ulps from llama.cpp's (assembly/q8_0.ts).
   */
  readonly fusedMadd: boolean;
  readonly memory: KernelMemory;

  /**
   * Bytes of one token's rounded activations for a `type` matmul with `cols` inputs
   * (Q8_0 / Q8_K blocks, f16-rounded f32, or plain f32). Allocate nTok times this for xq.
   */
  actBytes(type: MatmulType, cols: number): number;
  /** Round token rows [t0, t1) of x (rows of cols f32) into xq as llama.cpp rounds matmul inputs. */
  quantize(type: MatmulType, x: number, xq: number, cols: number, t0: number, t1: number): void;
  /**
   * y[t * ldy + r] = W[r] . xq[t] for rows [r0, r1) and tokens 0..nTok-1; w holds the whole matrix
   * (row r at w + r * rowBytes(type, cols)). llamaOrder: F32 weights sum in llama.cpp's order
   * (tinyBLAS's 16 lanes where it takes the product, ggml_vec_dot_f32's otherwise), not the
   * faster order of the F32 kernel; other types ignore it.
   */
  matmul(type: MatmulType, w: number, xq: number, y: number, cols: number, r0: number, r1: number, nTok: number, ldy: number, llamaOrder?: boolean): void;
  /**
   * Lay a matrix just written at w in ggml's layout out as matmul reads it, in place: Q4_0
   * matrices of a multiple of 8 rows go into groups of four rows (layout.ts); others stay.
   */
  layMatrix(type: GGMLType, w: number, rows: number, cols: number): void;

  /** RMSNorm of rows [r0, r1) of n values; w = 0 for no weight. */
  rmsnorm(x: number, w: number, y: number, n: number, eps: number, r0: number, r1: number): void;
  softmax(x: number, y: number, n: number, r0: number, r1: number): void;
  /** out = silu(g) * u over elements [i0, i1). */
  swiglu(g: number, u: number, out: number, i0: number, i1: number): void;
  silu(x: number, out: number, i0: number, i1: number): void;
  add(a: number, b: number, out: number, i0: number, i1: number): void;
  mul(a: number, b: number, out: number, i0: number, i1: number): void;
  /** out += s * a over [i0, i1). */
  axpy(a: number, s: number, out: number, i0: number, i1: number): void;

  /**
   * Rotate nTok rows (stride ld floats) of nHeads heads in place at positions pos0.. with the
   * table at invFreq (ropeFrequencies().invFreq: f64[nDims/2] frequencies, then llama.cpp's
   * float32 rope parameters, nDims + 4 values in all) and magnitude mscale.
   * cs: scratch of nDims f32.
   */
  rope(
    x: number, cs: number, nHeads: number, headDim: number, nDims: number, pos0: number,
    invFreq: number, mscale: number, neox: boolean, nTok: number, ld: number,
  ): void;
  /**
   * Causal attention for heads [h0, h1) of nTok queries at positions pos0.. over K/V caches
   * (rows of nKvHead*headDim values of kvType). scores: nKv f32 scratch; qh: headDim f32 scratch.
   * llamaKqv (f32 cache): P.V summed as llama.cpp's KQV product sums it (per dimension over the
   * positions: tinyBLAS's 16 lanes for two or more queries, ggml_vec_dot_f32's for one), else
   * position by position.
   */
  attention(
    q: number, k: number, v: number, out: number, scores: number, qh: number,
    nHead: number, nKvHead: number, headDim: number, pos0: number, nTok: number, kvType: KvType, scale: number,
    h0: number, h1: number, llamaKqv?: boolean,
  ): void;
  /** Store n f32 as f16 (writing an f16 KV cache row). */
  storeF16(x: number, h: number, n: number): void;
  /** Store n f32 (n % 32 == 0) as Q8_0 blocks (writing a Q8_0 KV cache row), rounded as llama.cpp stores them. */
  storeQ8_0(x: number, dst: number, n: number): void;
  /**
   * Walsh-Hadamard rotation in place of chunks [c0, c1) of n values each (n a power of two):
   * x <- H_n x with H_n orthonormal, as llama.cpp rotates Q, K, V around a quantized KV cache.
   */
  hadamard(x: number, n: number, c0: number, c1: number): void;
  /** Read [p, p + bytes) as fast as the SIMD loads go (the bandwidth yardstick); returns a checksum. */
  streamRead(p: number, bytes: number): number;
  /** Softmax -> top-k -> (renormalise): ids to idx (i32[k]), weights to wt (f32[k]). probs: nExpert f32 scratch. */
  moeRoute(logits: number, probs: number, nExpert: number, k: number, norm: boolean, idx: number, wt: number): void;
}
