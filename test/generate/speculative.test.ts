/**
 * Speculative sampling: the accept/reject rule keeps the target distribution (chi-square with
 * fixed seeds, so it cannot flake), the greedy rule, the adaptive draft length.
 */
import { describe, expect, it } from "vitest";
import {
  DRAFT_K_START, drawFrom, nextDraftK, residualDistribution, speculativeAccept, speculativeAcceptGreedy, Xoshiro128,
} from "../../src/generate/index.js";
import { InvalidArgumentError } from "../../src/errors.js";

// A target and a deliberately different draft over six tokens; the draft even gives token 5
// no mass at all and overweights token 0.
const P = Float64Array.from([0.3, 0.25, 0.2, 0.1, 0.1, 0.05]);
const Q = Float64Array.from([0.55, 0.05, 0.1, 0.2, 0.1, 0]);

function chiSquare(counts: number[], probs: ArrayLike<number>): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((chi, c, i) => chi + (c - probs[i] * n) ** 2 / (probs[i] * n), 0);
}

// df = 5: the 0.999 quantile of chi-square.
const CHI2_5_999 = 20.515;

describe("speculativeAccept", () => {
  it("every emitted token follows the target distribution (chi-square)", () => {
    const rng = new Xoshiro128(20261122);
    const scratch = new Float64Array(6);
    const k = 3;
    const first = new Array<number>(6).fill(0);
    const second = new Array<number>(6).fill(0);
    const all = new Array<number>(6).fill(0);
    let accepted = 0;
    const rounds = 100_000;
    for (let r = 0; r < rounds; r++) {
      const tokens = [drawFrom(Q, rng), drawFrom(Q, rng), drawFrom(Q, rng)];
      const { accepted: n, token } = speculativeAccept([P, P, P, P], [Q, Q, Q], tokens, rng, scratch);
      const emitted = [...tokens.slice(0, n), token];
      accepted += n;
      first[emitted[0]]++;
      if (emitted.length > 1) second[emitted[1]]++;
      for (const t of emitted) all[t]++;
    }
    expect(chiSquare(first, P)).toBeLessThan(CHI2_5_999);
    expect(chiSquare(second, P)).toBeLessThan(CHI2_5_999);
    expect(chiSquare(all, P)).toBeLessThan(CHI2_5_999);
    // acceptance rate per draft token is Σ min(p, q) = 0.3 + 0.05 + 0.1 + 0.1 + 0.1 + 0 = 0.65
    const expectedAccepted = rounds * (0.65 + 0.65 ** 2 + 0.65 ** 3);
    expect(Math.abs(accepted - expectedAccepted) / expectedAccepted).toBeLessThan(0.01);
  });

  it("the test has power: the draft's own tokens fail it", () => {
    const rng = new Xoshiro128(1);
    const counts = new Array<number>(6).fill(0);
    for (let r = 0; r < 100_000; r++) counts[drawFrom(Q, rng)]++;
    expect(chiSquare(counts.slice(0, 5), P.slice(0, 5))).toBeGreaterThan(1000);
  });

  it("accepts everything when draft and target agree, then draws the bonus from the target", () => {
    const rng = new Xoshiro128(3);
    const bonus = Float64Array.from([0, 0, 0, 0, 0, 1]);
    for (let i = 0; i < 100; i++) {
      expect(speculativeAccept([P, P, bonus], [P, P], [1, 4], rng, new Float64Array(6))).toEqual({ accepted: 2, token: 5 });
    }
  });

  it("rejects a token the target rules out, and resamples from max(p - q, 0)", () => {
    const rng = new Xoshiro128(4);
    const p = Float64Array.from([0, 0.5, 0.5]);
    const q = Float64Array.from([0.8, 0.2, 0]);
    for (let i = 0; i < 200; i++) {
      const out = speculativeAccept([p, p], [q], [0], rng, new Float64Array(3));
      expect(out.accepted).toBe(0);
      expect([1, 2]).toContain(out.token);
    }
    expect(Array.from(residualDistribution(p, q, new Float64Array(3)))).toEqual([0, 0.3 / 0.8, 0.5 / 0.8]);
  });

  it("accepts a draft token with q = 0 when the target allows it (a greedy draft)", () => {
    const out = speculativeAccept([P, P], [Q], [5], new Xoshiro128(5), new Float64Array(6));
    expect(out.accepted).toBe(1);
  });

  it("residual falls back to p when p <= q everywhere", () => {
    expect(Array.from(residualDistribution(P, P, new Float64Array(6)))).toEqual(Array.from(P));
  });

  it("checks its arguments", () => {
    const rng = new Xoshiro128(6);
    expect(() => speculativeAccept([P], [Q], [1], rng, new Float64Array(6))).toThrow(InvalidArgumentError);
    expect(() => speculativeAccept([P, P], [Q], [6], rng, new Float64Array(6))).toThrow(/draft token 0 = 6/);
    expect(() => drawFrom([0, 0], rng)).toThrow(/summing to 0/);
  });
});

describe("speculativeAcceptGreedy", () => {
  it("accepts while the draft matches the target's argmax", () => {
    expect(speculativeAcceptGreedy([5, 6, 7, 8], [5, 6, 9])).toEqual({ accepted: 2, token: 7 });
    expect(speculativeAcceptGreedy([5, 6, 7, 8], [5, 6, 7])).toEqual({ accepted: 3, token: 8 });
    expect(speculativeAcceptGreedy([4, 6], [5])).toEqual({ accepted: 0, token: 4 });
    expect(speculativeAcceptGreedy([4], [])).toEqual({ accepted: 0, token: 4 });
    expect(() => speculativeAcceptGreedy([4], [1])).toThrow(InvalidArgumentError);
  });
});

describe("adaptive draft length (upstream speculative_sample.py)", () => {
  it("starts at 4; +2 after a fully accepted round, else max(1, k - 1)", () => {
    expect(DRAFT_K_START).toBe(4);
    expect(nextDraftK(4, true)).toBe(6);
    expect(nextDraftK(4, false)).toBe(3);
    expect(nextDraftK(1, false)).toBe(1);
    let k = DRAFT_K_START;
    for (const all of [true, true, false, false, false, false, false, false, false]) k = nextDraftK(k, all);
    expect(k).toBe(1);
  });
});
