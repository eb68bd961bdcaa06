/**
 * One-thread fallback for pages that are not cross-origin isolated.
 *
 * Browsers hide SharedArrayBuffer and refuse shared WebAssembly memories unless the page is served
 * with COOP/COEP. zh-llama's kernels import a *shared* memory (so worker threads can share the
 * weights), and the runtime encodes its programs into SharedArrayBuffers. On one thread nothing
 * needs to be shared, so this module lets the same code run over ordinary memory:
 *
 *   - SharedArrayBuffer, where missing, becomes ArrayBuffer (programs are only read on this thread);
 *   - WebAssembly.Memory ignores `shared: true`;
 *   - WebAssembly.validate / compile see the kernels with their memory import's limits flag
 *     changed from 0x03 (max + shared) to 0x01 (max): atomic instructions stay valid on an
 *     unshared memory, and the kernels never wait on one.
 *
 * Installed only when shared memory cannot be made; the page announces the fallback.
 */

/** Section id of the import section, and the import kind of a memory. */
const IMPORT_SECTION = 2;
const IMPORT_MEMORY = 2;
const LIMITS_SHARED_MAX = 0x03;
const LIMITS_MAX = 0x01;

function readLeb(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let p = at;
  for (;;) {
    const b = bytes[p++];
    if (b === undefined) throw new Error("truncated wasm module");
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return { value, next: p };
    shift += 7;
  }
}

/** A copy of `module` whose imported memories are unshared (the input is left as it is). */
export function unshareMemoryImports(module: Uint8Array): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(module);
  let p = 8; // magic + version
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = readLeb(bytes, p);
    const end = size.next + size.value;
    if (id === IMPORT_SECTION) {
      let q = size.next;
      const count = readLeb(bytes, q);
      q = count.next;
      for (let i = 0; i < count.value; i++) {
        for (let name = 0; name < 2; name++) {
          const len = readLeb(bytes, q);
          q = len.next + len.value;
        }
        const kind = bytes[q++];
        if (kind === 0) q = readLeb(bytes, q).next; // function: type index
        else if (kind === 1 || kind === IMPORT_MEMORY) {
          if (kind === 1) q++; // table: element type, then limits
          const flags = bytes[q]!;
          if (kind === IMPORT_MEMORY && flags === LIMITS_SHARED_MAX) bytes[q] = LIMITS_MAX;
          q = readLeb(bytes, q + 1).next;
          if (flags & 1) q = readLeb(bytes, q).next;
        } else if (kind === 3) q += 2; // global: value type, mutability
        else throw new Error(`unknown import kind ${kind}`);
      }
      return bytes;
    }
    p = end;
  }
  return bytes;
}

function asBytes(source: BufferSource): Uint8Array {
  if (source instanceof Uint8Array) return source;
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  return new Uint8Array(source);
}

let installed = false;

/** Makes the runtime work without shared memory (one thread). Idempotent. */
export function installUnsharedFallback(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as { SharedArrayBuffer?: unknown };
  if (typeof g.SharedArrayBuffer !== "function") g.SharedArrayBuffer = ArrayBuffer;

  const NativeMemory = WebAssembly.Memory;
  class UnsharedMemory extends NativeMemory {
    constructor(descriptor: WebAssembly.MemoryDescriptor) {
      super({ ...descriptor, shared: false });
    }
  }
  WebAssembly.Memory = UnsharedMemory;

  const validate = WebAssembly.validate.bind(WebAssembly);
  const compile = WebAssembly.compile.bind(WebAssembly);
  WebAssembly.validate = (source: BufferSource) => validate(unshareMemoryImports(asBytes(source)));
  WebAssembly.compile = (source: BufferSource) => compile(unshareMemoryImports(asBytes(source)));
}
