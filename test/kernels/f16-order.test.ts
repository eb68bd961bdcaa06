/**
 * F16 matmuls sum in llama.cpp's order (src/kernels/reference/matmul.ts, dotF16 / f16Lanes;
 * assembly/f16.ts), to the bit:
 *   - the reference and both WASM builds give exactly what llama.cpp's own ggml_mul_mat and
 *     ggml_mul_mat_id compute (fixtures/golden/kernels/matmul-f16.json, tools/golden-f16-matmul.py:
 *     the AVX-512 tinyBLAS 16-lane order for prompts, ggml_vec_dot_f16's 64 lanes for one token,
 *     MoE experts and the shapes tinyBLAS declines);
 *   - the WASM kernels give the reference's bits on random data around both orders' tiles and
 *     tails, with the rows cut into slices as threads cut them.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { KernelMemory, Kernels } from "../../src/kernels/index.js";
import { dotF16, matmul, roundF16 } from "../../src/kernels/reference/index.js";
import { kernelPair, KERNEL_BUILDS, randomF32, randomWeights, rng, withMark } from "./helpers.js";

interface GoldenCase {
  op: "mul_mat" | "mul_mat_id";
  rows: number;
  cols: number;
  nTok: number;
  experts?: number;
  ids?: number[][];
  w_f16_base64: string;
  x_f32_base64: string;
  y_f32_base64: string;
}
const golden = JSON.parse(readFileSync(new URL("../../fixtures/golden/kernels/matmul-f16.json", import.meta.url), "utf8")) as { cases: GoldenCase[] };
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const f32 = (b64: string) => new Float32Array(bytes(b64).buffer);
const bits = (a: Float32Array) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
const label = (c: GoldenCase) => `${c.op} ${c.rows}x${c.cols}, ${c.nTok} tokens`;

describe("F16 matmul: llama.cpp's summation order", () => {
  it("the reference gives llama.cpp's bits", () => {
    for (const c of golden.cases) {
      const w = bytes(c.w_f16_base64);
      const x = f32(c.x_f32_base64);
      const want = f32(c.y_f32_base64);
      if (c.op === "mul_mat") {
        expect(bits(matmul(GGMLType.F16, w, x, c.rows, c.cols, c.nTok)), label(c)).toEqual(bits(want));
      } else {
        const used = c.ids![0].length;
        const got = new Float32Array(want.length);
        c.ids!.forEach((ids, t) => ids.forEach((e, u) => {
          const xh = x.subarray((t * used + u) * c.cols, (t * used + u + 1) * c.cols).map(roundF16);
          for (let r = 0; r < c.rows; r++) got[(t * used + u) * c.rows + r] = dotF16(w, 2 * (e * c.rows + r) * c.cols, xh, c.cols, 64);
        }));
        expect(bits(got), label(c)).toEqual(bits(want));
      }
    }
  });

  describe.each(KERNEL_BUILDS)("wasm (%s build)", (build) => {
    let mem: KernelMemory;
    let wasm: Kernels;
    let ref: Kernels;
    beforeAll(async () => {
      ({ mem, wasm, ref } = await kernelPair(build, 16 << 20));
    });

    /** y from the kernels k over rows cut at `cuts`, x rounded by k. */
    const run = (k: Kernels, w: number, xs: Float32Array, rows: number, cols: number, nTok: number, cuts: number[]) => {
      const x = mem.put(xs);
      const xq = mem.alloc(k.actBytes(GGMLType.F16, cols) * nTok);
      k.quantize(GGMLType.F16, x, xq, cols, 0, nTok);
      const y = mem.alloc(4 * rows * nTok);
      for (let i = 0; i + 1 < cuts.length; i++) k.matmul(GGMLType.F16, w, xq, y, cols, cuts[i], cuts[i + 1], nTok, rows);
      return mem.f32(y, rows * nTok).slice();
    };

    it("gives llama.cpp's bits", () => {
      for (const c of golden.cases) {
        withMark(mem, () => {
          const want = f32(c.y_f32_base64);
          const x = f32(c.x_f32_base64);
          if (c.op === "mul_mat") {
            const w = mem.put(bytes(c.w_f16_base64));
            expect(bits(run(wasm, w, x, c.rows, c.cols, c.nTok, [0, c.rows >> 1, c.rows])), label(c)).toEqual(bits(want));
          } else {
            const wAll = bytes(c.w_f16_base64);
            const used = c.ids![0].length;
            const got = new Float32Array(want.length);
            c.ids!.forEach((ids, t) => ids.forEach((e, u) => {
              const w = mem.put(wAll.subarray(2 * e * c.rows * c.cols, 2 * (e + 1) * c.rows * c.cols));
              got.set(run(wasm, w, x.subarray((t * used + u) * c.cols, (t * used + u + 1) * c.cols), c.rows, c.cols, 1, [0, c.rows]), (t * used + u) * c.rows);
            }));
            expect(bits(got), label(c)).toEqual(bits(want));
          }
        });
      }
    });

    it("gives the reference's bits around both orders' tiles and tails", () => {
      const r = rng(1616);
      for (const [rows, cols] of [[4, 16], [8, 48], [5, 64], [12, 80], [4, 128], [9, 200], [8, 1024], [3, 7]] as const) {
        for (const nTok of [1, 2, 3, 4, 5]) {
          withMark(mem, () => {
            const w = mem.put(randomWeights(GGMLType.F16, rows, cols, r));
            const xs = randomF32(r, nTok * cols, 3);
            const want = bits(run(ref, w, xs, rows, cols, nTok, [0, rows]));
            for (const cuts of [[0, rows], [0, 1, rows], [0, rows >> 1, rows]]) {
              expect(bits(run(wasm, w, xs, rows, cols, nTok, cuts)), `${rows}x${cols}, ${nTok} tokens, cut at ${cuts}`).toEqual(want);
            }
          });
        }
      }
    });
  });
});
