/**
 * Longest-prefix matching of user-defined pieces (sentencepiece's PrefixMatcher): such a
 * piece is never normalized and never merged, so it is cut out of the text first.
 * The trie is keyed by UTF-16 code units for the BPE pass and by UTF-8 bytes for the
 * normalizer; a match always ends on a character boundary because pieces are whole strings.
 */
interface Node {
  next: Map<number, Node>;
  terminal: boolean;
}

const newNode = (): Node => ({ next: new Map(), terminal: false });

export class PrefixMatcher {
  private readonly units = newNode();
  private readonly bytes = newNode();

  constructor(pieces: Iterable<string>) {
    const utf8 = new TextEncoder();
    for (const piece of pieces) {
      insert(this.units, Array.from({ length: piece.length }, (_, i) => piece.charCodeAt(i)));
      insert(this.bytes, utf8.encode(piece));
    }
  }

  /** UTF-16 length of the longest piece starting at s[pos], or 0. */
  longestMatch(s: string, pos: number): number {
    let node: Node | undefined = this.units;
    let best = 0;
    for (let i = pos; i < s.length; i++) {
      node = node.next.get(s.charCodeAt(i));
      if (!node) break;
      if (node.terminal) best = i - pos + 1;
    }
    return best;
  }

  /** Byte length of the longest piece starting at bytes[pos], or 0. */
  longestMatchBytes(bytes: Uint8Array, pos: number, end: number): number {
    let node: Node | undefined = this.bytes;
    let best = 0;
    for (let i = pos; i < end; i++) {
      node = node.next.get(bytes[i]);
      if (!node) break;
      if (node.terminal) best = i - pos + 1;
    }
    return best;
  }
}

function insert(root: Node, keys: ArrayLike<number>): void {
  let node = root;
  for (let i = 0; i < keys.length; i++) {
    let child = node.next.get(keys[i]);
    if (!child) {
      child = newNode();
      node.next.set(keys[i], child);
    }
    node = child;
  }
  node.terminal = true;
}
