/** The WebGPU backend: WGSL kernels for the forward program, run where navigator.gpu gives an adapter. */
export {
  createWebGpuRunner, requestWebGpuDevice, checkWebGpuTypes, checkWebGpuKvType, WebGpuError, WEBGPU_MATMUL_TYPES, WEBGPU_KV_TYPES,
  type WebGpuRunner, type WebGpuOptions, type StepIo,
} from "./runner.js";
export { SHADERS, type ShaderName } from "./wgsl.js";
