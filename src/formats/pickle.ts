/**
 * A SAFE subset of Python's pickle virtual machine, enough for PyTorch checkpoints.
 *
 * Python's own unpickler imports and calls whatever the stream names (GLOBAL "os system" +
 * REDUCE runs a shell command). This one never imports or calls anything: a GLOBAL resolves
 * only through the `globals` table the caller passes (pytorch.ts passes the handful of names a
 * torch state dict uses: OrderedDict, _rebuild_tensor_v2, the storage classes), and every
 * other name is refused with UnsafePickleError before anything further is read. The opcodes
 * that build objects by other routes (INST, OBJ, NEWOBJ, EXT*) go through the same table.
 * Sizes are bounded (stack, memo, string lengths) so a hostile stream cannot allocate
 * without bound.
 *
 * Values: None -> null, bools, ints -> number (bigint beyond 2^53), floats, str, bytes ->
 * Uint8Array, list and tuple -> arrays (tuples frozen), dict -> Map, set -> Set.
 */
import { FormatError } from "./errors.js";

/** A pickle that asks for something zh-llama will not do (an unknown global, an extension). */
export class UnsafePickleError extends FormatError {}

/** What a whitelisted global turns into: a callable (REDUCE / NEWOBJ) or a plain marker. */
export interface PickleGlobal {
  /** Called by REDUCE (args tuple) or NEWOBJ. */
  call?: (args: unknown[]) => unknown;
  /** A value pushed for globals used as data (e.g. torch.HalfStorage in a persistent id). */
  value?: unknown;
}

export interface UnpickleOptions {
  /** "module name" -> behaviour; anything else is refused. */
  globals: Record<string, PickleGlobal>;
  /** BINPERSID / PERSID: the persistent id -> the object it stands for. */
  persistentLoad?: (pid: unknown) => unknown;
  /** BUILD on an object produced by a global: state application (default: refuse unless a Map). */
  build?: (target: unknown, state: unknown) => unknown;
  /** For error messages. */
  name?: string;
}

/**
 * maxLongBytes bounds LONG1/LONG4/LONG integers: a torch checkpoint's integers (sizes,
 * strides, offsets, storage keys) fit in 8 bytes; 1024 is generous and keeps a hostile
 * 512 KiB integer from costing anything.
 */
export const PICKLE_LIMITS = { maxStack: 1 << 20, maxMemo: 1 << 22, maxString: 1 << 30, maxMarks: 1 << 16, maxLongBytes: 1024 } as const;

/** Marker on the stack for MARK. */
const MARK = Symbol("mark");

/** A global the stream referenced, kept as a handle until it is called. */
class GlobalRef {
  constructor(readonly qualified: string, readonly behaviour: PickleGlobal) {}
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Runs the pickle in `data` and returns the object STOP leaves on the stack. */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  const name = options.name ?? "<pickle>";
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let opPos = 0;

