/**
 * How matrices lie in kernel memory: ggml's row-major block layout, except Q4_0 matrices of a
 * multiple of 8 rows and Q4_K and Q6_K matrices of a multiple of 4 rows, which the loader stores
 * in groups of four rows (assembly/q4_0_r4.ts, q4_k_r4.ts and q6_k_r4.ts have the layouts and the
 * reason: one memory stream, one activation load and one scale conversion for four rows; for Q4_0
 * also llama.cpp's float order for such matrices, while Q4_K and Q6_K keep each row's order).
 * Every backend reads the same bytes: the WASM and reference kernels and the WebGPU shaders.
 *
 * Panels. A grouped matrix with rows longer than PANEL_MIN_COLUMNS (a 7B's ffn_down, 11008) is
 * cut into panels of PANEL_COLUMNS columns (the last one shorter), each laid out as a grouped
 * matrix of its own, one after another: panel p's rows hold blocks [p P, p P + P) of the
 * matrix's rows (P = panelBlocks). A one-token product then walks panel by panel over all the
 * groups, a single stream of memory in which each token's activations for the panel are read
 * again for every group while still in L1; a whole long row per group pushed them out (the
 * weights of one group of 11008-column rows and the activations are more than the 48 KiB L1d),
 * and such rows ran ~20% slower per byte than 4096-column ones.
 *
 * Q4_0: group g (rows 4g..4g+3) takes the four rows' bytes; its block b is 72 bytes at 72 b:
 *   bytes 0..7                row k's f16 scale at 2k
 *   bytes 8 + 16 i + 4 k + j  row k's code byte 4 i + j
 * Q4_K: its super-block b is 576 bytes at 576 b:
 *   bytes 0..7                row k's f16 d at 2k
 *   bytes 8..15               row k's f16 dmin at 8 + 2k
 *   bytes 16 + 4 i + ...      row k's scale byte i (0..11) at 16 + 16 (i >> 2) + 4 k + (i & 3)
 *   bytes 64 + ...            row k's code byte l (0..127) at 64 + 16 (l >> 2) + 4 k + (l & 3)
 * Q6_K: its super-block b is 840 bytes at 840 b:
 *   bytes 16 (i >> 2) + 4 k + (i & 3)   row k's scale byte i (0..15)
 *   bytes 64 + 48 s + ...               sub-block s's codes (0..63, codeQ6K), packed: row k's
 *                                        code l < 12 in the low six bits of 64 + 48 s + 16 (l >> 2)
 *                                        + 4 k + (l & 3); code 12 + j's bits 2i, 2i + 1 in the top
 *                                        two bits of byte 64 + 48 s + 16 i + 4 k + j (i = 0..2)
 *   bytes 832 + 2 k                     row k's f16 d
 */
import { GGMLType } from "../formats/ggml-types.js";
import { codeQ6K } from "./reference/matmul.js";

const Q4_0_BLOCK = 18;
const Q4_K_BLOCK = 144;
const Q6_K_BLOCK = 210;

/** Whether a `rows`-row matrix of `type` lies in kernel memory in groups of four rows. */
export function isGrouped(type: GGMLType, rows: number): boolean {
  return (type === GGMLType.Q4_0 && rows % 8 === 0) || ((type === GGMLType.Q4_K || type === GGMLType.Q6_K) && rows % 4 === 0);
}

/** Columns per panel, and the longest row laid out without panels (assembly/groups.ts has the same two). */
export const PANEL_COLUMNS = 4096;
export const PANEL_MIN_COLUMNS = 8192;

/** Blocks per panel of a grouped matrix of `cols`-value rows of `blockSize`-value blocks: the whole row unless it is longer than PANEL_MIN_COLUMNS. */
export function panelBlocks(cols: number, blockSize: number): number {
  return cols > PANEL_MIN_COLUMNS ? PANEL_COLUMNS / blockSize : cols / blockSize;
}

/**
 * `bytes` copied into a buffer kept for the next matrix: a fresh one per matrix (a 7B's 32
 * ffn_down of 25 MB each) spent most of the time laying them out faulting its pages in.
 */
let aside = new Uint8Array(0);
function copyAside(bytes: Uint8Array): Uint8Array {
  if (aside.length < bytes.length) aside = new Uint8Array(bytes.length);
  const copy = aside.subarray(0, bytes.length);
  copy.set(bytes);
  return copy;
}

