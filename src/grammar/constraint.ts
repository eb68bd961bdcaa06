/**
 * Grammar-constrained decoding: before each sample, tokens the grammar cannot take next get
 * -Infinity logits; after it, the grammar moves past the chosen token. EOS is offered only
 * where the grammar may end, and is the only choice once it must.
 */
import type { SentencePieceTokenizer } from "../tokenizer/index.js";
import { GrammarError } from "./errors.js";
import type { Grammar, GrammarMatcher } from "./grammar.js";
import { TokenTrie, maskLogits, tokenBytes } from "./vocab.js";

/** Restricts which token may come next; `generateConstrained` calls it around the sampler. */
export interface TokenConstraint {
  /** Sets the logits of tokens that may not come next to -Infinity. */
  mask(logits: Float32Array): void;
  /** Moves past the chosen token. */
  accept(id: number): void;
}

/** Masks remembered per constraint (one vocabulary-sized byte array each). */
const MASK_CACHE_SIZE = 32;

export class GrammarConstraint implements TokenConstraint {
  readonly matcher: GrammarMatcher;
  private readonly trie: TokenTrie;
  private readonly allowedIds: Uint8Array;
  private readonly masks = new Map<number, Uint8Array>();
  private cacheEpoch = -1;
  /** No text generated yet: SentencePiece will drop the first piece's leading space. */
  private atStart: boolean;

  constructor(
    grammar: Grammar,
    private readonly tokenizer: SentencePieceTokenizer,
  ) {
    this.matcher = grammar.matcher();
    this.trie = TokenTrie.of(tokenizer);
    this.allowedIds = new Uint8Array(tokenizer.vocabSize);
    this.atStart = dropsLeadingSpace(tokenizer);
  }

  /**
   * Token ids allowed next (1) or not (0); valid until the next call. Masks are remembered per
   * grammar state: inside a string or a list the same state comes back token after token.
   */
  allowed(): Uint8Array {
    const m = this.matcher;
    if (this.cacheEpoch !== m.epoch) {
      this.masks.clear();
      this.cacheEpoch = m.epoch;
    }
    const key = this.atStart ? -1 - m.cursor : m.cursor;
    const known = this.masks.get(key);
    if (known) {
      this.masks.delete(key);
      this.masks.set(key, known);
      return known;
    }
    const n = this.trie.allowed(m, this.allowedIds, this.atStart);
    if (n === 0) throw new GrammarError("no token of the vocabulary can continue the grammar here (the vocabulary lacks the characters it needs)");
    const mask = this.allowedIds.slice();
    if (this.masks.size >= MASK_CACHE_SIZE) this.masks.delete(this.masks.keys().next().value!);
    this.masks.set(key, mask);
    return mask;
  }

  mask(logits: Float32Array): void {
    maskLogits(logits, this.allowed());
  }

  accept(id: number): void {
    if (id === this.tokenizer.eosId) {
      if (!this.matcher.canEnd) throw new GrammarError(`end of sequence (token ${id}) before the grammar is complete`);
      return;
    }
    const bytes = tokenBytes(this.tokenizer, id, this.atStart);
    if (!this.matcher.acceptBytes(bytes)) throw new GrammarError(`token ${id} (${JSON.stringify(this.tokenizer.idToPiece(id))}) does not fit the grammar here`);
    if (bytes.length > 0) this.atStart = false;
  }
}

const dropCache = new WeakMap<SentencePieceTokenizer, boolean>();

/** Whether the tokenizer's decoder drops the leading space of the first piece (dummy prefix). */
function dropsLeadingSpace(tokenizer: SentencePieceTokenizer): boolean {
  let known = dropCache.get(tokenizer);
  if (known === undefined) {
    known = false;
    const { pieces } = tokenizer.vocabulary();
    for (let id = 0; id < pieces.length; id++) {
      const p = pieces[id]!;
      if (p.length > 1 && p.startsWith("\u2581") && tokenBytes(tokenizer, id, false).length > 1) {
        known = tokenizer.decode([id]) === p.slice(1).replaceAll("\u2581", " ");
        break;
      }
    }
    dropCache.set(tokenizer, known);
  }
  return known;
}
