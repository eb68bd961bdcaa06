/**
 * The WebGPU backend: runs a forward program (src/kernels/program.ts, the same list of kernel
 * calls the WASM workers walk) as one compute pass of WGSL dispatches (wgsl.ts).
 *
 *   CPU kernel memory   [statics | weights | run state, KV cache ...]        (the allocator's map)
 *          | uploaded once, grown by copying when new sessions allocate more
 *          v
 *   GPU buffer "mem"    the same bytes at the same addresses
 *
 * Per step only the new tokens' embeddings go up (the CPU dequantizes them) and only the wanted
 * logits come back; the KV cache and every activation stay on the GPU. RoPE's cos/sin table is
 * made on the CPU in float64 for the step's positions (a few KB).
 *
 * One storage binding holds the whole memory, so a model must fit the adapter's
 * maxStorageBufferBindingSize (often 128 MiB to 2 GiB; 4 GiB on some desktop GPUs).
 */
import { GGMLType } from "../../formats/ggml-types.js";
import { actBytes } from "../reference/backend.js";
import { rowBytes } from "../reference/matmul.js";
import { GGML_ROPE_RAMP, ggmlRopeCache } from "../reference/rope.js";
import type { KernelMemory } from "../memory.js";
import type { KvType, MatmulType } from "../types.js";
import { ARG, MAX_ARGS, OPCODES, OP_SLOTS, REGISTERS, type EncodedProgram } from "../program.js";
import { ELEMENTWISE, SHADERS, type ShaderName } from "./wgsl.js";

export class WebGpuError extends Error {
  override name = "WebGpuError";
}

/**
 * WebGPU's flag values (fixed by the spec). Spelled out because TypeScript's DOM library declares
 * the GPUBufferUsage / GPUShaderStage / GPUMapMode namespaces' types but not their values.
 */
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const STAGE_COMPUTE = 0x4;
const MAP_READ = 0x1;

/** Bytes of one op's uniform record: head + MAX_ARGS vec4s, padded to the dynamic-offset alignment. */
const RECORD_BYTES = 512;
const RECORD_WORDS = RECORD_BYTES / 4;
/** A grid dimension holds at most this many workgroups. */
const MAX_GRID = 65535;
/** Upload the initial memory in pieces (WebGPU implementations stage writeBuffer data). */
const UPLOAD_CHUNK = 16 << 20;

/** Arguments that are floats (encoded as f32 bits when constant). */
const FLOAT_ARGS: Partial<Record<number, readonly number[]>> = {
  [OPCODES.rmsnorm]: [ARG.rmsnorm.eps],
  [OPCODES.rope]: [ARG.rope.mscale],
  [OPCODES.attention]: [ARG.attention.scale],
};

/** Each opcode's argument positions by name (src/kernels/program.ts). */
const ARG_BY_CODE: Partial<Record<number, Readonly<Record<string, number>>>> = Object.fromEntries(
  Object.entries(OPCODES).map(([name, code]) => [code, ARG[name as keyof typeof ARG]]),
);

/** Variants of the element-wise shader (op.head.z). */
const ELEMENTWISE_VARIANT: Partial<Record<number, number>> = {
  [OPCODES.swiglu]: 0, [OPCODES.add]: 1, [OPCODES.mul]: 2, [OPCODES.silu]: 3, [OPCODES.axpy]: 4,
};

const MATMUL_SHADER: Partial<Record<MatmulType, ShaderName>> = {
  [GGMLType.Q4_0]: "matmul_q4_0",
  [GGMLType.Q8_0]: "matmul_q8_0",
  [GGMLType.Q4_K]: "matmul_q4_K",
  [GGMLType.Q5_K]: "matmul_q5_K",
  [GGMLType.Q6_K]: "matmul_q6_K",
  [GGMLType.F16]: "matmul_f16",
  [GGMLType.F32]: "matmul_f32",
};

/** Weight types the WebGPU backend multiplies; anything else is refused at load time. */
export const WEBGPU_MATMUL_TYPES: readonly MatmulType[] = [
  GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.F16, GGMLType.F32,
];

export interface WebGpuOptions {
  /** An adapter or device to use instead of navigator.gpu's default. */
  device?: GPUDevice;
  powerPreference?: GPUPowerPreference;
}

/** One op, ready to dispatch. */
interface Dispatch {
  shader: ShaderName;
  grid: [number, number];
}

interface RopeUse {
  invFreq: number;
  mscale: number;
  half: number;
  nTok: number;
  /** Register holding the position of the first token. */
  posReg: number;
  posAdd: number;
}

