/**
 * llama.cpp's GBNF grammar format (grammars/README.md in llama.cpp), parsed into a small AST.
 *
 *   root   ::= "{" ws pair ("," ws pair)* "}"      # a rule: name ::= alternatives
 *   pair   ::= [a-z]+ ws ":" ws (num | "null")     # | separates alternatives
 *   num    ::= "-"? [0-9]{1,3}                     # * + ? {m} {m,} {m,n} repeat
 *   ws     ::= [ \t\n]*                            # [^...] negates, . is any character
 *
 * A rule ends at the end of its line unless a `|` or an open parenthesis carries it on, as in
 * llama.cpp. Literals and classes take the escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH
 * \UHHHHHHHH. Every error names the line and column.
 */
import { GrammarError } from "./errors.js";

/** A set of code points: inclusive [lo, hi] pairs, or everything outside them. */
export interface CharClass {
  type: "char";
  ranges: number[];
  negated: boolean;
}
export type GbnfExpr =
  | CharClass
  | { type: "ref"; name: string; line: number; column: number }
  | { type: "seq"; items: GbnfExpr[] }
  | { type: "alt"; alts: GbnfExpr[] }
  | { type: "repeat"; item: GbnfExpr; min: number; max: number };

export interface GbnfRule {
  name: string;
  body: GbnfExpr;
  line: number;
}

/** Most repetitions a {m,n} may ask for (each one becomes grammar states). */
export const MAX_REPEAT = 10_000;
/** Longest grammar text accepted. */
export const MAX_GRAMMAR_CHARS = 1 << 20;
/** Deepest nesting of parentheses. */
export const MAX_NESTING = 128;

const isNameChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_-]/.test(c);

class Parser {
  pos = 0;
  depth = 0;
  constructor(private readonly src: string) {}

