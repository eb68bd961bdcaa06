/**
 * SentencePiece BPE, encoding exactly as sentencepiece 0.1.97 does for LLaMA-family models
 * (bpe_model.cc Model::SampleEncode without dropout, sentencepiece_processor.cc
 * PopulateSentencePieceText and Decode), read in sentencepiece's source:
 *
 *   text -> normalizer (dummy "▁" prefix, " " -> "▁", the model's rules)
 *        -> one symbol per code point (a user-defined piece is one frozen symbol)
 *        -> repeatedly merge the adjacent pair whose concatenation is a piece with the highest
 *           score; equal scores: the leftmost pair. Chinese pieces appended by the vocabulary
 *           merge all score 0, so this tie-break decides every Chinese merge.
 *        -> pieces to ids; a symbol that is no piece is <unk>, or with byte_fallback its
 *           UTF-8 bytes as <0xXX> pieces; without byte_fallback a run of <unk> is one <unk>.
 *
 * Merging keeps the symbols in a doubly linked list over index arrays and the candidate pairs
 * in a binary heap; stale heap entries are recognised by their recorded length, as upstream
 * does, so each merge costs O(log n) and nothing is rescanned.
 */
import { PieceType } from "../formats/sentencepiece.js";
import { PrecompiledCharsmap } from "./charsmap.js";
import { TokenizerError } from "./errors.js";
import { Normalizer, SPACE_SYMBOL } from "./normalizer.js";
import { PrefixMatcher } from "./prefix-matcher.js";
import { Utf8ByteRun, firstLoneSurrogate, decodeUtf8Strict } from "./utf8.js";

export { PieceType };

/** The vocabulary, one entry per id. */
export interface Vocabulary {
  pieces: readonly string[];
  /** Merge priority (higher merges first); f32 values in both file formats. */
  scores: ArrayLike<number>;
  types: ArrayLike<PieceType>;
}

/** Everything besides the vocabulary that changes how text becomes ids and back. */
export interface TokenizerSettings {
  /** Unknown characters become their UTF-8 bytes as `<0xXX>` pieces (LLaMA: on). */
  byteFallback: boolean;
  /** Prepend "▁" to non-empty text (LLaMA: on). */
  addDummyPrefix: boolean;
  /** Drop leading/trailing spaces and squeeze runs of spaces (LLaMA: off). */
  removeExtraWhitespaces: boolean;
  /** Spaces become "▁" (always on in practice). */
  escapeWhitespaces: boolean;
  /** The dummy "▁" goes at the end instead of the start. */
  treatWhitespaceAsSuffix: boolean;
  /** The model's normalization rules (empty for LLaMA's "identity"). */
  precompiledCharsmap?: Uint8Array;
  /** What `<unk>` decodes to (SentencePiece's default " ⁇ "). */
  unkSurface: string;
  unkId: number;
  /** -1 when the model has none. */
  bosId: number;
  eosId: number;
  padId: number;
  /** What the model declares: used when `encode` is not told otherwise. */
  addBos: boolean;
  addEos: boolean;
}

export interface EncodeOptions {
  /** Prepend BOS; defaults to what the model declares. */
  addBos?: boolean;
  /** Append EOS; defaults to what the model declares. */
  addEos?: boolean;
  /**
   * Treat control pieces written in the text ("<s>", "</s>", "<unk>", ...) as those tokens.
   * Off by default: "<s>" typed by a user is plain text, as in SentencePiece. When on, each
   * stretch of text between specials is encoded on its own (with its own dummy prefix), the
   * way llama.cpp and HF's slow LlamaTokenizer do.
   */
  parseSpecial?: boolean;
}

/** Where the vocabulary came from, used to name it in error messages. */
export type TokenizerOrigin = { kind: "sentencepiece" | "gguf" | "memory"; name: string };

/**
 * What checking a soft cut needs of the piece on either side of it (`encodeLong`): the scores
 * of its merges in the order it made them, and how its first and last symbols grew (their
 * length at the start, then after merge number steps[k] the length lens[k]).
 */
interface PieceLog {
  scores: Float64Array;
  firstLen0: number;
  firstFrozen: boolean;
  firstSteps: number[];
  firstLens: number[];
  lastLen0: number;
  lastFrozen: boolean;
  lastSteps: number[];
  lastLens: number[];
}

/** Grows its arrays as needed and is reused across calls: no per-symbol objects. */
class Scratch {
  start = new Int32Array(256);
  end = new Int32Array(256);
  prev = new Int32Array(256);
  next = new Int32Array(256);
  frozen = new Uint8Array(256);
  /** Piece id of each symbol's current text, -1 when it is no mergeable piece. */
  symId = new Int32Array(256);
  pairLeft = new Int32Array(256);
  pairRight = new Int32Array(256);
  pairSize = new Int32Array(256);
  pairScore = new Float64Array(256);
  pairId = new Int32Array(256);
  heap = new Int32Array(256);
  /** The merges of the last run when asked for (score, start, new end), in order. */
  logScore = new Float64Array(256);
  logStart = new Int32Array(256);
  logEnd = new Int32Array(256);
  logCount = 0;

