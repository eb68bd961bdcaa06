/**
 * The kernels' memory: one shared WebAssembly.Memory, carved into tensors by a bump allocator.
 *
 *   0          65536                                           top          maximum
 *   | module   | tensor, tensor, ... (64-byte aligned)        | free ...    |
 *   | statics  |                                             |             |
 *
 * Weights are allocated once and never freed; per-step scratch is allocated once when the model
 * is built and reused (no allocation on the hot path). `mark()` / `release(mark)` free everything
 * allocated after a mark, for tests and benchmarks. Addresses are plain numbers (byte offsets), so
 * one address means the same tensor in every worker that instantiated the kernels over this memory.
 */

/** WebAssembly page: 64 KiB. */
export const PAGE = 65536;
/** wasm32 limit: 65536 pages = 4 GiB. */
export const MAX_PAGES = 65536;
/** The first page holds the module's static data (math tables); tensors start after it. */
export const ARENA_START = PAGE;

export class KernelMemoryError extends Error {
  override name = "KernelMemoryError";
}

export interface KernelMemoryOptions {
  /** Bytes to reserve up front (default 16 MiB). */
  initialBytes?: number;
  /** Upper bound the memory may grow to (default and maximum 4 GiB). */
  maximumBytes?: number;
}

export class KernelMemory {
  readonly memory: WebAssembly.Memory;
  private top = ARENA_START;

  constructor(memory: WebAssembly.Memory) {
    this.memory = memory;
  }

  /** A new shared memory. */
  static create(options: KernelMemoryOptions = {}): KernelMemory {
    const initial = Math.max(2, Math.ceil((options.initialBytes ?? 16 << 20) / PAGE));
    const maximum = Math.min(MAX_PAGES, Math.ceil((options.maximumBytes ?? MAX_PAGES * PAGE) / PAGE));
    if (initial > maximum) throw new KernelMemoryError(`initial ${initial} pages exceeds maximum ${maximum} pages`);
    return new KernelMemory(new WebAssembly.Memory({ initial, maximum, shared: true }));
  }

  get buffer(): ArrayBufferLike {
    return this.memory.buffer;
  }

  /** Bytes allocated so far (the arena's top). */
  get used(): number {
    return this.top;
  }

  /** Reserve `bytes` (aligned to `align`), growing the memory if needed; returns the address. */
  alloc(bytes: number, align = 64): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new KernelMemoryError(`bad allocation size ${bytes}`);
    const ptr = Math.ceil(this.top / align) * align;
    const end = ptr + bytes;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new KernelMemoryError(
          `cannot grow kernel memory to ${end} bytes (${have} now): ${(e as Error).message}; ` +
            `split the weights across several memories (tensor parallelism)`,
        );
      }
    }
    this.top = end;
    return ptr;
  }

  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    if (mark < ARENA_START || mark > this.top) throw new KernelMemoryError(`bad mark ${mark}`);
    this.top = mark;
  }

  /** Copy bytes (or a typed array's bytes) to a fresh allocation. */
  put(data: ArrayBufferView, align = 64): number {
    const ptr = this.alloc(data.byteLength, align);
    this.u8(ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return ptr;
  }

  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  i8(ptr: number, n: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }
  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, n);
  }
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, n);
  }
}
