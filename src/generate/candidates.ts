/**
 * The working state of one sampling step, and the processors that rewrite or shrink it.
 *
 *   x       Float64Array[V]  working logits: the model's logits, then penalised, biased and
 *                            divided by the temperature, in whatever order the chain says
 *   all     boolean          no filter has run yet: every id 0..V-1 survives
 *   ids     Int32Array[V]    when !all, the surviving ids are ids[0..n)
 *   sorted  boolean          ids[0..n) are in order of x descending (ties: lower id first)
 *
 * Filters only ever read x at surviving ids, so penalties and biases may write x at any id at
 * any point of the chain, and a removed id stays removed (as in HF, where -inf + bias = -inf).
 * Nothing here allocates per call: every buffer is sized for the vocabulary once. Filters that
 * need the best few tokens in order (top-k, top-p, typical-p) pick them with a bounded heap over
 * one pass (O(V log m)), and only widen the pick when the first m were not enough; nothing sorts
 * the whole vocabulary unless a filter really needs most of it.
 *
 * Semantics follow Hugging Face transformers' logits processors (generation/logits_process.py):
 * RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
 * TopPLogitsWarper, MinPLogitsWarper, TypicalLogitsWarper, all with min_tokens_to_keep = 1.
 * Their sums run in float64 here, HF's in float32; decisions differ only when a cumulative
 * probability lands within float32 rounding of its threshold.
 */
import { InvalidArgumentError } from "../errors.js";
import { SamplingError } from "./errors.js";
import type { Rng } from "./rng.js";

/** How many best tokens top-p / typical-p pick first; multiplied by WIDEN when not enough. */
const FIRST_PICK = 64;
const WIDEN = 8;

export class Candidates {
  /** Working logits, indexed by token id. */
  readonly x: Float64Array;
  /** Surviving ids, ids[0..n), when !all. */
  readonly ids: Int32Array;
  n = 0;
  all = true;
  sorted = false;

  /** Per-id sort keys for typical-p (negated distance from the entropy). */
  private readonly key: Float64Array;
  /** Bounded heap of ids, then the picked ids in order. */
  private readonly heap: Int32Array;
  private readonly pick: Int32Array;
  /** Epoch stamps, so penalties find each distinct id once without clearing a V-sized array. */
  private readonly seen: Uint32Array;
  private readonly counted: Uint32Array;
  private readonly counts: Int32Array;
  private readonly distinct: Int32Array;
  private epoch = 0;