  ensureSymbols(n: number): void {
    if (n <= this.start.length) return;
    const size = Math.max(n, this.start.length * 2);
    this.start = new Int32Array(size);
    this.end = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.next = new Int32Array(size);
    this.frozen = new Uint8Array(size);
    this.symId = new Int32Array(size);
  }

  growLog(): void {
    const size = this.logScore.length * 2;
    const score = new Float64Array(size);
    score.set(this.logScore);
    const start = new Int32Array(size);
    start.set(this.logStart);
    const end = new Int32Array(size);
    end.set(this.logEnd);
    this.logScore = score;
    this.logStart = start;
    this.logEnd = end;
  }

  growPairs(): void {
    const size = this.pairLeft.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.pairLeft = grow(this.pairLeft, (n) => new Int32Array(n));
    this.pairRight = grow(this.pairRight, (n) => new Int32Array(n));
    this.pairSize = grow(this.pairSize, (n) => new Int32Array(n));
    this.pairScore = grow(this.pairScore, (n) => new Float64Array(n));
    this.pairId = grow(this.pairId, (n) => new Int32Array(n));
    this.heap = grow(this.heap, (n) => new Int32Array(n));
  }
}

export class SentencePieceTokenizer {
  readonly settings: Readonly<TokenizerSettings>;
  readonly origin: TokenizerOrigin;
  private readonly pieces: readonly string[];
  private readonly scores: Float64Array;
  private readonly types: Uint8Array;
  /** NORMAL, USER_DEFINED and UNUSED pieces: what merges can produce. */
  private readonly mergeable = new Map<string, number>();
  /** CONTROL, UNKNOWN and BYTE pieces: looked up first, as SentencePiece's PieceToId does. */
  private readonly reserved = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly maxPieceLength: number;
  private readonly maxUserLength: number;
  /**
   * (left id * vocabSize + right id) -> id of the piece they concatenate to, for every way of
   * cutting every mergeable piece into two mergeable pieces. Looking pairs up by id avoids a
   * substring per candidate pair; symbols that are no piece fall back to the string lookup.
   */
  private readonly pairIds: PairTable;
  /** Piece id per BMP code unit (-2: not looked up yet, -1: none). */
  private readonly charIds = new Int32Array(0x10000).fill(-2);
  /** Some mergeable piece is also a control/unknown/byte piece: PieceToId must see strings. */
  private readonly reservedOverlap: boolean;
  private readonly hasUnused: boolean;
  private readonly userDefined?: PrefixMatcher;
  private readonly normalizer: Normalizer;
  /** Control (and unknown) pieces as they may be written in text, longest first per first char. */
  private readonly specials = new Map<number, { text: string; id: number }[]>();
  private readonly scratch = new Scratch();
  /**
   * Adjacent UTF-16 code unit pairs (left * 65536 + right) inside some mergeable or user-defined
   * piece: BPE can merge across a boundary only where its pair is here. Long inputs are cut into
   * pieces of about `chunkLength` preferably at boundaries that are not (see `encodeLong`).
   */
  private readonly joinPairs = new Set<number>();
  /** @internal Code units per piece a long normalized input is cut into (tests lower it). */
  chunkLength = 1 << 16;
  /** @internal How far past chunkLength to look for a hard cut before making a soft one. */
  hardCutSearch = 1024;
  /** @internal How much further than a soft cut its piece is run (at least the longest user-defined piece). */
  cutMargin = 1024;
  /** Decoded text per id, filled as ids are met. */
  private readonly texts: (string | undefined)[] = [];