/** Lets the buffer copyAside keeps go (after loading a model). */
export function releasePanelScratch(): void {
  aside = new Uint8Array(0);
}

/**
 * Lays out a matrix (`bytes`, whole rows of nb blocks) in panels: panel by panel, its rows'
 * blocks [b0, b0 + P) gathered as a matrix of its own, then `group` lays that out (`at`: where
 * the panel starts in `bytes`). Without panels, `group` lays out the whole matrix.
 */
export function inPanels(bytes: Uint8Array, cols: number, blockSize: number, blockBytes: number, group: (panel: Uint8Array, cols: number, at: number) => void): void {
  const nb = cols / blockSize;
  const P = panelBlocks(cols, blockSize);
  if (P >= nb) return group(bytes, cols, 0);
  const rowBytes = nb * blockBytes;
  const rows = bytes.length / rowBytes;
  const src = copyAside(bytes);
  let at = 0;
  for (let b0 = 0; b0 < nb; b0 += P) {
    const pb = Math.min(P, nb - b0);
    const panel = bytes.subarray(at, at + rows * pb * blockBytes);
    for (let r = 0; r < rows; r++) panel.set(src.subarray(r * rowBytes + b0 * blockBytes, r * rowBytes + (b0 + pb) * blockBytes), r * pb * blockBytes);
    group(panel, pb * blockSize, at);
    at += panel.length;
  }
}

/** Row r of a matrix laid out by inPanels (`bytes`: the whole matrix if it has panels), read back panel by panel with `row`. */
function rowOfPanels(bytes: Uint8Array, r: number, cols: number, blockSize: number, blockBytes: number, row: (panel: Uint8Array, r: number, cols: number) => Uint8Array): Uint8Array {
  const nb = cols / blockSize;
  const P = panelBlocks(cols, blockSize);
  if (P >= nb) return row(bytes, r, cols);
  const rows = bytes.length / (nb * blockBytes);
  if (!Number.isInteger(rows) || r >= rows) throw new RangeError(`a ${cols}-column matrix in panels is read from its whole bytes (${bytes.length} bytes, row ${r})`);
  const out = new Uint8Array(nb * blockBytes);
  let at = 0;
  for (let b0 = 0; b0 < nb; b0 += P) {
    const pb = Math.min(P, nb - b0);
    out.set(row(bytes.subarray(at, at + rows * pb * blockBytes), r, pb * blockSize), b0 * blockBytes);
    at += rows * pb * blockBytes;
  }
  return out;
}

/** Rows of a `type` matrix (ggml layout) to groups of four rows, in place (groupRowsQ4_0, groupRowsQ4_K, groupRowsQ6_K). */
export function groupRows(type: GGMLType, bytes: Uint8Array, cols: number): void {
  if (type === GGMLType.Q4_0) groupRowsQ4_0(bytes, cols);
  else if (type === GGMLType.Q4_K) groupRowsQ4_K(bytes, cols);
  else if (type === GGMLType.Q6_K) groupRowsQ6_K(bytes, cols);
  else throw new Error(`groupRows: type ${type} is never grouped`);
}

/**
 * Row r of a grouped `type` matrix (`bytes`: its group of four rows, or more from there; the
 * whole matrix if its rows are in panels), in ggml's layout (groupedRowQ4_0, groupedRowQ4_K,
 * groupedRowQ6_K).
 */
export function groupedRow(type: GGMLType, bytes: Uint8Array, r: number, cols: number): Uint8Array {
  if (type === GGMLType.Q4_0) return groupedRowQ4_0(bytes, r, cols);
  if (type === GGMLType.Q4_K) return groupedRowQ4_K(bytes, r, cols);
  if (type === GGMLType.Q6_K) return groupedRowQ6_K(bytes, r, cols);
  throw new Error(`groupedRow: type ${type} is never grouped`);
}

/** Where row k's block b of a group puts its scale and its code byte c (0..15). */
const scaleAt = (b: number, k: number) => 72 * b + 2 * k;
const codeAt = (b: number, k: number, c: number) => 72 * b + 8 + 16 * (c >> 2) + 4 * k + (c & 3);

/** Where row k's byte o (0..17, ggml's layout) of block b of a Q4_0 group lies in the group. */
const q40At = (b: number, k: number, o: number) => (o < 2 ? scaleAt(b, k) + o : codeAt(b, k, o - 2));