interface Translated {
  records: GPUBuffer;
  dispatches: Dispatch[];
  rope: RopeUse | undefined;
  /** Floats of attention scratch the program needs. */
  scratch: number;
  /** The bind group and the buffers it was made for (rebuilt when one is replaced). */
  bindGroup?: GPUBindGroup;
  bound?: readonly GPUBuffer[];
}

export interface StepIo {
  /** [address, bytes] ranges the CPU wrote since the last step (new embeddings). */
  upload: ReadonlyArray<readonly [number, number]>;
  /** [address, bytes] ranges the CPU reads after the step (logits). */
  download: ReadonlyArray<readonly [number, number]>;
}

export interface WebGpuRunner {
  readonly description: string;
  readonly maxBindingBytes: number;
  /** Runs one step of `program` with the registers set from `regs`. */
  run(program: EncodedProgram, regs: readonly number[], io: StepIo): Promise<void>;
  dispose(): void;
}

/** The default adapter's device, or an error saying why there is none. */
export async function requestWebGpuDevice(options: WebGpuOptions = {}): Promise<{ device: GPUDevice; description: string }> {
  if (options.device) return { device: options.device, description: "WebGPU (given device)" };
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new WebGpuError("WebGPU is not available here (no navigator.gpu)");
  const adapter = await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : undefined);
  if (!adapter) throw new WebGpuError("WebGPU is present but gave no adapter (no usable GPU or driver)");
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const info = adapter.info;
  const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(" ");
  return { device, description: `WebGPU${name ? ` (${name})` : ""}` };
}

/** Throws WebGpuError unless every matrix type has a WGSL kernel. */
export function checkWebGpuTypes(types: Iterable<MatmulType>): void {
  for (const t of types) {
    if (!WEBGPU_MATMUL_TYPES.includes(t)) {
      throw new WebGpuError(`the WebGPU backend has no kernel for ${GGMLType[t]} weights (it does ${WEBGPU_MATMUL_TYPES.map((x) => GGMLType[x]).join(", ")})`);
    }
  }
}

/** KV cache types the WGSL attention reads; a Q8_0 cache has no kernel here. */
export const WEBGPU_KV_TYPES: readonly KvType[] = [GGMLType.F32, GGMLType.F16];

/** Throws WebGpuError unless the WGSL attention reads a `type` KV cache. */
export function checkWebGpuKvType(type: KvType): void {
  if (!WEBGPU_KV_TYPES.includes(type)) {
    throw new WebGpuError(`no WebGPU kernel reads a ${GGMLType[type]} KV cache (the WebGPU backend's attention does ${WEBGPU_KV_TYPES.map((x) => GGMLType[x]).join(", ")}): use an f16 or f32 cache`);
  }
}