  fail(message: string, at = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src[i] === "\n") {
        line++;
        lineStart = i + 1;
      }
    }
    throw new GrammarError(message, line, at - lineStart + 1);
  }

  where(at = this.pos): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at; i++) {
      if (this.src[i] === "\n") {
        line++;
        lineStart = i + 1;
      }
    }
    return { line, column: at - lineStart + 1 };
  }

  /** Skips blanks and comments; newlines too when `newlines`. */
  space(newlines: boolean): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === "#") {
        while (this.pos < s.length && s[this.pos] !== "\n" && s[this.pos] !== "\r") this.pos++;
      } else if (c === " " || c === "\t" || (newlines && (c === "\n" || c === "\r"))) {
        this.pos++;
      } else break;
    }
  }

  name(): string {
    const start = this.pos;
    while (isNameChar(this.src[this.pos])) this.pos++;
    if (this.pos === start) this.fail(`expected a rule name, found ${this.describe()}`);
    return this.src.slice(start, this.pos);
  }

  describe(): string {
    return this.pos >= this.src.length ? "the end of the grammar" : JSON.stringify(this.src[this.pos]);
  }

  rules(): GbnfRule[] {
    const rules: GbnfRule[] = [];
    this.space(true);
    while (this.pos < this.src.length) {
      const { line } = this.where();
      const name = this.name();
      this.space(false);
      if (!this.src.startsWith("::=", this.pos)) this.fail(`expected "::=" after rule name ${JSON.stringify(name)}, found ${this.describe()}`);
      this.pos += 3;
      this.space(true);
      const body = this.alternatives(false);
      rules.push({ name, body, line });
      const c = this.src[this.pos];
      if (c !== undefined && c !== "\n" && c !== "\r") this.fail(`expected the end of the line after rule ${JSON.stringify(name)}, found ${this.describe()}`);
      this.space(true);
    }
    return rules;
  }

  alternatives(nested: boolean): GbnfExpr {
    const alts = [this.sequence(nested)];
    while (this.src[this.pos] === "|") {
      this.pos++;
      this.space(true);
      alts.push(this.sequence(nested));
    }
    return alts.length === 1 ? alts[0]! : { type: "alt", alts };
  }

  sequence(nested: boolean): GbnfExpr {
    const items: GbnfExpr[] = [];
    const s = this.src;
    for (;;) {
      const c = s[this.pos];
      let item: GbnfExpr;
      if (c === '"') {
        this.pos++;
        const chars: GbnfExpr[] = [];
        while (s[this.pos] !== '"') {
          if (this.pos >= s.length || s[this.pos] === "\n") this.fail("unterminated string literal");
          const cp = this.char();
          chars.push({ type: "char", ranges: [cp, cp], negated: false });
        }
        this.pos++;
        item = { type: "seq", items: chars };
      } else if (c === "[") {
        this.pos++;
        const negated = s[this.pos] === "^";
        if (negated) this.pos++;
        const ranges: number[] = [];
        while (s[this.pos] !== "]") {
          if (this.pos >= s.length || s[this.pos] === "\n") this.fail("unterminated character class");
          const lo = this.char();
          let hi = lo;
          if (s[this.pos] === "-" && s[this.pos + 1] !== "]" && this.pos + 1 < s.length) {
            this.pos++;
            const at = this.pos;
            hi = this.char();
            if (hi < lo) this.fail(`character range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)} is reversed`, at);
          }
          ranges.push(lo, hi);
        }
        this.pos++;
        item = { type: "char", ranges, negated };
      } else if (c === ".") {
        this.pos++;
        item = { type: "char", ranges: [], negated: true };
      } else if (c === "(") {
        const open = this.where();
        if (++this.depth > MAX_NESTING) this.fail(`groups nested more than ${MAX_NESTING} deep`);
        this.pos++;
        this.space(true);
        item = this.alternatives(true);
        if (s[this.pos] !== ")") this.fail(`expected ")" to close the group opened at line ${open.line}, column ${open.column}, found ${this.describe()}`);
        this.depth--;
        this.pos++;
      } else if (isNameChar(c)) {
        const { line, column } = this.where();
        const name = this.name();
        const save = this.pos;
        this.space(true);
        if (s.startsWith("::=", this.pos)) {
          // The next rule starts here: this sequence ended at the previous line break.
          this.pos = save;
          this.pos = this.backToLineStart(save - name.length);
          break;
        }
        this.pos = save;
        item = { type: "ref", name, line, column };
      } else if (c === "*" || c === "+" || c === "?" || c === "{") {
        this.fail(`${JSON.stringify(c)} must follow an item to repeat`);
      } else {
        break;
      }
      items.push(this.postfix(item));
      this.space(nested);
    }
    return items.length === 1 ? items[0]! : { type: "seq", items };
  }

  /** Where a rule name that turned out to start the next rule began (its line's end, before it). */
  private backToLineStart(nameStart: number): number {
    let p = nameStart;
    while (p > 0 && (this.src[p - 1] === " " || this.src[p - 1] === "\t" || this.src[p - 1] === "\n" || this.src[p - 1] === "\r")) p--;
    return p;
  }

  postfix(item: GbnfExpr): GbnfExpr {
    const s = this.src;
    for (;;) {
      const c = s[this.pos];
      if (c === "*") item = { type: "repeat", item, min: 0, max: Infinity };
      else if (c === "+") item = { type: "repeat", item, min: 1, max: Infinity };
      else if (c === "?") item = { type: "repeat", item, min: 0, max: 1 };
      else if (c === "{") {
        const at = this.pos;
        this.pos++;
        this.space(false);
        const min = this.integer();
        this.space(false);
        let max = min;
        if (s[this.pos] === ",") {
          this.pos++;
          this.space(false);
          max = /[0-9]/.test(s[this.pos] ?? "") ? this.integer() : Infinity;
          this.space(false);
        }
        if (s[this.pos] !== "}") this.fail(`expected "}" to close the repetition, found ${this.describe()}`);
        if (max < min) this.fail(`repetition {${min},${max}} has max below min`, at);
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.fail(`repetition count above ${MAX_REPEAT}`, at);
        item = { type: "repeat", item, min, max };
      } else return item;
      this.pos++;
    }
  }

  integer(): number {
    const start = this.pos;
    while (/[0-9]/.test(this.src[this.pos] ?? "")) this.pos++;
    if (start === this.pos) this.fail(`expected a number, found ${this.describe()}`);
    return Number(this.src.slice(start, this.pos));
  }

  /** One character of a literal or class, escapes decoded, as a code point. */
  char(): number {
    const s = this.src;
    const c = s.codePointAt(this.pos)!;
    if (c !== 0x5c) {
      this.pos += c > 0xffff ? 2 : 1;
      return c;
    }
    const e = s[this.pos + 1];
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, "\\": 0x5c, '"': 0x22, "[": 0x5b, "]": 0x5d, "-": 0x2d, "'": 0x27, "/": 0x2f, "^": 0x5e };
    if (e !== undefined && e in simple) {
      this.pos += 2;
      return simple[e]!;
    }
    const digits = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    if (digits === 0) this.fail(`unknown escape "\\${e ?? ""}"`);
    const hex = s.slice(this.pos + 2, this.pos + 2 + digits);
    if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) this.fail(`"\\${e}" expects ${digits} hex digits`);
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff) this.fail(`code point U+${hex} is beyond U+10FFFF`);
    this.pos += 2 + digits;
    return cp;
  }
}

