/**
 * ggml tensor types against ggml itself: fixtures/golden/quants was written by
 * tools/golden-quants.py, which calls ggml's own quantize_row_*_ref / dequantize_row_* through
 * ctypes. Every comparison is bit for bit.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  DEQUANTIZE_TYPES,
  QUANTIZE_TYPES,
  bf16ToF32,
  canDequantize,
  canQuantize,
  dequantize,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  quantize,
} from "../../src/formats/quants/index.js";
import { GGML_TYPES, GGMLType, ggmlTypeFromName } from "../../src/formats/ggml-types.js";
import { FormatError, UnsupportedTensorTypeError } from "../../src/formats/errors.js";
import { InvalidArgumentError } from "../../src/errors.js";

const dir = fileURLToPath(new URL("../../fixtures/golden/quants/", import.meta.url));

function bytes(name: string): Uint8Array {
  const b = readFileSync(dir + name);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
}
function floats(name: string): Float32Array {
  return new Float32Array(bytes(name).buffer);
}

interface Pair {
  bin: string;
  f32: string;
  count: number;
}
interface Manifest {
  input: { file: string; count: number };
  types: Record<string, { id: number; quant?: Pair; random: Pair }>;
  fpSpecial: { file: string; count: number; outputs: Record<string, string> };
  f16All: { file: string; count: number };
}
const manifest = JSON.parse(readFileSync(dir + "manifest.json", "utf8")) as Manifest;
const input = floats(manifest.input.file);

/** Where `got` and `want` differ, as bits; two NaNs count as equal only when `nanLoose`. */
function floatMismatches(got: Float32Array, want: Float32Array, nanLoose: boolean): string[] {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const bad: string[] = [];
  if (got.length !== want.length) return [`length ${got.length} != ${want.length}`];
  for (let i = 0; i < g.length; i++) {
    if (g[i] === w[i]) continue;
    if (nanLoose && Number.isNaN(got[i]) && Number.isNaN(want[i])) continue;
    if (bad.length < 5) bad.push(`[${i}] ${got[i]} (0x${g[i].toString(16)}) != ${want[i]} (0x${w[i].toString(16)})`);
    else break;
  }
  return bad;
}

function byteMismatches(got: Uint8Array, want: Uint8Array): string[] {
  if (got.length !== want.length) return [`length ${got.length} != ${want.length}`];
  const bad: string[] = [];
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    if (got[i] !== want[i]) bad.push(`byte ${i}: ${got[i]} != ${want[i]}`);
  }
  return bad;
}

function typeOf(name: string): GGMLType {
  const t = ggmlTypeFromName(name);
  if (t === undefined) throw new Error(`no GGMLType ${name}`);
  return t;
}

const REQUIRED_DEQUANT = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_NL", "IQ4_XS"];
const REQUIRED_QUANT = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "Q8_K"];

describe("type table", () => {
  const sizes = JSON.parse(readFileSync(dir + "sizes.json", "utf8")) as Record<string, { type_size: number; blck_size: number }>;
  it("matches ggml_type_size / ggml_blck_size for every type id", () => {
    for (const [id, traits] of Object.entries(GGML_TYPES)) {
      const ggml = sizes[id];
      expect(ggml, `type id ${id}`).toBeDefined();
      expect({ id, blockSize: traits.blockSize, bytesPerBlock: traits.bytesPerBlock }).toEqual({
        id,
        blockSize: ggml.blck_size,
        bytesPerBlock: ggml.type_size,
      });
    }
  });
  it("leaves out exactly the ids ggml retired", () => {
    for (const [id, s] of Object.entries(sizes)) {
      if (Number(id) > GGMLType.MXFP4) continue; // newer than zh-llama's table
      expect(id in GGML_TYPES, `type id ${id}`).toBe(s.blck_size !== 0);
    }
  });
  it("supports the required types", () => {
    for (const n of REQUIRED_DEQUANT) expect(canDequantize(typeOf(n)), n).toBe(true);
    for (const n of REQUIRED_QUANT) expect(canQuantize(typeOf(n)), n).toBe(true);
    expect(DEQUANTIZE_TYPES.length).toBeGreaterThanOrEqual(REQUIRED_DEQUANT.length);
    expect(QUANTIZE_TYPES.every((t) => DEQUANTIZE_TYPES.includes(t))).toBe(true);
  });
});

describe("dequantize matches ggml's dequantize_row_*", () => {
  for (const [name, entry] of Object.entries(manifest.types)) {
    const type = typeOf(name);
    it(`${name}: random bytes`, () => {
      const got = dequantize(type, bytes(entry.random.bin), entry.random.count);
      // Random scale bytes include NaN patterns; JS engines need not keep NaN payloads through
      // arithmetic, so NaN == NaN here (the plain float types below are held to exact bits).
      expect(floatMismatches(got, floats(entry.random.f32), !["F32", "F16", "BF16"].includes(name))).toEqual([]);
    });
    if (entry.quant) {
      const quant = entry.quant;
      it(`${name}: ggml-quantized input`, () => {
        const got = dequantize(type, bytes(quant.bin), quant.count);
        expect(floatMismatches(got, floats(quant.f32), true)).toEqual([]);
      });
    }
  }
  it("F16: all 65536 bit patterns, NaN payloads included", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const got = dequantize(GGMLType.F16, new Uint8Array(halves.buffer), 65536);
    expect(floatMismatches(got, floats(manifest.f16All.file), false)).toEqual([]);
  });
  it("writes into a caller's buffer", () => {
    const e = manifest.types.Q4_0.random;
    const out = new Float32Array(e.count + 7);
    const got = dequantize(GGMLType.Q4_0, bytes(e.bin), e.count, out);
    expect(got.buffer).toBe(out.buffer);
    expect(got.length).toBe(e.count);
    expect(floatMismatches(got, floats(e.f32), true)).toEqual([]);
  });
});

