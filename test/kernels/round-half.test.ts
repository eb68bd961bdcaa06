/**
 * Rounding to half precision (what llama.cpp does to an F16 product's input and, with an f16 KV
 * cache, to the attention query and weights): the WASM kernels' four-lane roundHalf4
 * (assembly/common.ts, through round_f16, the F16 activation rounding) against the reference's
 * roundF16 (f32ToF16 then f16ToF32), to the bit, on every kind of value: each exponent from the
 * subnormal singles up past the half range, ties between halves (even and odd), the subnormal
 * halves and the boundary to the normal ones, the overflow boundary (65504, 65519.99, 65520),
 * zeros, infinities and NaN, both signs; and random bit patterns.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { GGMLType } from "../../src/formats/ggml-types.js";
import type { KernelMemory, Kernels } from "../../src/kernels/index.js";
import { kernelPair, KERNEL_BUILDS, rng, withMark } from "./helpers.js";

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
const f32 = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0]!;

function values(): Float32Array {
  const v: number[] = [0, -0, Infinity, -Infinity, Number.NaN, 65504, 65519.99, 65520, 65536, 1e30, 3.4e38];
  // every single exponent, with mantissas that land on, between and exactly halfway between halves
  for (let e = 0; e < 255; e++) {
    for (const m of [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x5000, 0x7fe000, 0x7ff000, 0x7fffff]) {
      v.push(f32((e << 23) | m), f32(0x80000000 | (e << 23) | m));
    }
  }
  // the subnormal halves and their boundary: multiples of 2^-24 and the ties between them
  for (let k = 0; k < 2100; k++) v.push(k * 2 ** -24, (k + 0.5) * 2 ** -24, -(k + 0.5) * 2 ** -24);
  const r = rng(77);
  for (let i = 0; i < 20000; i++) v.push(f32(Math.floor(r() * 2 ** 32)));
  while (v.length % 4 !== 3) v.push(0.1); // a scalar tail after the four-lane body
  return Float32Array.from(v);
}

describe.each(KERNEL_BUILDS)("round to half precision (%s build)", (build) => {
  let mem: KernelMemory;
  let kernels: { wasm: Kernels; ref: Kernels };
  beforeAll(async () => {
    const pair = await kernelPair(build, 4 << 20);
    mem = pair.mem;
    kernels = pair;
  });

  it("gives the reference's bits on every kind of value", () => {
    const xs = values();
    withMark(mem, () => {
      const x = mem.put(xs);
      const got = (k: Kernels) => {
        const y = mem.alloc(4 * xs.length);
        k.quantize(GGMLType.F16, x, y, xs.length, 0, 1);
        return bitsOf(mem.f32(y, xs.length).slice());
      };
      const want = got(kernels.ref);
      const have = got(kernels.wasm);
      const firstDiff = have.findIndex((b, i) => b !== want[i]);
      expect(firstDiff, firstDiff >= 0 ? `x = ${xs[firstDiff]} (0x${bitsOf(xs.subarray(firstDiff, firstDiff + 1))[0]!.toString(16)}): 0x${have[firstDiff]!.toString(16)}, want 0x${want[firstDiff]!.toString(16)}` : "").toBe(-1);
    });
  });
});
