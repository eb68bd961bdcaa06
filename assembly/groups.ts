/*
 * How a matmul over a matrix stored in groups of four rows (q4_0_r4.ts, q4_k_r4.ts, q6_k_r4.ts;
 * src/kernels/layout.ts) walks its rows and tokens: group by group, tokens in fours through the
 * type's tile where the thread owns the whole group, then one at a time through its dot product,
 * which gives the four rows' results in the lanes of one vector. A thread's slice may start or
 * end inside a group: its rows there are computed with the whole group and only theirs stored.
 */

/** A tile: the group at g against four tokens (activations at q + t qs), results at yp + t ys. */
export type GroupTile = (g: usize, q: usize, qs: usize, n: i32, yp: usize, ys: usize) => void;
/** A dot product: the group at g against one token (at q); fp: an output slot it may use as a fence. */
export type GroupDot = (g: usize, q: usize, n: i32, fp: usize) => v128;

/**
 * y[t][r] for rows [r0, r1) and tokens 0..nTok-1 (rows = ldy, a multiple of 4; `rowBytes` one row's
 * bytes, `qs` one token's activation bytes). The kernels are called through references: each is
 * a function of its own anyway (V8 keeps a kernel's registers only then), so nothing is lost.
 */
export function walkGroups(w: usize, q: usize, y: usize, n: i32, r0: i32, r1: i32, nTok: i32, ldy: i32, rowBytes: usize, qs: usize, tile: GroupTile, dot: GroupDot): void {
  const ys = <usize>ldy << 2;
  const quads = nTok & ~3;
  for (let r = r0 & ~3; r < r1; r += 4) {
    const g = w + <usize>r * rowBytes;
    let t = 0;
    if (r >= r0 && r + 4 <= r1) {
      for (; t < quads; t += 4) tile(g, q + <usize>t * qs, qs, n, y + <usize>t * ys + (<usize>r << 2), ys);
    }
    for (; t < nTok; t++) {
      const yp = y + <usize>t * ys + (<usize>r << 2);
      storeGroupRows(yp, dot(g, q + <usize>t * qs, n, ownSlot(yp, r, r0)), r, r0, r1);
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