  constructor(vocab: Vocabulary, settings: TokenizerSettings, origin: TokenizerOrigin = { kind: "memory", name: "tokenizer" }) {
    this.origin = origin;
    this.settings = { ...settings };
    const n = vocab.pieces.length;
    const where = origin.name;
    if (vocab.scores.length !== n || vocab.types.length !== n) {
      throw new TokenizerError(`${where}: ${n} pieces but ${vocab.scores.length} scores and ${vocab.types.length} types (expected one of each per piece)`);
    }
    if (n === 0) throw new TokenizerError(`${where}: the vocabulary is empty`);
    this.pieces = Array.from(vocab.pieces);
    this.scores = new Float64Array(n);
    this.types = new Uint8Array(n);
    const user: string[] = [];
    let maxLength = 0;
    let unused = false;
    let unkId = -1;
    for (let id = 0; id < n; id++) {
      const piece = vocab.pieces[id];
      const type = vocab.types[id];
      const score = vocab.scores[id];
      if (typeof piece !== "string" || piece.length === 0) throw new TokenizerError(`${where}: piece ${id} is empty (every piece needs text)`);
      if (!(type in PieceType) || typeof type !== "number") throw new TokenizerError(`${where}: piece ${id} ${JSON.stringify(piece)} has type ${String(type)} (expected 1..6)`);
      if (typeof score !== "number" || Number.isNaN(score)) throw new TokenizerError(`${where}: piece ${id} ${JSON.stringify(piece)} has score ${String(score)} (expected a number)`);
      this.scores[id] = score;
      this.types[id] = type;
      const isMergeable = type === PieceType.Normal || type === PieceType.UserDefined || type === PieceType.Unused;
      const map = isMergeable ? this.mergeable : this.reserved;
      if (map.has(piece)) {
        throw new TokenizerError(`${where}: piece ${id} ${JSON.stringify(piece)} is already defined as id ${map.get(piece)} (pieces must be unique)`);
      }
      map.set(piece, id);
      if (isMergeable && piece.length > maxLength) maxLength = piece.length;
      if (type === PieceType.UserDefined) user.push(piece);
      if (type === PieceType.Unused) unused = true;
      if (type === PieceType.Unknown) {
        if (unkId >= 0) throw new TokenizerError(`${where}: pieces ${unkId} and ${id} are both of type UNKNOWN (expected exactly one <unk>)`);
        unkId = id;
      }
      if (type === PieceType.Byte) {
        const byte = pieceToByte(piece);
        if (byte < 0) throw new TokenizerError(`${where}: byte piece ${id} is ${JSON.stringify(piece)} (expected <0x00>..<0xFF>)`);
        if (!settings.byteFallback) throw new TokenizerError(`${where}: byte piece ${id} ${JSON.stringify(piece)} found although byte_fallback is off`);
        this.byteIds[byte] = id;
      }
    }
    if (unkId < 0) throw new TokenizerError(`${where}: no piece of type UNKNOWN (SentencePiece requires an <unk>)`);
    if (settings.unkId !== unkId) {
      throw new TokenizerError(`${where}: unknown-token id is ${settings.unkId} but the UNKNOWN piece is id ${unkId}`);
    }
    if (settings.byteFallback) {
      const missing = this.byteIds.indexOf(-1);
      if (missing >= 0) throw new TokenizerError(`${where}: byte_fallback is on but there is no piece <0x${hex2(missing)}> (expected all 256 byte pieces)`);
    }
    for (const [name, id] of [["bos", settings.bosId], ["eos", settings.eosId], ["pad", settings.padId]] as const) {
      if (!Number.isInteger(id) || id < -1 || id >= n) throw new TokenizerError(`${where}: ${name} id ${id} is outside the vocabulary of ${n} pieces`);
    }
    this.maxPieceLength = maxLength;
    for (const piece of [...this.mergeable.keys(), ...user]) {
      for (let k = 1; k < piece.length; k++) this.joinPairs.add(piece.charCodeAt(k - 1) * 0x10000 + piece.charCodeAt(k));
    }
    this.pairIds = PairTable.fromPieces(this.mergeable);
    // A reserved piece short enough to be one symbol, or equal to a mergeable one, changes what
    // PieceToId answers for a symbol; then ids are looked up by string, as upstream does.
    this.reservedOverlap = [...this.reserved.keys()].some((piece) => piece.length <= 2 || this.mergeable.has(piece));
    this.hasUnused = unused;
    if (user.length > 0) this.userDefined = new PrefixMatcher(user);
    this.maxUserLength = Math.max(0, ...user.map((piece) => piece.length));
    this.normalizer = new Normalizer({
      addDummyPrefix: settings.addDummyPrefix,
      removeExtraWhitespaces: settings.removeExtraWhitespaces,
      escapeWhitespaces: settings.escapeWhitespaces,
      treatWhitespaceAsSuffix: settings.treatWhitespaceAsSuffix,
      charsmap: settings.precompiledCharsmap && settings.precompiledCharsmap.length > 0 ? new PrecompiledCharsmap(settings.precompiledCharsmap, `${where}: normalizer`) : undefined,
      userDefined: this.userDefined,
    });
    for (let id = 0; id < n; id++) {
      if (this.types[id] !== PieceType.Control && this.types[id] !== PieceType.Unknown) continue;
      const text = this.pieces[id];
      const first = text.charCodeAt(0);
      const list = this.specials.get(first) ?? [];
      list.push({ text, id });
      list.sort((a, b) => b.text.length - a.text.length);
      this.specials.set(first, list);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Vocabulary

  get vocabSize(): number {
    return this.pieces.length;
  }
  get bosId(): number {
    return this.settings.bosId;
  }
  get eosId(): number {
    return this.settings.eosId;
  }
  get unkId(): number {
    return this.settings.unkId;
  }
  get padId(): number {
    return this.settings.padId;
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.pieces[id];
  }
  score(id: number): number {
    this.checkId(id);
    return this.scores[id];
  }
  pieceType(id: number): PieceType {
    this.checkId(id);
    return this.types[id] as PieceType;
  }
  /** SentencePiece's PieceToId: the id of a piece, or the unknown id. */
  pieceToId(piece: string): number {
    return this.reserved.get(piece) ?? this.mergeable.get(piece) ?? this.settings.unkId;
  }
  /** The vocabulary as plain arrays (copies). */
  vocabulary(): { pieces: string[]; scores: Float32Array; types: Uint8Array } {
    return { pieces: [...this.pieces], scores: Float32Array.from(this.scores), types: this.types.slice() };
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new TokenizerError(`${this.origin.name}: token id ${id} is outside the vocabulary (0..${this.pieces.length - 1})`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Encoding

  /** Text (a string, or UTF-8 bytes) to token ids. */
  encode(text: string | Uint8Array, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    this.encodeInto(text, options, out);
    return out;
  }

  /**
   * `encode` without holding every id at once, for inputs of any length (50 MB of text on one
   * line is some 40 M ids, 330 MB as a JS array): hands the ids to `onIds` in order, a block
   * at a time (each block a new array), and returns how many there were. The same ids as
   * `encode`.
   */
  encodeInBlocks(text: string | Uint8Array, options: EncodeOptions, onIds: (ids: number[]) => void): number {
    let total = 0;
    const out: number[] = [];
    this.encodeInto(text, options, out, (ids) => {
      total += ids.length;
      onIds(ids);
    });
    if (out.length > 0) {
      total += out.length;
      onIds(out);
    }
    return total;
  }

  /** `encode` into `out`; with `sink`, `out` is handed over (emptied) whenever it is long. */
  private encodeInto(text: string | Uint8Array, options: EncodeOptions, out: number[], sink?: IdSink): void {
    const str = this.checkedText(text);
    const addBos = options.addBos ?? this.settings.addBos;
    const addEos = options.addEos ?? this.settings.addEos;
    if (addBos) out.push(this.requireSpecial("bos", this.settings.bosId));
    if (options.parseSpecial && this.specials.size > 0) {
      let from = 0;
      for (let i = 0; i < str.length; i++) {
        const candidates = this.specials.get(str.charCodeAt(i));
        if (!candidates) continue;
        const hit = candidates.find((c) => str.startsWith(c.text, i));
        if (!hit) continue;
        if (i > from) this.encodeFragment(str.slice(from, i), out, sink);
        out.push(hit.id);
        from = i + hit.text.length;
        i = from - 1;
      }
      if (from < str.length) this.encodeFragment(str.slice(from), out, sink);
    } else {
      this.encodeFragment(str, out, sink);
    }
    if (addEos) out.push(this.requireSpecial("eos", this.settings.eosId));
  }

  /** Text to pieces (the strings of the ids `encode` returns). */
  encodeToPieces(text: string | Uint8Array, options: EncodeOptions = {}): string[] {
    return this.encode(text, options).map((id) => this.pieces[id]);
  }

  /** The normalized form SentencePiece runs BPE on ("▁" prefix, spaces escaped, rules applied). */
  normalize(text: string): string {
    return this.normalizer.normalize(this.checkedText(text));
  }

  private requireSpecial(name: string, id: number): number {
    if (id < 0) throw new TokenizerError(`${this.origin.name}: asked to add ${name.toUpperCase()} but the model has no ${name} token`);
    return id;
  }

  private checkedText(text: string | Uint8Array): string {
    if (typeof text === "string") {
      const bad = firstLoneSurrogate(text);
      if (bad >= 0) {
        throw new TokenizerError(`input text has a lone surrogate U+${text.charCodeAt(bad).toString(16).toUpperCase()} at UTF-16 index ${bad} (expected well-formed Unicode)`);
      }
      return text;
    }
    const decoded = decodeUtf8Strict(text);
    if ("badOffset" in decoded) {
      throw new TokenizerError(`input is not valid UTF-8 at byte ${decoded.badOffset} (0x${hex2(text[decoded.badOffset] ?? 0)})`);
    }
    return decoded.text;
  }

  /**
   * Normalizes `text` and runs BPE on it. A long input is run a piece of about chunkLength code
   * units at a time, so memory stays near one piece's symbols however long the input (50 MB on
   * one line), with exactly the ids of the whole; see `encodeLong`.
   */
  private encodeFragment(text: string, out: number[], sink?: IdSink): void {
    const s = this.normalizer.normalize(text);
    if (s.length === 0) return;
    const state = { prevUnk: false };
    if (s.length <= this.chunkLength) this.encodeNormalized(s, out, state);
    else this.encodeLong(s, out, state, sink);
    flushIds(out, sink);
  }

  /**
   * BPE over long normalized text in pieces, with the ids of encoding it whole. Why a cut gives
   * the same ids: BPE only ever merges two adjacent symbols, always the best valid pair
   * (highest score, then leftmost). If no merge of the whole crosses a cut, the whole's merges
   * are those of the two sides run alone, interleaved, so the ids are the two sides' ids.
   *
   * - A hard cut lies between two characters that no vocabulary piece has side by side
   *   (`canCut`): no pair across it is ever a piece, so no merge can cross it.
   * - A long run with no such place (10 MB of spaces: LLaMA joins them into "▁▁".."▁"×16; a run
   *   of "-", "人" or "a") gets a soft cut: the piece is run with `cutMargin` characters more,
   *   cut at a boundary between its final symbols (so no merge of that run crosses it) and the
   *   margin is run again as part of the next piece. Whether a merge of the whole would cross
   *   it is then decided exactly (`softCutHolds`): the whole interleaves the two sides' merge
   *   sequences, and the only pair across the cut is (the left side's last symbol, the right
   *   side's first symbol) as each has grown so far; it is merged iff at some point it beats
   *   both sides' next merges (it loses ties to the left side's, which are further left, and
   *   wins ties against the right side's). Other pieces' merges do not change that pair nor the
   *   order of these two sequences, so checking each cut against its two neighbours suffices.
   *   Should a check fail (with the default margin no vocabulary tried so far does; tests
   *   force it with a margin of 0), the text from the last hard cut to the next one is run
   *   again whole, as one piece: never wrong, only as costly as before soft cuts existed.
   */
  private encodeLong(s: string, out: number[], state: { prevUnk: boolean }, sink?: IdSink): void {
    // A user-defined piece is matched longest first: the margin must hold the longest.
    const margin = Math.max(this.cutMargin, this.userDefined ? this.maxUserLength : 0);
    // Where to start again if a soft cut fails: the last hard cut.
    let restartFrom = 0;
    let restartOut = out.length;
    let restartUnk = state.prevUnk;
    // The piece that ends at `from` when that cut is soft (to be checked against the next one).
    let pending: PieceLog | undefined;
    // After a failed check: run the text up to the next hard cut whole, as one piece.
    let whole = false;
    for (let from = 0; from < s.length; ) {
      let target = Math.min(s.length, from + this.chunkLength);
      let to = target;
      const searchEnd = whole ? s.length : Math.min(s.length, target + this.hardCutSearch);
      while (to < searchEnd && !this.canCut(s, to)) to++;
      let end: number;
      let log: PieceLog | undefined;
      let soft = false;
      if (to === s.length || this.canCut(s, to)) {
        // A hard cut (or the end of the text).
        const { count, revMerge } = this.runBpe(s.slice(from, to), pending !== undefined);
        if (pending) log = this.pieceLog(to - from, count, to - from);
        this.emitSymbols(s.slice(from, to), to - from, out, state, revMerge);
        end = to;
      } else {
        // A soft cut: at the last final-symbol boundary up to `target` of a run reaching
        // `margin` further; widened while there is none.
        for (;;) {
          let e = Math.min(s.length, target + margin);
          if (e < s.length && !this.canCutCodePoint(s, e)) e++; // never half a surrogate pair
          const w = s.slice(from, e);
          const { count, revMerge } = this.runBpe(w, true);
          let cut = -1;
          if (e === s.length) cut = w.length;
          else {
            const { end: symEnd, next } = this.scratch;
            for (let i = 0; i !== -1 && symEnd[i] <= target - from; i = next[i]) cut = symEnd[i];
            if (cut < 1) cut = -1;
          }
          if (cut < 0) {
            target = Math.min(s.length, target + this.chunkLength);
            continue;
          }
          if (e === s.length) {
            // The run reached the end of the text: no cut after it.
            if (pending) log = this.pieceLog(cut, count, cut);
            this.emitSymbols(w, cut, out, state, revMerge);
          } else if (revMerge) {
            // UNUSED pieces are split back by what this run recorded; the margin's records
            // must not count, so the piece is run again alone.
            const piece = w.slice(0, cut);
            const again = this.runBpe(piece, true);
            log = this.pieceLog(cut, again.count, cut);
            this.emitSymbols(piece, cut, out, state, again.revMerge);
            soft = true;
          } else {
            log = this.pieceLog(w.length, count, cut);
            this.emitSymbols(w, cut, out, state, revMerge);
            soft = true;
          }
          end = from + cut;
          break;
        }
      }
      if (pending && !this.softCutHolds(s, from, pending, log!)) {
        out.length = restartOut;
        state.prevUnk = restartUnk;
        whole = true;
        from = restartFrom;
        pending = undefined;
        continue;
      }
      whole = false;
      from = end;
      if (soft) pending = log;
      else {
        pending = undefined;
        // Nothing before a hard cut is ever run again: its ids may go.
        flushIds(out, sink);
        restartFrom = end;
        restartOut = out.length;
        restartUnk = state.prevUnk;
      }
    }
  }

  /** May normalized text be cut between s[i - 1] and s[i] without changing its ids, whatever the rest? */
  private canCut(s: string, i: number): boolean {
    const a = s.charCodeAt(i - 1);
    const b = s.charCodeAt(i);
    if (a >= 0xd800 && a <= 0xdbff && b >= 0xdc00 && b <= 0xdfff) return false; // one code point
    return !this.joinPairs.has(a * 0x10000 + b);
  }

  /** Is s[i] not the second half of a surrogate pair? */
  private canCutCodePoint(s: string, i: number): boolean {
    const a = s.charCodeAt(i - 1);
    const b = s.charCodeAt(i);
    return !(a >= 0xd800 && a <= 0xdbff && b >= 0xdc00 && b <= 0xdfff);
  }

  /**
   * From the last `runBpe` (with its log, over text of `length` code units and `count` symbols,
   * that no merge crossed at `cut`): what a soft cut's check needs of the piece [0, cut).
   */
  private pieceLog(length: number, count: number, cut: number): PieceLog {
    const sc = this.scratch;
    const { start, frozen } = sc;
    const scores: number[] = [];
    const firstSteps: number[] = [];
    const firstLens: number[] = [];
    const lastSteps: number[] = [];
    const lastLens: number[] = [];
    for (let k = 0; k < sc.logCount; k++) {
      const e = sc.logEnd[k];
      if (e > cut) continue;
      const step = scores.length;
      scores.push(sc.logScore[k]);
      if (sc.logStart[k] === 0) {
        firstSteps.push(step);
        firstLens.push(e);
      }
      if (e === cut) {
        lastSteps.push(step);
        lastLens.push(cut - sc.logStart[k]);
      }
    }
    // The symbol that first ended at `cut`: the one before the symbol starting there.
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (start[mid] < cut) lo = mid + 1;
      else hi = mid;
    }
    const last = lo - 1;
    return {
      scores: Float64Array.from(scores),
      firstLen0: (count > 1 ? start[1] : length) - start[0],
      firstFrozen: frozen[0] === 1,
      firstSteps,
      firstLens,
      lastLen0: cut - start[last],
      lastFrozen: frozen[last] === 1,
      lastSteps,
      lastLens,
    };
  }

  /**
   * Does the whole's BPE never merge across the soft cut at `at` between the pieces `left`
   * and `right`? Replays the two pieces' merges interleaved as the whole runs them (at equal
   * scores the left piece's first) and checks the pair across the cut at every step.
   */
  private softCutHolds(s: string, at: number, left: PieceLog, right: PieceLog): boolean {
    const a = left.scores;
    const b = right.scores;
    let i = 0;
    let j = 0;
    let li = 0;
    let rj = 0;
    let lx = left.lastLen0;
    let ly = right.firstLen0;
    const frozen = left.lastFrozen || right.firstFrozen;
    let across: number | undefined; // score of the pair across the cut, when it is a piece
    let changed = true;
    for (;;) {
      if (changed) {
        const id = !frozen && lx + ly <= this.maxPieceLength ? this.mergeable.get(s.slice(at - lx, at + ly)) : undefined;
        across = id === undefined ? undefined : this.scores[id];
        changed = false;
      }
      const leftNext = i < a.length;
      const rightNext = j < b.length;
      if (across !== undefined && (!leftNext || across > a[i]) && (!rightNext || across >= b[j])) return false;
      if (!leftNext && !rightNext) return true;
      if (leftNext && (!rightNext || a[i] >= b[j])) {
        if (li < left.lastSteps.length && left.lastSteps[li] === i) {
          lx = left.lastLens[li++];
          changed = true;
        }
        i++;
      } else {
        if (rj < right.firstSteps.length && right.firstSteps[rj] === j) {
          ly = right.firstLens[rj++];
          changed = true;
        }
        j++;
      }
    }
  }

  /** BPE over normalized text; `state.prevUnk` carries a run of unknown symbols across pieces. */
  private encodeNormalized(s: string, out: number[], state: { prevUnk: boolean }): void {
    const { revMerge } = this.runBpe(s, false);
    this.emitSymbols(s, s.length, out, state, revMerge);
  }

  /**
   * Splits `s` into symbols and merges them (in this.scratch); with `log`, records each merge
   * (score, start, new end) in order. Returns the symbol count and, for a vocabulary with
   * UNUSED pieces, how each was formed.
   */
  private runBpe(s: string, log: boolean): { count: number; revMerge?: Map<string, [string, string]> } {
    const sc = this.scratch;
    sc.ensureSymbols(s.length);
    const { start, end, prev, next, frozen, symId } = sc;
    sc.logCount = 0;

    // One symbol per code point; a user-defined piece is one symbol that never merges.
    let count = 0;
    for (let i = 0; i < s.length; ) {
      let len = this.userDefined ? this.userDefined.longestMatch(s, i) : 0;
      frozen[count] = len > 0 ? 1 : 0;
      if (len === 0) {
        const c = s.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          len = 2;
          symId[count] = this.mergeable.get(s.slice(i, i + 2)) ?? -1;
        } else {
          len = 1;
          let id = this.charIds[c];
          if (id === -2) id = this.charIds[c] = this.mergeable.get(s[i]) ?? -1;
          symId[count] = id;
        }
      } else {
        symId[count] = this.mergeable.get(s.slice(i, i + len)) ?? -1;
      }
      start[count] = i;
      end[count] = i + len;
      prev[count] = count - 1;
      next[count] = count + 1;
      count++;
      i += len;
    }
    next[count - 1] = -1;

    let heapSize = 0;
    let pairCount = 0;
    const revMerge = this.hasUnused ? new Map<string, [string, string]>() : undefined;

    const addPair = (left: number, right: number): void => {
      if (left < 0 || right < 0 || frozen[left] || frozen[right]) return;
      const size = end[right] - start[left];
      if (size > this.maxPieceLength) return;
      const idL = symId[left];
      const idR = symId[right];
      const id = idL >= 0 && idR >= 0 ? this.pairIds.get(idL, idR) : (this.mergeable.get(s.slice(start[left], end[right])) ?? -1);
      if (id < 0) return;
      if (pairCount === sc.pairLeft.length) sc.growPairs();
      const p = pairCount++;
      sc.pairLeft[p] = left;
      sc.pairRight[p] = right;
      sc.pairSize[p] = size;
      sc.pairScore[p] = this.scores[id];
      sc.pairId[p] = id;
      if (revMerge && this.types[id] === PieceType.Unused) {
        revMerge.set(this.pieces[id], [s.slice(start[left], end[left]), s.slice(start[right], end[right])]);
      }
      // Sift up: a pair ranks higher with a higher score, then with a smaller left index.
      const heap = sc.heap;
      const score = sc.pairScore;
      const pl = sc.pairLeft;
      let i = heapSize++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const q = heap[parent];
        if (score[q] > score[p] || (score[q] === score[p] && pl[q] < pl[p])) break;
        heap[i] = q;
        i = parent;
      }
      heap[i] = p;
    };

    for (let i = 1; i < count; i++) addPair(i - 1, i);

    while (heapSize > 0) {
      const heap = sc.heap;
      const score = sc.pairScore;
      const pl = sc.pairLeft;
      const top = heap[0];
      // Pop: move the last entry down from the root.
      const last = heap[--heapSize];
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= heapSize) break;
        const r = child + 1;
        if (r < heapSize) {
          const a = heap[child];
          const b = heap[r];
          if (score[b] > score[a] || (score[b] === score[a] && pl[b] < pl[a])) child = r;
        }
        const c = heap[child];
        if (score[last] > score[c] || (score[last] === score[c] && pl[last] < pl[c])) break;
        heap[i] = c;
        i = child;
      }
      heap[i] = last;

      const left = sc.pairLeft[top];
      const right = sc.pairRight[top];
      const leftLen = end[left] - start[left];
      const rightLen = end[right] - start[right];
      // Stale: one side was merged away, or has grown since this pair was queued.
      if (leftLen === 0 || rightLen === 0 || leftLen + rightLen !== sc.pairSize[top]) continue;

      end[left] = end[right];
      symId[left] = sc.pairId[top];
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      end[right] = start[right];
      if (log) {
        if (sc.logCount === sc.logScore.length) sc.growLog();
        sc.logScore[sc.logCount] = sc.pairScore[top];
        sc.logStart[sc.logCount] = start[left];
        sc.logEnd[sc.logCount++] = end[left];
      }

      addPair(prev[left], left);
      addPair(left, next[left]);
    }

