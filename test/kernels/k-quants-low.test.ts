/**
 * Q2_K, Q3_K and IQ4_XS matmuls (assembly/k_quants_low.ts, src/kernels/reference/k-quants-low.ts):
 *   - the WASM kernels give the reference's bits (same integer sums, same float order) on random
 *     blocks, odd row counts cut into slices, several token counts and row lengths, both builds;
 *   - the reference's integer sums equal the ggml dequantizer's weights (src/formats/quants, bit
 *     for bit ggml's) times the Q8_K codes, and its product equals dequantized row . dequantized
 *     activations to float rounding;
 *   - both give, bit for bit, what llama.cpp's own ggml_vec_dot_*_q8_K computes (AVX2 and AVX-512
 *     backends, fixtures/golden/kernels/vec-dot-k-low.json from tools/golden-vec-dot.py), on
 *     activations our quantizer rounds into llama.cpp's Q8_K blocks exactly.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize, f16ToF32 } from "../../src/formats/quants/index.js";
import { KernelMemory, Kernels, rowBytes } from "../../src/kernels/index.js";
import { quantizeQ8_K } from "../../src/kernels/reference/index.js";
import { dotIQ4_XS, dotQ2_K, dotQ3_K, fmaf, lanesIQ4_XS, lanesQ2_K, lanesQ3_K } from "../../src/kernels/reference/k-quants-low.js";
import { checkWebGpuTypes, WebGpuError } from "../../src/kernels/webgpu/index.js";
import { kernelPair, KERNEL_BUILDS, randomF32, randomWeights, rng, withMark } from "./helpers.js";

const TYPES = [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.IQ4_XS] as const;
type LowType = (typeof TYPES)[number];
const BLOCK = { [GGMLType.Q2_K]: 84, [GGMLType.Q3_K]: 110, [GGMLType.IQ4_XS]: 136 } as const;
const DOT = { [GGMLType.Q2_K]: dotQ2_K, [GGMLType.Q3_K]: dotQ3_K, [GGMLType.IQ4_XS]: dotIQ4_XS } as const;

/** Random rows, with the first super-block all ones bits and the second all zeros (extreme scales and codes). */
function weights(type: LowType, rows: number, cols: number, r: () => number): Uint8Array {
  const w = randomWeights(type, rows, cols, r);
  const bb = BLOCK[type];
  const keep = (o: number, at: number[]) => at.map((a) => [w[o + a], w[o + a + 1]] as const);
  const scaleAt = type === GGMLType.Q2_K ? [80, 82] : type === GGMLType.Q3_K ? [108] : [0];
  for (const [k, fill] of [[0, 0xff], [1, 0x00]] as const) {
    if ((k + 1) * bb > w.length) break;
    const saved = keep(k * bb, scaleAt);
    w.fill(fill, k * bb, (k + 1) * bb);
    scaleAt.forEach((a, i) => ((w[k * bb + a] = saved[i][0]), (w[k * bb + a + 1] = saved[i][1])));
  }
  return w;
}