/** Parses GBNF text into rules (duplicates, missing rules and `root` are checked by compileGrammar). */
export function parseGbnf(text: string): GbnfRule[] {
  if (typeof text !== "string") throw new GrammarError(`a grammar must be text, got ${typeof text}`);
  if (text.length > MAX_GRAMMAR_CHARS) throw new GrammarError(`the grammar has ${text.length} characters, more than ${MAX_GRAMMAR_CHARS}`);
  return new Parser(text).rules();
}

/** Prints a rule body back as GBNF (for messages and goldens). */
export function formatGbnf(rules: readonly GbnfRule[]): string {
  return rules.map((r) => `${r.name} ::= ${formatExpr(r.body, false)}`).join("\n") + "\n";
}

function formatExpr(e: GbnfExpr, inner: boolean): string {
  switch (e.type) {
    case "char": {
      if (!e.negated && e.ranges.length === 2 && e.ranges[0] === e.ranges[1]) return JSON.stringify(String.fromCodePoint(e.ranges[0]!));
      if (e.negated && e.ranges.length === 0) return ".";
      let body = "";
      for (let i = 0; i < e.ranges.length; i += 2) {
        body += classChar(e.ranges[i]!) + (e.ranges[i] === e.ranges[i + 1] ? "" : "-" + classChar(e.ranges[i + 1]!));
      }
      return `[${e.negated ? "^" : ""}${body}]`;
    }
    case "ref":
      return e.name;
    case "seq": {
      if (e.items.length > 0 && e.items.every((i) => i.type === "char" && !i.negated && i.ranges.length === 2 && i.ranges[0] === i.ranges[1])) {
        return JSON.stringify(e.items.map((i) => String.fromCodePoint((i as CharClass).ranges[0]!)).join(""));
      }
      const s = e.items.map((i) => formatExpr(i, true)).join(" ");
      return inner && e.items.length !== 1 ? `(${s})` : s;
    }
    case "alt": {
      const s = e.alts.map((a) => formatExpr(a, false)).join(" | ");
      return inner ? `(${s})` : s;
    }
    case "repeat": {
      const body = formatExpr(e.item, true);
      const op = e.min === 0 && e.max === Infinity ? "*" : e.min === 1 && e.max === Infinity ? "+" : e.min === 0 && e.max === 1 ? "?" : e.max === e.min ? `{${e.min}}` : `{${e.min},${e.max === Infinity ? "" : e.max}}`;
      return body + op;
    }
  }
}

function classChar(cp: number): string {
  const named: Record<number, string> = { 10: "\\n", 13: "\\r", 9: "\\t", 0x5c: "\\\\", 0x5d: "\\]", 0x5b: "\\[", 0x2d: "\\-", 0x5e: "\\^", 0x22: '\\"' };
  if (named[cp]) return named[cp]!;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp === 0x2028 || cp === 0x2029) return `\\u${cp.toString(16)}`;
  return String.fromCodePoint(cp);
}
