/**
 * A compiled grammar and the pushdown matcher that follows text through it, the way
 * llama.cpp's llama_grammar does.
 *
 * Compiling flattens every rule into alternatives of symbols in one array:
 *
 *   symbols: | c0 | ref 5 | END | c1 | END | ...     (each alternative ends with END)
 *            ^ rule 0, alt 0     ^ rule 0, alt 1
 *
 * Groups and repetitions become rules of their own (x* ::= x x* | ε). A parse state is a
 * stack of positions in that array: the top is the next symbol to match, the rest are where
 * to return when a rule's alternative ends. Stacks are kept "normalized" (the top is a
 * character class, or the stack is empty: the grammar may end here) and interned as linked
 * nodes, so one id names one stack. An ambiguous grammar is followed through every parse at
 * once: the state is a set of stacks, also interned, and moves on one code point at a time.
 */
import { GrammarError } from "./errors.js";
import { parseGbnf, type GbnfExpr, type GbnfRule } from "./gbnf.js";

const END = 0;
const CHAR = 1;
const REF = 2;

/** Most distinct stacks one grammar state may hold (an exploding ambiguous grammar stops here). */
export const MAX_STACKS = 4096;
/** Interned stacks and transitions kept per matcher before its caches are dropped. */
const MAX_CACHE = 200_000;

export class Grammar {
  /** Symbol kinds (END / CHAR / REF) and, for REF, the rule id; for CHAR, an index into classes. */
  readonly kind: Uint8Array;
  readonly arg: Int32Array;
  /** Character classes: sorted inclusive ranges, negated or not. */
  readonly classes: Array<{ ranges: Int32Array; negated: boolean }>;
  /** Start position of each alternative of each rule. */
  readonly alts: number[][];
  readonly ruleNames: string[];
  readonly root: number;

  private constructor(kind: number[], arg: number[], classes: Array<{ ranges: Int32Array; negated: boolean }>, alts: number[][], ruleNames: string[], root: number) {
    this.kind = Uint8Array.from(kind);
    this.arg = Int32Array.from(arg);
    this.classes = classes;
    this.alts = alts;
    this.ruleNames = ruleNames;
    this.root = root;
  }

  /** Parses and compiles GBNF text; `root` names the start rule. */
  static parse(text: string, root = "root"): Grammar {
    return Grammar.compile(parseGbnf(text), root);
  }

