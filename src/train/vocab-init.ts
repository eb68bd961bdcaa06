/**
 * Where a grown vocabulary's new rows start. A new piece such as "明月" was, for the old model,
 * a run of old pieces (its characters, or their UTF-8 bytes as `<0xXX>` byte-fallback pieces);
 * starting its embedding and lm_head rows at the mean of those pieces' rows gives the new
 * piece a place the model already knows, so Chinese pre-training starts from a loss near the
 * old model's instead of from log(new pieces). (HF's resize_token_embeddings, which upstream
 * used, starts every new row at the same mean; that is the fallback here.)
 */

/** The old ids a piece decomposes into: each character's own piece, else its UTF-8 bytes. */
export function oldPieceIds(piece: string, oldIds: ReadonlyMap<string, number>): number[] {
  const ids: number[] = [];
  const encoder = new TextEncoder();
  for (const ch of piece) {
    const whole = oldIds.get(ch);
    if (whole !== undefined) {
      ids.push(whole);
      continue;
    }
    for (const byte of encoder.encode(ch)) {
      const id = oldIds.get(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
      if (id !== undefined) ids.push(id);
    }
  }
  return ids;
}

/** For each id >= oldRows of `pieces`, the old rows to average (empty: use the overall mean). */
export function newRowSources(pieces: readonly string[], oldRows: number): (id: number) => number[] {
  const oldIds = new Map<string, number>();
  for (let id = 0; id < Math.min(oldRows, pieces.length); id++) if (!oldIds.has(pieces[id]!)) oldIds.set(pieces[id]!, id);
  return (id) => (id < oldRows || id >= pieces.length ? [] : oldPieceIds(pieces[id]!, oldIds));
}
