/**
 * Dequantize / quantize throughput of every ggml tensor type zh-llama supports, on one
 * 4M-value tensor (2^22 float32 values, 16 MiB). MB = 10^6 bytes. Dequantize is reported both
 * as MB of quantized bytes read and as MB of float32 written; quantize as MB of float32 read.
 */
import { Bench } from "tinybench";
import { GGML_TYPES, GGMLType, ggmlTypeName } from "../formats/ggml-types.js";
import { DEQUANTIZE_TYPES, canQuantize, dequantize, quantize } from "../formats/quants/index.js";

const COUNT = 1 << 22;

/** Deterministic weight-like values: normal(0, 0.02) from a seeded xorshift + Box-Muller. */
function weights(n: number): Float32Array {
  const x = new Float32Array(n);
  let s = 0x9e3779b9;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const t = 2 * Math.PI * next();
    x[i] = 0.02 * r * Math.cos(t);
    if (i + 1 < n) x[i + 1] = 0.02 * r * Math.sin(t);
  }
  return x;
}

/** Mean seconds per call of `fn`, measured by tinybench. */
async function seconds(name: string, fn: () => void): Promise<number> {
  const bench = new Bench({ time: 500, iterations: 3, warmupIterations: 1, warmupTime: 0 });
  bench.add(name, fn);
  const [task] = await bench.run();
  const r = task.result;
  if (r.state !== "completed") throw new Error(`${name}: ${r.state}`);
  return r.latency.mean / 1000;
}

const mbps = (bytes: number, s: number): string => (bytes / s / 1e6).toFixed(0).padStart(8);

export default async function run(): Promise<void> {
  const src = weights(COUNT);
  const out = new Float32Array(COUNT);
  console.log(`${COUNT} values (${(COUNT * 4) / 2 ** 20} MiB of f32); MB/s with MB = 1e6 bytes`);
  console.log("| type   | dequant MB/s (quantized in) | dequant MB/s (f32 out) | quantize MB/s (f32 in) |");
  console.log("|--------|----------------------------:|-----------------------:|-----------------------:|");
  for (const type of DEQUANTIZE_TYPES) {
    const { blockSize, bytesPerBlock } = GGML_TYPES[type];
    const nBytes = (COUNT / blockSize) * bytesPerBlock;
    const qout = new Uint8Array(nBytes);
    let q: Uint8Array;
    if (canQuantize(type)) {
      q = quantize(type, src, qout);
    } else {
      // No quantizer here (IQ4_*, TQ*, MXFP4): dequantize bytes with random-looking codes and
      // small finite scales; the speed of these loops does not depend on the values.
      q = qout;
      for (let i = 0; i < nBytes; i++) q[i] = (i * 2654435761) >>> 24;
      patchScales(type, q);
    }
    const name = ggmlTypeName(type);
    const tq = canQuantize(type) ? await seconds(`quantize ${name}`, () => quantize(type, src, qout)) : NaN;
    if (canQuantize(type)) q = quantize(type, src, qout);
    const td = await seconds(`dequantize ${name}`, () => dequantize(type, q, COUNT, out));
    const quant = Number.isNaN(tq) ? "       -" : mbps(COUNT * 4, tq);
    console.log(`| ${name.padEnd(6)} | ${mbps(nBytes, td).padStart(27)} | ${mbps(COUNT * 4, td).padStart(22)} | ${quant.padStart(22)} |`);
  }
}

/** Give every block of a dequantize-only type an F16 scale of 1.0 (0x3C00) where it has one. */
function patchScales(type: GGMLType, q: Uint8Array): void {
  const at: Partial<Record<GGMLType, number>> = {
    [GGMLType.IQ4_NL]: 0,
    [GGMLType.IQ4_XS]: 0,
    [GGMLType.TQ1_0]: 52,
    [GGMLType.TQ2_0]: 64,
  };
  const o = at[type];
  if (o === undefined) return;
  const step = GGML_TYPES[type].bytesPerBlock;
  for (let b = o; b < q.length; b += step) {
    q[b] = 0x00;
    q[b + 1] = 0x3c;
  }
}