    return { count, revMerge };
  }

  /** Appends the ids of the symbols of the last `runBpe` over `s` that end at or before `limit`. */
  private emitSymbols(s: string, limit: number, out: number[], state: { prevUnk: boolean }, revMerge?: Map<string, [string, string]>): void {
    const { start, end, next, symId } = this.scratch;
    let prevUnk = state.prevUnk;
    const emit = (piece: string): void => {
      const id = this.pieceToId(piece);
      if (revMerge && this.types[id] === PieceType.Unused) {
        const parts = revMerge.get(piece);
        if (parts) {
          emit(parts[0]);
          emit(parts[1]);
          return;
        }
      }
      const isUnk = id === this.settings.unkId;
      if (isUnk && this.settings.byteFallback) {
        pushUtf8Bytes(piece, this.byteIds, out);
      } else if (!(isUnk && prevUnk)) {
        // A run of unknown symbols is one <unk> (PopulateSentencePieceText).
        out.push(id);
      }
      prevUnk = isUnk;
    };
    const direct = !this.reservedOverlap && !revMerge;
    for (let i = 0; i !== -1 && end[i] <= limit; i = next[i]) {
      if (direct && symId[i] >= 0) {
        out.push(symId[i]);
        prevUnk = false;
      } else if (direct && this.settings.byteFallback) {
        // Not a piece, never merged: one code point, which falls back to its UTF-8 bytes.
        pushCodePointBytes(s.codePointAt(start[i])!, this.byteIds, out);
        prevUnk = true;
      } else {
        emit(s.slice(start[i], end[i]));
      }
    }
    state.prevUnk = prevUnk;
  }

  // -------------------------------------------------------------------------------------------
  // Decoding

  /** Token ids to text, exactly as SentencePiece's DecodeIds. */
  decode(ids: ArrayLike<number>): string {
    const decoder = this.createStreamingDecoder();
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const piece = decoder.push(ids[i]);
      if (piece.length > 0) parts.push(piece);
    }
    parts.push(decoder.flush());
    return parts.join("");
  }

  /**
   * A decoder fed one id at a time (generation): it returns text only once a UTF-8 sequence is
   * complete, and the concatenation of everything it returns equals `decode(allIds)`.
   */
  createStreamingDecoder(): StreamingDecoder {
    return new StreamingDecoder(this);
  }

  /** @internal What a non-byte piece decodes to away from the start of the text (cached). */
  pieceText(id: number): string {
    let text = this.texts[id];
    if (text === undefined) text = this.texts[id] = this.decodePiece(id, false)[0];
    return text;
  }

  /** @internal The text of one non-byte piece (DecodeSentencePiece); [text, consumedBosSpace]. */
  decodePiece(id: number, atStart: boolean): [string, boolean] {
    const type = this.types[id];
    if (type === PieceType.Control) return ["", false];
    if (type === PieceType.Unknown) return [this.settings.unkSurface, false];
    let piece = this.pieces[id];
    let consumed = false;
    if (atStart && (this.settings.addDummyPrefix || this.settings.removeExtraWhitespaces)) {
      if (piece.startsWith(SPACE_SYMBOL)) {
        piece = piece.slice(SPACE_SYMBOL.length);
        // With extra whitespace removal every leading space goes, not only the first.
        consumed = !this.settings.removeExtraWhitespaces;
      }
    }
    return [piece.replaceAll(SPACE_SYMBOL, " "), consumed];
  }

  /** @internal */
  byteOf(id: number): number {
    this.checkId(id);
    return this.types[id] === PieceType.Byte ? pieceToByte(this.pieces[id]) : -1;
  }
}

