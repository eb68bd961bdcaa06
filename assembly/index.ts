/*
 * The kernel module's exports. Every function works on byte addresses in the imported shared
 * memory; nothing here allocates, so many instances (one per worker) can share one memory.
 * Two builds come from this source: SIMD128 (build/kernels.wasm) and SIMD128 + relaxed SIMD
 * (build/kernels-relaxed.wasm), with identical exports; the loader picks by WebAssembly.validate.
 */
export {
  act_q8_0_bytes, act_q8_0_i16_bytes, act_q8_K_bytes, act_q8_K_i16_bytes,
  quantize_q8_0, quantize_q8_0_i16, quantize_q8_K, quantize_q8_K_i16,
} from "./quantize";
export { round_f16 } from "./common";
export { act_q4_0_bytes, forbid_relaxed_dot_add, quantize_q4_0 } from "./q4_0";
import { relaxedDotAddOk } from "./q4_0";
import { q8_0DotAddOk } from "./q8_0";
import { fusedMaddOk } from "./fma";
export { group_q4_0 } from "./q4_0_r4";
export { panel_columns, panel_min_columns } from "./groups";
export { group_q4_K } from "./q4_k_r4";
export { group_q6_K } from "./q6_k_r4";
export { matmul_q4_0, matmul_q8_0, matmul_q4_1, matmul_q5_0, matmul_q5_1, matmul_iq4_nl } from "./tiles";
export { quantize_q8_1 } from "./nibble_blocks";
export { matmul_q4_K, matmul_q5_K, matmul_q6_K } from "./k_quants";
export { act_q8_K_eo_bytes, quantize_q8_K_eo, matmul_q2_K, matmul_q3_K, matmul_iq4_xs } from "./k_quants_low";
export { matmul_f16, matmul_f32, matmul_f32_llama } from "./f16";
export { rmsnorm, softmax, swiglu, silu, add, mul, axpy } from "./norm";
export { rope } from "./rope";
export { sinf, cosf } from "./trig";
export { attention, store_f16, store_q8_0 } from "./attention";
export { hadamard } from "./hadamard";
export { moe_route } from "./moe";
export { stream_read } from "./bandwidth";

/** 1 in the relaxed-SIMD build, 0 in the plain one. */
export function relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/**
 * 1 where the relaxed build's Q4_0 product runs on i32x4.relaxed_dot_i8x16_i7x16_add_s (this
 * runtime passed the probe in q4_0.ts), 0 where it keeps the i16 pair products (plain build;
 * Node 20's experimental relaxed SIMD, whose add form returns twice the sum).
 */
export function relaxed_dot_add(): i32 {
  return relaxedDotAddOk() ? 1 : 0;
}

/**
 * 1 where matmul_q8_0 takes i8 activation codes (quantize_q8_0) and runs on the i8 dot-add
 * (q8_0.ts, q8_0DotAddOk); 0 where it takes quantize_q8_0_i16's widened ones.
 */
export function q8_0_act_i8(): i32 {
  return q8_0DotAddOk() ? 1 : 0;
}

/** 1 where f32x4.relaxed_madd rounds once (fma.ts): the fma chains run on it instead of f64. */
export function fused_madd(): i32 {
  return fusedMaddOk() ? 1 : 0;
}
