/**
 * PyTorch checkpoints (`pytorch_model-*.bin`, `adapter_model.bin`, `consolidated.*.pth`):
 * the ZIP archive torch.save writes, read lazily, with its pickle run by the safe unpickler.
 *
 *   ARCHIVE/data.pkl      the state dict, pickled; tensors are persistent ids
 *   ARCHIVE/data/KEY      one storage's raw little-endian bytes
 *   ARCHIVE/version, ARCHIVE/byteorder
 *
 * A tensor is `_rebuild_tensor_v2(storage, offset, size, stride, ...)` over a storage named
 * by a persistent id ('storage', torch.HalfStorage, KEY, 'cpu', numel). Only those names (and
 * OrderedDict) are accepted: anything else in the pickle is refused, never executed. The
 * legacy pre-1.6 (non-zip) format is refused with an explanation.
 */
import { FormatError } from "./errors.js";
import { InvalidArgumentError } from "../errors.js";
import { openByteSource, type ByteInput } from "./gguf/source.js";
import { writeAtomically } from "./gguf/writer.js";
import { pickle, unpickle, type PickleGlobal, type PickleOut } from "./pickle.js";
import { ZipReader, ZipWriter } from "./pytorch-zip.js";
import { SAFETENSORS_DTYPE_BYTES, toFloat32, type SafetensorsDtype } from "./safetensors.js";

/** torch storage class -> element dtype (named as safetensors names them). */
export const TORCH_STORAGE_DTYPES: Record<string, SafetensorsDtype> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** Same, for the torch dtype names newer pickles sometimes carry (torch.float16 ...). */
const TORCH_DTYPE_NAMES: Record<string, SafetensorsDtype> = {
  float32: "F32", float: "F32", float16: "F16", half: "F16", bfloat16: "BF16", float64: "F64",
  int64: "I64", int32: "I32", int16: "I16", int8: "I8", uint8: "U8", bool: "BOOL",
};

class StorageType {
  constructor(readonly dtype: SafetensorsDtype) {}
}

interface StorageRef {
  key: string;
  dtype: SafetensorsDtype;
  numel: number;
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export interface TorchTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  elements: number;
  byteLength: number;
}

