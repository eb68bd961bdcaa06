/**
 * Token masking: which vocabulary tokens may come next under a grammar.
 *
 * Each token's text is its UTF-8 bytes (computed once per tokenizer). The tokens go into a
 * byte trie, so the walk from the grammar's state visits each shared prefix once and drops a
 * whole subtree as soon as the grammar rejects its prefix:
 *
 *   root ─"{"─ • (token "{")
 *        ─" "─ • (token "▁") ─"t"─ • ─"r"─ ...
 *
 * Byte-fallback tokens (<0xXX>) are one byte each and tried directly. Control tokens have no
 * text and are never allowed, except EOS when the grammar may end. SentencePiece drops the
 * leading space of the first piece of a generation (the decoder's dummy-prefix rule), so on
 * the first step a piece's leading "▁" consumes nothing, as the decoded text will show.
 */
import { PieceType, pieceToByte, type SentencePieceTokenizer } from "../tokenizer/index.js";
import { cursorLeft, stepByte, type GrammarMatcher } from "./grammar.js";

const SPACE_SYMBOL = "\u2581";

export class TokenTrie {
  /** Trie nodes: first child, next sibling, edge byte, and the first token ending here. */
  private readonly firstChild: Int32Array;
  private readonly nextSibling: Int32Array;
  private readonly edge: Uint8Array;
  private readonly tokenAt: Int32Array;
  /** Further tokens ending at the same node (a linked list through token ids). */
  private readonly nextToken: Int32Array;
  /** Byte-fallback tokens: the id for each byte, or -1. */
  private readonly byteToken: Int32Array;
  readonly vocabSize: number;
  readonly eosId: number;

  private constructor(parts: { firstChild: Int32Array; nextSibling: Int32Array; edge: Uint8Array; tokenAt: Int32Array; nextToken: Int32Array; byteToken: Int32Array; vocabSize: number; eosId: number }) {
    this.firstChild = parts.firstChild;
    this.nextSibling = parts.nextSibling;
    this.edge = parts.edge;
    this.tokenAt = parts.tokenAt;
    this.nextToken = parts.nextToken;
    this.byteToken = parts.byteToken;
    this.vocabSize = parts.vocabSize;
    this.eosId = parts.eosId;
  }

  private static cache = new WeakMap<SentencePieceTokenizer, TokenTrie>();

  /** The trie of a tokenizer's vocabulary (built once per tokenizer). */
  static of(tokenizer: SentencePieceTokenizer): TokenTrie {
    let trie = TokenTrie.cache.get(tokenizer);
    if (!trie) {
      trie = TokenTrie.build(tokenizer);
      TokenTrie.cache.set(tokenizer, trie);
    }
    return trie;
  }

  static build(tokenizer: SentencePieceTokenizer): TokenTrie {
    const { pieces, types } = tokenizer.vocabulary();
    const encoder = new TextEncoder();
    const firstChild: number[] = [-1];
    const nextSibling: number[] = [-1];
    const edge: number[] = [0];
    const tokenAt: number[] = [-1];
    const nextToken = new Int32Array(pieces.length).fill(-1);
    const byteToken = new Int32Array(256).fill(-1);
    const child = (node: number, b: number): number => {
      for (let c = firstChild[node]!; c >= 0; c = nextSibling[c]!) if (edge[c] === b) return c;
      const c = firstChild.length;
      firstChild.push(-1);
      nextSibling.push(firstChild[node]!);
      edge.push(b);
      tokenAt.push(-1);
      firstChild[node] = c;
      return c;
    };
    pieces.forEach((piece, id) => {
      const type = types[id];
      if (type === PieceType.Byte) {
        const b = pieceToByte(piece);
        if (b >= 0 && byteToken[b]! < 0) byteToken[b] = id;
        return;
      }
      if (type === PieceType.Control || type === PieceType.Unknown || type === PieceType.Unused) return;
      const bytes = encoder.encode(piece.replaceAll(SPACE_SYMBOL, " "));
      if (bytes.length === 0) return;
      let node = 0;
      for (const b of bytes) node = child(node, b);
      nextToken[id] = tokenAt[node]!;
      tokenAt[node] = id;
    });
    return new TokenTrie({
      firstChild: Int32Array.from(firstChild),
      nextSibling: Int32Array.from(nextSibling),
      edge: Uint8Array.from(edge),
      tokenAt: Int32Array.from(tokenAt),
      nextToken,
      byteToken,
      vocabSize: pieces.length,
      eosId: tokenizer.eosId,
    });
  }

  get nodeCount(): number {
    return this.edge.length;
  }

  /**
   * Marks allowed[id] = 1 for every token the grammar accepts next from the matcher's state
   * (0 for the rest). `atStart`: the first generated token, whose leading space is dropped.
   * Returns how many are allowed.
   */
  allowed(m: GrammarMatcher, allowed: Uint8Array, atStart: boolean): number {
    allowed.fill(0);
    let count = 0;
    const start = m.cursor;
    const between = cursorLeft(start) === 0;
    const visit = (node: number, cursor: number): void => {
      const next = stepByte(m, cursor, this.edge[node]!);
      if (next < 0) return;
      for (let id = this.tokenAt[node]!; id >= 0; id = this.nextToken[id]!) {
        allowed[id] = 1;
        count++;
      }
      walk(node, next);
    };
    const walk = (node: number, cursor: number): void => {
      for (let c = this.firstChild[node]!; c >= 0; c = this.nextSibling[c]!) visit(c, cursor);
    };
    for (let c = this.firstChild[0]!; c >= 0; c = this.nextSibling[c]!) {
      // At the start the dropped space consumes nothing; the lone "▁" (no text at all) is not offered.
      if (atStart && between && this.edge[c] === 0x20) walk(c, start);
      else visit(c, start);
    }
    for (let b = 0; b < 256; b++) {
      const id = this.byteToken[b]!;
      if (id >= 0 && !allowed[id] && stepByte(m, start, b) >= 0) {
        allowed[id] = 1;
        count++;
      }
    }
    if (this.eosId >= 0 && this.eosId < allowed.length && !allowed[this.eosId] && m.canEnd) {
      allowed[this.eosId] = 1;
      count++;
    }
    return count;
  }
}

/** Sets logits of tokens not allowed to -Infinity. */
export function maskLogits(logits: Float32Array, allowed: Uint8Array): void {
  const n = Math.min(logits.length, allowed.length);
  for (let i = 0; i < n; i++) if (!allowed[i]) logits[i] = -Infinity;
  for (let i = n; i < logits.length; i++) logits[i] = -Infinity;
}

/** The UTF-8 bytes a token adds to the generated text (`atStart`: first token, leading space dropped). */
export function tokenBytes(tokenizer: SentencePieceTokenizer, id: number, atStart: boolean): Uint8Array {
  const type = tokenizer.pieceType(id);
  const piece = tokenizer.idToPiece(id);
  if (type === PieceType.Byte) return Uint8Array.of(pieceToByte(piece));
  if (type === PieceType.Control || type === PieceType.Unknown || type === PieceType.Unused) return new Uint8Array(0);
  let text = piece.replaceAll(SPACE_SYMBOL, " ");
  if (atStart && text.startsWith(" ")) text = text.slice(1);
  return new TextEncoder().encode(text);
}