describe("quantize matches ggml's quantize_row_*_ref", () => {
  for (const [name, entry] of Object.entries(manifest.types)) {
    const type = typeOf(name);
    if (!entry.quant || !canQuantize(type)) continue;
    const quant = entry.quant;
    it(`${name}: bytes`, () => {
      // (IQ4_NL blocks of zeros: see fixtures/golden/quants/README.md)
      expect(byteMismatches(quantize(type, input), bytes(quant.bin))).toEqual([]);
    });
  }
  for (const name of ["F16", "BF16"]) {
    it(`${name}: specials, ties, subnormals, random bit patterns`, () => {
      const x = floats(manifest.fpSpecial.file);
      expect(byteMismatches(quantize(typeOf(name), x), bytes(manifest.fpSpecial.outputs[name]))).toEqual([]);
    });
  }
  it("scalar helpers agree with the row converters", () => {
    const x = floats(manifest.fpSpecial.file);
    const h = new Uint16Array(bytes(manifest.fpSpecial.outputs.F16).buffer);
    const b = new Uint16Array(bytes(manifest.fpSpecial.outputs.BF16).buffer);
    for (let i = 0; i < x.length; i++) {
      expect(f32ToF16(x[i])).toBe(h[i]);
      expect(f32ToBf16(x[i])).toBe(b[i]);
    }
    const all = floats(manifest.f16All.file);
    for (let i = 0; i < 65536; i += 97) expect(Object.is(f16ToF32(i), all[i]) || Number.isNaN(all[i])).toBe(true);
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc000)).toBe(-2);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
  });
  it("reuses a caller's buffer and round-trips through dequantize", () => {
    const out = new Uint8Array(10_000).fill(0xa5);
    const got = quantize(GGMLType.Q4_K, input.subarray(0, 2048), out);
    expect(got.buffer).toBe(out.buffer);
    expect(byteMismatches(got, bytes(manifest.types.Q4_K.quant!.bin).subarray(0, got.length))).toEqual([]);
  });
});

describe("bad input", () => {
  it("rejects a byte buffer of the wrong length", () => {
    expect(() => dequantize(GGMLType.Q4_0, new Uint8Array(17), 32)).toThrow(FormatError);
    expect(() => dequantize(GGMLType.Q4_0, new Uint8Array(19), 32)).toThrow(FormatError);
    expect(() => dequantize(GGMLType.Q6_K, new Uint8Array(210), 255)).toThrow(FormatError);
    expect(() => dequantize(GGMLType.F16, new Uint8Array(3), 2)).toThrow(FormatError);
    expect(() => dequantize(GGMLType.Q8_0, new Uint8Array(34), -32)).toThrow(FormatError);
    expect(() => dequantize(GGMLType.Q8_0, new Uint8Array(34), 32.5)).toThrow(FormatError);
  });
  it("rejects values that are not whole blocks", () => {
    expect(() => quantize(GGMLType.Q4_K, new Float32Array(255))).toThrow(FormatError);
    expect(() => quantize(GGMLType.Q8_0, new Float32Array(33))).toThrow(FormatError);
  });
  it("rejects output buffers that are too small", () => {
    expect(() => dequantize(GGMLType.Q8_0, new Uint8Array(34), 32, new Float32Array(31))).toThrow(InvalidArgumentError);
    expect(() => quantize(GGMLType.Q8_0, new Float32Array(32), new Uint8Array(33))).toThrow(InvalidArgumentError);
  });
  it("names unsupported and unknown types", () => {
    expect(() => dequantize(GGMLType.IQ2_XXS, new Uint8Array(66), 256)).toThrow(UnsupportedTensorTypeError);
    expect(() => dequantize(GGMLType.IQ2_XXS, new Uint8Array(66), 256)).toThrow(/IQ2_XXS/);
    expect(() => quantize(GGMLType.IQ2_XXS, new Float32Array(256))).toThrow(UnsupportedTensorTypeError);
    expect(() => dequantize(4 as GGMLType, new Uint8Array(0), 0)).toThrow(/unknown ggml type id 4/);
    expect(canDequantize(99 as GGMLType)).toBe(false);
    expect(canQuantize(GGMLType.IQ2_XS)).toBe(false);
  });
  it("handles empty tensors", () => {
    expect(dequantize(GGMLType.Q4_K, new Uint8Array(0), 0).length).toBe(0);
    expect(quantize(GGMLType.Q4_K, new Float32Array(0)).length).toBe(0);
  });
});
