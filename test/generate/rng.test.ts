/** xoshiro128**: range, seeding rules; the bit-exact stream is checked in golden.test.ts. */
import { describe, expect, it } from "vitest";
import { randomSeed, Xoshiro128 } from "../../src/generate/index.js";
import { InvalidArgumentError } from "../../src/errors.js";

describe("Xoshiro128", () => {
  it("floats lie in [0, 1) and look uniform", () => {
    const g = new Xoshiro128(123);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const u = g.nextFloat();
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
    }
    const chi = bins.reduce((a, c) => a + (c - 10_000) ** 2 / 10_000, 0);
    expect(chi).toBeLessThan(27.88); // df = 9, 0.999
  });

  it("a number seed and the same bigint seed give the same stream; seed() restarts", () => {
    const a = new Xoshiro128(42);
    const b = new Xoshiro128(42n);
    const first = [a.nextUint32(), a.nextUint32()];
    expect([b.nextUint32(), b.nextUint32()]).toEqual(first);
    a.seed(42);
    expect(a.nextUint32()).toBe(first[0]);
  });

  it("rejects seeds that are not integers in range", () => {
    for (const s of [-1, 0.5, NaN, 2 ** 53]) expect(() => new Xoshiro128(s)).toThrow(InvalidArgumentError);
    expect(() => new Xoshiro128(-1n)).toThrow(/seed -1/);
  });

  it("randomSeed gives safe integers", () => {
    const s = randomSeed();
    expect(Number.isSafeInteger(s) && s >= 0).toBe(true);
  });
});
