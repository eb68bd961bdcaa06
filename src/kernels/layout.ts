/**
 * How matrices lie in kernel memory: ggml's row-major block layout, except Q4_0 matrices of a
 * multiple of 8 rows, which the loader stores in groups of four rows (assembly/q4_0_r4.ts has
 * the layout and the reason: one memory stream and one scale conversion for four rows, and
 * llama.cpp's float order for such matrices). Every backend reads the same bytes: the WASM and
 * reference kernels and the WebGPU shaders.
 *
 * Group g (rows 4g..4g+3) takes the four rows' bytes; its block b is 72 bytes at 72 b:
 *   bytes 0..7                the rows' f16 scales (row k at 2k)
 *   bytes 8 + 16 i + 4 k + j  row k's code byte 4 i + j
 */
import { GGMLType } from "../formats/ggml-types.js";

const Q4_0_BLOCK = 18;

/** Whether a `rows`-row matrix of `type` lies in kernel memory in groups of four rows. */
export function isGrouped(type: GGMLType, rows: number): boolean {
  return type === GGMLType.Q4_0 && rows % 8 === 0;
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
