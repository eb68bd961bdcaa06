/**
 * The wasm backend: the Kernels interface over one instance of the SIMD build. Every worker
 * makes its own with the same memory; the calls are thin, so the hot path is all in WASM.
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import type { KernelMemory } from "../memory.js";
import type { Kernels, MatmulType } from "../types.js";
import { actBytes } from "../reference/backend.js";
import { rowBytes } from "../reference/matmul.js";
import { inPanels, isGrouped } from "../layout.js";
import { compileKernels, instantiateKernels, KernelBuild, KernelExports } from "./loader.js";

type MatmulFn = KernelExports["matmul_q4_0"];

export function wasmKernelsFromExports(mem: KernelMemory, ex: KernelExports, build: string): Kernels {
  const matmuls: Record<MatmulType, MatmulFn> = {
    [GGMLType.F32]: ex.matmul_f32,
    [GGMLType.F16]: ex.matmul_f16,
    [GGMLType.Q4_0]: ex.matmul_q4_0,
    [GGMLType.Q8_0]: ex.matmul_q8_0,
    [GGMLType.Q4_K]: ex.matmul_q4_K,
    [GGMLType.Q5_K]: ex.matmul_q5_K,
    [GGMLType.Q6_K]: ex.matmul_q6_K,
    [GGMLType.Q2_K]: ex.matmul_q2_K,
    [GGMLType.Q3_K]: ex.matmul_q3_K,
    [GGMLType.IQ4_XS]: ex.matmul_iq4_xs,
    [GGMLType.Q4_1]: ex.matmul_q4_1,
    [GGMLType.Q5_0]: ex.matmul_q5_0,
    [GGMLType.Q5_1]: ex.matmul_q5_1,
    [GGMLType.IQ4_NL]: ex.matmul_iq4_nl,
  };
  return {
    backend: "wasm",
    build,
    path: build === "relaxed" ? (ex.relaxed_dot_add() ? "relaxed SIMD (i8 dot-add)" : "relaxed SIMD (i16 dot)") : "SIMD128",
    actLayout: build === "simd" ? "simd" : ex.q8_0_act_i8() ? "relaxed-i8" : "relaxed",
    fusedMadd: ex.fused_madd() === 1,
    memory: mem,
    actBytes,
    quantize(type, x, xq, cols, t0, t1) {
      switch (type) {
        case GGMLType.Q4_0:
          // Each build writes the layout its kernel reads (assembly/q4_0.ts, quantize_q4_0).
          return ex.quantize_q4_0(x, xq, cols, t0, t1);
        case GGMLType.Q8_0:
          // i8 codes where the Q8_0 kernel runs on the i8 dot-add (assembly/q8_0.ts, q8_0DotAddOk)
          if (ex.q8_0_act_i8()) return ex.quantize_q8_0(x, xq, cols, t0, t1);
          return ex.quantize_q8_0_i16(x, xq, cols, t0, t1, 8);
        case GGMLType.IQ4_NL:
          return ex.quantize_q8_0_i16(x, xq, cols, t0, t1, 8);
        case GGMLType.Q5_0:
          // Q8_0 order widened, or plain i8 codes in the relaxed build (assembly/nibble_blocks.ts).
          if (build === "relaxed") return ex.quantize_q8_0(x, xq, cols, t0, t1);
          return ex.quantize_q8_0_i16(x, xq, cols, t0, t1, 8);
        case GGMLType.Q4_1:
        case GGMLType.Q5_1:
          return ex.quantize_q8_1(x, xq, cols, t0, t1);
        case GGMLType.Q4_K:
        case GGMLType.Q5_K:
          return ex.quantize_q8_K_i16(x, xq, cols, t0, t1);
        case GGMLType.Q6_K:
          return ex.quantize_q8_K(x, xq, cols, t0, t1);
        case GGMLType.Q2_K:
        case GGMLType.Q3_K:
        case GGMLType.IQ4_XS:
          return ex.quantize_q8_K_eo(x, xq, cols, t0, t1);
        case GGMLType.F16:
          return ex.round_f16(x + 4 * t0 * cols, xq + 4 * t0 * cols, (t1 - t0) * cols);
        case GGMLType.F32:
          mem.u8(xq + 4 * t0 * cols, 4 * (t1 - t0) * cols).set(mem.u8(x + 4 * t0 * cols, 4 * (t1 - t0) * cols));
      }
    },
    matmul(type, w, xq, y, cols, r0, r1, nTok, ldy, llamaOrder = false) {
      (llamaOrder && type === GGMLType.F32 ? ex.matmul_f32_llama : matmuls[type])(w, xq, y, cols, r0, r1, nTok, ldy);
    },
    layMatrix(type, w, rows, cols) {
      if (!isGrouped(type, rows)) return;
      // Scratch for one group of four rows, just above everything allocated.
      const mark = mem.mark();
      try {
        const tmp = mem.alloc(4 * rowBytes(type as MatmulType, cols));
        // Long rows in panels (layout.ts), each panel grouped as a matrix of its own.
        const { blockSize, bytesPerBlock } = GGML_TYPES[type];
        inPanels(mem.u8(w, rows * rowBytes(type as MatmulType, cols)), cols, blockSize, bytesPerBlock, (_, c, at) => {
          if (type === GGMLType.Q4_K) ex.group_q4_K(w + at, rows, c, tmp);
          else if (type === GGMLType.Q6_K) ex.group_q6_K(w + at, rows, c, tmp);
          else ex.group_q4_0(w + at, rows, c, tmp);
        });
      } finally {
        mem.release(mark);
      }
    },
    rmsnorm: ex.rmsnorm,
    softmax: ex.softmax,
    swiglu: ex.swiglu,
    silu: ex.silu,
    add: ex.add,
    mul: ex.mul,
    axpy: ex.axpy,
    rope(x, cs, nHeads, headDim, nDims, pos0, invFreq, mscale, neox, nTok, ld) {
      ex.rope(x, cs, nHeads, headDim, nDims, pos0, invFreq, mscale, neox ? 1 : 0, nTok, ld);
    },
    attention: ex.attention,
    storeF16: ex.store_f16,
    storeQ8_0: ex.store_q8_0,
    hadamard: ex.hadamard,
    streamRead: ex.stream_read,
    moeRoute(logits, probs, nExpert, k, norm, idx, wt) {
      ex.moe_route(logits, probs, nExpert, k, norm ? 1 : 0, idx, wt);
    },
  };
}

/** Compile (once per process) and instantiate the kernels over `mem`. */
export async function createWasmKernels(mem: KernelMemory, prefer: KernelBuild | "auto" = "auto"): Promise<Kernels> {
  const { module, build } = await compileKernels(prefer);
  return wasmKernelsFromExports(mem, instantiateKernels(module, mem.memory), build);
}
