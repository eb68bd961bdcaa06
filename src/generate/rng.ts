/**
 * The seeded pseudo-random generator behind sampling: xoshiro128** 1.1 (Blackman & Vigna,
 * https://prng.di.unimi.it/xoshiro128starstar.c), seeded by SplitMix64
 * (https://prng.di.unimi.it/splitmix64.c) as its authors recommend.
 *
 * Why this one: it needs only 32-bit integer arithmetic (Math.imul, shifts), so every
 * JavaScript engine (V8 in Node and Deno, JavaScriptCore in Bun, SpiderMonkey) produces the
 * same bits for the same seed; it is small, fast, and passes BigCrush. SplitMix64 runs once per
 * seed, in BigInt, so a 64-bit seed is honoured exactly.
 *
 * State: four uint32 words s0..s3, never all zero.
 */
import { InvalidArgumentError } from "../errors.js";

/** Where sampling code draws its uniform numbers from. */
export interface Rng {
  /** A float in [0, 1) with 53 random bits. */
  nextFloat(): number;
}

const MASK64 = (1n << 64n) - 1n;

/** One SplitMix64 step: returns [output, nextState]. */
function splitMix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [z ^ (z >> 31n), next];
}

/** Checks a seed and widens it to the uint64 SplitMix64 starts from. */
export function seedToBigInt(seed: number | bigint): bigint {
  if (typeof seed === "bigint") {
    if (seed < 0n || seed > MASK64) throw new InvalidArgumentError(`seed ${seed} is outside 0..2^64-1`);
    return seed;
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new InvalidArgumentError(`seed ${seed} must be a non-negative safe integer or a bigint`);
  }
  return BigInt(seed);
}

/** A seed from the platform's crypto source, for callers who give none. */
export function randomSeed(): number {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  // 53 bits, so the seed round-trips through JSON and Number.
  return (words[0] & 0x1fffff) * 4294967296 + words[1];
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

export class Xoshiro128 implements Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number | bigint) {
    this.seed(seed);
  }

  /** Restarts the sequence from `seed`. */
  seed(seed: number | bigint): void {
    const [a, st] = splitMix64(seedToBigInt(seed));
    const [b] = splitMix64(st);
    this.s0 = Number(a & 0xffffffffn);
    this.s1 = Number(a >> 32n);
    this.s2 = Number(b & 0xffffffffn);
    this.s3 = Number(b >> 32n);
    // SplitMix64 never gives two zero outputs in a row, but keep the invariant explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Upper 27 + 26 bits of two draws: the usual 53-bit double construction (as genrand_res53). */
  nextFloat(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}