export interface TorchCheckpoint {
  readonly name: string;
  readonly tensors: TorchTensorInfo[];
  tensor(name: string): TorchTensorInfo | undefined;
  /** Row-major little-endian bytes (strided views are gathered). */
  readTensor(name: string): Promise<Uint8Array>;
  readTensorF32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** data.pkl larger than this is refused (a 70B model's is about 100 KB). */
const TORCH_MAX_PICKLE_BYTES = 256 << 20;

/** Limits on what a checkpoint may declare (a tensor of more elements is refused before any read). */
export const TORCH_LIMITS = { maxDims: 8, maxElements: 2 ** 40, maxNesting: 64 } as const;

/**
 * A pickled value for an error message: bounded in length and depth, safe on cycles and
 * bigints (JSON.stringify throws on both, and recurses without bound).
 */
export function describePickled(value: unknown, depth = 0): string {
  if (typeof value === "bigint") return `${value}`.length > 30 ? `${`${value}`.slice(0, 30)}…` : `${value}`;
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === null || typeof value !== "object") return String(value);
  if (depth >= 3) return "…";
  if (Array.isArray(value)) {
    const items = value.slice(0, 8).map((v) => describePickled(v, depth + 1));
    return `[${items.join(", ")}${value.length > 8 ? `, … (${value.length} items)` : ""}]`;
  }
  if (value instanceof Map) return `{dict of ${value.size}}`;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return `<${value.constructor?.name ?? "object"}>`;
}

function intList(value: unknown, what: string, file: string): number[] {
  if (!Array.isArray(value) || value.length > TORCH_LIMITS.maxDims || !value.every((v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) {
    throw new FormatError(`${file}: ${what} ${describePickled(value)} is not a tuple of at most ${TORCH_LIMITS.maxDims} non-negative integers`);
  }
  return value as number[];
}

/** The globals a torch state dict may name, and what each becomes. */
function torchGlobals(file: string): Record<string, PickleGlobal> {
  const rebuild = (args: unknown[]): TensorRef => {
    const [storage, offset, size, stride] = args;
    if (!(storage && typeof storage === "object" && "key" in storage)) throw new FormatError(`${file}: _rebuild_tensor_v2 without a storage`);
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) throw new FormatError(`${file}: _rebuild_tensor_v2 storage offset ${describePickled(offset)} is not a non-negative integer`);
    return new TensorRef(storage as StorageRef, offset, intList(size, "tensor size", file), intList(stride, "tensor stride", file));
  };
  const globals: Record<string, PickleGlobal> = {
    "collections OrderedDict": { call: () => new Map() },
    "torch._utils _rebuild_tensor_v2": { call: rebuild },
    "torch._utils _rebuild_tensor": { call: rebuild },
    // nn.Parameter(data, requires_grad, hooks): the data tensor is all a checkpoint needs.
    "torch._utils _rebuild_parameter": { call: (args) => args[0] },
  };
  for (const [storage, dtype] of Object.entries(TORCH_STORAGE_DTYPES)) globals[`torch ${storage}`] = { value: new StorageType(dtype) };
  for (const [name, dtype] of Object.entries(TORCH_DTYPE_NAMES)) globals[`torch ${name}`] = { value: new StorageType(dtype) };
  return globals;
}

/** Unpickles a torch data.pkl into name -> TensorRef (nested dicts are flattened with dots). */
export function parseTorchPickle(data: Uint8Array, file: string): Map<string, TensorRef> {
  const globals = torchGlobals(file);
  const root = unpickle(data, {
    name: `${file} (data.pkl)`,
    globals,
    persistentLoad: (pid) => {
      if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) throw new FormatError(`${file}: unsupported persistent id ${describePickled(pid)}`);
      const [, type, key, , numel] = pid as unknown[];
      const storageType = type instanceof StorageType ? type : unwrapGlobal(type);
      if (!storageType) throw new FormatError(`${file}: persistent id names an unknown storage type`);
      if ((typeof key !== "string" || key.length > 256) && typeof key !== "number") throw new FormatError(`${file}: storage key ${describePickled(key)} is not a short string`);
      if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) throw new FormatError(`${file}: storage size ${String(numel)} is not a count`);
      return { key: String(key), dtype: storageType.dtype, numel } satisfies StorageRef;
    },
  });
  const out = new Map<string, TensorRef>();
  if (!(root instanceof Map)) throw new FormatError(`${file}: the pickle is not a dict of tensors`);
  // Iterative, with the dicts on the current path: a dict that contains itself, or dicts nested
  // 200000 deep, are refused by name instead of overflowing the stack.
  const onPath = new Set<Map<unknown, unknown>>();
  const stack: Array<{ map: Map<unknown, unknown>; prefix: string; entries: Iterator<[unknown, unknown]>; depth: number }> = [];
  const enter = (map: Map<unknown, unknown>, prefix: string, depth: number): void => {
    if (onPath.has(map)) throw new FormatError(`${file}: the state dict refers to itself at ${JSON.stringify(prefix.slice(0, 200))} (a cycle; not a checkpoint)`);
    if (depth > TORCH_LIMITS.maxNesting) throw new FormatError(`${file}: dicts nested more than ${TORCH_LIMITS.maxNesting} deep (at ${JSON.stringify(prefix.slice(0, 200))}…); not a checkpoint`);
    onPath.add(map);
    stack.push({ map, prefix, entries: map.entries(), depth });
  };
  enter(root as Map<unknown, unknown>, "", 0);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const next = top.entries.next();
    if (next.done) {
      onPath.delete(top.map);
      stack.pop();
      continue;
    }
    const [k, v] = next.value;
    if (typeof k !== "string") continue;
    const name = top.prefix ? `${top.prefix}.${k}` : k;
    if (v instanceof TensorRef) out.set(name, v);
    else if (v instanceof Map) enter(v as Map<unknown, unknown>, name, top.depth + 1);
  }
  return out;
}

/** The pickle machine pushes global handles; storage-type globals carry their marker in `.behaviour.value`. */
function unwrapGlobal(value: unknown): StorageType | undefined {
  if (value && typeof value === "object" && "behaviour" in value) {
    const v = (value as { behaviour: PickleGlobal }).behaviour.value;
    if (v instanceof StorageType) return v;
  }
  return undefined;
}

/**
 * Checks a tensor view against its storage before anything is read, and returns its element
 * count. A view may not claim more elements than its storage holds (a zero-stride [2^31, 2^31]
 * view over one element would otherwise become 2^62 values), must have one stride per
 * dimension, and must stay inside the storage, which must fit its zip entry.
 */