  constructor(readonly vocabSize: number) {
    if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) {
      throw new InvalidArgumentError(`vocabulary size ${vocabSize} must be a positive integer`);
    }
    this.x = new Float64Array(vocabSize);
    this.ids = new Int32Array(vocabSize);
    this.key = new Float64Array(vocabSize);
    this.heap = new Int32Array(vocabSize);
    this.pick = new Int32Array(vocabSize);
    this.seen = new Uint32Array(vocabSize);
    this.counted = new Uint32Array(vocabSize);
    this.counts = new Int32Array(vocabSize);
    this.distinct = new Int32Array(vocabSize);
  }

  /** Starts a step from the model's logits: copies them and rejects NaN and +Infinity. */
  load(logits: ArrayLike<number>): void {
    if (logits.length !== this.vocabSize) {
      throw new InvalidArgumentError(`logits have ${logits.length} entries, the sampler was made for a vocabulary of ${this.vocabSize}`);
    }
    const x = this.x;
    if (logits instanceof Float32Array || logits instanceof Float64Array) x.set(logits);
    else for (let i = 0; i < x.length; i++) x[i] = logits[i];
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      // One comparison per entry in the common case: NaN and +Infinity both fail `v < Infinity`.
      if (!(v < Infinity)) {
        if (v !== v) throw new SamplingError(`logits[${i}] is NaN`);
        throw new SamplingError(`logits[${i}] is +Infinity`);
      }
    }
    this.all = true;
    this.sorted = false;
    this.n = 0;
  }

  /** How many tokens survive. */
  count(): number {
    return this.all ? this.vocabSize : this.n;
  }

  /** The id of the i-th survivor. */
  id(i: number): number {
    return this.all ? i : this.ids[i];
  }

  /** max x over the survivors; -Infinity when every survivor is banned. */
  max(): number {
    const { x } = this;
    let m = -Infinity;
    if (this.all) {
      for (let i = 0; i < x.length; i++) if (x[i] > m) m = x[i];
    } else {
      for (let j = 0; j < this.n; j++) {
        const v = x[this.ids[j]];
        if (v > m) m = v;
      }
    }
    return m;
  }

  /** Σ exp(x - m) over the survivors. */
  sumExp(m: number): number {
    const { x } = this;
    let z = 0;
    if (this.all) {
      for (let i = 0; i < x.length; i++) z += Math.exp(x[i] - m);
    } else {
      for (let j = 0; j < this.n; j++) z += Math.exp(x[this.ids[j]] - m);
    }
    return z;
  }

  // ---- processors that rewrite x -------------------------------------------------------------

  /**
   * HF repetition penalty: every distinct id among the last `lastN` tokens of `context`
   * (prompt included), once: s < 0 ? s * p : s / p.
   * OpenAI / llama.cpp frequency and presence penalties: s -= c * freq + (c > 0) * presence,
   * where c counts the id among the tokens after the first `promptLength` (the generated ones;
   * llama.cpp counts its whole penalty window instead, which promptLength = 0 gives), within
   * the same last-`lastN` window.
   */
  applyPenalties(
    context: ArrayLike<number>,
    promptLength: number,
    lastN: number,
    repetition: number,
    frequency: number,
    presence: number,
  ): void {
    const { x, vocabSize } = this;
    const end = context.length;
    const start = lastN >= end ? 0 : end - lastN;
    for (let j = start; j < end; j++) {
      const id = context[j];
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
        throw new InvalidArgumentError(`context[${j}] = ${id} is not a token id below ${vocabSize}`);
      }
    }
    if (repetition !== 1) {
      const stamp = this.nextEpoch();
      for (let j = start; j < end; j++) {
        const id = context[j];
        if (this.seen[id] === stamp) continue;
        this.seen[id] = stamp;
        const s = x[id];
        x[id] = s < 0 ? s * repetition : s / repetition;
      }
    }
    if (frequency !== 0 || presence !== 0) {
      const stamp = this.nextEpoch();
      let k = 0;
      for (let j = Math.max(start, promptLength); j < end; j++) {
        const id = context[j];
        if (this.counted[id] !== stamp) {
          this.counted[id] = stamp;
          this.counts[id] = 0;
          this.distinct[k++] = id;
        }
        this.counts[id]++;
      }
      for (let i = 0; i < k; i++) {
        const id = this.distinct[i];
        x[id] -= this.counts[id] * frequency + presence;
      }
    }
  }

  private nextEpoch(): number {
    this.epoch = (this.epoch + 1) >>> 0;
    if (this.epoch === 0) {
      // Wrapped after 2^32 calls: clear the stamps once so no stale stamp can match.
      this.seen.fill(0);
      this.counted.fill(0);
      this.epoch = 1;
    }
    return this.epoch;
  }

  /** Adds bias[id] to x[id]; a -Infinity bias bans the token. */
  applyLogitBias(ids: Int32Array, values: Float64Array): void {
    for (let i = 0; i < ids.length; i++) this.x[ids[i]] += values[i];
  }

  /**
   * HF TemperatureLogitsWarper: s / T, T > 0. When T is so small that the largest logit would
   * overflow to ±Infinity, only the tokens at the maximum are kept (at equal odds, logit 0):
   * the limit of softmax(s / T) as T -> 0. Lesser logits may still overflow to -Infinity, which
   * is their limit too.
   */
  applyTemperature(t: number): void {
    const { x } = this;
    const m = this.max();
    if (m === -Infinity) return;
    if (!Number.isFinite(m / t)) {
      this.keepWhere((v) => v === m);
      for (let j = 0; j < this.n; j++) x[this.ids[j]] = 0;
      return;
    }
    if (this.all) {
      for (let i = 0; i < x.length; i++) x[i] /= t;
    } else {
      for (let j = 0; j < this.n; j++) x[this.ids[j]] /= t;
    }
  }

  // ---- filters -------------------------------------------------------------------------------

  /**
   * HF TopKLogitsWarper: keep every token whose logit is >= the k-th largest (so ties with the
   * k-th all survive). k <= 0 or k >= the survivors: nothing to do.
   */
  topK(k: number): void {
    const count = this.count();
    if (k <= 0 || k >= count) return;
    if (this.sorted) {
      this.n = this.tieEnd(k);
      return;
    }
    this.pickTop(this.x, k);
    const kth = this.x[this.pick[k - 1]];
    // Ties with the k-th outside the pick: rare, but HF keeps them; count before rebuilding.
    let atLeast = 0;
    const { x } = this;
    if (this.all) {
      for (let i = 0; i < x.length; i++) if (x[i] >= kth) atLeast++;
    } else {
      for (let j = 0; j < this.n; j++) if (x[this.ids[j]] >= kth) atLeast++;
    }
    if (atLeast === k) {
      this.commitPick(k);
    } else {
      this.pickTop(this.x, atLeast);
      this.commitPick(atLeast);
    }
  }

  /** With ids sorted, the end of the run of logits equal to ids[k-1]'s. */
  private tieEnd(k: number): number {
    const { x, ids } = this;
    const kth = x[ids[k - 1]];
    let end = k;
    while (end < this.n && x[ids[end]] === kth) end++;
    return end;
  }

  /**
   * HF TopPLogitsWarper (nucleus): the smallest set of most probable tokens whose probability
   * sums to at least p, never fewer than one. p >= 1: nothing to do.
   */
  topP(p: number): void {
    if (p >= 1) return;
    const m = this.max();
    if (m === -Infinity) return;
    const target = p * this.sumExp(m);
    const { x } = this;
    const count = this.count();
    for (let size = Math.min(count, FIRST_PICK); ; size = Math.min(count, size * WIDEN)) {
      const order = this.sortedPrefix(size);
      let cum = 0;
      for (let j = 0; j < size; j++) {
        cum += Math.exp(x[order[j]] - m);
        if (cum >= target) {
          this.commitPrefix(order, j + 1);
          return;
        }
      }
      // Rounding can leave the full sum a hair under p * Z when p is close to 1: keep all.
      if (size === count) return;
    }
  }

  /**
   * HF MinPLogitsWarper: drop tokens with probability < minP * (the top probability), i.e.
   * with s - max < ln(minP). minP <= 0: nothing to do.
   */
  minP(minP: number): void {
    if (minP <= 0) return;
    const m = this.max();
    if (m === -Infinity) return;
    const lnP = Math.log(minP);
    this.keepWhere((v) => v - m >= lnP);
  }

  /**
   * HF TypicalLogitsWarper (locally typical sampling, Meister et al. 2022): order tokens by
   * |-log p_i - H| (H the entropy), take the shortest such prefix whose probability reaches
   * `mass`, and keep every token at most that far from H. mass >= 1: nothing to do.
   */
  typicalP(mass: number): void {
    if (mass >= 1) return;
    const m = this.max();
    if (m === -Infinity) return;
    const { x, key } = this;
    const count = this.count();
    const logZ = m + Math.log(this.sumExp(m));
    let h = 0;
    for (let j = 0; j < count; j++) {
      const lp = x[this.id(j)] - logZ;
      if (lp > -Infinity) h -= Math.exp(lp) * lp;
    }
    for (let j = 0; j < count; j++) {
      const id = this.id(j);
      const lp = x[id] - logZ;
      // Negated so that "more typical" is "larger", for the same top-m pick as the others.
      key[id] = lp > -Infinity ? -Math.abs(-lp - h) : -Infinity;
    }
    for (let size = Math.min(count, FIRST_PICK); ; size = Math.min(count, size * WIDEN)) {
      const got = this.pickTop(key, size);
      let cum = 0;
      let last = -1;
      for (let j = 0; j < got; j++) {
        cum += Math.exp(x[this.pick[j]] - logZ);
        if (cum >= mass) {
          last = j;
          break;
        }
      }
      if (last < 0 && size < count) continue;
      if (last < 0) last = count - 1;
      const limit = key[this.pick[last]];
      this.keepWhere((_, id) => key[id] >= limit);
      return;
    }
  }

  // ---- the last step -------------------------------------------------------------------------

  /** argmax of x over the survivors, lowest id on ties. */
  argmax(): number {
    const { x } = this;
    let best = -1;
    let m = -Infinity;
    for (let j = 0, count = this.count(); j < count; j++) {
      const id = this.id(j);
      const v = x[id];
      if (v > m || (v === m && best >= 0 && id < best)) {
        m = v;
        best = id;
      }
    }
    if (best < 0) throw new SamplingError("every token was ruled out (all logits are -Infinity after penalties and bias)");
    return best;
  }

  /** Draws an id from softmax(x) over the survivors, walking them in their order. */
  draw(rng: Rng): number {
    const m = this.max();
    if (m === -Infinity) throw new SamplingError("every token was ruled out (all logits are -Infinity after processing)");
    const { x } = this;
    const count = this.count();
    const target = rng.nextFloat() * this.sumExp(m);
    let cum = 0;
    let last = -1;
    for (let j = 0; j < count; j++) {
      const id = this.id(j);
      const w = Math.exp(x[id] - m);
      if (w === 0) continue;
      cum += w;
      last = id;
      if (cum > target) return id;
    }
    // Only reachable when the running sum rounds below the total: the last possible token.
    return last;
  }

  /** Writes the survivors' logits into a dense vector, -Infinity elsewhere. */
  writeLogits(out: Float32Array | Float64Array): void {
    this.checkOut(out);
    if (this.all) {
      out.set(this.x);
      return;
    }
    out.fill(-Infinity);
    for (let j = 0; j < this.n; j++) out[this.ids[j]] = this.x[this.ids[j]];
  }

  /** Writes softmax over the survivors into a dense vector, 0 elsewhere. */
  writeProbabilities(out: Float32Array | Float64Array): void {
    this.checkOut(out);
    const m = this.max();
    if (m === -Infinity) throw new SamplingError("every token was ruled out (all logits are -Infinity after processing)");
    const inv = 1 / this.sumExp(m);
    const { x } = this;
    if (this.all) {
      for (let i = 0; i < x.length; i++) out[i] = Math.exp(x[i] - m) * inv;
      return;
    }
    out.fill(0);
    for (let j = 0; j < this.n; j++) out[this.ids[j]] = Math.exp(x[this.ids[j]] - m) * inv;
  }

  private checkOut(out: Float32Array | Float64Array): void {
    if (out.length !== this.vocabSize) {
      throw new InvalidArgumentError(`output has ${out.length} entries, the vocabulary ${this.vocabSize}`);
    }
  }

  // ---- selection helpers ---------------------------------------------------------------------

  /** Keeps the survivors for which keep(x[id], id) holds, in their current order. */
  private keepWhere(keep: (v: number, id: number) => boolean): void {
    const { x, ids } = this;
    let k = 0;
    if (this.all) {
      for (let i = 0; i < x.length; i++) if (keep(x[i], i)) ids[k++] = i;
      this.all = false;
      this.sorted = false;
    } else {
      for (let j = 0; j < this.n; j++) {
        const id = ids[j];
        if (keep(x[id], id)) ids[k++] = id;
      }
    }
    this.n = k;
  }

  /**
   * The first `size` survivors in order of x descending: ids itself when already sorted,
   * otherwise picked into `pick`.
   */
  private sortedPrefix(size: number): Int32Array {
    if (this.sorted) return this.ids;
    this.pickTop(this.x, size);
    return this.pick;
  }

  /** Makes order[0..k) the survivors, known to be sorted. */
  private commitPrefix(order: Int32Array, k: number): void {
    if (order !== this.ids) this.ids.set(order.subarray(0, k));
    this.n = k;
    this.all = false;
    this.sorted = true;
  }

  private commitPick(k: number): void {
    this.commitPrefix(this.pick, k);
  }

  /**
   * Writes into pick[0..m) the m survivors with the largest score (ties: lower id first),
   * in that order; returns m (capped at the survivor count). A min-heap of the m best so far
   * is kept at the front of `heap`; most candidates lose to its root in one comparison.
   */
  private pickTop(score: Float64Array, m: number): number {
    const count = this.count();
    if (m > count) m = count;
    const heap = this.heap;
    // "a is worse than b": lower score, or equal score and higher id.
    const worse = (a: number, b: number): boolean => score[a] < score[b] || (score[a] === score[b] && a > b);
    const siftDown = (size: number): void => {
      let i = 0;
      const item = heap[0];
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && worse(heap[r], heap[l]) ? r : l;
        if (!worse(heap[c], item)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = item;
    };
    let size = 0;
    for (let j = 0; j < count; j++) {
      const id = this.all ? j : this.ids[j];
      if (size < m) {
        // Sift up.
        let i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (!worse(id, heap[parent])) break;
          heap[i] = heap[parent];
          i = parent;
        }
        heap[i] = id;
      } else if (m > 0) {
        const root = heap[0];
        const s = score[id];
        if (s > score[root] || (s === score[root] && id < root)) {
          heap[0] = id;
          siftDown(size);
        }
      }
    }
    // Pop the worst first, filling pick from the back: pick ends up best-first.
    for (let k = size - 1; k >= 0; k--) {
      this.pick[k] = heap[0];
      heap[0] = heap[k];
      siftDown(k);
    }
    return m;
  }
}
