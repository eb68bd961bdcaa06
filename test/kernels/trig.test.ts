/**
 * sinf / cosf for RoPE as glibc computes them (src/kernels/reference/trig.ts, assembly/trig.ts):
 * the reference and both WASM builds give glibc's bits (fixtures/golden/kernels/trig.json, made by
 * tools/golden-trig.py through ctypes) on 9543 angles, RoPE's own among them, where the
 * correctly rounded values (Math.sin / Math.cos rounded to float32) miss more than a hundred.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cosf, sinf } from "../../src/kernels/reference/trig.js";
import { compileKernels, instantiateKernels } from "../../src/kernels/wasm/loader.js";
import { KERNEL_BUILDS } from "./helpers.js";

const golden = JSON.parse(readFileSync(new URL("../../fixtures/golden/kernels/trig.json", import.meta.url), "utf8")) as {
  x_f32_base64: string; sin_f32_base64: string; cos_f32_base64: string;
};
const f32 = (b64: string) => new Float32Array(new Uint8Array(Buffer.from(b64, "base64")).buffer);
const x = f32(golden.x_f32_base64);
const wantSin = f32(golden.sin_f32_base64);
const wantCos = f32(golden.cos_f32_base64);
/** Bits, NaNs as one. */
const bits = (a: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(a).buffer), (b) => ((b & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : b));

describe("sinf / cosf as glibc's", () => {
  it("the correctly rounded values are not glibc's (the fixture can tell)", () => {
    let differ = 0;
    for (let i = 0; i < x.length; i++) if (Math.fround(Math.sin(x[i]!)) !== wantSin[i] || Math.fround(Math.cos(x[i]!)) !== wantCos[i]) differ++;
    expect(differ).toBeGreaterThan(100);
  });

  it("the reference gives glibc's bits", () => {
    expect(bits(Array.from(x, sinf))).toEqual(bits(wantSin));
    expect(bits(Array.from(x, cosf))).toEqual(bits(wantCos));
  });

  for (const build of KERNEL_BUILDS) {
    it(`wasm (${build} build) gives glibc's bits`, async () => {
      const { module } = await compileKernels(build);
      const ex = instantiateKernels(module, new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true }));
      expect(bits(Array.from(x, (v) => ex.sinf(v)))).toEqual(bits(wantSin));
      expect(bits(Array.from(x, (v) => ex.cosf(v)))).toEqual(bits(wantCos));
    });
  }
});