/** See `SentencePieceTokenizer.createStreamingDecoder`. */
export class StreamingDecoder {
  private readonly bytes = new Utf8ByteRun();
  /** SentencePiece's is_bos_ws / bos_ws_seen: the first "▁" of the output is dropped. */
  private atStart = true;
  private bosSpaceSeen = false;
  private emittedText = false;

  constructor(private readonly tokenizer: SentencePieceTokenizer) {}

  push(id: number): string {
    const byte = this.tokenizer.byteOf(id);
    if (byte >= 0) {
      const text = this.bytes.push(byte);
      if (text.length > 0) this.emittedText = true;
      return text;
    }
    let text = this.bytes.flush();
    if (text.length > 0) this.emittedText = true;
    if (this.bosSpaceSeen || this.emittedText) this.atStart = false;
    let piece: string;
    if (this.atStart) {
      [piece, this.bosSpaceSeen] = this.tokenizer.decodePiece(id, true);
    } else {
      piece = this.tokenizer.pieceText(id);
    }
    text += piece;
    if (piece.length > 0) this.emittedText = true;
    return text;
  }

  /** Ends the stream: bytes still waiting for the rest of their character become U+FFFD. */
  flush(): string {
    const text = this.bytes.flush();
    if (text.length > 0) this.emittedText = true;
    return text;
  }
}

