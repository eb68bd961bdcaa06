/**
 * How matrices lie in kernel memory: ggml's row-major block layout, except Q4_0 matrices of a
 * multiple of 8 rows and Q4_K and Q6_K matrices of a multiple of 4 rows, which the loader stores
 * in groups of four rows (assembly/q4_0_r4.ts, q4_k_r4.ts and q6_k_r4.ts have the layouts and the
 * reason: one memory stream, one activation load and one scale conversion for four rows; for Q4_0
 * also llama.cpp's float order for such matrices, while Q4_K and Q6_K keep each row's order).
 * Every backend reads the same bytes: the WASM and reference kernels and the WebGPU shaders.
 *
 * Q4_0: group g (rows 4g..4g+3) takes the four rows' bytes; its block b is 72 bytes at 72 b:
 *   bytes 0..7                row k's f16 scale at 2k
 *   bytes 8 + 16 i + 4 k + j  row k's code byte 4 i + j
 * Q4_K: its super-block b is 576 bytes at 576 b:
 *   bytes 0..7                row k's f16 d at 2k
 *   bytes 8..15               row k's f16 dmin at 8 + 2k
 *   bytes 16 + 4 i + ...      row k's scale byte i (0..11) at 16 + 16 (i >> 2) + 4 k + (i & 3)
 *   bytes 64 + ...            row k's code byte l (0..127) at 64 + 16 (l >> 2) + 4 k + (l & 3)
 * Q6_K: its super-block b is 840 bytes at 840 b; row k's byte o (0..207, ggml's: ql, qh, scales)
 * at q6kVector(o >> 2) + 4 k + (o & 3), its f16 d at 832 + 2 k (q6kAt).
 */
import { GGMLType } from "../formats/ggml-types.js";

const Q4_0_BLOCK = 18;
const Q4_K_BLOCK = 144;
const Q6_K_BLOCK = 210;

/** Whether a `rows`-row matrix of `type` lies in kernel memory in groups of four rows. */
export function isGrouped(type: GGMLType, rows: number): boolean {
  return (type === GGMLType.Q4_0 && rows % 8 === 0) || ((type === GGMLType.Q4_K || type === GGMLType.Q6_K) && rows % 4 === 0);
}

/** Rows of a `type` matrix (ggml layout) to groups of four rows, in place (groupRowsQ4_0, groupRowsQ4_K, groupRowsQ6_K). */
export function groupRows(type: GGMLType, bytes: Uint8Array, cols: number): void {
  if (type === GGMLType.Q4_0) groupRowsQ4_0(bytes, cols);
  else if (type === GGMLType.Q4_K) groupRowsQ4_K(bytes, cols);
  else if (type === GGMLType.Q6_K) groupRowsQ6_K(bytes, cols);
  else throw new Error(`groupRows: type ${type} is never grouped`);
}

/**
 * Row r of a grouped `type` matrix (`bytes`: its group of four rows, or more from there), in
 * ggml's layout (groupedRowQ4_0, groupedRowQ4_K, groupedRowQ6_K).
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

/**
 * Q4_0 rows (ggml layout) to groups of four rows, in place; `bytes` holds whole groups
 * (a multiple of 4 rows of `cols` values). One group's bytes are copied out at a time.
 */
export function groupRowsQ4_0(bytes: Uint8Array, cols: number): void {
  const nb = cols / 32;
  const rowBytes = nb * Q4_0_BLOCK;
  const groupBytes = 4 * rowBytes;
  if (bytes.length % groupBytes !== 0) throw new RangeError(`groupRowsQ4_0: ${bytes.length} bytes is not a whole number of 4-row groups of ${cols} columns`);
  const src = new Uint8Array(groupBytes);
  for (let g = 0; g < bytes.length; g += groupBytes) {
    src.set(bytes.subarray(g, g + groupBytes));
    const dst = bytes.subarray(g, g + groupBytes);
    for (let k = 0; k < 4; k++) {
      for (let b = 0; b < nb; b++) {
        const o = k * rowBytes + b * Q4_0_BLOCK;
        dst[scaleAt(b, k)] = src[o]!;
        dst[scaleAt(b, k) + 1] = src[o + 1]!;
        for (let c = 0; c < 16; c++) dst[codeAt(b, k, c)] = src[o + 2 + c]!;
      }
    }
  }
}

