/**
 * UTF-8 the way SentencePiece decodes byte-fallback pieces (sentencepiece util.cc DecodeUTF8):
 * a sequence is accepted only when it is complete, uses the shortest form and names a scalar
 * value (no surrogates, nothing past U+10FFFF); otherwise ONE byte is replaced by U+FFFD and
 * decoding resumes at the next byte. So a truncated 4-byte emoji gives three U+FFFD, where
 * WHATWG TextDecoder would give one: TextDecoder cannot be used here.
 */

export const REPLACEMENT_CHARACTER = "\ufffd";

const isTrail = (b: number): boolean => (b & 0xc0) === 0x80;

/** Bytes a sequence starting with `lead` needs, or 0 when `lead` cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 0;
}

/** The code point of a complete sequence bytes[at..at+n), or -1 when SentencePiece rejects it. */
function decodeSequence(bytes: ArrayLike<number>, at: number, n: number): number {
  const b0 = bytes[at];
  let cp: number;
  let min: number;
  if (n === 2) {
    if (!isTrail(bytes[at + 1])) return -1;
    cp = ((b0 & 0x1f) << 6) | (bytes[at + 1] & 0x3f);
    min = 0x80;
  } else if (n === 3) {
    if (!isTrail(bytes[at + 1]) || !isTrail(bytes[at + 2])) return -1;
    cp = ((b0 & 0x0f) << 12) | ((bytes[at + 1] & 0x3f) << 6) | (bytes[at + 2] & 0x3f);
    min = 0x800;
  } else {
    if (!isTrail(bytes[at + 1]) || !isTrail(bytes[at + 2]) || !isTrail(bytes[at + 3])) return -1;
    cp = ((b0 & 0x07) << 18) | ((bytes[at + 1] & 0x3f) << 12) | ((bytes[at + 2] & 0x3f) << 6) | (bytes[at + 3] & 0x3f);
    min = 0x10000;
  }
  if (cp < min || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff) return -1;
  return cp;
}

/**
 * Incremental decoder over a byte stream: `push` returns only text whose UTF-8 sequences are
 * complete, so a Chinese character split across `<0xE4><0xB8><0xAD>` prints once, whole.
 * `flush` ends the run (the remaining bytes become U+FFFD each, as SentencePiece does when a
 * non-byte piece follows). The concatenated output equals `decodeBytesLikeSentencePiece` of
 * the whole run.
 */
export class Utf8ByteRun {
  private pending: number[] = [];

  push(byte: number): string {
    this.pending.push(byte);
    return this.drain(false);
  }

  flush(): string {
    return this.drain(true);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  private drain(final: boolean): string {
    const p = this.pending;
    let out = "";
    let i = 0;
    while (i < p.length) {
      const n = sequenceLength(p[i]);
      if (n === 1) {
        out += String.fromCharCode(p[i]);
        i += 1;
        continue;
      }
      if (n === 0) {
        out += REPLACEMENT_CHARACTER;
        i += 1;
        continue;
      }
      const available = p.length - i;
      if (available < n) {
        // A byte that is not a continuation already dooms the sequence, whatever follows.
        let doomed = final;
        for (let k = 1; k < available && !doomed; k++) if (!isTrail(p[i + k])) doomed = true;
        if (!doomed) break;
        out += REPLACEMENT_CHARACTER;
        i += 1;
        continue;
      }
      const cp = decodeSequence(p, i, n);
      if (cp < 0) {
        out += REPLACEMENT_CHARACTER;
        i += 1;
      } else {
        out += String.fromCodePoint(cp);
        i += n;
      }
    }
    if (i > 0) p.splice(0, i);
    return out;
  }
}

/** Decodes a whole byte run with SentencePiece's rules. */
export function decodeBytesLikeSentencePiece(bytes: ArrayLike<number>): string {
  const run = new Utf8ByteRun();
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += run.push(bytes[i]);
  return out + run.flush();
}

/**
 * Checks that a JS string is well-formed Unicode (no lone surrogates), returning the UTF-16
 * index of the first bad unit or -1. SentencePiece works on UTF-8, and a lone surrogate has
 * no UTF-8 form.
 */
export function firstLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return i;
  }
  return -1;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Strict UTF-8 to string, or the byte offset where the input stops being UTF-8. */
export function decodeUtf8Strict(bytes: Uint8Array): { text: string } | { badOffset: number } {
  try {
    return { text: strictDecoder.decode(bytes) };
  } catch {
    let i = 0;
    while (i < bytes.length) {
      const n = sequenceLength(bytes[i]);
      if (n === 0 || i + n > bytes.length || (n > 1 && decodeSequence(bytes, i, n) < 0)) return { badOffset: i };
      i += n;
    }
    return { badOffset: bytes.length };
  }
}
