/**
 * Finding, choosing and instantiating the compiled kernels (build/kernels*.wasm, made by
 * `npm run build:wasm`).
 *
 * Two builds with identical exports: plain SIMD128, and SIMD128 + relaxed SIMD. The relaxed one
 * is used where `WebAssembly.validate` accepts it (Deno, Bun, Chromium; Node 22+, or Node 20 after
 * `enableRelaxedSimd()`), unless the caller asks for the plain one.
 */

/** What one instance exports; every address is a byte offset in the shared memory. */
export interface KernelExports {
  act_q8_0_bytes(n: number): number;
  act_q8_K_bytes(n: number): number;
  act_q8_0_i16_bytes(n: number): number;
  act_q8_K_i16_bytes(n: number): number;
  act_q4_0_bytes(n: number): number;
  quantize_q8_K_i16(x: number, q: number, n: number, r0: number, r1: number): void;
  quantize_q8_0(x: number, q: number, n: number, r0: number, r1: number): void;
  /** Q4_0's activations: quantize_q8_0_i16 order 4 (plain build), or i8 with groups of four blocks transposed (relaxed; assembly/q4_0.ts). */
  quantize_q4_0(x: number, q: number, n: number, r0: number, r1: number): void;
  quantize_q8_0_i16(x: number, q: number, n: number, r0: number, r1: number, order: number): void;
  quantize_q8_K(x: number, q: number, n: number, r0: number, r1: number): void;
  act_q8_K_eo_bytes(n: number): number;
  quantize_q8_K_eo(x: number, q: number, n: number, r0: number, r1: number): void;
  round_f16(x: number, y: number, n: number): void;
  matmul_q4_0(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  /** Q4_0 rows [0, rows) at w into groups of four rows, in place (src/kernels/layout.ts); tmp: 4 rows of scratch. */
  group_q4_0(w: number, rows: number, cols: number, tmp: number): void;
  group_q4_K(w: number, rows: number, cols: number, tmp: number): void;
  group_q6_K(w: number, rows: number, cols: number, tmp: number): void;
  /** Keep the i16 pair products in this instance even where the dot-add probe passes (Node 20). */
  forbid_relaxed_dot_add(): void;
  /** F32 weights in llama.cpp's order (assembly/f16.ts). */
  matmul_f32_llama(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  /** 1 where f32x4.relaxed_madd rounds once (assembly/fma.ts). */
  fused_madd(): number;
  /** sinf / cosf as glibc computes them (assembly/trig.ts; RoPE's angles). */
  sinf(x: number): number;
  cosf(x: number): number;
  matmul_q8_0(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q4_K(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q5_K(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q6_K(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q2_K(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q3_K(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_iq4_xs(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q4_1(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q5_0(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_q5_1(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_iq4_nl(w: number, q: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  quantize_q8_1(x: number, q: number, n: number, r0: number, r1: number): void;
  matmul_f16(w: number, x: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  matmul_f32(w: number, x: number, y: number, n: number, r0: number, r1: number, nTok: number, ldy: number): void;
  rmsnorm(x: number, w: number, y: number, n: number, eps: number, r0: number, r1: number): void;
  softmax(x: number, y: number, n: number, r0: number, r1: number): void;
  swiglu(g: number, u: number, out: number, i0: number, i1: number): void;
  silu(x: number, out: number, i0: number, i1: number): void;
  add(a: number, b: number, out: number, i0: number, i1: number): void;
  mul(a: number, b: number, out: number, i0: number, i1: number): void;
  axpy(a: number, s: number, out: number, i0: number, i1: number): void;
  rope(
    x: number, cs: number, nHeads: number, headDim: number, nDims: number, pos0: number,
    invFreq: number, mscale: number, neox: number, nTok: number, ld: number,
  ): void;
  attention(
    q: number, k: number, v: number, out: number, scores: number, qh: number,
    nHead: number, nKvHead: number, headDim: number, pos0: number, nTok: number, kvType: number, scale: number,
    h0: number, h1: number, llamaKqv: boolean | number | undefined,
  ): void;
  store_f16(x: number, h: number, n: number): void;
  store_q8_0(x: number, dst: number, n: number): void;
  hadamard(x: number, n: number, c0: number, c1: number): void;
  moe_route(logits: number, probs: number, nExpert: number, k: number, norm: number, idx: number, wt: number): void;
  stream_read(p: number, bytes: number): number;
  relaxed(): number;
  /** 1 where Q4_0 runs on i32x4.relaxed_dot_i8x16_i7x16_add_s (a start-up probe of known answer passed). */
  relaxed_dot_add(): number;
  /** 1 where matmul_q8_0 takes quantize_q8_0's i8 codes (the i8 dot-add path: assembly/q8_0.ts), 0 where quantize_q8_0_i16's. */
  q8_0_act_i8(): number;
}

export type KernelBuild = "simd" | "relaxed";

const FILES: Record<KernelBuild, string> = { simd: "kernels.wasm", relaxed: "kernels-relaxed.wasm" };

/**
 * build/ sits at the package root; this file is src/kernels/wasm/loader.ts when run from sources
 * and dist/kernels/wasm/loader.js when compiled: three levels down either way.
 */
export function kernelUrl(build: KernelBuild): URL {
  if (kernelBase) return new URL(FILES[build], kernelBase);
  return new URL(`../../../build/${FILES[build]}`, import.meta.url);
}

/**
 * Browser bundles: once bundled, import.meta.url is the bundle's URL, not this file's, so the
 * relative path above points nowhere. A bundle calls this (before the first compile) with the
 * folder it ships kernels*.wasm in; the files are then fetched from there.
 */
let kernelBase: URL | undefined;
export function setKernelBaseUrl(base: string | URL): void {
  kernelBase = new URL(base);
  cache.clear();
}

async function readBytes(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    return new Uint8Array(await readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load kernels from ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Node 20 ships relaxed SIMD behind a V8 flag; setting it before the first compile turns it on
 * for the process and its worker threads. Returns whether relaxed SIMD now validates. A no-op
 * outside Node.
 */
export async function enableRelaxedSimd(): Promise<boolean> {
  const bytes = await readBytes(kernelUrl("relaxed"));
  // Node 22+ has it on (and no longer knows the flag: setting it there only prints an error).
  if (WebAssembly.validate(bytes)) return true;
  const proc = (globalThis as { process?: { versions?: { node?: string; bun?: string; deno?: string } } }).process;
  if (proc?.versions?.node && !proc.versions.bun && !proc.versions.deno) {
    const v8 = await import("node:v8");
    v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
  }
  return WebAssembly.validate(bytes);
}

export interface CompiledKernels {
  module: WebAssembly.Module;
  build: KernelBuild;
}

const cache = new Map<string, Promise<CompiledKernels>>();

/**
 * Compile the kernels once per process. `prefer: "relaxed"` (default "auto" = relaxed where it
 * validates) or "simd" forces the plain build, e.g. to test both.
 */
/** ZH_LLAMA_KERNELS=simd|relaxed in the environment (Node, Deno, Bun), where there is one. */
function envKernels(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.ZH_LLAMA_KERNELS;
}

export function compileKernels(prefer: KernelBuild | "auto" = "auto"): Promise<CompiledKernels> {
  if (prefer === "auto") {
    const forced = envKernels();
    if (forced === "simd" || forced === "relaxed") prefer = forced;
  }
  let p = cache.get(prefer);
  if (!p) {
    p = (async () => {
      if (prefer !== "simd") {
        const relaxed = await readBytes(kernelUrl("relaxed"));
        // Node 20 has relaxed SIMD behind a flag: turn it on (its i8 dot-add is never used there:
        // instantiateKernels forbids it, as its probe cannot be trusted). The
        // relaxed build gives the plain build's bits; ZH_LLAMA_KERNELS=simd keeps the plain one.
        if (!WebAssembly.validate(relaxed) && envKernels() !== "simd") await enableRelaxedSimd();
        if (WebAssembly.validate(relaxed)) return { module: await WebAssembly.compile(relaxed), build: "relaxed" as const };
        if (prefer === "relaxed") throw new Error("relaxed SIMD is not available in this runtime");
      }
      const bytes = await readBytes(kernelUrl("simd"));
      return { module: await WebAssembly.compile(bytes), build: "simd" as const };
    })();
    cache.set(prefer, p);
  }
  return p;
}

/** Instantiate over a shared memory (synchronously: Module is already compiled). */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, col: number) => {
        throw new Error(`kernel abort at ${line}:${col}`);
      },
    },
  });
  const exports = instance.exports as unknown as KernelExports;
  if (experimentalRelaxedSimd()) exports.forbid_relaxed_dot_add();
  return exports;
}

/**
 * Node before 22: relaxed SIMD only behind V8's experimental flag (enableRelaxedSimd), where the
 * i8 dot-add's probe cannot be trusted (assembly/q4_0.ts, forbid_relaxed_dot_add).
 */
function experimentalRelaxedSimd(): boolean {
  const versions = (globalThis as { process?: { versions?: { node?: string; bun?: string; deno?: string } } }).process?.versions;
  if (!versions?.node || versions.bun || versions.deno) return false;
  return Number(versions.node.split(".")[0]) < 22;
}
