/**
 * The reference RoPE (src/kernels/reference/rope.ts) against float64 numpy goldens made from the
 * upstream formulas (tools/gen-kernel-goldens.py), for every scaling mode and both layouts: the
 * frequencies to 1e-8, the rotation within the error of llama.cpp's float32 angles (which the
 * kernels reproduce; the llama.cpp goldens in test/model hold them to its bits).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { rope, ropeFrequencies, type RopeConfig, type RopeScaling } from "../../src/kernels/reference/index.js";

interface GoldenCase {
  name: string;
  nDims: number;
  headDim: number;
  base: number;
  neox: boolean;
  scaling: RopeScaling;
  seqLen: number;
  invFreq: number[];
  mscale: number;
  x: number[][];
  positions: number[];
  rotated: number[][][];
}

const golden = JSON.parse(
  readFileSync(new URL("../../fixtures/golden/kernels/rope.json", import.meta.url), "utf8"),
) as { cases: GoldenCase[] };

describe("reference RoPE against numpy goldens", () => {
  it("covers every scaling mode", () => {
    expect(new Set(golden.cases.map((c) => c.scaling.type))).toEqual(new Set(["none", "linear", "ntk", "yarn"]));
  });
  for (const c of golden.cases) {
    it(c.name, () => {
      const cfg: RopeConfig = { nDims: c.nDims, base: c.base, neox: c.neox, scaling: c.scaling };
      const f = ropeFrequencies(cfg, c.seqLen);
      // goldens keep 9 significant digits
      for (let i = 0; i < c.invFreq.length; i++) expect(Math.abs(f.invFreq[i] / c.invFreq[i] - 1)).toBeLessThan(1e-8);
      expect(f.mscale).toBeCloseTo(c.mscale, 8);
      c.positions.forEach((pos, p) => {
        const x = Float32Array.from(c.x.flat());
        rope(x, c.x.length, c.headDim, cfg, f, pos);
        const want = c.rotated[p].flat();
        // The rotation follows llama.cpp's float32 steps (ggml_rope_cache_init): pair i's angle is
        // pos * thetaScale^i by i + 1 float32 multiplies (and the scaling's own roundings), each
        // off by up to half an ulp, and thetaScale = powf(base, -2/nDims) is off by up to about
        // (1 + ln(base) 2/nDims) 2^-24 itself: the angle is within (4i + 8) 2^-24 of its value,
        // and a pair of radius r moves by r times that.
        const half = c.nDims / 2;
        for (let h = 0; h < c.x.length; h++) {
          for (let j = 0; j < c.headDim; j++) {
            const k = h * c.headDim + j;
            const i = j >= c.nDims ? -1 : c.neox ? j % half : j >> 1;
            let tol = 2e-6 * (1 + Math.abs(want[k]));
            if (i >= 0) {
              const mate = c.neox ? h * c.headDim + (j < half ? j + half : j - half) : h * c.headDim + (j ^ 1);
              const r = Math.hypot(c.x[h][j], c.x[h][mate - h * c.headDim]) * f.mscale;
              tol += r * (4 * i + 8) * 2 ** -24 * pos * c.invFreq[i]!;
            }
            expect(Math.abs(x[k] - want[k])).toBeLessThan(tol);
          }
        }
      });
    });
  }
});
