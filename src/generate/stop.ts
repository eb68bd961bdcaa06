/**
 * Stop handling over streamed text: stop token ids, and stop strings that may span several
 * tokens.
 *
 * Text that could still turn into a stop string is held back: after each piece the matcher
 * emits everything except the longest tail that is a prefix of some stop string. If the stop
 * string then completes, the held text and everything after it is dropped (the stop string is
 * not part of the output, as in the OpenAI API); if it does not, the held text is emitted with
 * the next piece, or by flush() at the end.
 *
 *   pieces:  "Hello ", "Us", "er", ":"   stop: "User:"
 *   emit:    "Hello ", "",   "",   ""    stopped after ":"
 *
 * Pieces may also arrive as raw bytes (byte-fallback tokens carry a CJK character as two or
 * three separate bytes): pushBytes decodes them with a streaming UTF-8 decoder, so a character
 * split across tokens is only matched once whole. A string piece ending in the first half of a
 * surrogate pair holds that half back the same way.
 */
import { InvalidArgumentError } from "../errors.js";

export interface StopResult {
  /** Text that is final: no stop string can start in it any more. */
  emit: string;
  /** Generation must end: a stop string completed or a stop id arrived. */
  stopped: boolean;
  /** What stopped it: the stop string, or the stop token id. */
  reason?: string | number;
}

export interface StopOptions {
  /** Strings that end generation; never emitted. */
  strings?: readonly string[];
  /** Token ids that end generation (e.g. EOS); their text is never emitted. */
  ids?: Iterable<number>;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

export class StopMatcher {
  private readonly strings: readonly string[];
  private readonly ids: ReadonlySet<number>;
  private held = "";
  private decoder: TextDecoder | null = null;
  private done = false;
  private why: string | number | undefined;

  constructor(options: StopOptions = {}) {
    const strings = options.strings ?? [];
    strings.forEach((s, i) => {
      if (typeof s !== "string" || s.length === 0) {
        throw new InvalidArgumentError(`stop string ${i} (${JSON.stringify(s)}) must be a non-empty string`);
      }
    });
    this.strings = [...strings];
    this.ids = new Set(options.ids ?? []);
  }

  /** Whether a stop has been seen; later pushes emit nothing. */
  get stopped(): boolean {
    return this.done;
  }

  /** What stopped generation, once stopped. */
  get reason(): string | number | undefined {
    return this.why;
  }

  /** Whether `id` is one of the stop ids. */
  isStopId(id: number): boolean {
    return this.ids.has(id);
  }

  /** Feeds the next text piece. */
  push(text: string): StopResult {
    if (this.done) return { emit: "", stopped: true, reason: this.why };
    // Bytes still pending in the decoder are an incomplete character: U+FFFD, as any decoder.
    const pending = this.decoder ? this.decoder.decode() : "";
    if (pending) this.decoder = null;
    return this.scan(this.held + pending + text);
  }

  /** Feeds the next piece as UTF-8 bytes (a character may be split across pieces). */
  pushBytes(bytes: Uint8Array): StopResult {
    if (this.done) return { emit: "", stopped: true, reason: this.why };
    this.decoder ??= new TextDecoder("utf-8");
    return this.scan(this.held + this.decoder.decode(bytes, { stream: true }));
  }

  /** Feeds a generated token: its id is checked against the stop ids, then its text pushed. */
  pushToken(id: number, text: string | Uint8Array): StopResult {
    if (this.done) return { emit: "", stopped: true, reason: this.why };
    if (this.ids.has(id)) {
      // The held text was not a stop string after all: it is output.
      const emit = this.flush();
      this.done = true;
      this.why = id;
      return { emit, stopped: true, reason: id };
    }
    return typeof text === "string" ? this.push(text) : this.pushBytes(text);
  }

  /** End of stream: returns the held text (nothing if stopped) and resets the hold. */
  flush(): string {
    if (this.done) return "";
    const tail = this.decoder ? this.decoder.decode() : "";
    this.decoder = null;
    const out = this.held + tail;
    this.held = "";
    return out;
  }

  /** Ready for a new generation with the same stops. */
  reset(): void {
    this.held = "";
    this.decoder = null;
    this.done = false;
    this.why = undefined;
  }

  private scan(buffer: string): StopResult {
    // Earliest stop string wins; at equal starts, the first listed.
    let at = -1;
    let which = "";
    for (const s of this.strings) {
      const i = buffer.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        which = s;
      }
    }
    if (at >= 0) {
      this.done = true;
      this.why = which;
      this.held = "";
      this.decoder = null;
      return { emit: buffer.slice(0, at), stopped: true, reason: which };
    }
    let hold = 0;
    for (const s of this.strings) {
      for (let len = Math.min(s.length - 1, buffer.length); len > hold; len--) {
        if (buffer.endsWith(s.slice(0, len))) {
          hold = len;
          break;
        }
      }
    }
    if (hold === 0 && buffer.length > 0 && isHighSurrogate(buffer.charCodeAt(buffer.length - 1))) hold = 1;
    this.held = buffer.slice(buffer.length - hold);
    return { emit: buffer.slice(0, buffer.length - hold), stopped: false };
  }
}