/** Row r of a grouped Q4_0 matrix (`bytes` from its first row), in ggml's layout. */
export function groupedRowQ4_0(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 32;
  const group = bytes.subarray(4 * nb * Q4_0_BLOCK * (r >> 2));
  const k = r & 3;
  const row = new Uint8Array(nb * Q4_0_BLOCK);
  for (let b = 0; b < nb; b++) {
    const o = b * Q4_0_BLOCK;
    row[o] = group[scaleAt(b, k)]!;
    row[o + 1] = group[scaleAt(b, k) + 1]!;
    for (let c = 0; c < 16; c++) row[o + 2 + c] = group[codeAt(b, k, c)]!;
  }
  return row;
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
  const nb = cols / 256;
  const rowBytes = nb * Q4_K_BLOCK;
  const groupBytes = 4 * rowBytes;
  if (bytes.length % groupBytes !== 0) throw new RangeError(`groupRowsQ4_K: ${bytes.length} bytes is not a whole number of 4-row groups of ${cols} columns`);
  const src = new Uint8Array(groupBytes);
  for (let g = 0; g < bytes.length; g += groupBytes) {
    src.set(bytes.subarray(g, g + groupBytes));
    const dst = bytes.subarray(g, g + groupBytes);
    for (let k = 0; k < 4; k++) {
      for (let b = 0; b < nb; b++) {
        for (let o = 0; o < Q4_K_BLOCK; o++) dst[q4kAt(b, k, o)] = src[k * rowBytes + b * Q4_K_BLOCK + o]!;
      }
    }
  }
}

/** Row r of a grouped Q4_K matrix (`bytes` from its first row), in ggml's layout. */
export function groupedRowQ4_K(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 256;
  const group = bytes.subarray(4 * nb * Q4_K_BLOCK * (r >> 2));
  const k = r & 3;
  const row = new Uint8Array(nb * Q4_K_BLOCK);
  for (let b = 0; b < nb; b++) {
    for (let o = 0; o < Q4_K_BLOCK; o++) row[b * Q4_K_BLOCK + o] = group[q4kAt(b, k, o)]!;
  }
  return row;
}

/**
 * Where vector i (0..51: row k's bytes 4 i..4 i + 3 of ggml's Q6_K super-block in 32-bit lane k)
 * lies in a group super-block (assembly/q6_k_r4.ts, vectorAt): the scale vectors (i = 48..51)
 * first, then per quarter u = 2 h + q (sub-blocks 8 h + 2 k + q) 192 bytes at 64 + 192 u: its ql
 * vectors for k = 0, 2, for k = 1, 3, and its qh vectors, in the order the kernels read them.
 */
export function q6kVector(i: number): number {
  if (i >= 48) return 16 * (i - 48);
  if (i >= 32) return 64 + 192 * ((i - 32) >> 2) + 128 + 16 * (i & 3);
  return 64 + 192 * (((i >> 4) << 1) + ((i >> 2) & 1)) + 64 * ((i >> 3) & 1) + 16 * (i & 3);
}

/** Where row k's byte o (0..209, ggml's layout) of super-block b of a Q6_K group lies in the group. */
function q6kAt(b: number, k: number, o: number): number {
  const base = 840 * b;
  if (o >= 208) return base + 832 + 2 * k + (o - 208); // d
  return base + q6kVector(o >> 2) + 4 * k + (o & 3);
}

/**
 * Q6_K rows (ggml layout) to groups of four rows, in place (the twin of assembly/q6_k_r4.ts,
 * group_q6_K); `bytes` holds whole groups (a multiple of 4 rows of `cols` values).
 */
export function groupRowsQ6_K(bytes: Uint8Array, cols: number): void {
  const nb = cols / 256;
  const rowBytes = nb * Q6_K_BLOCK;
  const groupBytes = 4 * rowBytes;
  if (bytes.length % groupBytes !== 0) throw new RangeError(`groupRowsQ6_K: ${bytes.length} bytes is not a whole number of 4-row groups of ${cols} columns`);
  const src = new Uint8Array(groupBytes);
  for (let g = 0; g < bytes.length; g += groupBytes) {
    src.set(bytes.subarray(g, g + groupBytes));
    const dst = bytes.subarray(g, g + groupBytes);
    for (let k = 0; k < 4; k++) {
      for (let b = 0; b < nb; b++) {
        for (let o = 0; o < Q6_K_BLOCK; o++) dst[q6kAt(b, k, o)] = src[k * rowBytes + b * Q6_K_BLOCK + o]!;
      }
    }
  }
}

/** Row r of a grouped Q6_K matrix (`bytes` from its first row), in ggml's layout. */
export function groupedRowQ6_K(bytes: Uint8Array, r: number, cols: number): Uint8Array {
  const nb = cols / 256;
  const group = bytes.subarray(4 * nb * Q6_K_BLOCK * (r >> 2));
  const k = r & 3;
  const row = new Uint8Array(nb * Q6_K_BLOCK);
  for (let b = 0; b < nb; b++) {
    for (let o = 0; o < Q6_K_BLOCK; o++) row[b * Q6_K_BLOCK + o] = group[q6kAt(b, k, o)]!;
  }
  return row;
}