/**
 * Calls lay(dst, src) for each group of four rows in `bytes` (whole groups of `cols`-value rows
 * of `type`'s blocks): dst is the group's place, src a copy of its four rows in ggml's layout.
 */
function forEachGroup(name: string, bytes: Uint8Array, cols: number, blockSize: number, blockBytes: number, lay: (dst: Uint8Array, src: Uint8Array, nb: number, rowBytes: number) => void): void {
  const nb = cols / blockSize;
  const rowBytes = nb * blockBytes;
  const groupBytes = 4 * rowBytes;
  if (bytes.length % groupBytes !== 0) throw new RangeError(`${name}: ${bytes.length} bytes is not a whole number of 4-row groups of ${cols} columns`);
  const src = new Uint8Array(groupBytes);
  for (let g = 0; g < bytes.length; g += groupBytes) {
    src.set(bytes.subarray(g, g + groupBytes));
    lay(bytes.subarray(g, g + groupBytes), src, nb, rowBytes);
  }
}

/** Groups whose layout moves bytes only: byte o of row k's block b goes to at(b, k, o). */
function permuteGroups(name: string, bytes: Uint8Array, cols: number, blockSize: number, blockBytes: number, at: (b: number, k: number, o: number) => number): void {
  forEachGroup(name, bytes, cols, blockSize, blockBytes, (dst, src, nb, rowBytes) => {
    for (let k = 0; k < 4; k++) {
      for (let b = 0; b < nb; b++) {
        for (let o = 0; o < blockBytes; o++) dst[at(b, k, o)] = src[k * rowBytes + b * blockBytes + o]!;
      }
    }
  });
}

/** Row r of a matrix grouped by permuteGroups with `at` (`bytes` from its first row), in ggml's layout. */
function permutedRow(bytes: Uint8Array, r: number, cols: number, blockSize: number, blockBytes: number, at: (b: number, k: number, o: number) => number): Uint8Array {
  const nb = cols / blockSize;
  const group = bytes.subarray(4 * nb * blockBytes * (r >> 2));
  const k = r & 3;
  const row = new Uint8Array(nb * blockBytes);
  for (let b = 0; b < nb; b++) {
    for (let o = 0; o < blockBytes; o++) row[b * blockBytes + o] = group[at(b, k, o)]!;
  }
  return row;
}

/** Q4_0 rows (ggml layout) to groups of four rows (in panels if long), in place; `bytes` holds whole groups (a multiple of 4 rows of `cols` values). */
export function groupRowsQ4_0(bytes: Uint8Array, cols: number): void {
  inPanels(bytes, cols, 32, Q4_0_BLOCK, (panel, c) => permuteGroups("groupRowsQ4_0", panel, c, 32, Q4_0_BLOCK, q40At));
}

/** Row r of a grouped Q4_0 matrix (`bytes` from its first row), in ggml's layout. */
export function groupedRowQ4_0(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  return rowOfPanels(bytes, r, cols, 32, Q4_0_BLOCK, (panel, rr, c) => permutedRow(panel, rr, c, 32, Q4_0_BLOCK, q40At));
}

/** Where row k's byte o (0..143, ggml's layout) of super-block b of a Q4_K group lies in the group. */
function q4kAt(b: number, k: number, o: number): number {
  const base = 576 * b;
  if (o < 4) return base + 8 * (o >> 1) + 2 * k + (o & 1); // d, dmin
  if (o < 16) return base + 16 + 16 * ((o - 4) >> 2) + 4 * k + ((o - 4) & 3); // scales
  return base + 64 + 16 * ((o - 16) >> 2) + 4 * k + ((o - 16) & 3); // codes
}

/**
 * Q4_K rows (ggml layout) to groups of four rows, in place (the twin of assembly/q4_k_r4.ts,
 * group_q4_K); `bytes` holds whole groups (a multiple of 4 rows of `cols` values).
 */
export function groupRowsQ4_K(bytes: Uint8Array, cols: number): void {
  inPanels(bytes, cols, 256, Q4_K_BLOCK, (panel, c) => permuteGroups("groupRowsQ4_K", panel, c, 256, Q4_K_BLOCK, q4kAt));
}

/** Row r of a grouped Q4_K matrix (`bytes` from its first row), in ggml's layout. */
export function groupedRowQ4_K(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  return rowOfPanels(bytes, r, cols, 256, Q4_K_BLOCK, (panel, rr, c) => permutedRow(panel, rr, c, 256, Q4_K_BLOCK, q4kAt));
}

