/*
 * How a matmul over a matrix stored in groups of four rows (q4_0_r4.ts, q4_k_r4.ts, q6_k_r4.ts;
 * src/kernels/layout.ts) walks its rows and tokens: panel by panel (long rows; one panel
 * otherwise), group by group, tokens in fours through the type's tile where the thread owns the
 * whole group, then one at a time through its dot product, which gives the four rows' results in
 * the lanes of one vector. A thread's slice may start or end inside a group: its rows there are
 * computed with the whole group and only theirs stored. A grouped matrix has ldy rows (the
 * kernels' choice of layout already reads its row count from ldy).
 */

/**
 * A tile: blocks [b0, b1) of the group at g (block b at g + 4 b blockBytes) against four tokens
 * (activations at q + t qs), continuing the sums at yp + t ys and storing them back.
 */
export type GroupTile = (g: usize, q: usize, qs: usize, n: i32, b0: i32, b1: i32, yp: usize, ys: usize) => void;
/**
 * A dot product: blocks [b0, b1) of the group at g against one token (at q), continuing the four
 * rows' sums from acc; fp: an output slot it may use as a fence.
 */
export type GroupDot = (g: usize, q: usize, n: i32, b0: i32, b1: i32, acc: v128, fp: usize) => v128;

/**
 * Panels of long rows (src/kernels/layout.ts has the layout and the reason): rows longer than
 * PANEL_MIN_COLUMNS lie in panels of PANEL_COLUMNS columns, one after another, each a grouped
 * matrix of its own. Both constants are layout.ts's too.
 */
const PANEL_COLUMNS: i32 = 4096;
const PANEL_MIN_COLUMNS: i32 = 8192;

/** The two, for tools that lay matrices out themselves (tools/bench-matmul-ab.mjs). */
export function panel_columns(): i32 { return PANEL_COLUMNS; }
export function panel_min_columns(): i32 { return PANEL_MIN_COLUMNS; }

/** Blocks per panel (layout.ts, panelBlocks). */
// @ts-ignore: decorator
@inline
function panelBlocks(n: i32, blockSize: i32): i32 {
  return n > PANEL_MIN_COLUMNS ? PANEL_COLUMNS / blockSize : n / blockSize;
}

/**
 * Where the kernels take row r's group in the panel of blocks [b0, b1): panels lie one after
 * another (b0 ldy blocks before this one), the group's part at r (b1 - b0) blocks into it, moved
 * back by b0 group blocks so that block b of the panel lies at g + 4 b blockBytes.
 */
// @ts-ignore: decorator
@inline
function groupAt(w: usize, r: i32, b0: i32, b1: i32, ldy: i32, blockBytes: usize): usize {
  return w + <usize>b0 * <usize>ldy * blockBytes + <usize>r * <usize>(b1 - b0) * blockBytes - (<usize>b0 * blockBytes << 2);
}

/**
 * y[t][r] for rows [r0, r1) and tokens 0..nTok-1 (rows = ldy, a multiple of 4; blocks of
 * `blockSize` values in `blockBytes` bytes per row; `qs` one token's activation bytes). Panel by
 * panel, the thread's whole groups in memory order, each through the tile for tokens in fours
 * and the dot product for the rest, their sums kept in the outputs between panels (each row's
 * float steps in the same order as in one pass, so the same bits). Groups the slice owns only in
 * part go through the dot product for all of their panels at once (the other rows' outputs are
 * not this thread's to keep sums in). The kernels are called through references: each is a
 * function of its own anyway (V8 keeps a kernel's registers only then), so nothing is lost.
 * `g` as the kernels take it: the address block 0 of the group would have, so that block b of
 * the panel lies at g + 4 b blockBytes.
 */
export function walkGroups(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32, blockSize: i32, blockBytes: usize, qs: usize, tile: GroupTile, dot: GroupDot): void {
  const ys = <usize>ldy << 2;
  const quads = nTok & ~3;
  const nb = n / blockSize;
  const P = panelBlocks(n, blockSize);
  const zero = f32x4.splat(0);
  const g0 = (r0 + 3) & ~3, g1 = r1 & ~3;
  for (let b0 = 0; b0 < nb; b0 += P) {
    const b1 = min(nb, b0 + P);
    for (let r = g0; r < g1; r += 4) {
      const g = groupAt(w, r, b0, b1, ldy, blockBytes);
      for (let t = 0; t < quads; t += 4) {
        const yp = y + <usize>t * ys + (<usize>r << 2);
        if (b0 == 0) {
          v128.store(yp, zero);
          v128.store(yp + ys, zero);
          v128.store(yp + 2 * ys, zero);
          v128.store(yp + 3 * ys, zero);
        }
        tile(g, q + <usize>t * qs, qs, n, b0, b1, yp, ys);
      }
      for (let t = quads; t < nTok; t++) {
        const yp = y + <usize>t * ys + (<usize>r << 2);
        v128.store(yp, dot(g, q + <usize>t * qs, n, b0, b1, b0 == 0 ? zero : v128.load(yp), yp));
      }
    }
  }
  for (let r = r0 & ~3; r < r1; r += 4) {
    if (r >= g0 && r < g1) continue;
    for (let t = 0; t < nTok; t++) {
      const yp = y + <usize>t * ys + (<usize>r << 2);
      const fp = ownSlot(yp, r, r0);
      let acc = zero;
      for (let b0 = 0; b0 < nb; b0 += P) {
        const b1 = min(nb, b0 + P);
        const g = groupAt(w, r, b0, b1, ldy, blockBytes);
        acc = dot(g, q + <usize>t * qs, n, b0, b1, acc, fp);
      }
      storeGroupRows(yp, acc, r, r0, r1);
    }
  }
}

/** A group's results v (rows r..r+3, lane k = row r + k) stored at yp, only those of rows in [r0, r1). */
// @ts-ignore: decorator
@inline
function storeGroupRows(yp: usize, v: v128, r: i32, r0: i32, r1: i32): void {
  if (r >= r0 && r + 4 <= r1) {
    v128.store(yp, v);
    return;
  }
  if (r >= r0 && r < r1) v128.store32_lane(yp, v, 0);
  if (r + 1 >= r0 && r + 1 < r1) v128.store32_lane(yp + 4, v, 1);
  if (r + 2 >= r0 && r + 2 < r1) v128.store32_lane(yp + 8, v, 2);
  if (r + 3 >= r0 && r + 3 < r1) v128.store32_lane(yp + 12, v, 3);
}

/** An output slot of the group's (rows r..r+3 at yp) that this thread owns: its first row from r0 on. */
// @ts-ignore: decorator
@inline
function ownSlot(yp: usize, r: i32, r0: i32): usize {
  return yp + (<usize>(r >= r0 ? 0 : r0 - r) << 2);
}
