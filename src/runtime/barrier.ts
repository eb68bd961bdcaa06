/**
 * A reusable thread barrier on Atomics in shared memory (a sense-counting central barrier).
 *
 *   Int32 words at `base` in a SharedArrayBuffer:  [0] arrivals   [1] generation   [2] abort
 *
 * The last thread to arrive resets the count and bumps the generation; the others spin on the
 * generation (a graph step's ops take microseconds, less than a futex sleep and wake-up) and only
 * then sleep in Atomics.wait. The spin budget adapts per thread: it doubles when spinning caught
 * the release and halves when the thread had to sleep anyway. On an idle machine threads spin and
 * hand off in well under a microsecond; on a machine where another process holds a core (the
 * partner thread is descheduled, so spinning only burns the time it needs) they soon sleep at
 * once. `abort` lets a failing thread release the others instead of leaving them waiting forever.
 */
export const BARRIER_WORDS = 4;

/** Most spins before sleeping (~20-50 us on current x86 cores); the adaptive budget's ceiling. */
export const DEFAULT_SPINS = 20_000;
/** The budget's floor, so that a thread can notice that spinning pays again. */
const MIN_SPINS = 256;

export class BarrierAborted extends Error {
  override name = "BarrierAborted";
}

export class Barrier {
  private readonly w: Int32Array;
  private budget: number;

  constructor(
    sab: SharedArrayBuffer,
    base: number,
    readonly parties: number,
    readonly spins = DEFAULT_SPINS,
  ) {
    this.w = new Int32Array(sab, base, BARRIER_WORDS);
    this.budget = Math.min(spins, 4096);
  }

  /** Block until all `parties` threads have called wait() for this generation. */
  wait(): void {
    const w = this.w;
    if (this.parties === 1) return;
    const gen = Atomics.load(w, 1);
    if (Atomics.add(w, 0, 1) === this.parties - 1) {
      Atomics.store(w, 0, 0);
      Atomics.add(w, 1, 1);
      Atomics.notify(w, 1);
      return;
    }
    for (let i = 0; i < this.budget; i++) {
      if (Atomics.load(w, 1) !== gen) {
        this.budget = Math.min(this.spins, 2 * this.budget);
        return;
      }
    }
    this.budget = Math.max(Math.min(MIN_SPINS, this.spins), this.budget >> 1);
    while (Atomics.load(w, 1) === gen) {
      if (Atomics.load(w, 2) !== 0) throw new BarrierAborted("another thread failed");
      Atomics.wait(w, 1, gen, 100);
    }
    if (Atomics.load(w, 2) !== 0) throw new BarrierAborted("another thread failed");
  }

  /** Release everyone waiting (after an error); they throw BarrierAborted. */
  abort(): void {
    Atomics.store(this.w, 2, 1);
    Atomics.add(this.w, 1, 1);
    Atomics.notify(this.w, 1);
  }

  /** Ready for the next step after an abort. */
  reset(): void {
    Atomics.store(this.w, 0, 0);
    Atomics.store(this.w, 2, 0);
  }
}