export async function createWebGpuRunner(mem: KernelMemory, options: WebGpuOptions = {}): Promise<WebGpuRunner> {
  const { device, description } = await requestWebGpuDevice(options);
  const maxBindingBytes = device.limits.maxStorageBufferBindingSize;
  let lost: string | undefined;
  void device.lost.then((info) => {
    lost = info.message || String(info.reason);
  });

  const layout = device.createBindGroupLayout({
    entries: [
      { binding: 0, visibility: STAGE_COMPUTE, buffer: { type: "storage" } },
      { binding: 1, visibility: STAGE_COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: RECORD_BYTES } },
      { binding: 2, visibility: STAGE_COMPUTE, buffer: { type: "read-only-storage" } },
      { binding: 3, visibility: STAGE_COMPUTE, buffer: { type: "read-only-storage" } },
      { binding: 4, visibility: STAGE_COMPUTE, buffer: { type: "storage" } },
    ],
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const pipelines = new Map<ShaderName, GPUComputePipeline>();
  const pipeline = (name: ShaderName): GPUComputePipeline => {
    let p = pipelines.get(name);
    if (!p) {
      const module = device.createShaderModule({ code: SHADERS[name], label: name });
      p = device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint: "main" }, label: name });
      pipelines.set(name, p);
    }
    return p;
  };

  const storage = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;
  let memBuffer: GPUBuffer | undefined;
  const regsBuffer = device.createBuffer({ size: 4 * REGISTERS, usage: USAGE.STORAGE | USAGE.COPY_DST });
  let ropeBuffer = device.createBuffer({ size: 256, usage: USAGE.STORAGE | USAGE.COPY_DST });
  let scratchBuffer = device.createBuffer({ size: 256, usage: USAGE.STORAGE });
  const translated = new WeakMap<SharedArrayBuffer, Translated>();

  const cpuBytes = (addr: number, bytes: number) => new Uint8Array(mem.buffer, addr, bytes);
  /** writeBuffer wants unshared data; copy out of the shared memory in pieces. */
  const upload = (addr: number, bytes: number) => {
    for (let o = 0; o < bytes; o += UPLOAD_CHUNK) {
      const n = Math.min(UPLOAD_CHUNK, bytes - o);
      device.queue.writeBuffer(memBuffer!, addr + o, cpuBytes(addr + o, n).slice());
    }
  };

  /** The GPU copy covers everything allocated so far; on growth the old contents are copied over. */
  const ensureMemory = () => {
    const need = Math.ceil(mem.used / 256) * 256;
    if (memBuffer && memBuffer.size >= need) return;
    if (need > maxBindingBytes) {
      throw new WebGpuError(
        `the model needs ${(need / 2 ** 20).toFixed(0)} MiB in one GPU storage binding; this adapter allows ` +
          `${(maxBindingBytes / 2 ** 20).toFixed(0)} MiB (maxStorageBufferBindingSize)`,
      );
    }
    const size = Math.min(maxBindingBytes, Math.max(need, Math.ceil((need * 1.25) / 256) * 256));
    const next = device.createBuffer({ size, usage: storage, label: "kernel memory" });
    if (memBuffer) {
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(memBuffer, 0, next, 0, memBuffer.size);
      device.queue.submit([enc.finish()]);
      const old = memBuffer;
      memBuffer = next;
      // Memory the CPU allocated since (a new session's state) starts as the CPU has it.
      upload(old.size, Math.min(mem.used, size) - old.size);
      old.destroy();
    } else {
      memBuffer = next;
      upload(0, mem.used);
    }
  };

  const translate = (program: EncodedProgram): Translated => {
    const code = new Float64Array(program.sab);
    const words = new Uint32Array(Math.max(1, program.length) * RECORD_WORDS);
    const f32 = new Float32Array(words.buffer);
    const dispatches: Dispatch[] = [];
    let rope: RopeUse | undefined;
    let scratch = 1;
    for (let i = 0; i < program.length; i++) {
      const o = i * OP_SLOTS;
      const opcode = code[o]!;
      const count = code[o + 2]!;
      const rec = i * RECORD_WORDS;
      const floats = FLOAT_ARGS[opcode] ?? [];
      const kinds: number[] = [];
      const consts: number[] = [];
      for (let j = 0; j < count && j < MAX_ARGS; j++) {
        const s = o + 3 + 4 * j;
        const kind = code[s]!;
        const a = code[s + 1]!;
        const r = rec + 4 + 4 * j;
        kinds.push(kind);
        consts.push(a);
        words[r] = kind;
        if (kind === 0 && floats.includes(j)) f32[r + 1] = a;
        else words[r + 1] = toU32(a, `op ${i} argument ${j}`);
        words[r + 2] = toU32(code[s + 2]!, `op ${i} argument ${j}`);
        words[r + 3] = toU32(code[s + 3]!, `op ${i} argument ${j}`);
      }
      words[rec] = opcode;
      const at = (what: string): number => {
        const j = ARG_BY_CODE[opcode]?.[what];
        if (j === undefined) throw new WebGpuError(`op ${i}: opcode ${opcode} has no argument ${what}`);
        return j;
      };
      /** A constant argument (sizes decide the grid, so they must be known here). */
      const c = (what: string): number => {
        const j = at(what);
        if (kinds[j] !== 0) throw new WebGpuError(`op ${i}: ${what} must be a constant for the WebGPU backend`);
        return consts[j]!;
      };
      const items = (n: number, per = ELEMENTWISE) => grid(Math.ceil(n / per));
      const head = (y: number, z: number, w: number) => words.set([opcode, y, z, w], rec);
      switch (opcode) {
        case OPCODES.quantize: {
          const type = c("type") as MatmulType;
          const cols = c("cols");
          const nTok = c("nTok");
          const stride = actBytes(type, cols);
          if (type === GGMLType.Q4_0 || type === GGMLType.Q8_0) {
            head(stride, 0, 0);
            dispatches.push({ shader: "quantize_q8_0", grid: items((cols / 32) * nTok) });
          } else if (type === GGMLType.Q4_K || type === GGMLType.Q5_K || type === GGMLType.Q6_K) {
            head(stride, 0, 0);
            dispatches.push({ shader: "quantize_q8_K", grid: items((cols / 256) * nTok) });
          } else if (type === GGMLType.F16 || type === GGMLType.F32) {
            head(stride, type === GGMLType.F16 ? 1 : 0, 0);
            dispatches.push({ shader: "quantize_float", grid: items(cols * nTok) });
          } else throw new WebGpuError(`op ${i}: no WebGPU kernel for ${GGMLType[type]} activations`);
          break;
        }
        case OPCODES.matmul: {
          const type = c("type") as MatmulType;
          const shader = MATMUL_SHADER[type];
          if (!shader) throw new WebGpuError(`op ${i}: no WebGPU kernel for ${GGMLType[type]} weights`);
          const cols = c("cols");
          const groups = c("rows") * c("nTok");
          head(actBytes(type, cols), rowBytes(type, cols), groups);
          dispatches.push({ shader, grid: grid(groups) });
          break;
        }
        case OPCODES.rmsnorm: {
          const rows = c("nTok");
          head(0, 0, rows);
          dispatches.push({ shader: "rmsnorm", grid: grid(rows) });
          break;
        }
        case OPCODES.rope: {
          const nDims = c("nDims");
          const nTok = c("nTok");
          const posArg = at("pos");
          if (kinds[posArg] !== 1) throw new WebGpuError(`op ${i}: rope's position must be a register`);
          const use: RopeUse = { invFreq: c("invFreq"), mscale: c("mscale"), half: nDims / 2, nTok, posReg: code[o + 3 + 4 * posArg + 2]!, posAdd: consts[posArg]! };
          if (rope && (rope.invFreq !== use.invFreq || rope.mscale !== use.mscale || rope.nTok !== use.nTok || rope.half !== use.half || rope.posReg !== use.posReg || rope.posAdd !== use.posAdd)) {
            throw new WebGpuError(`op ${i}: rope ops of one step must share positions and frequencies`);
          }
          rope = use;
          head(0, 0, 0);
          dispatches.push({ shader: "rope", grid: items(nTok * c("nHeads") * use.half) });
          break;
        }
        case OPCODES.storeF16: {
          const n = c("n");
          checkAligned(code, o + 3 + 4 * at("h"), n % 2 === 0, `op ${i}: storeF16 needs an even count and a 4-aligned destination`);
          head(0, 0, 0);
          dispatches.push({ shader: "store_f16", grid: items(n / 2) });
          break;
        }
        case OPCODES.copy: {
          const bytes = c("bytes");
          checkAligned(code, o + 3 + 4 * at("src"), bytes % 4 === 0, `op ${i}: copy needs whole words`);
          checkAligned(code, o + 3 + 4 * at("dst"), true, `op ${i}: copy needs a 4-aligned destination`);
          head(0, 0, 0);
          dispatches.push({ shader: "copy", grid: items(bytes / 4) });
          break;
        }
        case OPCODES.swiglu:
        case OPCODES.add:
        case OPCODES.mul:
        case OPCODES.axpy: {
          head(0, ELEMENTWISE_VARIANT[opcode]!, 0);
          dispatches.push({ shader: "elementwise", grid: items(c("n")) });
          break;
        }
        case OPCODES.silu: {
          head(0, ELEMENTWISE_VARIANT[opcode]!, 0);
          dispatches.push({ shader: "elementwise", grid: items(c("n")) });
          break;
        }
        case OPCODES.attention: {
          checkWebGpuKvType(c("kvType") as KvType);
          const nCtx = c("scoresStride") / 4;
          const groups = c("nHead") * c("nTok");
          scratch = Math.max(scratch, groups * nCtx);
          head(0, 0, groups);
          dispatches.push({ shader: "attention", grid: grid(groups) });
          break;
        }
        case OPCODES.moeRoute: {
          head(0, 0, 1);
          dispatches.push({ shader: "moe_route", grid: [1, 1] });
          break;
        }
        default:
          throw new WebGpuError(`op ${i}: opcode ${opcode} has no WebGPU kernel`);
      }
    }
    const records = device.createBuffer({ size: words.byteLength, usage: USAGE.UNIFORM | USAGE.COPY_DST, label: "op records" });
    device.queue.writeBuffer(records, 0, words);
    for (const d of dispatches) pipeline(d.shader);
    return { records, dispatches, rope, scratch };
  };

  const regWords = new Uint32Array(REGISTERS);
  /** Read-back buffer, kept between steps (steps of one model never overlap: LlamaModel.exclusive). */
  let staging: GPUBuffer | undefined;
  let disposed = false;

  return {
    description,
    maxBindingBytes,
    async run(program, regs, io) {
      if (disposed) throw new WebGpuError("the WebGPU runner is disposed");
      if (lost) throw new WebGpuError(`the GPU device was lost: ${lost}`);
      ensureMemory();
      let t = translated.get(program.sab);
      if (!t) {
        t = translate(program);
        translated.set(program.sab, t);
      }
      if (4 * t.scratch > scratchBuffer.size) {
        scratchBuffer.destroy();
        scratchBuffer = device.createBuffer({ size: Math.ceil((4 * t.scratch) / 256) * 256, usage: USAGE.STORAGE, label: "attention scratch" });
      }
      regWords.fill(0);
      regs.forEach((v, i) => (regWords[i] = v));
      device.queue.writeBuffer(regsBuffer, 0, regWords);
      if (t.rope) {
        const table = ropeTable(mem, t.rope, regWords[t.rope.posReg]! + t.rope.posAdd);
        if (table.byteLength > ropeBuffer.size) {
          ropeBuffer.destroy();
          ropeBuffer = device.createBuffer({ size: Math.ceil(table.byteLength / 256) * 256, usage: USAGE.STORAGE | USAGE.COPY_DST, label: "rope table" });
        }
        device.queue.writeBuffer(ropeBuffer, 0, table);
      }
      for (const [addr, bytes] of io.upload) upload(addr, bytes);
      const buffers = [memBuffer!, ropeBuffer, scratchBuffer] as const;
      if (!t.bindGroup || !t.bound || t.bound.some((b, i) => b !== buffers[i])) {
        t.bindGroup = device.createBindGroup({
          layout,
          entries: [
            { binding: 0, resource: { buffer: memBuffer! } },
            { binding: 1, resource: { buffer: t.records, size: RECORD_BYTES } },
            { binding: 2, resource: { buffer: regsBuffer } },
            { binding: 3, resource: { buffer: ropeBuffer } },
            { binding: 4, resource: { buffer: scratchBuffer } },
          ],
        });
        t.bound = buffers;
      }
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      t.dispatches.forEach((d, i) => {
        pass.setPipeline(pipeline(d.shader));
        pass.setBindGroup(0, t.bindGroup!, [i * RECORD_BYTES]);
        pass.dispatchWorkgroups(d.grid[0], d.grid[1]);
      });
      pass.end();
      // A prompt chunk before the last wants no logits: nothing to read back.
      const downloads = io.download.filter(([, b]) => b > 0);
      const total = downloads.reduce((s, [, b]) => s + Math.ceil(b / 4) * 4, 0);
      if (total > 0 && (!staging || staging.size < total)) {
        staging?.destroy();
        staging = device.createBuffer({ size: total, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: "read-back" });
      }
      let at = 0;
      for (const [addr, bytes] of downloads) {
        const n = Math.ceil(bytes / 4) * 4;
        enc.copyBufferToBuffer(memBuffer!, addr, staging!, at, n);
        at += n;
      }
      device.queue.submit([enc.finish()]);
      if (total === 0 || !staging) return device.queue.onSubmittedWorkDone();
      await staging.mapAsync(MAP_READ, 0, total);
      const data = new Uint8Array(staging.getMappedRange(0, total));
      at = 0;
      for (const [addr, bytes] of downloads) {
        cpuBytes(addr, bytes).set(data.subarray(at, at + bytes));
        at += Math.ceil(bytes / 4) * 4;
      }
      staging.unmap();
      if (lost) throw new WebGpuError(`the GPU device was lost: ${lost}`);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      device.destroy();
    },
  };
}