  static compile(rules: readonly GbnfRule[], rootName = "root"): Grammar {
    const ids = new Map<string, number>();
    for (const r of rules) {
      if (ids.has(r.name)) throw new GrammarError(`rule ${JSON.stringify(r.name)} is defined twice (again on line ${r.line})`);
      ids.set(r.name, ids.size);
    }
    const root = ids.get(rootName);
    if (root === undefined) throw new GrammarError(`the grammar has no ${JSON.stringify(rootName)} rule`);
    // Rule bodies as alternatives of atoms; new rules are appended for groups and repetitions.
    type Atom = { c: number } | { r: number };
    const bodies: Atom[][][] = [];
    const names = rules.map((r) => r.name);
    const classes: Array<{ ranges: Int32Array; negated: boolean }> = [];
    const newRule = (name: string): number => {
      names.push(name);
      bodies.push([]);
      return names.length - 1;
    };
    const atoms = (e: GbnfExpr, owner: string, out: Atom[]): void => {
      switch (e.type) {
        case "char":
          classes.push(normalizeClass(e.ranges, e.negated));
          out.push({ c: classes.length - 1 });
          return;
        case "ref": {
          const id = ids.get(e.name);
          if (id === undefined) throw new GrammarError(`rule ${JSON.stringify(owner)} refers to undefined rule ${JSON.stringify(e.name)}`, e.line, e.column);
          out.push({ r: id });
          return;
        }
        case "seq":
          for (const item of e.items) atoms(item, owner, out);
          return;
        case "alt": {
          const id = newRule(`${owner}_${names.length}`);
          bodies[id] = e.alts.map((a) => {
            const seq: Atom[] = [];
            atoms(a, owner, seq);
            return seq;
          });
          out.push({ r: id });
          return;
        }
        case "repeat": {
          const item: Atom[] = [];
          atoms(e.item, owner, item);
          for (let i = 0; i < e.min; i++) out.push(...item);
          if (e.max === Infinity) {
            const id = newRule(`${owner}_${names.length}`);
            bodies[id] = [[...item, { r: id }], []];
            out.push({ r: id });
          } else if (e.max > e.min) {
            // opt_k ::= item opt_{k-1} | ε, nested (max - min) deep.
            let inner = -1;
            for (let k = 0; k < e.max - e.min; k++) {
              const id = newRule(`${owner}_${names.length}`);
              bodies[id] = [inner < 0 ? [...item] : [...item, { r: inner }], []];
              inner = id;
            }
            out.push({ r: inner });
          }
          return;
        }
      }
    };
    for (const r of rules) bodies.push([]);
    rules.forEach((r, i) => {
      const alts = r.body.type === "alt" ? r.body.alts : [r.body];
      bodies[i] = alts.map((a) => {
        const seq: Atom[] = [];
        atoms(a, r.name, seq);
        return seq;
      });
    });
    checkLeftRecursion(bodies, names);

    const kind: number[] = [];
    const arg: number[] = [];
    const altStarts: number[][] = bodies.map((alts) =>
      alts.map((seq) => {
        const start = kind.length;
        for (const a of seq) {
          if ("c" in a) {
            kind.push(CHAR);
            arg.push(a.c);
          } else {
            kind.push(REF);
            arg.push(a.r);
          }
        }
        kind.push(END);
        arg.push(0);
        return start;
      }),
    );
    return new Grammar(kind, arg, classes, altStarts, names, root);
  }

  /** Whether the character class at symbol `pos` holds code point cp. */
  matches(pos: number, cp: number): boolean {
    const cls = this.classes[this.arg[pos]!]!;
    const r = cls.ranges;
    let inside = false;
    for (let i = 0; i < r.length; i += 2) {
      if (cp >= r[i]! && cp <= r[i + 1]!) {
        inside = true;
        break;
      }
    }
    return inside !== cls.negated;
  }

  /** Whether the class at `pos` holds some code point in [lo, hi] (a partly read UTF-8 character). */
  mayMatch(pos: number, lo: number, hi: number): boolean {
    const cls = this.classes[this.arg[pos]!]!;
    const r = cls.ranges;
    if (!cls.negated) {
      for (let i = 0; i < r.length; i += 2) if (r[i]! <= hi && r[i + 1]! >= lo) return true;
      return false;
    }
    // Ranges are sorted and merged: [lo, hi] is excluded only if one range covers it.
    for (let i = 0; i < r.length; i += 2) if (r[i]! <= lo && r[i + 1]! >= hi) return false;
    return true;
  }

  /** A fresh matcher at the start of the root rule. */
  matcher(options: { maxCache?: number } = {}): GrammarMatcher {
    return new GrammarMatcher(this, options);
  }
}

function normalizeClass(ranges: readonly number[], negated: boolean): { ranges: Int32Array; negated: boolean } {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [lo, hi] of pairs) {
    const n = merged.length;
    if (n > 0 && lo <= merged[n - 1]! + 1) merged[n - 1] = Math.max(merged[n - 1]!, hi);
    else merged.push(lo, hi);
  }
  return { ranges: Int32Array.from(merged), negated };
}

/**
 * A rule that can reach itself without consuming a character would send the matcher into an
 * endless expansion (llama.cpp rejects these too).
 */