export function checkView(file: string, name: string, ref: { storage: StorageRef; storageOffset: number; shape: number[]; stride: number[] }, entryBytes: number): number {
  const what = `${file}: tensor ${JSON.stringify(name)} [${ref.shape.join(", ")}]`;
  const itemSize = SAFETENSORS_DTYPE_BYTES[ref.storage.dtype];
  const { numel } = ref.storage;
  if (numel > TORCH_LIMITS.maxElements || numel * itemSize > entryBytes) {
    throw new FormatError(`${file}: storage ${ref.storage.key} claims ${numel} ${ref.storage.dtype} values (${numel * itemSize} bytes); its archive entry holds ${entryBytes}`);
  }
  if (ref.shape.length !== ref.stride.length) throw new FormatError(`${what} has ${ref.stride.length} strides for ${ref.shape.length} dimensions`);
  let elements = 1;
  for (const d of ref.shape) {
    elements *= d;
    if (elements > TORCH_LIMITS.maxElements) throw new FormatError(`${what} claims more than ${TORCH_LIMITS.maxElements} elements`);
  }
  if (elements === 0) return 0;
  if (elements > numel) {
    throw new FormatError(`${what} claims ${elements} elements over a storage of ${numel} (an expanded or overlapping view; a checkpoint stores each value)`);
  }
  // The furthest element the view touches must lie inside the storage.
  let last = ref.storageOffset;
  for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i]! - 1) * ref.stride[i]!;
  if (!Number.isSafeInteger(last) || last >= numel) throw new FormatError(`${what} reaches element ${last} of a ${numel}-element storage`);
  return elements;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && stride[i] !== expected) return false;
    expected *= shape[i]!;
  }
  return true;
}

/** Opens a torch zip checkpoint, reading only the directory and data.pkl. */
export async function openTorchCheckpoint(input: string | Uint8Array | ByteInput): Promise<TorchCheckpoint> {
  const source = await openByteSource(input);
  try {
    const head = await source.read(0, Math.min(4, source.size));
    if (head.length >= 2 && head[0] === 0x80) {
      throw new FormatError(`${source.name}: a legacy (pre-1.6, non-zip) torch checkpoint; re-save it with torch>=1.6 or convert it to safetensors`);
    }
    const zip = await ZipReader.open(source);
    const pkl = zip.entries.filter((e) => e.name.endsWith("data.pkl") && !e.name.slice(0, -"data.pkl".length).replace(/\/$/, "").includes("/"));
    if (pkl.length !== 1) throw new FormatError(`${source.name}: expected one ARCHIVE/data.pkl in the zip, found ${pkl.length} (not a torch checkpoint?)`);
    const prefix = pkl[0]!.name.slice(0, -"data.pkl".length);
    const byteorder = zip.entry(`${prefix}byteorder`);
    if (byteorder && new TextDecoder().decode(await zip.read(byteorder, 64)).trim() !== "little") {
      throw new FormatError(`${source.name}: big-endian checkpoints are not supported`);
    }
    const refs = parseTorchPickle(await zip.read(pkl[0]!, TORCH_MAX_PICKLE_BYTES), source.name);
    const infos: TorchTensorInfo[] = [];
    for (const [name, ref] of refs) {
      const entry = zip.entry(`${prefix}data/${ref.storage.key}`);
      if (!entry) throw new FormatError(`${source.name}: tensor ${JSON.stringify(name)} refers to storage ${ref.storage.key}, which is not in the archive (truncated?)`);
      const elements = checkView(source.name, name, ref, entry.size);
      const itemSize = SAFETENSORS_DTYPE_BYTES[ref.storage.dtype];
      infos.push({ name, dtype: ref.storage.dtype, shape: ref.shape, elements, byteLength: elements * itemSize });
    }
    const byName = new Map(infos.map((i) => [i.name, i]));
    const readTensor = async (name: string): Promise<Uint8Array> => {
      const ref = refs.get(name);
      if (!ref) throw new InvalidArgumentError(`${source.name}: no tensor named ${JSON.stringify(name)}`);
      const info = byName.get(name)!;
      const entry = zip.entry(`${prefix}data/${ref.storage.key}`)!;
      const itemSize = SAFETENSORS_DTYPE_BYTES[ref.storage.dtype];
      if (isContiguous(ref.shape, ref.stride)) return zip.readRange(entry, ref.storageOffset * itemSize, info.byteLength);
      // A strided view (a transposed tensor saved without .contiguous()): gather row-major.
      // Only the storage's own bytes (the entry may be larger than the storage claims).
      const storage = await zip.readRange(entry, 0, ref.storage.numel * itemSize);
      const out = new Uint8Array(info.byteLength);
      const index = new Array<number>(ref.shape.length).fill(0);
      for (let i = 0; i < info.elements; i++) {
        let at = ref.storageOffset;
        for (let d = 0; d < index.length; d++) at += index[d]! * ref.stride[d]!;
        out.set(storage.subarray(at * itemSize, (at + 1) * itemSize), i * itemSize);
        for (let d = index.length - 1; d >= 0; d--) {
          if (++index[d]! < ref.shape[d]!) break;
          index[d] = 0;
        }
      }
      return out;
    };
    return {
      name: source.name,
      tensors: infos,
      tensor: (name) => byName.get(name),
      readTensor,
      readTensorF32: async (name) => {
        const info = byName.get(name);
        if (!info) throw new InvalidArgumentError(`${source.name}: no tensor named ${JSON.stringify(name)}`);
        return toFloat32(info.dtype, await readTensor(name), info.elements, `${source.name}: tensor ${JSON.stringify(name)}`);
      },
      close: () => zip.close(),
    };
  } catch (error) {
    await source.close();
    throw error;
  }
}

