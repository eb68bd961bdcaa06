/**
 * The Q8_0 KV cache kernels: storing rows as ggml Q8_0 blocks, and attention over them (the query
 * quantized to Q8_0, integer block dot products with K, dequantized V), WASM against the
 * TypeScript twin on both builds, with odd sequence lengths, grouped-query heads and several
 * head sizes; and the Walsh-Hadamard rotation llama.cpp applies around a quantized cache.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantizeQ8_0, quantizeQ8_0 as quantizeQ8_0Ref } from "../../src/formats/quants/q8_0.js";
import { KernelMemory, Kernels, rowBytes } from "../../src/kernels/index.js";
import { attention, q8_0Blocks, walshHadamard } from "../../src/kernels/reference/index.js";
import { kernelPair, KERNEL_BUILDS, maxRelDiff, randomF32, rng, withMark as withMarkIn } from "./helpers.js";

describe.each(KERNEL_BUILDS)("Q8_0 KV cache kernels (%s build)", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => ({ mem, wasm, ref } = await kernelPair(build, 16 << 20)));
  const withMark = <T>(fn: () => T): T => withMarkIn(mem, fn);

  it("storeQ8_0 writes ggml block_q8_0 bit for bit as llama.cpp's CPU backend stores K/V rows", () => {
    const r = rng(21);
    for (const n of [32, 96, 64 * 7]) {
      withMark(() => {
        const values = randomF32(r, n, 3);
        // A block of zeros and a block with one large outlier, too.
        if (n >= 96) {
          values.fill(0, 32, 64);
          values[70] = 1e4;
        }
        const x = mem.put(values);
        const bytes = rowBytes(GGMLType.Q8_0, n);
        expect(bytes).toBe((n / 32) * 34);
        const w = mem.alloc(bytes), rf = mem.alloc(bytes);
        wasm.storeQ8_0(x, w, n);
        ref.storeQ8_0(x, rf, n);
        const stored = mem.u8(w, bytes).slice();
        expect(Array.from(stored)).toEqual(Array.from(mem.u8(rf, bytes)));
        expect(Array.from(stored)).toEqual(Array.from(q8_0Blocks(values)));
        // ggml's quantize_row_q8_0_ref (the file quantizer) computes 1/d instead of 127/amax and
        // rounds half away from zero: the same scales, and codes that can differ by one only
        // where x * 127/amax lands within an ulp of a half (none on this data).
        const file = new Uint8Array(bytes);
        quantizeQ8_0Ref(values, file, n / 32);
        let differing = 0;
        for (let b = 0; b < n / 32; b++) {
          expect([stored[34 * b], stored[34 * b + 1]]).toEqual([file[34 * b], file[34 * b + 1]]);
          for (let j = 2; j < 34; j++) {
            const d = ((stored[34 * b + j]! << 24) >> 24) - ((file[34 * b + j]! << 24) >> 24);
            expect(Math.abs(d)).toBeLessThanOrEqual(1);
            if (d !== 0) differing++;
          }
        }
        expect(differing).toBe(0);
        // Dequantized, every value is within half a step of the input, plus the f16 rounding of
        // the scale (relative 2^-11, times a code of up to 127).
        const back = new Float32Array(n);
        dequantizeQ8_0(stored, back, n / 32);
        for (let b = 0; b < n / 32; b++) {
          const amax = Math.max(...values.subarray(32 * b, 32 * b + 32).map(Math.abs));
          for (let j = 32 * b; j < 32 * b + 32; j++) expect(Math.abs(back[j]! - values[j]!)).toBeLessThanOrEqual(amax / 254 + amax * 2 ** -11);
        }
      });
    }
  });

  it("storeQ8_0 rounds exact halves to even, as ggml's x86 quantize_row_q8_0 does", () => {
    withMark(() => {
      // amax = 127 makes the multiplier exactly 1, so 2.5 and -3.5 are exact ties.
      const values = new Float32Array(32);
      values.set([127, 2.5, -3.5, 0.5, -126.5]);
      const x = mem.put(values);
      const w = mem.alloc(34);
      wasm.storeQ8_0(x, w, 32);
      const codes = Array.from(new Int8Array(mem.u8(w + 2, 32).slice().buffer).slice(0, 5));
      expect(codes).toEqual([127, 2, -4, 0, -126]);
      expect(Array.from(q8_0Blocks(values))).toEqual(Array.from(mem.u8(w, 34)));
    });
  });

  it("hadamard: bit-identical to the twin, the Sylvester matrix / sqrt(n), its own inverse", () => {
    const r = rng(23);
    for (const n of [64, 128, 256]) {
      withMark(() => {
        const chunks = 5;
        const values = randomF32(r, n * chunks, 4);
        const a = mem.put(values), b = mem.put(values);
        wasm.hadamard(a, n, 0, 2);
        wasm.hadamard(a, n, 2, chunks);
        ref.hadamard(b, n, 0, chunks);
        const rotated = mem.f32(a, n * chunks).slice();
        expect(Array.from(rotated)).toEqual(Array.from(mem.f32(b, n * chunks)));
        // H[i][j] = (-1)^popcount(i & j) / sqrt(n)
        for (let c = 0; c < chunks; c++) {
          for (let i = 0; i < n; i++) {
            let y = 0;
            for (let j = 0; j < n; j++) {
              let bits = i & j, sign = 1;
              for (; bits; bits &= bits - 1) sign = -sign;
              y += sign * values[c * n + j]!;
            }
            expect(rotated[c * n + i]).toBeCloseTo(y / Math.sqrt(n), 4);
          }
        }
        const twice = rotated.slice();
        walshHadamard(twice, n);
        expect(maxRelDiff(twice, values)).toBeLessThan(1e-6);
      });
    }
  });

  const shapes = [
    { nHead: 4, nKvHead: 4, headDim: 32 },
    { nHead: 6, nKvHead: 2, headDim: 64 },
    { nHead: 8, nKvHead: 1, headDim: 128 },
    { nHead: 2, nKvHead: 1, headDim: 96 },
  ];
  for (const { nHead, nKvHead, headDim } of shapes) {
    it(`attention over a Q8_0 cache: ${nHead} q / ${nKvHead} kv heads of ${headDim}, odd lengths, heads split`, () => {
      const r = rng(headDim + nHead);
      for (const [pos0, nTok] of [[0, 1], [0, 5], [6, 1], [16, 3], [30, 7]] as const) {
        withMark(() => {
          const nKv = pos0 + nTok;
          const kvDim = nKvHead * headDim;
          const qDim = nHead * headDim;
          const qv = randomF32(r, nTok * qDim, 2);
          const kf = randomF32(r, nKv * kvDim, 2), vf = randomF32(r, nKv * kvDim);
          const q = mem.put(qv);
          const kx = mem.put(kf), vx = mem.put(vf);
          const bytes = rowBytes(GGMLType.Q8_0, nKv * kvDim);
          const k = mem.alloc(bytes), v = mem.alloc(bytes);
          wasm.storeQ8_0(kx, k, nKv * kvDim);
          wasm.storeQ8_0(vx, v, nKv * kvDim);
          // Scratch filled with garbage: the kernel must not read what it did not write.
          const scores = mem.put(randomF32(r, nKv, 1e6)), qh = mem.put(randomF32(r, headDim, 1e6));
          const o1 = mem.alloc(4 * nTok * qDim), o2 = mem.alloc(4 * nTok * qDim);
          const scale = 1 / Math.sqrt(headDim);
          const split = Math.max(1, nHead >> 1);
          wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.Q8_0, scale, 0, split);
          wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.Q8_0, scale, split, nHead);
          ref.attention(q, k, v, o2, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.Q8_0, scale, 0, nHead);
          const got = mem.f32(o1, nTok * qDim).slice();
          expect(maxRelDiff(got, mem.f32(o2, nTok * qDim))).toBeLessThan(2e-6);
          // Against exact attention over the unquantized cache: Q8_0 keeps ~8 bits per value.
          const exact = attention(qv, kf, vf, { nHead, nKvHead, headDim }, pos0, nTok, scale, false);
          expect(maxRelDiff(got, exact)).toBeLessThan(0.03);
        });
      }
    });
  }
});