describe.each(KERNEL_BUILDS)("Q2_K / Q3_K / IQ4_XS kernels (%s build)", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    ({ mem, wasm, ref } = await kernelPair(build, 64 << 20));
  });

  for (const type of TYPES) {
    it(`${GGMLType[type]}: WASM gives the reference's bits (odd rows, row slices, 1..9 tokens: the four-token tile and its tail, 256..4352 columns)`, () => {
      const r = rng(type * 31 + 7);
      const shapes: Array<[rows: number, cols: number]> = [[1, 256], [3, 256], [7, 768], [5, 4352], [2, 512]];
      for (const [rows, cols] of shapes) {
        for (const nTok of [1, 2, 3, 4, 5, 9]) {
          withMark(mem, () => {
            const w = mem.put(weights(type, rows, cols, r));
            const xs = randomF32(r, nTok * cols, 3);
            if (nTok > 1) xs.fill(0, cols, cols + 256); // a token whose first super-block is all zeros (d = 0)
            const x = mem.put(xs);
            const ab = wasm.actBytes(type, cols);
            const xqW = mem.alloc(ab * nTok), xqR = mem.alloc(ab * nTok);
            mem.u8(xqW, ab * nTok).fill(0);
            mem.u8(xqR, ab * nTok).fill(0);
            // Two thread slices of the tokens for the quantizer, as the runtime splits them.
            wasm.quantize(type, x, xqW, cols, 0, nTok >> 1);
            wasm.quantize(type, x, xqW, cols, nTok >> 1, nTok);
            ref.quantize(type, x, xqR, cols, 0, nTok);
            expect(Array.from(mem.u8(xqW, ab * nTok))).toEqual(Array.from(mem.u8(xqR, ab * nTok)));
            const yR = mem.alloc(4 * rows * nTok);
            ref.matmul(type, w, xqR, yR, cols, 0, rows, nTok, rows);
            const want = Array.from(new Uint32Array(mem.f32(yR, rows * nTok).slice().buffer));
            for (const cuts of [[0, rows], [0, 1, rows], [0, rows >> 1, rows]]) {
              const yW = mem.alloc(4 * rows * nTok);
              for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(type, w, xqW, yW, cols, cuts[i], cuts[i + 1], nTok, rows);
              const got = Array.from(new Uint32Array(mem.f32(yW, rows * nTok).slice().buffer));
              expect(got, `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(want);
            }
          });
        }
      }
    });
  }
});

describe("Q2_K / Q3_K / IQ4_XS reference against ggml's dequantizer", () => {
  for (const type of TYPES) {
    it(`${GGMLType[type]}: integer super-block sums are dequantized weights times Q8_K codes`, () => {
      const r = rng(type * 131 + 3);
      const rows = 6, cols = 1024, nb = cols / 256, bb = BLOCK[type];
      const w = weights(type, rows, cols, r);
      const wf = dequantize(type, w, rows * cols);
      const xq = quantizeQ8_K(randomF32(r, cols, 2));
      const h = (o: number) => f16ToF32(w[o] | (w[o + 1] << 8));
      for (let row = 0; row < rows; row++) {
        for (let B = 0; B < nb; B++) {
          const o = (row * nb + B) * bb;
          // Dequantized weights dotted with the integer codes, in float64 (exact for Q3_K and
          // IQ4_XS, whose dequantized weights d*sc*q are exact floats and whose sums fit 53 bits).
          let s = 0, mag = 0;
          for (let j = 0; j < 256; j++) {
            s += wf[row * cols + 256 * B + j] * xq.qs[256 * B + j];
            mag += Math.abs(wf[row * cols + 256 * B + j] * xq.qs[256 * B + j]);
          }
          if (type === GGMLType.Q2_K) {
            // ggml rounds d*sc*q - dmin*m to float32 per weight: equal to that rounding.
            const [S, P] = lanesQ2_K(w, o, xq, B);
            const isum = S.reduce((a, b) => a + b), summs = P.reduce((a, b) => a + b);
            expect(Math.abs(s - (h(o + 80) * isum - h(o + 82) * summs))).toBeLessThanOrEqual(mag * 2 ** -23);
          } else if (type === GGMLType.Q3_K) {
            expect(s).toBe(h(o + 108) * lanesQ3_K(w, o, xq, B).reduce((a, b) => a + b));
          } else {
            expect(s).toBe(h(o) * lanesIQ4_XS(w, o, xq, B).reduce((a, b) => a + b));
          }
        }
      }
    });

    it(`${GGMLType[type]}: the product is dequantized row . dequantized Q8_K activations, to float rounding`, () => {
      const r = rng(type * 7 + 1);
      const rows = 5, cols = 768;
      const w = weights(type, rows, cols, r);
      expect(w.length).toBe(rows * rowBytes(type, cols));
      const wf = dequantize(type, w, rows * cols);
      const xq = quantizeQ8_K(randomF32(r, cols, 2));
      const xa = Float32Array.from(xq.qs, (q, j) => q * xq.d[j >> 8]);
      for (let row = 0; row < rows; row++) {
        let s = 0, mag = 0;
        for (let j = 0; j < cols; j++) {
          s += wf[row * cols + j] * xa[j];
          mag += Math.abs(wf[row * cols + j] * xa[j]);
        }
        expect(Math.abs(DOT[type](w, row * rowBytes(type, cols), xq) - s)).toBeLessThan(4e-7 * mag + 1e-9);
      }
    });
  }
});

/** x*y + z rounded once to float32, by exact integer arithmetic (normal results only). */
function exactFmaF32(x: number, y: number, z: number): number {
  const parts = (v: number): [bigint, number] => {
    if (v === 0) return [0n, 0];
    let e = Math.floor(Math.log2(Math.abs(v))) - 30;
    let m = v / 2 ** e;
    while (!Number.isInteger(m)) (e -= 1), (m = v / 2 ** e);
    return [BigInt(m), e];
  };
  const [mx, ex] = parts(x), [my, ey] = parts(y), [mz, ez] = parts(z);
  const ep = ex + ey, e = Math.min(ep, ez);
  const total = ((mx * my) << BigInt(ep - e)) + (mz << BigInt(ez - e));
  if (total === 0n) return 0;
  const neg = total < 0n, mag = neg ? -total : total;
  let shift = mag.toString(2).length - 24;
  let q = mag;
  if (shift > 0) {
    q = mag >> BigInt(shift);
    const rem = mag - (q << BigInt(shift)), half = 1n << BigInt(shift - 1);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
    if (q === 1n << 24n) (q >>= 1n), (shift += 1);
  }
  const r = Number(q) * 2 ** (e + shift);
  return neg ? -r : r;
}

describe("fmaf (the x86 FMA the AVX2 dot products round with)", () => {
  // xy = 2^-24 (1 - 2^-30) and z = 1 + 2^-23: the float64 sum rounds to exactly halfway between
  // two floats (1 + 2^-23 + 2^-24), and the true value lies just below it.
  const x = 2 ** -39 * (1 + 2 ** -15), y = 32767, z = 1 + 2 ** -23;

  it("rounds once, exactly, on random inputs and on float64 sums that land halfway", () => {
    const r = rng(99);
    const f = Math.fround;
    for (let i = 0; i < 20000; i++) {
      const a = f((r() * 2 - 1) * 2 ** Math.floor(r() * 20 - 10));
      const b = f((r() * 2 - 1) * 2 ** Math.floor(r() * 20 - 10));
      const c = i % 3 === 0 ? f(-a * b * (1 + (r() - 0.5) * 2 ** -20)) : f((r() * 2 - 1) * 2 ** Math.floor(r() * 20 - 10));
      expect(fmaf(a, b, c)).toBe(exactFmaF32(a, b, c));
    }
    for (const [sx, sy, sz] of [[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]]) {
      for (const p of [-20, 0, 17]) {
        const [a, b, c] = [sx * x * 2 ** p, sy * y, sz * z * 2 ** p];
        expect(fmaf(a, b, c)).toBe(exactFmaF32(a, b, c));
        expect(Math.abs(fmaf(a, b, c))).toBe(z * 2 ** p); // plain float64 then float32 would give 1 + 2^-22
      }
    }
  });

  it.each(KERNEL_BUILDS)("the WASM kernel takes the same exact rounding (%s build)", async (build) => {
    // IQ4_XS, two super-blocks; activation scales written directly: lane 0 gets
    // fma(1 + 2^-23, 1, 0) from the first and fma(x, 32767, that) from the second, every other
    // lane 0 (activation codes 0).
    const { mem, wasm, ref } = await kernelPair(build, 1 << 20);
    const cols = 512;
    const w = new Uint8Array(2 * 136);
    for (const [b, ls, terms] of [[0, 33, [[8, 1]]], [1, 63, [[15, 9], [8, 40]]]] as const) {
      const o = b * 136;
      w[o] = 0x00, w[o + 1] = 0x3c; // d = 1
      w[o + 2] = ls >> 4; // scales_h: sub-block 0's high bits
      w[o + 4] = ls & 15; // scales_l: sub-block 0's low bits
      terms.forEach(([level], v) => (w[o + 8 + v] = level)); // values 0, 1: low nibbles of qs[0], qs[1]
    }
    const ab = wasm.actBytes(GGMLType.IQ4_XS, cols);
    const wp = mem.put(w), xq = mem.alloc(ab), y1 = mem.alloc(4), y2 = mem.alloc(4);
    mem.u8(xq, ab).fill(0);
    const codes = mem.u16(xq, cols);
    codes[0] = 1; // block 0, value 0 (even position 0)
    codes[256] = 9; // block 1, value 0
    codes[256 + 8] = 40; // block 1, value 1 (odd position 0)
    mem.f32(xq + 2 * cols, 2).set([z, x]);
    wasm.matmul(GGMLType.IQ4_XS, wp, xq, y1, cols, 0, 1, 1, 1);
    ref.matmul(GGMLType.IQ4_XS, wp, xq, y2, cols, 0, 1, 1, 1);
    expect(mem.f32(y1, 1)[0]).toBe(Math.fround(z));
    expect(mem.f32(y2, 1)[0]).toBe(Math.fround(z));
  });
});

describe("Q2_K / Q3_K / IQ4_XS on the WebGPU backend", () => {
  it.each(TYPES)("%s weights are refused with WebGPU's clear error (no WGSL kernel)", (type) => {
    expect(() => checkWebGpuTypes([type])).toThrow(WebGpuError);
    expect(() => checkWebGpuTypes([type])).toThrow(new RegExp(`no kernel for ${GGMLType[type]} weights`));
  });
});

describe("Q2_K / Q3_K / IQ4_XS against llama.cpp's vec_dot (fixtures/golden/kernels/vec-dot-k-low.json)", () => {
  const golden = JSON.parse(readFileSync(new URL("../../fixtures/golden/kernels/vec-dot-k-low.json", import.meta.url), "utf8")) as {
    backends: string[]; rows: number; cols: number; tokens: number; x_f32: string; q8_K: string;
    types: Record<string, { w: string; y: string }>;
  };
  const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
  const { rows, cols, tokens } = golden;
  const x = new Float32Array(bytes(golden.x_f32).buffer);
  const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));

  it("our Q8_K activations are llama.cpp's quantize_row_q8_K blocks (d, codes, bsums)", () => {
    const q = bytes(golden.q8_K);
    const dv = new DataView(q.buffer);
    for (let t = 0; t < tokens; t++) {
      const row = quantizeQ8_K(x.subarray(t * cols, (t + 1) * cols));
      for (let B = 0; B < cols / 256; B++) {
        const o = (t * cols / 256 + B) * 292;
        expect(Math.fround(row.d[B])).toBe(dv.getFloat32(o, true));
        expect(Array.from(row.qs.subarray(256 * B, 256 * B + 256))).toEqual(Array.from(new Int8Array(q.buffer, o + 4, 256)));
        for (let j = 0; j < 16; j++) expect(row.sums[16 * B + j]).toBe(dv.getInt16(o + 260 + 2 * j, true));
      }
    }
  });

  for (const type of TYPES) {
    it(`${GGMLType[type]}: the reference and the WASM kernels give llama.cpp's bits (${golden.backends.join(", ")})`, async () => {
      const g = golden.types[GGMLType[type]];
      const w = bytes(g.w);
      const want = bits(new Float32Array(bytes(g.y).buffer));
      const rb = rowBytes(type, cols);
      const ref = new Float32Array(tokens * rows);
      for (let t = 0; t < tokens; t++) {
        const xq = quantizeQ8_K(x.subarray(t * cols, (t + 1) * cols));
        for (let r = 0; r < rows; r++) ref[t * rows + r] = DOT[type](w, r * rb, xq);
      }
      expect(bits(ref)).toEqual(want);
      for (const build of KERNEL_BUILDS) {
        const { mem, wasm } = await kernelPair(build, 1 << 20);
        const wp = mem.put(w), xp = mem.put(x);
        const xq = mem.alloc(wasm.actBytes(type, cols) * tokens), y = mem.alloc(4 * rows * tokens);
        wasm.quantize(type, xp, xq, cols, 0, tokens);
        wasm.matmul(type, wp, xq, y, cols, 0, rows, tokens, rows);
        expect(bits(mem.f32(y, rows * tokens)), build).toEqual(want);
      }
    });
  }
});