const STORAGE_FOR: Partial<Record<SafetensorsDtype, string>> = Object.fromEntries(
  Object.entries(TORCH_STORAGE_DTYPES).map(([storage, dtype]) => [dtype, storage]),
);

/** One tensor for writeTorchCheckpoint: bytes produced when the writer reaches it. */
export interface TorchTensorOutput {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

/** The data.pkl torch.save writes for an OrderedDict of contiguous tensors (protocol 2). */
export function torchStateDictPickle(tensors: readonly { name: string; dtype: SafetensorsDtype; shape: number[] }[]): Uint8Array {
  const items: [PickleOut, PickleOut][] = tensors.map((t, i) => {
    const storage = STORAGE_FOR[t.dtype];
    if (!storage) throw new InvalidArgumentError(`torch checkpoint: no storage class for dtype ${t.dtype}`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const stride: number[] = [];
    let s = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      stride[d] = s;
      s *= t.shape[d]!;
    }
    const tensor: PickleOut = {
      reduce: [
        { global: ["torch._utils", "_rebuild_tensor_v2"] },
        [
          { persid: { tuple: ["storage", { global: ["torch", storage] }, String(i), "cpu", numel] } },
          0,
          { tuple: t.shape },
          { tuple: stride },
          false,
          { reduce: [{ global: ["collections", "OrderedDict"] }, []] },
        ],
      ],
    };
    return [t.name, tensor];
  });
  return pickleOrderedDict(items);
}

/** OrderedDict() followed by SETITEMS, as Python pickles an OrderedDict. */
function pickleOrderedDict(items: [PickleOut, PickleOut][]): Uint8Array {
  // pickle() has no "reduce then setitems" form; build it from a plain dict by swapping its
  // EMPTY_DICT opcode for the OrderedDict() call.
  const asDict = pickle({ dict: items });
  const call = pickle({ reduce: [{ global: ["collections", "OrderedDict"] }, []] });
  // asDict = PROTO 2, '}', rest...; call = PROTO 2, <call bytes>, STOP
  const callBody = call.subarray(2, call.length - 1);
  const out = new Uint8Array(asDict.length - 1 + callBody.length);
  out.set(asDict.subarray(0, 2), 0);
  out.set(callBody, 2);
  out.set(asDict.subarray(3), 2 + callBody.length);
  return out;
}

export interface TorchWriteOptions {
  overwrite?: boolean;
  /** Called after each tensor; throwing aborts and removes the partial file. */
  onTensor?: (name: string, done: number, total: number) => void;
}

/**
 * Writes a checkpoint torch.load reads (zip, data.pkl, one storage per tensor), streaming one
 * tensor at a time and atomically. The archive folder is the file's stem, as torch.save names it.
 */
export async function writeTorchCheckpoint(path: string, tensors: readonly TorchTensorOutput[], options: TorchWriteOptions = {}): Promise<void> {
  const { basename } = await import("node:path");
  const archive = basename(path).replace(/\.[^.]*$/, "") || "archive";
  const pkl = torchStateDictPickle(tensors);
  await writeAtomically(path, options.overwrite ?? false, async (handle) => {
    const zip = new ZipWriter(handle);
    await zip.add(`${archive}/data.pkl`, pkl);
    await zip.add(`${archive}/byteorder`, new TextEncoder().encode("little"));
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const bytes = typeof t.data === "function" ? await t.data() : t.data;
      const expected = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];
      if (bytes.length !== expected) throw new InvalidArgumentError(`torch checkpoint: tensor ${JSON.stringify(t.name)} needs ${expected} bytes, got ${bytes.length}`);
      await zip.add(`${archive}/data/${i}`, bytes);
      options.onTensor?.(t.name, i + 1, tensors.length);
    }
    await zip.add(`${archive}/version`, new TextEncoder().encode("3\n"));
    await zip.finish();
  });
}