  const fail = (message: string, Cls: typeof FormatError = FormatError): never => {
    throw new Cls(`${name}: ${message} (opcode at byte ${opPos})`);
  };
  const need = (n: number): void => {
    if (n < 0 || n > PICKLE_LIMITS.maxString || pos + n > data.length) fail(`truncated: needs ${n} more bytes, ${data.length - pos} left`);
  };
  const u8 = (): number => { need(1); return data[pos++]!; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(PICKLE_LIMITS.maxString)) fail(`length ${v} exceeds the ${PICKLE_LIMITS.maxString}-byte limit`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => { need(n); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("truncated: unterminated text argument");
    const text = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const text = (n: number): string => {
    const raw = bytes(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail("string is not valid UTF-8");
    }
  };
  const push = (v: unknown): void => {
    if (stack.length >= PICKLE_LIMITS.maxStack) fail(`stack deeper than ${PICKLE_LIMITS.maxStack}`);
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail("stack underflow");
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const at = marks.pop();
    if (at === undefined) fail("no MARK to pop to");
    return stack.splice(at!);
  };
  const put = (key: number): void => {
    if (memo.size >= PICKLE_LIMITS.maxMemo && !memo.has(key)) fail(`memo larger than ${PICKLE_LIMITS.maxMemo}`);
    memo.set(key, top());
  };
  const get = (key: number): void => {
    if (!memo.has(key)) fail(`memo key ${key} was never stored`);
    push(memo.get(key));
  };
  const resolve = (module: string, attr: string): GlobalRef => {
    const qualified = `${module} ${attr}`;
    const behaviour = Object.prototype.hasOwnProperty.call(options.globals, qualified) ? options.globals[qualified] : undefined;
    if (!behaviour) {
      fail(
        `refusing to load global ${module}.${attr}: a checkpoint may only contain tensors, and zh-llama's unpickler rebuilds nothing else (nothing was executed)`,
        UnsafePickleError,
      );
    }
    return new GlobalRef(qualified, behaviour!);
  };
  const call = (callee: unknown, args: unknown): unknown => {
    if (!(callee instanceof GlobalRef) || !callee.behaviour.call) {
      return fail(`cannot call ${callee instanceof GlobalRef ? callee.qualified.replace(" ", ".") : typeof callee}`, UnsafePickleError);
    }
    if (!Array.isArray(args)) return fail("REDUCE arguments are not a tuple");
    return callee.behaviour.call(args as unknown[]);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) fail("SETITEM(S) on something that is not a dict");
    if (items.length % 2 !== 0) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (!Array.isArray(target) || Object.isFrozen(target)) fail("APPEND(S) on something that is not a list");
    for (const item of items) (target as unknown[]).push(item);
  };
  const longLength = (n: number): number => {
    if (n > PICKLE_LIMITS.maxLongBytes) fail(`an integer of ${n} bytes exceeds the ${PICKLE_LIMITS.maxLongBytes}-byte limit (a checkpoint's integers fit in 8)`);
    return n;
  };
  // Little-endian two's complement, read in linear time (hex digits, then one BigInt parse).
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let hex = "";
    for (let i = b.length - 1; i >= 0; i--) hex += b[i]!.toString(16).padStart(2, "0");
    let v = BigInt(`0x${hex}`);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];

