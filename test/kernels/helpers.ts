/** Shared test helpers: a seeded RNG and random-but-valid ggml weight blocks. */
import { GGMLType, GGML_TYPES } from "../../src/formats/ggml-types.js";
import { mulberry32 } from "../../src/convert/synthetic.js";
import { f16ToF32, f32ToF16 } from "../../src/formats/quants/index.js";
import { createReferenceKernels, createWasmKernels, enableRelaxedSimd, KernelMemory, type Kernels, type MatmulType } from "../../src/kernels/index.js";
import { quantizeQ8_0 } from "../../src/kernels/reference/index.js";

/** The kernel builds this runtime runs (relaxed SIMD switched on where V8 has it behind a flag). */
export const KERNEL_BUILDS = (await enableRelaxedSimd()) ? (["simd", "relaxed"] as const) : (["simd"] as const);

/** One build's WASM kernels and the reference twin writing that build's activation layout, over one memory. */
export async function kernelPair(build: (typeof KERNEL_BUILDS)[number], initialBytes: number): Promise<{ mem: KernelMemory; wasm: Kernels; ref: Kernels }> {
  const mem = KernelMemory.create({ initialBytes });
  const wasm = await createWasmKernels(mem, build);
  return { mem, wasm, ref: createReferenceKernels(mem, wasm.actLayout) };
}

/** Runs fn, then frees what it allocated in mem. */
export function withMark<T>(mem: KernelMemory, fn: () => T): T {
  const m = mem.mark();
  try {
    return fn();
  } finally {
    mem.release(m);
  }
}

/** mulberry32 (the test-model generator's): small, seeded, good enough for test data. */
export const rng = mulberry32;

export function randomF32(r: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function putF16(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  b[o] = h & 255;
  b[o + 1] = h >> 8;
}

/**
 * `rows` rows of random weights of `type`: random code bytes (every bit pattern the kernels must
 * handle) with finite, modest f16 scales written over the scale fields.
 */
export function randomWeights(type: MatmulType, rows: number, cols: number, r: () => number): Uint8Array {
  const { blockSize, bytesPerBlock } = GGML_TYPES[type];
  const nBlocks = (rows * cols) / blockSize;
  const b = new Uint8Array(nBlocks * bytesPerBlock);
  if (type === GGMLType.F32) {
    new Float32Array(b.buffer).set(randomF32(r, rows * cols));
    return b;
  }
  if (type === GGMLType.F16) {
    for (let i = 0; i < rows * cols; i++) putF16(b, 2 * i, r() * 2 - 1);
    return b;
  }
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  for (let k = 0; k < nBlocks; k++) {
    const o = k * bytesPerBlock;
    switch (type) {
      case GGMLType.Q4_0:
        putF16(b, o, (r() * 2 - 1) * 0.02);
        break;
      case GGMLType.Q8_0:
        putF16(b, o, (r() * 2 - 1) * 0.002);
        // ggml's quantizer never writes -128 (|q| <= 127); the relaxed build relies on it.
        for (let j = 2; j < 34; j++) if (b[o + j] === 0x80) b[o + j] = 0x81;
        break;
      case GGMLType.Q4_K:
      case GGMLType.Q5_K:
        putF16(b, o, r() * 0.002);
        putF16(b, o + 2, r() * 0.002);
        break;
      case GGMLType.Q6_K:
        putF16(b, o + 208, (r() * 2 - 1) * 0.002);
        break;
      case GGMLType.Q2_K:
        putF16(b, o + 80, r() * 0.002);
        putF16(b, o + 82, r() * 0.002);
        break;
      case GGMLType.Q3_K:
        putF16(b, o + 108, (r() * 2 - 1) * 0.002);
        break;
      case GGMLType.IQ4_XS:
        putF16(b, o, (r() * 2 - 1) * 0.0002);
        break;
      case GGMLType.Q5_0:
        putF16(b, o, (r() * 2 - 1) * 0.002);
        break;
      case GGMLType.IQ4_NL:
        putF16(b, o, (r() * 2 - 1) * 0.0002);
        break;
      case GGMLType.Q4_1:
      case GGMLType.Q5_1:
        putF16(b, o, r() * 0.002); // d
        putF16(b, o + 2, (r() * 2 - 1) * 0.02); // m
        break;
    }
  }
  return b;
}

/** Largest |a - b| relative to the largest |b| (plus a floor). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let m = 0;
  let s = floor;
  for (let i = 0; i < b.length; i++) s = Math.max(s, Math.abs(b[i]));
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / s;
}

/**
 * y = W x (nTok x rows) for Q4_0 (ungrouped) / Q8_0 (without a fused madd) weights, summed in exactly the WASM kernels' float order
 * (assembly/q4_0.ts, "Summation order"), so it must match every kernel path bit for bit: exact
 * integer block sums; block b's sum times (weight scale * activation scale) into lane b % 4 of
 * a float accumulator; the lanes folded as (0 + 2) + (1 + 3); the blocks after the last full
 * group of four added one by one. (The reference matmul sums in another order: close, not equal.)
 */
export function matmulKernelOrder(type: GGMLType.Q4_0 | GGMLType.Q8_0, w: Uint8Array, x: Float32Array, rows: number, cols: number, nTok: number): Float32Array {
  const f = Math.fround;
  const blockBytes = type === GGMLType.Q4_0 ? 18 : 34;
  const nb = cols / 32;
  const y = new Float32Array(nTok * rows);
  for (let t = 0; t < nTok; t++) {
    const xq = quantizeQ8_0(x.subarray(t * cols, (t + 1) * cols));
    for (let r = 0; r < rows; r++) {
      const term = (b: number): number => {
        const o = (r * nb + b) * blockBytes;
        let isum = 0;
        for (let j = 0; j < 32; j++) {
          const code = type === GGMLType.Q4_0 ? (j < 16 ? w[o + 2 + j] & 15 : w[o + 2 + j - 16] >> 4) - 8 : (w[o + 2 + j] << 24) >> 24;
          isum += code * xq.qs[b * 32 + j];
        }
        return f(f(isum) * f(f16ToF32(w[o] | (w[o + 1] << 8)) * xq.d[b]));
      };
      const lanes = [0, 0, 0, 0];
      let b = 0;
      for (; b + 3 < nb; b += 4) for (let k = 0; k < 4; k++) lanes[k] = f(lanes[k] + term(b + k));
      let sum = f(f(lanes[0] + lanes[2]) + f(lanes[1] + lanes[3]));
      for (; b < nb; b++) sum = f(sum + term(b));
      y[t * rows + r] = sum;
    }
  }
  return y;
}
