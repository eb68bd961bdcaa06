/**
 * Our activation rounding against the project's independent ggml quantizers
 * (src/formats/quants, written from ggml-quants.c): Q8_K must agree bit for bit (x86 llama.cpp
 * uses quantize_row_q8_K_ref itself); Q8_0 must agree on every scale, while codes may differ at
 * exact .5 ties, because x86 llama.cpp's quantize_row_q8_0 (which we follow) multiplies by 127/amax
 * and rounds half to even where the reference multiplies by 1/d and rounds half away from zero.
 */
import { describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { f16ToF32, quantize } from "../../src/formats/quants/index.js";
import { quantizeQ8_0, quantizeQ8_K } from "../../src/kernels/reference/index.js";
import { randomF32, rng } from "./helpers.js";

describe("activation quantization vs the ggml-format quantizers", () => {
  it("Q8_K: identical scales, codes and sums", () => {
    const r = rng(31);
    for (const scale of [1e-3, 1, 300]) {
      const x = randomF32(r, 256 * 8, scale);
      const ours = quantizeQ8_K(x);
      const bytes = quantize(GGMLType.Q8_K, x);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let b = 0; b < 8; b++) {
        const o = b * 292;
        expect(dv.getFloat32(o, true)).toBe(ours.d[b]);
        for (let j = 0; j < 256; j++) expect(dv.getInt8(o + 4 + j)).toBe(ours.qs[b * 256 + j]);
        for (let j = 0; j < 16; j++) expect(dv.getInt16(o + 260 + 2 * j, true)).toBe(ours.sums[b * 16 + j]);
      }
    }
  });

  it("Q8_0: identical scales; codes equal away from rounding ties", () => {
    const r = rng(32);
    const x = randomF32(r, 32 * 256, 2);
    const ours = quantizeQ8_0(x);
    const bytes = quantize(GGMLType.Q8_0, x);
    let differ = 0;
    for (let b = 0; b < 256; b++) {
      const o = b * 34;
      expect(f16ToF32(bytes[o] | (bytes[o + 1] << 8))).toBe(ours.d[b]);
      for (let j = 0; j < 32; j++) if (((bytes[o + 2 + j] << 24) >> 24) !== ours.qs[b * 32 + j]) differ++;
    }
    expect(differ).toBeLessThanOrEqual(4);
  });
});
