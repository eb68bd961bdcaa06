/**
 * The trainer's random numbers: xoshiro128** (Blackman & Vigna) seeded by SplitMix32, with a
 * state that can be saved in a checkpoint and restored, so a resumed run draws exactly the
 * numbers the uninterrupted run would have drawn (data order, LoRA initialisation).
 *
 * Only 32-bit integer arithmetic, so every JavaScript engine produces the same bits.
 */
import { InvalidArgumentError } from "../errors.js";

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** SplitMix32 (Vigna's 32-bit variant of SplitMix64): spreads a small seed over 128 bits. */
function splitMix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [(z ^ (z >>> 16)) >>> 0, next];
}

export class TrainRng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError(`seed ${seed} must be a non-negative integer`);
    // Fold a 53-bit seed into the 32-bit SplitMix state without losing the high bits.
    let st = (seed >>> 0) ^ Math.floor(seed / 4294967296);
    for (let i = 0; i < 4; i++) [this.s[i], st] = splitMix32(st);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** The next uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Standard normal (Box-Muller; one of the pair is dropped so the state stays four words). */
  nextNormal(): number {
    const u1 = 1 - this.nextFloat();
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [0, n). */
  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n);
  }

  /** Fisher-Yates, in place. */
  shuffle(a: Int32Array | number[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  /** The four state words, for a checkpoint. */
  getState(): number[] {
    return Array.from(this.s);
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new InvalidArgumentError(`RNG state must be four uint32 words, got ${JSON.stringify(state)}`);
    }
    this.s.set(state);
  }
}
