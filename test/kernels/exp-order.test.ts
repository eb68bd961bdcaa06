/**
 * SiLU, SwiGLU and softmax with llama.cpp's exp (ggml_v_expf, AVX-512; src/kernels/reference/norm.ts,
 * vexpf; assembly/norm.ts, vexpf4), to the bit: the reference and both WASM builds (the fused
 * madd path and the f64 one) give what llama.cpp's own ggml_silu, ggml_swiglu_split,
 * ggml_soft_max and ggml_soft_max_ext compute (fixtures/golden/kernels/exp-ops.json, made by
 * tools/golden-exp-ops.py), including results that are subnormal, zero or infinite. The masked
 * softmax (llama.cpp's KQ rows, every block a vector block) is read through attention over an f32
 * cache built so that the scores are the inputs and the output is p.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import { KernelMemory, Kernels } from "../../src/kernels/index.js";
import { kernelPair, KERNEL_BUILDS, withMark } from "./helpers.js";

interface GoldenCase {
  op: "silu" | "swiglu" | "soft_max" | "soft_max_masked";
  rows: number;
  cols: number;
  nKv?: number[];
  x_f32_base64: string;
  u_f32_base64?: string;
  y_f32_base64: string;
}
const golden = JSON.parse(readFileSync(new URL("../../fixtures/golden/kernels/exp-ops.json", import.meta.url), "utf8")) as { cases: GoldenCase[] };
const f32 = (b64: string) => new Float32Array(new Uint8Array(Buffer.from(b64, "base64")).buffer);
/** Bits, NaNs as one (llama.cpp's silu(-inf) is NaN; its sign bit is not part of the contract). */
const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer), (b) => ((b & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : b));

describe.each(["reference", ...KERNEL_BUILDS] as const)("exp as llama.cpp's (%s)", (build) => {
  let mem: KernelMemory;
  let k: Kernels;
  beforeAll(async () => {
    const pair = await kernelPair(build === "reference" ? "simd" : build, 4 << 20);
    mem = pair.mem;
    k = build === "reference" ? pair.ref : pair.wasm;
  });

  for (const c of golden.cases) {
    it(`${c.op} ${c.rows}x${c.cols}`, () => {
      withMark(mem, () => {
        const x = f32(c.x_f32_base64);
        const want = f32(c.y_f32_base64);
        const n = c.rows * c.cols;
        const xp = mem.put(x);
        const out = mem.alloc(4 * n);
        if (c.op === "silu") k.silu(xp, out, 0, n);
        else if (c.op === "swiglu") k.swiglu(xp, mem.put(f32(c.u_f32_base64!)), out, 0, n);
        else if (c.op === "soft_max") k.softmax(xp, out, c.cols, 0, c.rows);
        else {
          // Row r: one query at position nKv - 1, head size 64; q = e_0, k_j = (x_j, 0, ...),
          // v_j = e_j, scale 1: score_j = x_j exactly and out = p.
          const hd = 64;
          c.nKv!.forEach((nKv, r) => {
            const q = new Float32Array(hd);
            q[0] = 1;
            const kc = new Float32Array(nKv * hd);
            const vc = new Float32Array(nKv * hd);
            for (let j = 0; j < nKv; j++) {
              kc[j * hd] = x[r * c.cols + j];
              vc[j * hd + j] = 1;
            }
            k.attention(mem.put(q), mem.put(kc), mem.put(vc), out + 4 * r * c.cols, mem.alloc(4 * nKv), mem.alloc(4 * hd), 1, 1, hd, nKv - 1, 1, GGMLType.F32, 1, 0, 1);
            mem.f32(out + 4 * (r * c.cols + nKv), c.cols - nKv).fill(0);
          });
        }
        expect(bits(mem.f32(out, n))).toEqual(bits(want));
      });
    });
  }
});
