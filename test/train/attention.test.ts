/** The kernel attention (matrix products) against the plain reference loops of ops.ts. */
import { describe, expect, it } from "vitest";
import { createKernels, KernelMemory } from "../../src/kernels/index.js";
import { KernelAttention } from "../../src/train/attention.js";
import { kernelEngine } from "../../src/train/linear.js";
import { attentionBackward, attentionForward, type AttentionShape } from "../../src/train/ops.js";
import { TrainRng } from "../../src/train/rng.js";

describe("kernel attention", () => {
  for (const shape of [
    { B: 2, T: 7, nHead: 4, nHeadKv: 2, headDim: 8 },
    { B: 1, T: 33, nHead: 3, nHeadKv: 1, headDim: 16 },
    { B: 3, T: 5, nHead: 2, nHeadKv: 2, headDim: 4 },
  ]) {
    it(`B ${shape.B}, T ${shape.T}, ${shape.nHead}/${shape.nHeadKv} heads of ${shape.headDim}`, async () => {
      const a: AttentionShape = { ...shape, scale: 1 / Math.sqrt(shape.headDim) };
      const k = await createKernels(KernelMemory.create({ initialBytes: 4 << 20 }), "wasm");
      const rng = new TrainRng(1);
      const N = a.B * a.T, qd = a.nHead * a.headDim, kvd = a.nHeadKv * a.headDim;
      const r = (n: number) => Float32Array.from({ length: n }, () => 2 * rng.nextNormal());
      const q = r(N * qd), kk = r(N * kvd), v = r(N * kvd), dout = r(N * qd);
      const ref = { out: new Float32Array(N * qd), probs: new Float32Array(a.B * a.nHead * a.T * a.T), dq: new Float32Array(N * qd), dk: new Float32Array(N * kvd), dv: new Float32Array(N * kvd) };
      attentionForward(ref.out, ref.probs, q, kk, v, a);
      attentionBackward(ref.dq, ref.dk, ref.dv, new Float32Array(a.T), dout, q, kk, v, ref.probs, a);
      const mine = { out: new Float32Array(N * qd), probs: new Float32Array(a.B * a.nHead * a.T * a.T), dq: new Float32Array(N * qd), dk: new Float32Array(N * kvd), dv: new Float32Array(N * kvd) };
      const att = new KernelAttention(k, kernelEngine(k), a);
      att.forward(mine.out, mine.probs, q, kk, v);
      att.backward(mine.dq, mine.dk, mine.dv, dout, q, kk, v, mine.probs);
      const close = (x: Float32Array, y: Float32Array, what: string) => {
        let d = 0, m = 0;
        for (let i = 0; i < x.length; i++) {
          d = Math.max(d, Math.abs(x[i]! - y[i]!));
          m = Math.max(m, Math.abs(y[i]!));
        }
        expect(d, what).toBeLessThan(1e-5 * Math.max(1, m));
      };
      close(mine.out, ref.out, "out");
      close(mine.dq, ref.dq, "dq");
      close(mine.dk, ref.dk, "dk");
      close(mine.dv, ref.dv, "dv");
      // The reference leaves the masked upper triangle unwritten; the kernel path zeroes it.
      for (let i = 0; i < ref.probs.length; i++) {
        const t = Math.floor(i / a.T) % a.T, s = i % a.T;
        if (s <= t) expect(Math.abs(mine.probs[i]! - ref.probs[i]!)).toBeLessThan(1e-6);
        else expect(mine.probs[i]).toBe(0);
      }
    });
  }
});

describe("transpose", () => {
  it("any shape, including rows not a multiple of 4 and tiles cut at the edges", async () => {
    const { transpose } = await import("../../src/train/ops.js");
    for (const [rows, cols] of [[1, 1], [3, 7], [5, 130], [131, 66], [64, 64], [4, 1]] as const) {
      const src = Float32Array.from({ length: rows * cols }, (_, i) => i);
      const dst = new Float32Array(rows * cols);
      transpose(dst, src, rows, cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) expect(dst[c * rows + r]).toBe(src[r * cols + c]);
    }
  });
});