/**
 * Where row k's code at position 16 s + l (sub-block s, l = 0..15) of super-block b of a Q6_K
 * group lies: the byte whose low six bits hold it (l < 12), or the three bytes whose top two bits
 * hold its bits 0-1, 2-3, 4-5 (l >= 12), 16 bytes apart (assembly/q6_k_r4.ts, code3).
 */
function q6kCodeAt(b: number, k: number, s: number, l: number): number {
  return 840 * b + 64 + 48 * s + 16 * (l >> 2) + 4 * k + (l & 3);
}

/** Row k's scale byte i (0..15) and d (f16, 2 bytes) in super-block b of a Q6_K group. */
const q6kScaleAt = (b: number, k: number, i: number) => 840 * b + 16 * (i >> 2) + 4 * k + (i & 3);
const q6kDAt = (b: number, k: number) => 840 * b + 832 + 2 * k;

/**
 * Q6_K rows (ggml layout) to groups of four rows, in place (the twin of assembly/q6_k_r4.ts,
 * group_q6_K); `bytes` holds whole groups (a multiple of 4 rows of `cols` values). Every code
 * (codeQ6K, 0..63) is written out of ql and qh into its packed place (q6kCodeAt).
 */
export function groupRowsQ6_K(bytes: Uint8Array, cols: number): void {
  inPanels(bytes, cols, 256, Q6_K_BLOCK, (panel, c) => groupPanelQ6_K(panel, c));
}

function groupPanelQ6_K(bytes: Uint8Array, cols: number): void {
  forEachGroup("groupRowsQ6_K", bytes, cols, 256, Q6_K_BLOCK, (dst, src, nb, rowBytes) => {
    dst.fill(0);
    for (let k = 0; k < 4; k++) {
      for (let b = 0; b < nb; b++) {
        const o = k * rowBytes + b * Q6_K_BLOCK;
        for (let i = 0; i < 16; i++) dst[q6kScaleAt(b, k, i)] = src[o + 192 + i]!;
        dst[q6kDAt(b, k)] = src[o + 208]!;
        dst[q6kDAt(b, k) + 1] = src[o + 209]!;
        for (let s = 0; s < 16; s++) {
          for (let l = 0; l < 16; l++) {
            const v = codeQ6K(src, o, 16 * s + l);
            if (l < 12) dst[q6kCodeAt(b, k, s, l)]! |= v;
            else for (let i = 0; i < 3; i++) dst[q6kCodeAt(b, k, s, l - 12 + 4 * i)]! |= ((v >> (2 * i)) & 3) << 6;
          }
        }
      }
    }
  });
}

/** Row r of a grouped Q6_K matrix (`bytes` from its first row), in ggml's layout: each code back into ql and qh. */
export function groupedRowQ6_K(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  return rowOfPanels(bytes, r, cols, 256, Q6_K_BLOCK, rowOfPanelQ6_K);
}

function rowOfPanelQ6_K(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 256;
  const group = bytes.subarray(4 * nb * Q6_K_BLOCK * (r >> 2));
  const k = r & 3;
  const row = new Uint8Array(nb * Q6_K_BLOCK);
  for (let b = 0; b < nb; b++) {
    const o = b * Q6_K_BLOCK;
    for (let i = 0; i < 16; i++) row[o + 192 + i] = group[q6kScaleAt(b, k, i)]!;
    row[o + 208] = group[q6kDAt(b, k)]!;
    row[o + 209] = group[q6kDAt(b, k) + 1]!;
    for (let v = 0; v < 256; v++) {
      const s = v >> 4, l = v & 15;
      let code = 0;
      if (l < 12) code = group[q6kCodeAt(b, k, s, l)]! & 63;
      else for (let i = 0; i < 3; i++) code |= (group[q6kCodeAt(b, k, s, l - 12 + 4 * i)]! >> 6) << (2 * i);
      // codeQ6K's inverse: low nibble into ql, the top two bits into qh
      const h = v >> 7, kk = (v >> 5) & 3, li = v & 31;
      row[o + 64 * h + li + (kk & 1) * 32]! |= kk < 2 ? code & 15 : (code & 15) << 4;
      row[o + 128 + 32 * h + li]! |= (code >> 4) << (2 * kk);
    }
  }
  return row;
}
