/** probabilities / logSoftmax against the formula, and CFG against HF's formula written out. */
import { describe, expect, it } from "vitest";
import { applyCfg, logSoftmax, probabilities, SamplingError } from "../../src/generate/index.js";
import { InvalidArgumentError } from "../../src/errors.js";

const naiveLogSoftmax = (x: number[]): number[] => {
  const z = Math.log(x.reduce((a, v) => a + Math.exp(v), 0));
  return x.map((v) => v - z);
};

describe("probabilities and logSoftmax", () => {
  it("match exp(x) / Σ exp(x) on moderate logits", () => {
    const x = [0.5, -1, 2, 0, 3.25];
    const z = x.reduce((a, v) => a + Math.exp(v), 0);
    const p = probabilities(x, new Float64Array(5));
    x.forEach((v, i) => expect(p[i]).toBeCloseTo(Math.exp(v) / z, 15));
    const lp = logSoftmax(x, new Float64Array(5));
    naiveLogSoftmax(x).forEach((v, i) => expect(lp[i]).toBeCloseTo(v, 14));
  });

  it("are stable for huge logits (the naive formula overflows)", () => {
    const p = probabilities([1000, 1001, 999]);
    expect(p).toBeInstanceOf(Float32Array);
    expect(p[1]).toBeCloseTo(Math.exp(1) / (1 + Math.exp(1) + Math.exp(-1)), 6);
    expect(logSoftmax([-1e30, 0], new Float64Array(2))[1]).toBe(0);
  });

  it("give 0 / -Infinity to banned tokens, and work in place", () => {
    const x = Float32Array.from([-Infinity, 0, 0, -Infinity]);
    expect(Array.from(probabilities(x, x))).toEqual([0, 0.5, 0.5, 0]);
    const y = Float64Array.from([-Infinity, 1, 1]);
    logSoftmax(y, y);
    expect(y[0]).toBe(-Infinity);
    expect(y[1]).toBeCloseTo(-Math.LN2, 15);
    expect(y[2]).toBeCloseTo(-Math.LN2, 15);
  });

  it("reject NaN, +Infinity, rows with nothing possible, and mismatched outputs", () => {
    expect(() => probabilities([0, NaN])).toThrow(/logits\[1\] is NaN/);
    expect(() => probabilities([NaN, 0])).toThrow(SamplingError);
    expect(() => logSoftmax([0, Infinity])).toThrow(/\+Infinity/);
    expect(() => probabilities([-Infinity, -Infinity])).toThrow(/-Infinity/);
    expect(() => probabilities([])).toThrow(/empty/);
    expect(() => probabilities([1, 2], new Float32Array(3))).toThrow(InvalidArgumentError);
  });
});

describe("applyCfg (HF UnbatchedClassifierFreeGuidanceLogitsProcessor)", () => {
  const cond = [2, 0.5, -1, 3, 0];
  const uncond = [1, 1, 0, 2.5, -2];

  it("is g * (logsoftmax(cond) - logsoftmax(uncond)) + logsoftmax(uncond)", () => {
    const c = naiveLogSoftmax(cond);
    const u = naiveLogSoftmax(uncond);
    for (const g of [1.5, 2, 0.5, 0]) {
      const out = applyCfg(cond, uncond, g, new Float64Array(5));
      c.forEach((_, i) => expect(out[i]).toBeCloseTo(g * (c[i] - u[i]) + u[i], 13));
    }
  });

  it("scale 1 is logsoftmax(cond), as HF returns", () => {
    expect(Array.from(applyCfg(cond, uncond, 1, new Float64Array(5)))).toEqual(Array.from(logSoftmax(cond, new Float64Array(5))));
  });

  it("may write over its inputs", () => {
    const a = Float32Array.from(cond);
    const want = applyCfg(cond, uncond, 1.5, new Float32Array(5));
    expect(applyCfg(a, uncond, 1.5, a)).toEqual(want);
  });

  it("keeps tokens banned on either side banned", () => {
    const out = applyCfg([0, -Infinity, 1], [-Infinity, 0, 1], 3, new Float64Array(3));
    expect(out[0]).toBe(-Infinity);
    expect(out[1]).toBe(-Infinity);
    // both sides put token 2 at log(e / (1 + e)): the guidance term vanishes
    expect(out[2]).toBeCloseTo(1 - Math.log(1 + Math.E), 14);
  });

  it("rejects mismatched lengths and a non-finite scale", () => {
    expect(() => applyCfg([1, 2], [1], 1.5, new Float32Array(2))).toThrow(InvalidArgumentError);
    expect(() => applyCfg([1, 2], [1, 2], NaN, new Float32Array(2))).toThrow(/scale NaN/);
  });
});