function checkLeftRecursion(bodies: Array<Array<Array<{ c: number } | { r: number }>>>, names: string[]): void {
  const nullable = new Array<boolean>(bodies.length).fill(false);
  for (let changed = true; changed; ) {
    changed = false;
    bodies.forEach((alts, i) => {
      if (!nullable[i] && alts.some((seq) => seq.every((a) => "r" in a && nullable[a.r]))) {
        nullable[i] = true;
        changed = true;
      }
    });
  }
  // Rules each rule can start with, without consuming anything first.
  const leftRefs = bodies.map((alts) => {
    const out = new Set<number>();
    for (const seq of alts) {
      for (const a of seq) {
        if ("c" in a) break;
        out.add(a.r);
        if (!nullable[a.r]) break;
      }
    }
    return out;
  });
  const state = new Uint8Array(bodies.length); // 0 new, 1 on the path, 2 done
  const visit = (i: number, path: number[]): void => {
    if (state[i] === 2) return;
    if (state[i] === 1) {
      const cycle = path.slice(path.indexOf(i)).concat(i).map((r) => names[r]);
      throw new GrammarError(`left recursion: ${cycle.join(" -> ")} (a rule reaches itself without matching a character)`);
    }
    state[i] = 1;
    path.push(i);
    for (const j of leftRefs[i]!) visit(j, path);
    path.pop();
    state[i] = 2;
  };
  for (let i = 0; i < bodies.length; i++) visit(i, []);
}

/**
 * Follows text through a grammar. States are interned sets of interned stacks, and each
 * (state, code point) transition is computed once: token masking walks thousands of
 * vocabulary prefixes that reach the same few states.
 */
export class GrammarMatcher {
  // Stack nodes: node 0 is the empty stack; node i > 0 is (pos[i], next[i]).
  private nodePos: number[] = [-1];
  private nodeNext: number[] = [0];
  private nodeIds = new Map<number, number>();
  private normalized = new Map<number, number[]>();
  // States: sorted, distinct stack ids.
  private states: number[][] = [];
  private stateIds = new Map<string, number>();
  private transitions = new Map<number, number>();
  /** The current state. */
  private current: number;
  /** A UTF-8 character begun but not finished by the bytes fed so far. */
  private partialValue = 0;
  private partialLeft = 0;
  /** Changes whenever state ids are renumbered (reset, compaction): masks cached by id expire. */
  epoch = 0;

  /** Interned stacks or transitions kept before the caches are rebuilt around the current state. */
  private readonly maxCache: number;

  constructor(
    readonly grammar: Grammar,
    options: { maxCache?: number } = {},
  ) {
    this.maxCache = options.maxCache ?? MAX_CACHE;
    this.current = this.initial();
  }

  private initial(): number {
    const stacks = new Set<number>();
    for (const start of this.grammar.alts[this.grammar.root]!) {
      for (const s of this.normalize(this.node(start, 0))) stacks.add(s);
    }
    return this.stateOf([...stacks]);
  }

  /** Start again at the beginning of the grammar. */
  reset(): void {
    this.dropCaches();
    this.current = this.initial();
    this.partialValue = 0;
    this.partialLeft = 0;
  }

  private dropCaches(): void {
    this.epoch++;
    this.nodePos = [-1];
    this.nodeNext = [0];
    this.nodeIds.clear();
    this.normalized.clear();
    this.states = [];
    this.stateIds.clear();
    this.transitions.clear();
  }

  private node(pos: number, next: number): number {
    const key = next * this.grammar.kind.length + pos;
    let id = this.nodeIds.get(key);
    if (id === undefined) {
      id = this.nodePos.length;
      this.nodePos.push(pos);
      this.nodeNext.push(next);
      this.nodeIds.set(key, id);
    }
    return id;
  }