function toU32(v: number, where: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new WebGpuError(`${where}: ${v} is not a 32-bit unsigned integer`);
  return v;
}

/** Throws unless the address argument at slot s (constant, register or memory-relative) is 4-aligned and `ok`. */
function checkAligned(code: Float64Array, s: number, ok: boolean, message: string): void {
  const kind = code[s]!;
  const aligned = code[s + 1]! % 4 === 0 && (kind === 0 || kind === 3 || code[s + 3]! % 4 === 0);
  if (!ok || !aligned) throw new WebGpuError(message);
}

function grid(groups: number): [number, number] {
  if (groups <= MAX_GRID) return [Math.max(1, groups), 1];
  return [MAX_GRID, Math.ceil(groups / MAX_GRID)];
}

/**
 * cos, sin (times mscale) per token and pair, as the CPU kernels compute them (ggmlRopeCache:
 * llama.cpp's float32 angles and glibc's cosf / sinf, from the parameters after the frequencies).
 */
function ropeTable(mem: KernelMemory, r: RopeUse, pos0: number): Float32Array {
  const params = new Float64Array(mem.buffer, r.invFreq, 2 * r.half + GGML_ROPE_RAMP);
  const table = new Float32Array(2 * r.nTok * r.half);
  for (let t = 0; t < r.nTok; t++) ggmlRopeCache(params, r.half, pos0 + t, table.subarray(2 * t * r.half, 2 * (t + 1) * r.half));
  return table;
}
