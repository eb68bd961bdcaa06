/**
 * SentencePiece's normalizer (sentencepiece normalizer.cc, v0.1.97), applied to the text
 * before BPE: the model's precompiled rules (none for LLaMA: "identity"), user-defined pieces
 * passed through untouched, optional removal of extra spaces, " " -> "▁", and the dummy "▁"
 * prefix (or suffix, with treat_whitespace_as_suffix).
 *
 * Only U+0020 counts as a space: tabs, newlines and U+3000 are left as they are, unless the
 * precompiled rules map them to " " first (nmt_nfkc does).
 */
import { PrecompiledCharsmap } from "./charsmap.js";
import { PrefixMatcher } from "./prefix-matcher.js";

export const SPACE_SYMBOL = "\u2581";

export interface NormalizerOptions {
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  treatWhitespaceAsSuffix: boolean;
  charsmap?: PrecompiledCharsmap;
  /** User-defined pieces: matched before the rules and copied as they are. */
  userDefined?: PrefixMatcher;
}

const utf8 = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text (LLaMA even has it as a piece), not a byte-order mark.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const SPACE_SYMBOL_BYTES = utf8.encode(SPACE_SYMBOL);
const REPLACEMENT_BYTES = utf8.encode("\ufffd");

/**
 * " " -> "▁". replaceAll is fine for short text, but on 10 MB of spaces it takes 0.7 s and
 * 400 MB (a part per match); a long text is copied a block of code units at a time instead.
 */
function escapeSpaces(s: string): string {
  const BLOCK = 1 << 13;
  if (s.length <= BLOCK) return s.replaceAll(" ", SPACE_SYMBOL);
  const buf = new Uint16Array(BLOCK);
  const space = SPACE_SYMBOL.charCodeAt(0);
  const parts: string[] = [];
  for (let i = 0; i < s.length; i += BLOCK) {
    const n = Math.min(BLOCK, s.length - i);
    for (let k = 0; k < n; k++) {
      const c = s.charCodeAt(i + k);
      buf[k] = c === 32 ? space : c;
    }
    parts.push(String.fromCharCode.apply(null, n === BLOCK ? (buf as unknown as number[]) : (buf.subarray(0, n) as unknown as number[])));
  }
  return parts.join("");
}

export class Normalizer {
  private readonly ws: string;

  constructor(readonly options: NormalizerOptions) {
    this.ws = options.escapeWhitespaces ? SPACE_SYMBOL : " ";
  }

  normalize(text: string): string {
    if (text.length === 0) return "";
    if (this.options.charsmap || this.options.userDefined) return this.normalizeBytes(utf8.encode(text));
    return this.normalizeFast(text);
  }

  /** No rules and no user-defined pieces: plain string operations give the same result. */
  private normalizeFast(text: string): string {
    const o = this.options;
    let s = text;
    if (o.removeExtraWhitespaces) {
      s = s.replace(/ {2,}/g, " ");
      let a = 0;
      let b = s.length;
      while (a < b && s.charCodeAt(a) === 32) a++;
      while (b > a && s.charCodeAt(b - 1) === 32) b--;
      s = s.slice(a, b);
      if (s.length === 0) return "";
    }
    if (o.escapeWhitespaces) s = escapeSpaces(s);
    if (o.addDummyPrefix && !o.treatWhitespaceAsSuffix) s = this.ws + s;
    if (o.removeExtraWhitespaces) {
      // A literal "▁" at the end goes too: SentencePiece strips after escaping.
      let b = s.length;
      while (b > 0 && s[b - 1] === this.ws) b--;
      s = s.slice(0, b);
    }
    if (o.addDummyPrefix && o.treatWhitespaceAsSuffix) s += this.ws;
    return s;
  }

  /** The general path, a line-by-line reading of Normalizer::Normalize over UTF-8 bytes. */
  private normalizeBytes(input: Uint8Array): string {
    const o = this.options;
    let pos = 0;
    const end = input.length;
    if (o.removeExtraWhitespaces) {
      while (pos < end) {
        const p = this.normalizePrefix(input, pos, end);
        if (!(p.out.length === 1 && p.out[0] === 32)) break;
        pos += p.consumed;
      }
    }
    if (pos >= end) return "";

    const out = new ByteSink(end * 3 + 8);
    const addWs = (): void => {
      if (o.escapeWhitespaces) out.append(SPACE_SYMBOL_BYTES);
      else out.push(32);
    };
    if (!o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();

    let isPrevSpace = o.removeExtraWhitespaces;
    while (pos < end) {
      const p = this.normalizePrefix(input, pos, end);
      let sp = p.out;
      if (isPrevSpace) {
        let k = 0;
        while (k < sp.length && sp[k] === 32) k++;
        sp = sp.subarray(k);
      }
      if (sp.length > 0) {
        for (let n = 0; n < sp.length; n++) {
          if (o.escapeWhitespaces && sp[n] === 32) out.append(SPACE_SYMBOL_BYTES);
          else out.push(sp[n]);
        }
        isPrevSpace = sp[sp.length - 1] === 32;
      }
      pos += p.consumed;
      if (!o.removeExtraWhitespaces) isPrevSpace = false;
    }

    if (o.removeExtraWhitespaces) {
      const space = o.escapeWhitespaces ? SPACE_SYMBOL_BYTES : Uint8Array.of(32);
      while (out.endsWith(space)) out.length -= space.length;
    }
    if (o.treatWhitespaceAsSuffix && o.addDummyPrefix) addWs();
    return utf8Decoder.decode(out.view());
  }

  /** Normalizer::NormalizePrefix: what the next piece of input becomes, and its byte length. */
  private normalizePrefix(input: Uint8Array, pos: number, end: number): { out: Uint8Array; consumed: number } {
    const o = this.options;
    if (o.userDefined) {
      const n = o.userDefined.longestMatchBytes(input, pos, end);
      if (n > 0) return { out: input.subarray(pos, pos + n), consumed: n };
    }
    if (o.charsmap) {
      const m = o.charsmap.longestMatch(input, pos, end);
      if (m.length > 0) return { out: o.charsmap.replacement(m.value), consumed: m.length };
    }
    const n = validUtf8Length(input, pos, end);
    if (n === 0) return { out: REPLACEMENT_BYTES, consumed: 1 };
    return { out: input.subarray(pos, pos + n), consumed: n };
  }
}

/** Length of the valid UTF-8 sequence at pos, 0 if invalid (input here comes from TextEncoder). */
function validUtf8Length(b: Uint8Array, pos: number, end: number): number {
  const c = b[pos];
  const n = c < 0x80 ? 1 : (c & 0xe0) === 0xc0 ? 2 : (c & 0xf0) === 0xe0 ? 3 : (c & 0xf8) === 0xf0 ? 4 : 0;
  if (n === 0 || pos + n > end) return 0;
  for (let k = 1; k < n; k++) if ((b[pos + k] & 0xc0) !== 0x80) return 0;
  return n;
}

class ByteSink {
  buf: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }
  push(b: number): void {
    if (this.length === this.buf.length) this.grow(1);
    this.buf[this.length++] = b;
  }
  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) this.grow(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  endsWith(bytes: Uint8Array): boolean {
    if (this.length < bytes.length) return false;
    for (let i = 0; i < bytes.length; i++) if (this.buf[this.length - bytes.length + i] !== bytes[i]) return false;
    return true;
  }
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
  private grow(extra: number): void {
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + extra));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}