  for (;;) {
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: a length hint only
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length > 0) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: // MARK
        if (marks.length >= PICKLE_LIMITS.maxMarks) fail("too many nested MARKs");
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(long(bytes(longLength(u8())))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        push(long(bytes(longLength(n))));
        break;
      }
      case 0x49: { // INT (text): also encodes True/False as 01/00
        const t = line();
        if (t === "01") push(true);
        else if (t === "00") push(false);
        else {
          const v = Number(t);
          if (!Number.isInteger(v)) fail(`bad INT ${JSON.stringify(t.slice(0, 40))}`);
          push(v);
        }
        break;
      }
      case 0x4c: { // LONG (text)
        const t = line().replace(/L$/, "");
        if (t.length > 2.5 * PICKLE_LIMITS.maxLongBytes) fail(`an integer of ${t.length} digits exceeds the ${PICKLE_LIMITS.maxLongBytes}-byte limit`);
        if (!/^-?\d+$/.test(t)) fail(`bad LONG ${JSON.stringify(t.slice(0, 40))}`);
        const v = BigInt(t);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: { need(8); push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x46: { // FLOAT (text)
        const v = Number(line());
        if (Number.isNaN(v)) fail("bad FLOAT");
        push(v);
        break;
      }
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8c: push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64())); break; // BINUNICODE8
      case 0x55: push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING (py2 str)
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) fail("negative BINSTRING length");
        push(latin1.decode(bytes(n)));
        break;
      }
      case 0x43: push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: push(bytes(u32()).slice()); break; // BINBYTES
      case 0x8e: push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x96: push(bytes(u64()).slice()); break; // BYTEARRAY8
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark()); break; // LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x64: { const m = new Map(); setItems(m, popMark()); push(m); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("ADDITEMS on something that is not a set");
        for (const item of items) (s as Set<unknown>).add(item);
        break;
      }
      case 0x91: push(new Set(popMark())); break; // FROZENSET
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x70: put(Number(line())); break; // PUT (text)
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET
      case 0x67: get(Number(line())); break; // GET (text)
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        push(resolve(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const attr = pop();
        const module = pop();
        if (typeof module !== "string" || typeof attr !== "string") fail("STACK_GLOBAL needs two strings");
        push(resolve(module as string, attr as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callee = pop();
        push(call(callee, args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args), only for whitelisted classes
        const args = pop();
        const cls = pop();
        push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = pop();
        if (options.build) push(options.build(target, state));
        // An OrderedDict's instance attributes (a state dict's `_metadata` version table) carry
        // no tensors: they are dropped, never applied.
        else if (target instanceof Map) push(target);
        else fail("BUILD (object state) is not supported for this object", UnsafePickleError);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail("persistent id without a persistent loader");
        push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!options.persistentLoad) fail("persistent id without a persistent loader");
        push(options.persistentLoad!(pid));
        break;
      }
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x92: // NEWOBJ_EX
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        fail(`refusing opcode 0x${op.toString(16)}: it builds objects zh-llama's unpickler does not allow (nothing was executed)`, UnsafePickleError);
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16)}`);
    }
  }
}

/**
 * The pickle writer's vocabulary: enough to emit what torch.save writes for a state dict
 * (protocol 2). Values: strings, integers, booleans, null, tuples (`PickleTupleOut`),
 * Maps (dicts), global references, calls (REDUCE) and persistent ids.
 */
export type PickleOut =
  | null
  | boolean
  | number
  | string
  | { tuple: PickleOut[] }
  | { dict: [PickleOut, PickleOut][] }
  | { global: [string, string] }
  | { reduce: [PickleOut, PickleOut[]] }
  | { persid: PickleOut };

/** Serialises `value` as a protocol-2 pickle. */
export function pickle(value: PickleOut): Uint8Array {
  const chunks: number[] = [0x80, 2];
  const enc = new TextEncoder();
  const pushBytes = (b: Uint8Array | number[]): void => {
    for (const x of b) chunks.push(x);
  };
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  const emit = (v: PickleOut): void => {
    if (v === null) return void chunks.push(0x4e);
    if (v === true) return void chunks.push(0x88);
    if (v === false) return void chunks.push(0x89);
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new RangeError(`pickle: only integers are written, got ${v}`);
      if (v >= 0 && v < 256) return void chunks.push(0x4b, v);
      if (v >= 0 && v < 65536) return void chunks.push(0x4d, v & 0xff, v >>> 8);
      if (v >= -(2 ** 31) && v < 2 ** 31) return void chunks.push(0x4a, ...u32(v));
      // LONG1: little-endian two's complement, as short as the value allows.
      let big = BigInt(v);
      const out: number[] = [];
      for (;;) {
        out.push(Number(big & 0xffn));
        big >>= 8n;
        if ((big === 0n && (out[out.length - 1]! & 0x80) === 0) || (big === -1n && (out[out.length - 1]! & 0x80) !== 0)) break;
      }
      return void chunks.push(0x8a, out.length, ...out);
    }
    if (typeof v === "string") {
      const b = enc.encode(v);
      chunks.push(0x58, ...u32(b.length));
      return pushBytes(b);
    }
    if ("tuple" in v) {
      chunks.push(0x28);
      v.tuple.forEach(emit);
      return void chunks.push(0x74);
    }
    if ("dict" in v) {
      chunks.push(0x7d);
      if (v.dict.length === 0) return;
      chunks.push(0x28);
      for (const [k, x] of v.dict) {
        emit(k);
        emit(x);
      }
      return void chunks.push(0x75);
    }
    if ("global" in v) {
      chunks.push(0x63);
      return pushBytes(enc.encode(`${v.global[0]}\n${v.global[1]}\n`));
    }
    if ("reduce" in v) {
      emit(v.reduce[0]);
      emit({ tuple: v.reduce[1] });
      return void chunks.push(0x52);
    }
    emit(v.persid);
    chunks.push(0x51);
  };
  emit(value);
  chunks.push(0x2e);
  return Uint8Array.from(chunks);
}
