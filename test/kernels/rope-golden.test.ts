/**
 * The reference RoPE (src/kernels/reference/rope.ts) against float64 numpy goldens made from the
 * upstream formulas (tools/gen-kernel-goldens.py), for every scaling mode and both layouts.
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
        // float32 storage; angles up to 12000 rad lose ~1e-12 relative in float64
        for (let i = 0; i < want.length; i++) expect(Math.abs(x[i] - want[i])).toBeLessThan(2e-6 * (1 + Math.abs(want[i])));
      });
    });
  }
});
