/**
 * WASM kernels against their TypeScript twins, on random data, odd sizes and tails, for both
 * builds (plain SIMD and relaxed SIMD) with the same suite.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { dequantize } from "../../src/formats/quants/index.js";
import {
  activationKind, createReferenceKernels, groupedRowQ4_0, groupedRowQ4_K, groupedRowQ6_K, groupRowsQ4_0, groupRowsQ4_K, groupRowsQ6_K, KernelMemory, Kernels, MATMUL_TYPES, panelBlocks, PANEL_COLUMNS, PANEL_MIN_COLUMNS,
  MatmulType, ropeFrequencies, RopeConfig, rowBytes,
} from "../../src/kernels/index.js";
import { f16ToF32 } from "../../src/formats/quants/half.js";
import { matmul as referenceMatmul, quantizeQ8_0, quantizeQ8_K } from "../../src/kernels/reference/index.js";
import { compileKernels, instantiateKernels } from "../../src/kernels/wasm/loader.js";
import { kernelPair, KERNEL_BUILDS, matmulKernelOrder, maxRelDiff, randomF32, randomWeights, rng, withMark as withMarkIn } from "./helpers.js";

describe.each(KERNEL_BUILDS)("wasm kernels (%s build) vs reference", (build) => {
  let mem: KernelMemory;
  let wasm: Kernels;
  let ref: Kernels;
  beforeAll(async () => {
    // The reference writes the activation layout of the build under test.
    ({ mem, wasm, ref } = await kernelPair(build, 32 << 20));
    expect(wasm.build).toBe(build);
  });
  const withMark = <T>(fn: () => T): T => withMarkIn(mem, fn);

  const shapes: Record<MatmulType, Array<[rows: number, cols: number]>> = {
    [GGMLType.F32]: [[1, 1], [5, 7], [9, 33], [4, 100]],
    [GGMLType.F16]: [[1, 1], [5, 7], [9, 33], [4, 100]],
    [GGMLType.Q4_0]: [[1, 32], [7, 96], [13, 320]],
    [GGMLType.Q8_0]: [[1, 32], [7, 96], [13, 320]],
    [GGMLType.Q4_K]: [[1, 256], [5, 768]],
    [GGMLType.Q5_K]: [[1, 256], [5, 768]],
    [GGMLType.Q6_K]: [[1, 256], [5, 768]],
    [GGMLType.Q2_K]: [[1, 256], [5, 768]],
    [GGMLType.Q3_K]: [[1, 256], [5, 768]],
    [GGMLType.IQ4_XS]: [[1, 256], [5, 768]],
    [GGMLType.Q4_1]: [[1, 32], [7, 96], [13, 320]],
    [GGMLType.Q5_0]: [[1, 32], [7, 96], [13, 320]],
    [GGMLType.Q5_1]: [[1, 32], [7, 96], [13, 320]],
    [GGMLType.IQ4_NL]: [[1, 32], [7, 96], [13, 320]],
  };

  for (const type of MATMUL_TYPES) {
    it(`matmul ${GGMLType[type]}: quantized activations are bit-identical, products agree`, () => {
      const r = rng(type + 17);
      for (const [rows, cols] of shapes[type]) {
        for (const nTok of [1, 3, 5]) {
          withMark(() => {
            const w = mem.put(randomWeights(type, rows, cols, r));
            const x = mem.put(randomF32(r, nTok * cols, 3));
            const ab = wasm.actBytes(type, cols);
            const xqW = mem.alloc(ab * nTok);
            const xqR = mem.alloc(ab * nTok);
            mem.u8(xqW, ab * nTok).fill(0);
            mem.u8(xqR, ab * nTok).fill(0);
            wasm.quantize(type, x, xqW, cols, 0, nTok);
            ref.quantize(type, x, xqR, cols, 0, nTok);
            expect(Array.from(mem.u8(xqW, ab * nTok))).toEqual(Array.from(mem.u8(xqR, ab * nTok)));
            const yW = mem.alloc(4 * rows * nTok);
            const yR = mem.alloc(4 * rows * nTok);
            // Two slices, split at an odd row, as two threads would.
            const mid = rows >> 1;
            wasm.matmul(type, w, xqW, yW, cols, 0, mid, nTok, rows);
            wasm.matmul(type, w, xqW, yW, cols, mid, rows, nTok, rows);
            ref.matmul(type, w, xqR, yR, cols, 0, rows, nTok, rows);
            expect(maxRelDiff(mem.f32(yW, rows * nTok), mem.f32(yR, rows * nTok))).toBeLessThan(3e-6);
          });
        }
      }
    });
  }

  it("matmul F16 widens every finite half exactly (subnormals, both zeros, both signs)", () => {
    // Row h holds half h in column t for token t; token t's activation is the unit vector e_t, so
    // y[t][h] is the widened half itself (plus exact zeros), in the 2-token and the 1-token paths.
    const halves = Array.from({ length: 0x10000 }, (_, h) => h).filter((h) => (h & 0x7c00) !== 0x7c00);
    const rows = halves.length, cols = 4;
    withMark(() => {
      const w = mem.alloc(rows * cols * 2);
      const wh = new Uint16Array(mem.buffer, w, rows * cols);
      halves.forEach((h, r) => wh.fill(h, r * cols, r * cols + cols));
      for (const nTok of [2, 1]) {
        const x = mem.alloc(4 * nTok * cols);
        const xs = mem.f32(x, nTok * cols);
        xs.fill(0);
        for (let t = 0; t < nTok; t++) xs[t * cols + t] = 1;
        const y = mem.alloc(4 * rows * nTok);
        wasm.matmul(GGMLType.F16, w, x, y, cols, 0, rows, nTok, rows);
        const ys = mem.f32(y, rows * nTok);
        for (let t = 0; t < nTok; t++) {
          const bad = halves.findIndex((h, r) => ys[t * rows + r] !== f16ToF32(h)); // -0 sums to +0: === equates them
          expect(bad, `half 0x${(halves[bad] ?? 0).toString(16)}`).toBe(-1);
        }
      }
    });
  });

  for (const type of [GGMLType.Q4_0, GGMLType.Q8_0] as const) {
    it(`matmul ${GGMLType[type]}: every tile and tail sums in the kernel order (Q8_0, fused madd: llama.cpp's), to the bit`, () => {
      const r = rng(type + 101);
      // Blocks per row 1, 3, 4, 5, 9 (groups of four and left-over blocks); row and token
      // counts around the tiles (four tokens for one row; eight for a Q4_0 row in the relaxed
      // build) with their tails; the rows cut into slices at odd places, as threads cut them.
      const shapes: Array<[rows: number, cols: number]> = [[1, 32], [5, 96], [7, 128], [9, 160], [13, 288]];
      for (const [rows, cols] of shapes) {
        for (const nTok of [1, 2, 3, 4, 5, 7, 8, 9, 13, 16]) {
          withMark(() => {
            const wBytes = randomWeights(type, rows, cols, r);
            const xs = randomF32(r, nTok * cols, 3);
            const w = mem.put(wBytes);
            const x = mem.put(xs);
            const xq = mem.alloc(wasm.actBytes(type, cols) * nTok);
            wasm.quantize(type, x, xq, cols, 0, nTok);
            // Q8_0 with a fused madd: llama.cpp's 8-lane order, which the reference kernels have.
            const order = type === GGMLType.Q8_0 && wasm.fusedMadd ? referenceMatmul(type, wBytes, xs, rows, cols, nTok) : matmulKernelOrder(type, wBytes, xs, rows, cols, nTok);
            const want = Array.from(new Uint32Array(order.buffer));
            for (const cuts of [[0, rows], [0, 1, rows], [0, Math.min(3, rows), rows], [0, rows >> 1, rows]]) {
              const y = mem.alloc(4 * rows * nTok);
              for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(type, w, xq, y, cols, cuts[i], cuts[i + 1], nTok, rows);
              expect(Array.from(new Uint32Array(mem.f32(y, rows * nTok).slice().buffer)), `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(want);
            }
          });
        }
      }
    });
  }

  it("matmul Q8_0 with weight codes of -128 (no quantizer writes one; a file may): the same bits as without the i8 path", () => {
    // The i8 dot-add path multiplies |w| by x with w's sign; |-128| is the byte 0x80, right only
    // where the runtime reads it as 128, which q8_0DotAddOk probes (assembly/q8_0.ts).
    const r = rng(307);
    for (const [rows, cols] of [[3, 160], [5, 288]] as const) {
      for (const nTok of [1, 4, 5]) {
        withMark(() => {
          const wBytes = randomWeights(GGMLType.Q8_0, rows, cols, r);
          for (let k = 0; k < wBytes.length; k += 34) for (let j = 2; j < 34; j += 3) wBytes[k + j] = 0x80;
          const xs = randomF32(r, nTok * cols, 3);
          const w = mem.put(wBytes);
          const x = mem.put(xs);
          const xq = mem.alloc(wasm.actBytes(GGMLType.Q8_0, cols) * nTok);
          wasm.quantize(GGMLType.Q8_0, x, xq, cols, 0, nTok);
          const order = wasm.fusedMadd ? referenceMatmul(GGMLType.Q8_0, wBytes, xs, rows, cols, nTok) : matmulKernelOrder(GGMLType.Q8_0, wBytes, xs, rows, cols, nTok);
          const y = mem.alloc(4 * rows * nTok);
          wasm.matmul(GGMLType.Q8_0, w, xq, y, cols, 0, rows, nTok, rows);
          expect(Array.from(new Uint32Array(mem.f32(y, rows * nTok).slice().buffer)), `${rows}x${cols}, ${nTok} tokens`).toEqual(Array.from(new Uint32Array(order.buffer)));
        });
      }
    }
  });

  it("matmul Q4_0 of a multiple of 8 rows (grouped layout): every tile, tail and slice in llama.cpp's order, to the bit", () => {
    const r = rng(211);
    // Blocks per row 1, 3, 4, 5, 9, 13 (full groups of four blocks in the relaxed build's
    // activations, and left-over blocks); tokens around the four-token tile; rows cut at odd
    // places, inside groups of four rows, as threads cut them. 8448 columns: rows in panels
    // (kernels/layout.ts) of 128, 128 and 8 blocks.
    const shapes: Array<[rows: number, cols: number]> = [[8, 32], [16, 96], [24, 128], [8, 160], [32, 288], [16, 416], [16, 8448]];
    for (const [rows, cols] of shapes) {
      for (const nTok of [1, 2, 3, 4, 5, 7, 8, 9, 13]) {
        withMark(() => {
          const wBytes = randomWeights(GGMLType.Q4_0, rows, cols, r);
          const xs = randomF32(r, nTok * cols, 3);
          // llama.cpp's order, computed on ggml's layout by the reference twin.
          const want = Array.from(new Uint32Array(referenceMatmul(GGMLType.Q4_0, wBytes, xs, rows, cols, nTok).buffer));
          const w = mem.put(wBytes);
          groupRowsQ4_0(mem.u8(w, wBytes.length), cols);
          const x = mem.put(xs);
          const xq = mem.alloc(wasm.actBytes(GGMLType.Q4_0, cols) * nTok);
          wasm.quantize(GGMLType.Q4_0, x, xq, cols, 0, nTok);
          for (const cuts of [[0, rows], [0, 1, rows], [0, 3, rows], [0, (rows >> 1) + 1, rows], [0, 5, 6, rows]]) {
            const y = mem.alloc(4 * rows * nTok);
            for (let i = 0; i + 1 < cuts.length; i++) wasm.matmul(GGMLType.Q4_0, w, xq, y, cols, cuts[i]!, cuts[i + 1]!, nTok, rows);
            expect(Array.from(new Uint32Array(mem.f32(y, rows * nTok).slice().buffer)), `${rows}x${cols}, ${nTok} tokens, rows cut at ${cuts}`).toEqual(want);
          }
        });
      }
    }
  });

  it("grouped Q4_0 rows read back as ggml's rows (rows in panels too); the kernels' and the twin's layouts agree", () => {
    const r = rng(212);
    for (const [rows, cols] of [[16, 96], [8, 8448], [16, 12320]] as const) {
      const wBytes = randomWeights(GGMLType.Q4_0, rows, cols, r);
      const grouped = wBytes.slice();
      groupRowsQ4_0(grouped, cols);
      expect(Array.from(grouped)).not.toEqual(Array.from(wBytes));
      const rb = rowBytes(GGMLType.Q4_0, cols);
      for (let row = 0; row < rows; row++) {
        expect(Array.from(groupedRowQ4_0(grouped, row, cols))).toEqual(Array.from(wBytes.subarray(row * rb, (row + 1) * rb)));
      }
      withMark(() => {
        const w = mem.put(wBytes);
        wasm.layMatrix(GGMLType.Q4_0, w, rows, cols);
        expect(Buffer.compare(mem.u8(w, wBytes.length), grouped)).toBe(0);
      });
    }
  });

  it("rows longer than PANEL_MIN_COLUMNS lie in panels of PANEL_COLUMNS, each grouped as a matrix of its own", () => {
    expect(panelBlocks(PANEL_MIN_COLUMNS, 32)).toBe(PANEL_MIN_COLUMNS / 32);
    expect(panelBlocks(11008, 32)).toBe(PANEL_COLUMNS / 32);
    expect(panelBlocks(11008, 256)).toBe(PANEL_COLUMNS / 256);
    // panel 1 of an 8-row, 8448-column Q4_0 matrix starts after panel 0's 8 x 128 blocks and is grouped alone
    const r = rng(214);
    const rows = 8, cols = 8448, rb = rowBytes(GGMLType.Q4_0, cols);
    const wBytes = randomWeights(GGMLType.Q4_0, rows, cols, r);
    const grouped = wBytes.slice();
    groupRowsQ4_0(grouped, cols);
    const panel1 = new Uint8Array(rows * 128 * 18);
    for (let row = 0; row < rows; row++) panel1.set(wBytes.subarray(row * rb + 128 * 18, row * rb + 256 * 18), row * 128 * 18);
    groupRowsQ4_0(panel1, 4096);
    expect(Buffer.compare(grouped.subarray(rows * 128 * 18, 2 * rows * 128 * 18), panel1)).toBe(0);
  });

  it("grouped Q4_K and Q6_K rows read back as ggml's rows; the kernels' and the twin's grouping agree", () => {
    const r = rng(213);
    const twins = [
      [GGMLType.Q4_K, groupRowsQ4_K, groupedRowQ4_K],
      [GGMLType.Q6_K, groupRowsQ6_K, groupedRowQ6_K],
    ] as const;
    // 8704 columns: rows in panels of 16, 16 and 2 super-blocks
    for (const [[type, groupRows, groupedRow], rows, cols] of twins.flatMap((t) => [[t, 12, 768], [t, 8, 8704]] as const)) {
      const wBytes = randomWeights(type, rows, cols, r);
      const grouped = wBytes.slice();
      groupRows(grouped, cols);
      expect(Array.from(grouped)).not.toEqual(Array.from(wBytes));
      const rb = rowBytes(type, cols);
      for (let row = 0; row < rows; row++) {
        expect(Array.from(groupedRow(grouped, row, cols))).toEqual(Array.from(wBytes.subarray(row * rb, (row + 1) * rb)));
      }
      withMark(() => {
        const w = mem.put(wBytes);
        wasm.layMatrix(type, w, rows, cols);
        expect(Buffer.compare(mem.u8(w, wBytes.length), grouped)).toBe(0);
      });
    }
  });

  it("matmul with weights, activations and outputs at unaligned addresses, and a large row", () => {
    const r = rng(77);
    for (const type of MATMUL_TYPES) {
      withMark(() => {
        const rows = 5, cols = type === GGMLType.F16 || type === GGMLType.F32 ? 4099 : 4096;
        // Quantized rows sit at any byte (18-byte blocks); F16/F32 tensors are element-aligned.
        const elt = type === GGMLType.F32 ? 4 : type === GGMLType.F16 ? 2 : 1;
        mem.alloc(3, 1);
        const w = mem.put(randomWeights(type, rows, cols, r), elt);
        const x = mem.put(randomF32(r, cols), 4);
        const ab = wasm.actBytes(type, cols);
        const xqW = mem.alloc(ab, 4), xqR = mem.alloc(ab, 4);
        wasm.quantize(type, x, xqW, cols, 0, 1);
        ref.quantize(type, x, xqR, cols, 0, 1);
        const yW = mem.alloc(4 * rows + 4, 4) + 4, yR = mem.alloc(4 * rows, 4);
        wasm.matmul(type, w, xqW, yW, cols, 0, rows, 1, rows);
        ref.matmul(type, w, xqR, yR, cols, 0, rows, 1, rows);
        expect(maxRelDiff(mem.f32(yW, rows), mem.f32(yR, rows))).toBeLessThan(3e-6);
      });
    }
  });

  it("activation quantization rounds ties to even like x86 ggml", () => {
    withMark(() => {
      // amax 127 gives scale 1: x*1 lands exactly on .5 for these values.
      const xs = new Float32Array(256);
      const ties = [127, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5];
      xs.set(ties);
      for (let i = 32; i < 256; i++) xs[i] = ((i % 9) - 4) * 0.5;
      xs[32] = -127;
      const x = mem.put(xs);
      for (const type of [GGMLType.Q8_0, GGMLType.Q4_K] as const) {
        const ab = wasm.actBytes(type, 256);
        const a = mem.alloc(ab);
        const b = mem.alloc(ab);
        mem.u8(a, ab).fill(0);
        mem.u8(b, ab).fill(0);
        wasm.quantize(type, x, a, 256, 0, 1);
        ref.quantize(type, x, b, 256, 0, 1);
        expect(Array.from(mem.u8(a, ab))).toEqual(Array.from(mem.u8(b, ab)));
      }
      expect(Array.from(quantizeQ8_0(xs).qs.slice(0, 8))).toEqual([127, 2, -4, 0, 0, 2, 126, -126]);
      expect(Array.from(quantizeQ8_K(xs).qs.slice(0, 8))).toEqual([-127, -2, 4, 0, 0, -2, -126, 126]);
    });
  });

  it("element-wise kernels: rmsnorm, softmax, swiglu, silu, add, mul, axpy, storeF16", () => {
    const r = rng(5);
    for (const n of [1, 3, 8, 37, 128]) {
      withMark(() => {
        const rows = 3;
        const x = mem.put(randomF32(r, rows * n, 4));
        const w = mem.put(randomF32(r, n));
        const b = mem.put(randomF32(r, rows * n));
        const outs = () => [mem.alloc(4 * rows * n), mem.alloc(4 * rows * n)];
        const check = (run: (k: Kernels, out: number) => void, tol: number) => {
          const [o1, o2] = outs();
          mem.f32(o1, rows * n).fill(0.25);
          mem.f32(o2, rows * n).fill(0.25);
          run(wasm, o1);
          run(ref, o2);
          expect(maxRelDiff(mem.f32(o1, rows * n), mem.f32(o2, rows * n))).toBeLessThanOrEqual(tol);
        };
        check((k, o) => k.rmsnorm(x, w, o, n, 1e-5, 0, rows), 1e-6);
        check((k, o) => k.rmsnorm(x, 0, o, n, 1e-6, 1, rows), 1e-6);
        check((k, o) => k.softmax(x, o, n, 0, rows), 1e-6);
        check((k, o) => k.swiglu(x, b, o, 1, rows * n), 1e-6);
        check((k, o) => k.silu(x, o, 0, rows * n), 1e-6);
        check((k, o) => k.add(x, b, o, 0, rows * n - 1), 0);
        check((k, o) => k.mul(x, b, o, 2, rows * n), 0);
        check((k, o) => k.axpy(x, 0.37, o, 1, rows * n), 0);
        const [h1, h2] = outs();
        wasm.storeF16(x, h1, rows * n);
        ref.storeF16(x, h2, rows * n);
        expect(Array.from(mem.u16(h1, rows * n))).toEqual(Array.from(mem.u16(h2, rows * n)));
      });
    }
  });

  const ropeCases: Array<[string, RopeConfig]> = [
    ["none", { nDims: 64, base: 10000, neox: false, scaling: { type: "none" } }],
    ["linear", { nDims: 64, base: 10000, neox: true, scaling: { type: "linear", factor: 4 } }],
    ["ntk fixed", { nDims: 32, base: 10000, neox: false, scaling: { type: "ntk", alpha: 2 } }],
    ["ntk auto", { nDims: 32, base: 10000, neox: false, scaling: { type: "ntk", alpha: "auto", maxPositions: 64 } }],
    ["yarn", { nDims: 64, base: 10000, neox: false, scaling: { type: "yarn", factor: 16, originalContext: 4096 } }],
    ["partial neox", { nDims: 16, base: 1e6, neox: true, scaling: { type: "none" } }],
  ];
  for (const [name, cfg] of ropeCases) {
    it(`rope ${name}`, () => {
      const r = rng(9);
      withMark(() => {
        const headDim = 64, nHeads = 3, nTok = 4, ld = nHeads * headDim + 8;
        const freqs = ropeFrequencies(cfg, 200);
        const inv = mem.put(freqs.invFreq, 8);
        const cs = mem.alloc(4 * cfg.nDims);
        const data = randomF32(r, nTok * ld);
        const a = mem.put(data);
        const b = mem.put(data);
        wasm.rope(a, cs, nHeads, headDim, cfg.nDims, 1000, inv, freqs.mscale, cfg.neox, nTok, ld);
        ref.rope(b, cs, nHeads, headDim, cfg.nDims, 1000, inv, freqs.mscale, cfg.neox, nTok, ld);
        expect(maxRelDiff(mem.f32(a, nTok * ld), mem.f32(b, nTok * ld))).toBeLessThan(1e-6);
      });
    });
  }

  for (const kvF16 of [false, true]) {
    it(`attention, ${kvF16 ? "f16" : "f32"} cache, grouped-query heads, several queries`, () => {
      const r = rng(kvF16 ? 3 : 4);
      withMark(() => {
        const nHead = 6, nKvHead = 2, headDim = 20, pos0 = 9, nTok = 3, nKv = pos0 + nTok;
        const kv = nKv * nKvHead * headDim;
        const q = mem.put(randomF32(r, nTok * nHead * headDim));
        const kf = randomF32(r, kv), vf = randomF32(r, kv);
        let k: number, v: number;
        if (kvF16) {
          const kx = mem.put(kf), vx = mem.put(vf);
          k = mem.alloc(2 * kv);
          v = mem.alloc(2 * kv);
          wasm.storeF16(kx, k, kv);
          wasm.storeF16(vx, v, kv);
        } else {
          k = mem.put(kf);
          v = mem.put(vf);
        }
        const scores = mem.alloc(4 * nKv), qh = mem.alloc(4 * headDim);
        const o1 = mem.alloc(4 * nTok * nHead * headDim), o2 = mem.alloc(4 * nTok * nHead * headDim);
        const kvType = kvF16 ? GGMLType.F16 : GGMLType.F32;
        wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, 1 / Math.sqrt(headDim), 0, 4);
        wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, 1 / Math.sqrt(headDim), 4, 6);
        ref.attention(q, k, v, o2, scores, qh, nHead, nKvHead, headDim, pos0, nTok, kvType, 1 / Math.sqrt(headDim), 0, 6);
        expect(maxRelDiff(mem.f32(o1, nTok * nHead * headDim), mem.f32(o2, nTok * nHead * headDim))).toBeLessThan(2e-6);
      });
    });
  }

  it("matmul F32 with llamaOrder (tinyBLAS / ggml_vec_dot_f32): the reference's bits", () => {
    const r = rng(7);
    // tinyBLAS's shapes (2+ tokens, cols % 16 == 0, rows % 4 == 0) and vec_dot's (the rest, 64-value blocks and leftovers)
    for (const [rows, cols, nTok] of [[8, 128, 1], [8, 128, 2], [8, 128, 5], [12, 100, 3], [6, 64, 2], [4, 200, 1]]) {
      withMark(() => {
        const w = mem.put(randomF32(r, rows * cols));
        const x = mem.put(randomF32(r, nTok * cols, 2));
        const y1 = mem.alloc(4 * rows * nTok), y2 = mem.alloc(4 * rows * nTok);
        wasm.matmul(GGMLType.F32, w, x, y1, cols, 0, 3, nTok, rows, true);
        wasm.matmul(GGMLType.F32, w, x, y1, cols, 3, rows, nTok, rows, true);
        ref.matmul(GGMLType.F32, w, x, y2, cols, 0, rows, nTok, rows, true);
        expect(Array.from(mem.f32(y1, rows * nTok)), `${rows}x${cols}, ${nTok} tokens`).toEqual(Array.from(mem.f32(y2, rows * nTok)));
      });
    }
  });

  it("attention over an f32 cache in llama.cpp's order (KQ, softmax blocks, KQV with llamaKqv): the reference's bits", () => {
    const r = rng(6);
    // head sizes with and without a whole f32x4, one query (vec_dot's lanes) and several (tinyBLAS's), past 64 positions
    for (const [headDim, pos0, nTok] of [[20, 9, 3], [18, 70, 1], [64, 100, 2], [64, 130, 1], [32, 3, 5]]) {
      withMark(() => {
        const nHead = 4, nKvHead = 2, nKv = pos0 + nTok;
        const kv = nKv * nKvHead * headDim;
        const q = mem.put(randomF32(r, nTok * nHead * headDim, 2));
        const k = mem.put(randomF32(r, kv, 2)), v = mem.put(randomF32(r, kv));
        const scores = mem.alloc(4 * nKv), qh = mem.alloc(4 * headDim);
        const n = nTok * nHead * headDim;
        const o1 = mem.alloc(4 * n), o2 = mem.alloc(4 * n);
        const scale = Math.fround(1 / Math.fround(Math.sqrt(headDim)));
        for (const llamaKqv of [false, true]) {
          wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.F32, scale, 0, 1, llamaKqv);
          wasm.attention(q, k, v, o1, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.F32, scale, 1, nHead, llamaKqv);
          ref.attention(q, k, v, o2, scores, qh, nHead, nKvHead, headDim, pos0, nTok, GGMLType.F32, scale, 0, nHead, llamaKqv);
          expect(Array.from(mem.f32(o1, n)), `head size ${headDim}, ${nTok} queries, llamaKqv ${llamaKqv}`).toEqual(Array.from(mem.f32(o2, n)));
        }
      });
    }
  });

  it("MoE routing: softmax, top-k, renormalised weights", () => {
    const r = rng(11);
    withMark(() => {
      for (const [n, k] of [[8, 2], [4, 1], [16, 4]]) {
        const logits = mem.put(randomF32(r, n, 3));
        const probs = mem.alloc(4 * n);
        const i1 = mem.alloc(4 * k), w1 = mem.alloc(4 * k), i2 = mem.alloc(4 * k), w2 = mem.alloc(4 * k);
        wasm.moeRoute(logits, probs, n, k, true, i1, w1);
        ref.moeRoute(logits, probs, n, k, true, i2, w2);
        expect(Array.from(mem.i32(i1, k))).toEqual(Array.from(mem.i32(i2, k)));
        expect(maxRelDiff(mem.f32(w1, k), mem.f32(w2, k))).toBeLessThan(1e-6);
        expect(mem.f32(w1, k).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
      }
      // A tie goes to the lower expert id.
      const logits = mem.put(Float32Array.from([0, 1, 1, 0.5]));
      const idx = mem.alloc(8), wt = mem.alloc(8), probs = mem.alloc(16);
      wasm.moeRoute(logits, probs, 4, 2, true, idx, wt);
      expect(Array.from(mem.i32(idx, 2))).toEqual([1, 2]);
    });
  });
});

describe("reference matmul against the ggml dequantizer (src/formats/quants)", () => {
  // Q4_1 / Q5_1 add ggml's Q8_1 s term: their version of this test is in nibble-blocks.test.ts.
  for (const type of MATMUL_TYPES.filter((t) => activationKind(t) !== "q8_1")) {
    it(`${GGMLType[type]}: integer block sums equal dequantized weights times dequantized activations`, () => {
      const r = rng(100 + type);
      const mem = KernelMemory.create({ initialBytes: 4 << 20 });
      const k = createReferenceKernels(mem);
      const rows = 4, cols = 512;
      const wb = randomWeights(type, rows, cols, r);
      const xs = randomF32(r, cols, 2);
      const w = mem.put(wb), x = mem.put(xs);
      k.layMatrix(type, w, rows, cols); // the loader's layout (grouped Q4_0, Q4_K, Q6_K rows)
      const xq = mem.alloc(k.actBytes(type, cols)), y = mem.alloc(4 * rows);
      k.quantize(type, x, xq, cols, 0, 1);
      k.matmul(type, w, xq, y, cols, 0, rows, 1, rows);
      // Activations as the weights' product sees them.
      let xa: Float32Array;
      if (type === GGMLType.F32) xa = xs;
      else if (type === GGMLType.F16) xa = mem.f32(xq, cols).slice();
      else {
        const kq = activationKind(type) === "q8_0" ? quantizeQ8_0(xs) : quantizeQ8_K(xs);
        const bs = cols / kq.d.length;
        xa = Float32Array.from(kq.qs, (q, j) => q * kq.d[Math.floor(j / bs)]);
      }
      const wf = dequantize(type, wb, rows * cols);
      const rb = rowBytes(type, cols);
      expect(rb * rows).toBe(wb.length);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        let mag = 0;
        for (let j = 0; j < cols; j++) {
          s += wf[i * cols + j] * xa[j];
          mag += Math.abs(wf[i * cols + j] * xa[j]);
        }
        expect(Math.abs(mem.f32(y, rows)[i] - s)).toBeLessThan(1e-5 * mag + 1e-7);
      }
    });
  }
});

describe("relaxed SIMD's i8 dot product with accumulate (assembly/q4_0.ts, relaxedDotAddOk)", () => {
  it.each(KERNEL_BUILDS)("%s build: the probe picks the add form only where it is right", async (build) => {
    const { module } = await compileKernels(build);
    const mem = KernelMemory.create({ initialBytes: 1 << 20 });
    const ex = instantiateKernels(module, mem.memory);
    const nodeMajor = Number(process.versions.node.split(".")[0]);
    if (build === "simd") expect(ex.relaxed_dot_add()).toBe(0);
    // Node 20's experimental relaxed SIMD returns twice the sum: the i16 form stays there.
    else if (!("bun" in process.versions) && !("deno" in process.versions)) expect(ex.relaxed_dot_add()).toBe(nodeMajor >= 22 ? 1 : 0);
    // Q8_0's i8 path (assembly/q8_0.ts) also needs a fused madd and the byte 0x80 read as 128 in
    // the i7 operand, as x86's vpdpbusd / pmaddubsw read it
    expect(ex.q8_0_act_i8()).toBe(build === "relaxed" && ex.relaxed_dot_add() && ex.fused_madd() && process.arch === "x64" ? 1 : 0);
  });
});
