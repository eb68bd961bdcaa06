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
 * Nothing here allocates per call beyond a few small objects: every buffer is sized for the
 * vocabulary once. Filters that need the best few tokens in order (top-k, top-p, typical-p)
 * pick them with a bounded heap in one pass, where most tokens cost one comparison; a top-p /
 * typical-p set wider than that pick is found by bucketing (see smallestPrefix). Nothing ever
 * sorts the whole vocabulary.
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

/** How many best tokens top-p / typical-p pick with the heap before falling back to buckets. */
const FIRST_PICK = 64;
/**
 * Buckets for wide nuclei: scores within BUCKETS / BUCKETS_PER_UNIT = 64 of the best get
 * quarter-unit buckets (a unit is a logit for top-p, a nat for typical-p); everything further
 * shares the last one.
 */
const BUCKETS = 256;
const BUCKETS_PER_UNIT = 4;

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
  /** Probability mass per bucket (smallestPrefix). */
  private readonly mass = new Float64Array(BUCKETS + 1);
  /** Bounded heap of ids, then the picked ids in order. */
  private readonly heap: Int32Array;
  private readonly pick: Int32Array;
  /** Epoch stamps, so penalties find each distinct id once without clearing a V-sized array. */
  private readonly seen: Uint32Array;
  private readonly counted: Uint32Array;
  private readonly counts: Int32Array;
  private readonly distinct: Int32Array;
  private epoch = 0;
  /** Whether x has been scanned for NaN and +Infinity since load. */
  private checked = false;
  /** Set by pickTop: the best score among the survivors it left out. */
  private outMax = -Infinity;

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

  /**
   * Starts a step from the model's logits. They are copied natively; the check for NaN and
   * +Infinity rides along the first pass over the whole vocabulary that the chain makes anyway
   * (max, argmax or the top-k pick), instead of costing a pass of its own.
   */
  load(logits: ArrayLike<number>): void {
    if (logits.length !== this.vocabSize) {
      throw new InvalidArgumentError(`logits have ${logits.length} entries, the sampler was made for a vocabulary of ${this.vocabSize}`);
    }
    this.x.set(logits);
    this.checked = false;
    this.all = true;
    this.sorted = false;
    this.n = 0;
  }

  /** Throws for the NaN or +Infinity at x[i]. */
  private fail(i: number): never {
    throw new SamplingError(`logits[${i}] is ${this.x[i] !== this.x[i] ? "NaN" : "+Infinity"}`);
  }

  /** After a full pass that met no NaN: reports a +Infinity it may have met, else marks x checked. */
  private passed(m: number): void {
    if (m === Infinity) this.fail(this.x.indexOf(Infinity));
    this.checked = true;
  }

  /** How many tokens survive. */
  count(): number {
    return this.all ? this.vocabSize : this.n;
  }

  /** max x over the survivors; -Infinity when every survivor is banned. */
  max(): number {
    const { x } = this;
    let m = -Infinity;
    if (this.all) {
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        if (v > m) m = v;
        else if (v !== v) this.fail(i);
      }
      this.passed(m);
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
      this.keepAtLeast(x, m, 0);
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
    if (this.outMax !== kth) {
      this.commitPick(k);
      return;
    }
    // Tokens tied with the k-th were left out: rare, but HF keeps them. Count, then pick again.
    const { x } = this;
    let atLeast = 0;
    if (this.all) {
      for (let i = 0; i < x.length; i++) if (x[i] >= kth) atLeast++;
    } else {
      for (let j = 0; j < this.n; j++) if (x[this.ids[j]] >= kth) atLeast++;
    }
    this.pickTop(this.x, atLeast);
    this.commitPick(atLeast);
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
    // Z and the bucket masses in one pass; the buckets are only used for a wide nucleus.
    const z = this.bucketMasses(this.x, m, m);
    this.smallestPrefix(this.x, m, m, p * z, false, true);
  }

  /**
   * HF MinPLogitsWarper: drop tokens with probability < minP * (the top probability), i.e.
   * with s - max < ln(minP). minP <= 0: nothing to do.
   */
  minP(minP: number): void {
    if (minP <= 0) return;
    const m = this.max();
    if (m === -Infinity) return;
    this.keepAtLeast(this.x, Math.log(minP), m);
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
    const { x, key, ids } = this;
    const count = this.count();
    const all = this.all;
    const logZ = m + Math.log(this.sumExp(m));
    let h = 0;
    for (let j = 0; j < count; j++) {
      const lp = x[all ? j : ids[j]] - logZ;
      if (lp > -Infinity) h -= Math.exp(lp) * lp;
    }
    for (let j = 0; j < count; j++) {
      const id = all ? j : ids[j];
      const lp = x[id] - logZ;
      // Negated, so that more typical is larger, as smallestPrefix wants.
      key[id] = lp > -Infinity ? -Math.abs(-lp - h) : -Infinity;
    }
    this.smallestPrefix(key, 0, logZ, mass, true, false);
  }

  // ---- the last step -------------------------------------------------------------------------

  /** argmax of x over the survivors, lowest id on ties. */
  argmax(): number {
    const { x, ids } = this;
    let best = -1;
    let m = -Infinity;
    if (this.all) {
      // Ascending ids: a strict > keeps the lowest id of a tie.
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        if (v > m) {
          m = v;
          best = i;
        } else if (v !== v) {
          this.fail(i);
        }
      }
      this.passed(m);
    } else {
      for (let j = 0; j < this.n; j++) {
        const id = ids[j];
        const v = x[id];
        if (v > m || (v === m && v > -Infinity && id < best)) {
          m = v;
          best = id;
        }
      }
    }
    if (best < 0) throw new SamplingError("every token was ruled out (all logits are -Infinity after penalties and bias)");
    return best;
  }

  /**
   * Draws an id from softmax(x) over the survivors, walking them in their order. The
   * exponentials are kept in `key` so each is computed once.
   */
  draw(rng: Rng): number {
    const m = this.max();
    if (m === -Infinity) throw new SamplingError("every token was ruled out (all logits are -Infinity after processing)");
    const { x, ids, key: w } = this;
    const count = this.count();
    const all = this.all;
    let z = 0;
    for (let j = 0; j < count; j++) {
      const e = Math.exp(x[all ? j : ids[j]] - m);
      w[j] = e;
      z += e;
    }
    const target = rng.nextFloat() * z;
    let cum = 0;
    let last = -1;
    for (let j = 0; j < count; j++) {
      if (w[j] === 0) continue;
      cum += w[j];
      last = j;
      if (cum > target) break;
    }
    // last is only short of the target when the running sum rounds below z: then the last
    // token with any weight.
    return all ? last : ids[last];
  }

  /** Writes the survivors' logits into a dense vector, -Infinity elsewhere. */
  writeLogits(out: Float32Array | Float64Array): void {
    this.checkOut(out);
    if (this.all) {
      if (!this.checked) this.max();
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

  /**
   * Sums exp(x - shift) over the survivors into `mass`, bucketed by (top - score) in
   * 1 / BUCKETS_PER_UNIT steps, the last bucket taking everything further; returns the total.
   */
  private bucketMasses(score: Float64Array, top: number, shift: number): number {
    const { x, ids, mass } = this;
    const all = this.all;
    const count = this.count();
    mass.fill(0);
    let z = 0;
    for (let j = 0; j < count; j++) {
      const id = all ? j : ids[j];
      const d = (top - score[id]) * BUCKETS_PER_UNIT;
      const e = Math.exp(x[id] - shift);
      mass[d < BUCKETS ? d | 0 : BUCKETS] += e;
      z += e;
    }
    return z;
  }

  /**
   * Shrinks the survivors to the shortest prefix, in order of `score` descending (ties: lower
   * id first), whose weights exp(x - shift) sum to at least `target`; with `keepTies`, also
   * every survivor scoring the same as the last one of that prefix. `top` bounds the scores
   * from above; `massesReady`: bucketMasses(score, top, shift) has already run.
   *
   * Usually the prefix lies within the FIRST_PICK best, found with the bounded heap. When it
   * does not (a flat distribution), the survivors are bucketed by how far their score lies below
   * `top`: whole buckets are in or out by their summed weight, and only the bucket where the
   * sum crosses `target` is sorted. Nothing sorts the whole vocabulary.
   */
  private smallestPrefix(score: Float64Array, top: number, shift: number, target: number, keepTies: boolean, massesReady: boolean): void {
    const { x, ids } = this;
    const count = this.count();
    const inOrder = this.sorted && score === x;
    const size = inOrder ? count : Math.min(count, FIRST_PICK);
    if (!inOrder) this.pickTop(score, size);
    const order = inOrder ? ids : this.pick;
    let cum = 0;
    for (let j = 0; j < size; j++) {
      cum += Math.exp(x[order[j]] - shift);
      if (cum >= target) {
        if (keepTies) this.keepAtLeast(score, score[order[j]], 0);
        else this.commitPrefix(order, j + 1, score === x);
        return;
      }
    }
    // Everything seen and the sum still a hair under target (rounding, target near 1): keep all.
    if (size === count) return;

    if (!massesReady) this.bucketMasses(score, top, shift);
    const { mass } = this;
    const all = this.all;
    cum = 0;
    let cut = 0;
    while (cut <= BUCKETS && cum + mass[cut] < target) cum += mass[cut++];
    if (cut > BUCKETS) return;
    // Buckets before the cut are in; the cut bucket's survivors go to `pick` to be sorted.
    let k = 0;
    let edge = 0;
    for (let j = 0; j < count; j++) {
      const id = all ? j : ids[j];
      const d = (top - score[id]) * BUCKETS_PER_UNIT;
      const b = d < BUCKETS ? d | 0 : BUCKETS;
      if (b < cut) ids[k++] = id; // k <= j: compacting ids in place is safe
      else if (b === cut) this.pick[edge++] = id;
    }
    const edgeIds = this.pick.subarray(0, edge).sort((a, b) => score[b] - score[a] || a - b);
    let j = 0;
    while (j < edge) {
      const id = edgeIds[j++];
      ids[k++] = id;
      cum += Math.exp(x[id] - shift);
      if (cum >= target) break;
    }
    if (keepTies) {
      const limit = score[ids[k - 1]];
      while (j < edge && score[edgeIds[j]] === limit) ids[k++] = edgeIds[j++];
    }
    this.n = k;
    this.all = false;
    this.sorted = false;
  }

  /** Keeps the survivors with score[id] - offset >= limit, in their current order. */
  private keepAtLeast(score: Float64Array, limit: number, offset: number): void {
    const { ids } = this;
    let k = 0;
    if (this.all) {
      for (let i = 0; i < score.length; i++) if (score[i] - offset >= limit) ids[k++] = i;
      this.all = false;
      this.sorted = false;
    } else {
      for (let j = 0; j < this.n; j++) {
        const id = ids[j];
        if (score[id] - offset >= limit) ids[k++] = id;
      }
    }
    this.n = k;
  }

  /** Makes order[0..k) the survivors; `byX`: in order of x descending. */
  private commitPrefix(order: Int32Array, k: number, byX: boolean): void {
    if (order !== this.ids) this.ids.set(order.subarray(0, k));
    this.n = k;
    this.all = false;
    this.sorted = byX;
  }

  private commitPick(k: number): void {
    this.commitPrefix(this.pick, k, true);
  }

  /**
   * Writes into pick[0..m) the m survivors with the largest score (ties: lower id first),
   * in that order; returns m (capped at the survivor count). A min-heap of the m best so far
   * sits at the front of `heap`, its root the worst of them; most candidates lose to the root
   * in one comparison. Also sets `outMax`, the best score left out of the pick (-Infinity when
   * none was), which top-k needs to see ties with its k-th token.
   */
  private pickTop(score: Float64Array, m: number): number {
    const count = this.count();
    if (m > count) m = count;
    this.outMax = -Infinity;
    if (m <= 0) return 0;
    const { heap, ids } = this;
    const all = this.all;
    let size = 0;
    let rootId = -1;
    // -Infinity while the heap fills, so that every candidate takes the slow path.
    let rootScore = -Infinity;
    let outMax = -Infinity;
    const check = all && !this.checked && score === this.x;
    for (let j = 0; j < count; j++) {
      const id = all ? j : ids[j];
      const s = score[id];
      // The fast path: worse than the worst kept. NaN and +Infinity never take it.
      if (s < rootScore) continue;
      if (check && !(s < Infinity)) this.fail(id);
      if (size < m) {
        siftUp(heap, score, size++, id);
        if (size === m) {
          rootId = heap[0];
          rootScore = score[rootId];
        }
      } else if (s === rootScore && id > rootId) {
        // Left out with the root's score: it may tie the final k-th.
        outMax = s;
      } else {
        outMax = rootScore;
        heap[0] = id;
        siftDown(heap, score, size);
        rootId = heap[0];
        rootScore = score[rootId];
      }
    }
    // Pop the worst first, filling pick from the back: pick ends up best-first.
    for (let k = size - 1; k >= 0; k--) {
      this.pick[k] = heap[0];
      heap[0] = heap[k];
      siftDown(heap, score, k);
    }
    this.outMax = outMax;
    if (check) this.checked = true;
    return m;
  }
}

/** "a is worse than b": lower score, or equal score and higher id. */
function worse(score: Float64Array, a: number, b: number): boolean {
  return score[a] < score[b] || (score[a] === score[b] && a > b);
}

/** Puts `id` into the min-heap heap[0..size] (size entries before), worst at the root. */
function siftUp(heap: Int32Array, score: Float64Array, size: number, id: number): void {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!worse(score, id, heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = id;
}

/** Moves heap[0] down to its place in the min-heap heap[0..size). */
function siftDown(heap: Int32Array, score: Float64Array, size: number): void {
  const item = heap[0];
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && worse(score, heap[r], heap[l]) ? r : l;
    if (!worse(score, heap[c], item)) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = item;
}
