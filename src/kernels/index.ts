/**
 * Kernels: what a forward pass computes with, on two interchangeable backends.
 *
 *   const mem = KernelMemory.create({ initialBytes: 64 << 20 });
 *   const k = await createKernels(mem, "wasm");          // or "reference"
 *   const w = mem.put(weightBytes);                       // Q4_0 rows, ggml layout
 *   const x = mem.alloc(4 * cols), xq = mem.alloc(k.actBytes(GGMLType.Q4_0, cols)), y = mem.alloc(4 * rows);
 *   k.quantize(GGMLType.Q4_0, x, xq, cols, 0, 1);          // llama.cpp's Q8_0 rounding of x
 *   k.matmul(GGMLType.Q4_0, w, xq, y, cols, 0, rows, 1, rows);
 *
 * Multi-threaded execution of whole graph steps lives in src/runtime (worker pool + barriers).
 */
import type { KernelMemory } from "./memory.js";
import type { Kernels } from "./types.js";
import { createReferenceKernels } from "./reference/backend.js";
import { createWasmKernels } from "./wasm/backend.js";
import type { KernelBuild } from "./wasm/loader.js";

export * from "./types.js";
export * from "./program.js";
export * from "./memory.js";
export { actBytes } from "./reference/backend.js";
export { groupedRow, groupedRowQ4_0, groupedRowQ4_K, groupedRowQ6_K, groupRows, groupRowsQ4_0, groupRowsQ4_K, groupRowsQ6_K, isGrouped, panelBlocks, PANEL_COLUMNS, PANEL_MIN_COLUMNS, releasePanelScratch } from "./layout.js";
export { MATMUL_TYPES, activationKind, rowBytes } from "./reference/matmul.js";
export { ropeFrequencies, ntkAlpha } from "./reference/rope.js";
export type { RopeConfig, RopeScaling, RopeFrequencies } from "./reference/rope.js";
export { compileKernels, enableRelaxedSimd, instantiateKernels } from "./wasm/loader.js";
export type { KernelBuild, KernelExports, CompiledKernels } from "./wasm/loader.js";
export { createReferenceKernels } from "./reference/backend.js";
export { createWasmKernels, wasmKernelsFromExports } from "./wasm/backend.js";

export type KernelBackend = "reference" | "wasm";

export async function createKernels(mem: KernelMemory, backend: KernelBackend = "wasm", build: KernelBuild | "auto" = "auto"): Promise<Kernels> {
  return backend === "reference" ? createReferenceKernels(mem) : createWasmKernels(mem, build);
}