/** Receives the ids made so far (see `encodeInBlocks`). */
type IdSink = (ids: number[]) => void;

/** Hands `out` to the sink once it holds many ids, leaving it empty. */
function flushIds(out: number[], sink: IdSink | undefined): void {
  if (sink && out.length >= 1 << 16) sink(out.splice(0, out.length));
}

/** "<0x41>" -> 0x41, anything else -> -1. */
export function pieceToByte(piece: string): number {
  if (piece.length !== 6 || !piece.startsWith("<0x") || piece[5] !== ">") return -1;
  const hex = piece.slice(3, 5);
  if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return -1;
  return parseInt(hex, 16);
}

export function byteToPiece(byte: number): string {
  return `<0x${hex2(byte)}>`;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** Appends the byte-piece ids of a string's UTF-8 encoding, iterating code points. */
function pushUtf8Bytes(piece: string, byteIds: Int32Array, out: number[]): void {
  for (const ch of piece) pushCodePointBytes(ch.codePointAt(0)!, byteIds, out);
}

function pushCodePointBytes(cp: number, byteIds: Int32Array, out: number[]): void {
  if (cp < 0x80) out.push(byteIds[cp]);
  else if (cp < 0x800) out.push(byteIds[0xc0 | (cp >> 6)], byteIds[0x80 | (cp & 0x3f)]);
  else if (cp < 0x10000) out.push(byteIds[0xe0 | (cp >> 12)], byteIds[0x80 | ((cp >> 6) & 0x3f)], byteIds[0x80 | (cp & 0x3f)]);
  else out.push(byteIds[0xf0 | (cp >> 18)], byteIds[0x80 | ((cp >> 12) & 0x3f)], byteIds[0x80 | ((cp >> 6) & 0x3f)], byteIds[0x80 | (cp & 0x3f)]);
}

/**
 * Open-addressing hash table (left id, right id) -> merged id over typed arrays: no boxed
 * keys, one probe sequence per candidate pair.
 */
class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly merged: Int32Array;
  private readonly mask: number;

  /** Every way of cutting every piece into two pieces (never inside a surrogate pair). */
  static fromPieces(mergeable: ReadonlyMap<string, number>): PairTable {
    const triples: number[] = [];
    for (const [piece, id] of mergeable) {
      for (let i = 1; i < piece.length; i++) {
        const c = piece.charCodeAt(i);
        if (c >= 0xdc00 && c <= 0xdfff) continue;
        const left = mergeable.get(piece.slice(0, i));
        if (left === undefined) continue;
        const right = mergeable.get(piece.slice(i));
        if (right !== undefined) triples.push(left, right, id);
      }
    }
    return new PairTable(triples);
  }

  /** `triples`: left, right, merged, repeated. */
  constructor(triples: readonly number[]) {
    const count = triples.length / 3;
    let capacity = 16;
    while (capacity < count * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.left = new Int32Array(capacity).fill(-1);
    this.right = new Int32Array(capacity);
    this.merged = new Int32Array(capacity);
    for (let t = 0; t < triples.length; t += 3) {
      let slot = this.slot(triples[t], triples[t + 1]);
      while (this.left[slot] !== -1) slot = (slot + 1) & this.mask;
      this.left[slot] = triples[t];
      this.right[slot] = triples[t + 1];
      this.merged[slot] = triples[t + 2];
    }
  }

  private slot(l: number, r: number): number {
    return (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77)) & this.mask;
  }

  /** The merged id, or -1. */
  get(l: number, r: number): number {
    let slot = this.slot(l, r);
    for (;;) {
      const k = this.left[slot];
      if (k === -1) return -1;
      if (k === l && this.right[slot] === r) return this.merged[slot];
      slot = (slot + 1) & this.mask;
    }
  }
}
