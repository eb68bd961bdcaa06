/**
 * Dequantize / quantize throughput of every ggml tensor type zh-llama supports, on one
 * 4M-value tensor (2^22 float32 values, 16 MiB). MB = 10^6 bytes. Dequantize is reported both
 * as MB of quantized bytes read and as MB of float32 written; quantize as MB of float32 read.
 */
import { Bench } from "tinybench";
import { GGML_TYPES, ggmlTypeName } from "../formats/ggml-types.js";
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

const mbps = (bytes: number, s: number): string => (bytes / s / 1e6).toFixed(0);

export default async function run(): Promise<void> {
  const src = weights(COUNT);
  const out = new Float32Array(COUNT);
  console.log(`${COUNT} values (${(COUNT * 4) / 2 ** 20} MiB of f32); MB/s with MB = 1e6 bytes`);
  console.log("| type   | dequant MB/s (quantized in) | dequant MB/s (f32 out) | quantize MB/s (f32 in) |");
  console.log("|--------|----------------------------:|-----------------------:|-----------------------:|");
  for (const type of DEQUANTIZE_TYPES) {
    const name = ggmlTypeName(type);
    const { blockSize, bytesPerBlock } = GGML_TYPES[type];
    const nBytes = (COUNT / blockSize) * bytesPerBlock;
    const q = new Uint8Array(nBytes);
    let quant = "-";
    if (canQuantize(type)) {
      const tq = await seconds(`quantize ${name}`, () => quantize(type, src, q));
      quant = mbps(COUNT * 4, tq);
    } else {
      // dequantize-only type: any bytes will do, the loops do not branch on the values
      for (let i = 0; i < nBytes; i++) q[i] = (i * 2654435761) >>> 24;
    }
    const td = await seconds(`dequantize ${name}`, () => dequantize(type, q, COUNT, out));
    console.log(`| ${name.padEnd(6)} | ${mbps(nBytes, td).padStart(27)} | ${mbps(COUNT * 4, td).padStart(22)} | ${quant.padStart(22)} |`);
  }
}
