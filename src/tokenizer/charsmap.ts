/**
 * SentencePiece's precompiled normalization map (NormalizerSpec.precompiled_charsmap, e.g. the
 * `nmt_nfkc` rules): a darts-clone double-array trie over UTF-8 bytes plus a blob of
 * NUL-terminated replacement strings.
 *
 *   blob = u32 trie_size (little-endian) | trie_size bytes of u32 units | replacement strings
 *
 * A unit packs (darts-clone DoubleArrayUnit):
 *   bit 31 + bits 0..7  label          bit 8   has_leaf
 *   bits 10..31         offset, shifted left by 8 more when bit 9 is set
 *   bits 0..30          value (in a leaf unit: the replacement's byte offset in the blob tail)
 */
import { TokenizerError } from "./errors.js";

export class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly normalized: Uint8Array;
  private readonly cache = new Map<number, Uint8Array>();

  constructor(blob: Uint8Array, source: string) {
    if (blob.length <= 4) throw new TokenizerError(`${source}: precompiled_charsmap of ${blob.length} bytes is too short for its 4-byte trie size`);
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize >= blob.length - 4 + 1 || trieSize % 4 !== 0 || trieSize === 0) {
      throw new TokenizerError(`${source}: precompiled_charsmap trie size ${trieSize} does not fit the ${blob.length}-byte blob (expected a multiple of 4 below ${blob.length - 4})`);
    }
    // A copy at offset 0 (a Node Buffer's slice() would be a view into the whole file).
    const trie = new Uint8Array(blob.subarray(4, 4 + trieSize));
    this.units = new Uint32Array(trie.buffer, 0, trieSize / 4);
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
      const dv = new DataView(trie.buffer);
      for (let i = 0; i < this.units.length; i++) this.units[i] = dv.getUint32(i * 4, true);
    }
    this.normalized = blob.subarray(4 + trieSize);
  }

  /**
   * The longest rule matching bytes[pos..end): its length in bytes (0 when none) and, through
   * `replacement`, what it maps to.
   */
  longestMatch(bytes: Uint8Array, pos: number, end: number): { length: number; value: number } {
    const units = this.units;
    let best = 0;
    let bestValue = 0;
    let node = offsetOf(units[0]);
    for (let i = pos; i < end; i++) {
      const key = bytes[i];
      node ^= key;
      if (node >= units.length) break;
      const unit = units[node];
      if ((unit & 0x800000ff) >>> 0 !== key) break;
      node ^= offsetOf(unit);
      if (node >= units.length) break;
      if ((unit >>> 8) & 1) {
        best = i - pos + 1;
        bestValue = units[node] & 0x7fffffff;
      }
    }
    return { length: best, value: bestValue };
  }

  /** The NUL-terminated replacement at `value`. */
  replacement(value: number): Uint8Array {
    let r = this.cache.get(value);
    if (r === undefined) {
      let e = value;
      while (e < this.normalized.length && this.normalized[e] !== 0) e++;
      r = this.normalized.subarray(Math.min(value, this.normalized.length), e);
      this.cache.set(value, r);
    }
    return r;
  }
}

function offsetOf(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}