  /** Expands a stack until its top is a character class (or it is empty): all the ways. */
  private normalize(id: number): number[] {
    const cached = this.normalized.get(id);
    if (cached) return cached;
    const g = this.grammar;
    const out: number[] = [];
    const seen = new Set<number>();
    const work = [id];
    while (work.length > 0) {
      const s = work.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      if (s === 0) {
        out.push(0);
        continue;
      }
      const pos = this.nodePos[s]!;
      const k = g.kind[pos]!;
      if (k === CHAR) out.push(s);
      else if (k === END) work.push(this.nodeNext[s]!);
      else {
        const ret = this.node(pos + 1, this.nodeNext[s]!);
        for (const start of g.alts[g.arg[pos]!]!) work.push(this.node(start, ret));
      }
      if (seen.size > MAX_STACKS * 4) throw new GrammarError(`the grammar expands to more than ${MAX_STACKS * 4} parse stacks at one point`);
    }
    this.normalized.set(id, out);
    return out;
  }

  private stateOf(stacks: number[]): number {
    if (stacks.length === 0) return -1;
    if (stacks.length > MAX_STACKS) throw new GrammarError(`the grammar is too ambiguous: ${stacks.length} parses alive at once (limit ${MAX_STACKS})`);
    stacks.sort((a, b) => a - b);
    const key = stacks.join(",");
    let id = this.stateIds.get(key);
    if (id === undefined) {
      id = this.states.length;
      this.states.push(stacks);
      this.stateIds.set(key, id);
    }
    return id;
  }

  /** The state after code point cp from `state`, or -1 if the grammar rejects it. */
  step(state: number, cp: number): number {
    if (state < 0) return -1;
    const key = state * 0x110000 + cp;
    const known = this.transitions.get(key);
    if (known !== undefined) return known;
    const g = this.grammar;
    const next = new Set<number>();
    for (const s of this.states[state]!) {
      if (s === 0) continue;
      const pos = this.nodePos[s]!;
      if (!g.matches(pos, cp)) continue;
      for (const t of this.normalize(this.node(pos + 1, this.nodeNext[s]!))) next.add(t);
    }
    const result = this.stateOf([...next]);
    this.transitions.set(key, result);
    return result;
  }

  /** Whether some stack of `state` may accept a code point in [lo, hi]. */
  mayStep(state: number, lo: number, hi: number): boolean {
    if (state < 0) return false;
    for (const s of this.states[state]!) if (s !== 0 && this.grammar.mayMatch(this.nodePos[s]!, lo, hi)) return true;
    return false;
  }

  /** Whether the grammar may end in `state`. */
  canEndIn(state: number): boolean {
    return state >= 0 && this.states[state]![0] === 0;
  }

  /** Whether `state` allows nothing but the end. */
  mustEndIn(state: number): boolean {
    const s = state >= 0 ? this.states[state]! : [];
    return s.length === 1 && s[0] === 0;
  }

  /** The current state id (for walking the vocabulary from it). */
  get state(): number {
    return this.current;
  }
  get partial(): { value: number; left: number } {
    return { value: this.partialValue, left: this.partialLeft };
  }

  /** The current position as a cursor (see cursorOf). */
  get cursor(): number {
    return cursorOf(this.current, this.partialValue, this.partialLeft);
  }

  /** The text so far is a complete sentence of the grammar. */
  get canEnd(): boolean {
    return this.partialLeft === 0 && this.canEndIn(this.current);
  }

  /** The grammar admits nothing more. */
  get done(): boolean {
    return this.partialLeft === 0 && this.mustEndIn(this.current);
  }

  /**
   * Feeds UTF-8 bytes; false (and no change) if the grammar rejects them. Bytes may end inside
   * a character; its code point is matched once its last byte arrives.
   */
  acceptBytes(bytes: ArrayLike<number>): boolean {
    const r = walkBytes(this, this.cursor, bytes, 0, bytes.length);
    if (r < 0) return false;
    this.current = cursorState(r);
    this.partialValue = cursorValue(r);
    this.partialLeft = cursorLeft(r);
    if (this.nodePos.length > this.maxCache || this.transitions.size > this.maxCache) this.compact();
    return true;
  }

  /** Feeds text (as UTF-8). */
  acceptText(text: string): boolean {
    return this.acceptBytes(new TextEncoder().encode(text));
  }

