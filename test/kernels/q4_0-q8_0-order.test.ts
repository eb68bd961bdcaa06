/**
 * Q4_0 and Q8_0 matmuls against what llama.cpp's own ggml_mul_mat computes, with the weights where
 * llama.cpp loads them (fixtures/golden/kernels/matmul-q4_0-q8_0.json, tools/golden-q4_0-q8_0.py):
 * Q4_0 with rows % 8 == 0 in CPU_REPACK (one fma per block, in order), other Q4_0 and all Q8_0 in
 * ggml's 8-lane order (vec_dot for 1 token, tinyBLAS for more).
 *   - The reference (src/kernels/reference/matmul.ts: dotQ4_0, dotQ4_0Lanes, dotQ8_0) gives
 *     llama.cpp's bits in every case.
 *   - Both WASM builds give them for CPU_REPACK (assembly/q4_0_r4.ts, on the grouped layout of
 *     src/kernels/layout.ts): the case every Q4_0 matrix of a real model is in, and the one a
 *     model amplifies (stories15m-q4_0 in the golden set).
 *   - Q8_0 in the 8-lane order: the relaxed build, where relaxed_madd is fused (Node, Deno,
 *     Chromium on x86 with FMA3: assembly/q8_0.ts). Without a fused madd (the plain build here,
 *     Bun) Q8_0 keeps its four-block order, a few ulps away, as Q4_0 matrices of rows % 8 != 0 do
 *     in both builds (q4_0.ts).
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { groupRowsQ4_0, isGrouped, KernelMemory, Kernels } from "../../src/kernels/index.js";
import { matmul } from "../../src/kernels/reference/index.js";
import { kernelPair, KERNEL_BUILDS, withMark } from "./helpers.js";

interface GoldenCase {
  type: "Q4_0" | "Q8_0";
  rows: number;
  cols: number;
  nTok: number;
  path: string;
  w_base64: string;
  x_f32_base64: string;
  y_f32_base64: string;
}
const golden = JSON.parse(readFileSync(new URL("../../fixtures/golden/kernels/matmul-q4_0-q8_0.json", import.meta.url), "utf8")) as { cases: GoldenCase[] };
const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const f32 = (b64: string) => new Float32Array(bytes(b64).buffer);
const bits = (a: Float32Array) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
const label = (c: GoldenCase) => `${c.type} ${c.rows}x${c.cols}, ${c.nTok} tokens (${c.path})`;
const typeOf = (c: GoldenCase) => (c.type === "Q4_0" ? GGMLType.Q4_0 : GGMLType.Q8_0);

describe("Q4_0 / Q8_0 matmul: llama.cpp's float order", () => {
  it("the reference gives llama.cpp's bits", () => {
    for (const c of golden.cases) {
      expect(bits(matmul(typeOf(c), bytes(c.w_base64), f32(c.x_f32_base64), c.rows, c.cols, c.nTok)), label(c)).toEqual(bits(f32(c.y_f32_base64)));
    }
  });

  describe.each(KERNEL_BUILDS)("wasm (%s build)", (build) => {
    let mem: KernelMemory;
    let kernels: { wasm: Kernels; ref: Kernels };
    beforeAll(async () => {
      const pair = await kernelPair(build, 16 << 20);
      mem = pair.mem;
      kernels = pair;
    });

    /** y from the kernels k over rows cut at `cuts`. */
    const run = (k: Kernels, type: GGMLType.Q4_0 | GGMLType.Q8_0, w: number, xs: Float32Array, rows: number, cols: number, nTok: number, cuts: number[]) => {
      const x = mem.put(xs);
      const xq = mem.alloc(k.actBytes(type, cols) * nTok);
      k.quantize(type, x, xq, cols, 0, nTok);
      const y = mem.alloc(4 * rows * nTok);
      for (let i = 0; i + 1 < cuts.length; i++) k.matmul(type, w, xq, y, cols, cuts[i], cuts[i + 1], nTok, rows);
      return mem.f32(y, rows * nTok).slice();
    };

    for (const which of ["wasm", "ref"] as const) {
      it(`${which === "wasm" ? "the kernels give llama.cpp's bits for CPU_REPACK and Q8_0 (fused madd), a few ulps elsewhere" : "the reference kernels (this layout) give llama.cpp's bits"}`, () => {
        const fused = which === "wasm" && kernels.wasm.fusedMadd;
        for (const c of golden.cases) {
          withMark(mem, () => {
            const wBytes = bytes(c.w_base64);
            const w = mem.put(wBytes);
            // Kernel memory holds Q4_0 matrices of a multiple of 8 rows in groups of four rows.
            if (isGrouped(typeOf(c), c.rows)) groupRowsQ4_0(mem.u8(w, wBytes.length), c.cols);
            // Cut mid-group too: a thread's slice may start inside a group of four rows.
            const got = run(kernels[which], typeOf(c), w, f32(c.x_f32_base64), c.rows, c.cols, c.nTok, [0, (c.rows >> 1) + 1, c.rows]);
            const want = f32(c.y_f32_base64);
            if (which === "ref" || c.path === "CPU_REPACK" || (c.type === "Q8_0" && fused)) {
              expect(bits(got), label(c)).toEqual(bits(want));
            } else {
              const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
              for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${label(c)} [${i}]`).toBeLessThan(1e-6 * scale);
            }
          });
        }
      });
    }
  });
});