  /** Whether `text` followed by the end of input is accepted from the current state. */
  accepts(text: string): boolean {
    const r = walkBytes(this, this.cursor, new TextEncoder().encode(text), 0, Infinity);
    return r >= 0 && cursorLeft(r) === 0 && this.canEndIn(cursorState(r));
  }

  /** Rebuilds the caches around the current state only (a long generation's history is dropped). */
  private compact(): void {
    const stacks = this.states[this.current]!.map((s) => this.exportStack(s));
    this.dropCaches();
    const ids = stacks.map((positions) => positions.reduceRight((next, pos) => this.node(pos, next), 0));
    this.current = this.stateOf(ids);
  }

  private exportStack(id: number): number[] {
    const out: number[] = [];
    for (let s = id; s !== 0; s = this.nodeNext[s]!) out.push(this.nodePos[s]!);
    return out;
  }
}

/**
 * A parse position as one number (no allocation on the masking walk): the state, and a UTF-8
 * character begun but not finished — its bits so far (`value`, under 2^15 while partial) and
 * `left` (continuation bytes due in the low 2 bits, the sequence length << 2; 0 between
 * characters):
 *
 *   cursor = state * 2^20 + value * 32 + left          (-1: rejected)
 */
export const cursorOf = (state: number, value: number, left: number): number => state * 0x100000 + value * 32 + left;
export const cursorState = (cursor: number): number => Math.floor(cursor / 0x100000);
export const cursorValue = (cursor: number): number => Math.floor((cursor % 0x100000) / 32);
export const cursorLeft = (cursor: number): number => cursor % 32;

/** Runs bytes [from, to) through the matcher from a cursor; the new cursor, or -1. */
export function walkBytes(m: GrammarMatcher, cursor: number, bytes: ArrayLike<number>, from: number, to: number): number {
  const end = Math.min(to, bytes.length);
  for (let i = from; i < end && cursor >= 0; i++) cursor = stepByte(m, cursor, bytes[i]!);
  return cursor;
}

/** Smallest code point of a UTF-8 sequence of 2, 3, 4 bytes (shorter forms are overlong). */
const UTF8_MIN = [0, 0, 0x80, 0x800, 0x10000];

/**
 * One byte through the UTF-8 decoder and, when it completes a character, the grammar; the
 * new cursor or -1. Overlong forms and surrogates are rejected.
 */
export function stepByte(m: GrammarMatcher, cursor: number, b: number): number {
  const state = cursorState(cursor);
  let value = cursorValue(cursor);
  const left = cursorLeft(cursor);
  let due = left & 3;
  let length = left >> 2;
  if (due > 0) {
    if ((b & 0xc0) !== 0x80) return -1;
    value = (value << 6) | (b & 0x3f);
    due--;
  } else if (b < 0x80) {
    value = b;
    length = 1;
  } else if ((b & 0xe0) === 0xc0 && b >= 0xc2) {
    value = b & 0x1f;
    due = 1;
    length = 2;
  } else if ((b & 0xf0) === 0xe0) {
    value = b & 0x0f;
    due = 2;
    length = 3;
  } else if ((b & 0xf8) === 0xf0 && b <= 0xf4) {
    value = b & 0x07;
    due = 3;
    length = 4;
  } else {
    return -1;
  }
  if (due > 0) {
    // Only go on if some character starting with these bytes could still match.
    const rawLo = value << (6 * due);
    const lo = Math.max(rawLo, UTF8_MIN[length]!);
    const hi = Math.min(rawLo | ((1 << (6 * due)) - 1), 0x10ffff);
    if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) return -1;
    return m.mayStep(state, lo, hi) ? cursorOf(state, value, due | (length << 2)) : -1;
  }
  if (value < UTF8_MIN[length]! || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return -1;
  const next = m.step(state, value);
  return next < 0 ? -1 : cursorOf(next, 0, 0);
}
