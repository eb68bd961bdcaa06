/**
 * Causal attention on the matmul kernel: the same maths as ops.ts's attentionForward/Backward
 * (which stay as the plain reference), computed per sequence b and head h as matrix products of
 * head-major copies, so the O(T^2 hd) work runs in WASM (and on the matmul team's threads):
 *
 *   forward    S = Q K^T          nt(K,   Q)       [T][T], then P = softmax(scale S), causal
 *              O = P V            nt(V^T, P)       [T][hd]
 *   backward   dP = dO V^T        nt(V,   dO)
 *              dV += P^T dO       nt(dO^T, P^T)
 *              dS = P (dP - rowsum(P dP)) scale
 *              dQ = dS K          nt(K^T, dS)
 *              dK += dS^T Q       nt(Q^T, dS^T)
 *
 * The products run over the full square (the masked upper triangle of P and dS is zero), twice
 * the causal work but far faster than scalar loops. Query head h reads kv head h / (nHead/nHeadKv).
 */
import type { Kernels } from "../kernels/index.js";
import type { MatmulEngine } from "./linear.js";
import { transpose, type AttentionShape } from "./ops.js";
import { allocTensor, type Tensor } from "./params.js";

export class KernelAttention {
  private readonly qh: Tensor; private readonly kg: Tensor; private readonly vg: Tensor;
  private readonly qhT: Tensor; private readonly kgT: Tensor; private readonly vgT: Tensor;
  private readonly sq: Tensor; private readonly sqT: Tensor;
  private readonly oh: Tensor; private readonly doh: Tensor; private readonly dohT: Tensor;
  private readonly dkg: Tensor; private readonly dvg: Tensor; private readonly part: Tensor;
  private readonly prow: Tensor;

  constructor(k: Kernels, private readonly engine: MatmulEngine, readonly a: AttentionShape) {
    const th = a.T * a.headDim;
    const tt = a.T * a.T;
    const t = (n: number) => allocTensor(k.memory, n);
    this.qh = t(th); this.kg = t(th); this.vg = t(th);
    this.qhT = t(th); this.kgT = t(th); this.vgT = t(th);
    this.sq = t(tt); this.sqT = t(tt);
    this.oh = t(th); this.doh = t(th); this.dohT = t(th);
    this.dkg = t(th); this.dvg = t(th); this.part = t(th);
    this.prow = t(tt);
  }

  /** dst [T][hd] <- rows of head `head` (of `heads`) of sequence b in src [N][heads*hd]. */
  private gather(dst: Float32Array, src: Float32Array, b: number, head: number, heads: number): void {
    const { T, headDim: hd } = this.a;
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * heads * hd + head * hd;
      dst.set(src.subarray(o, o + hd), t * hd);
    }
  }

  private scatter(dst: Float32Array, src: Float32Array, b: number, head: number, heads: number): void {
    const { T, headDim: hd } = this.a;
    for (let t = 0; t < T; t++) dst.set(src.subarray(t * hd, t * hd + hd), (b * T + t) * heads * hd + head * hd);
  }

  /** out [N][nHead*hd]; probs [B][nHead][T][T] (kept for the backward pass, zero above the diagonal). */
  forward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array): void {
    const { B, T, nHead, nHeadKv, headDim: hd, scale } = this.a;
    const group = nHead / nHeadKv;
    const S = this.sq.data;
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < nHeadKv; g++) {
        this.gather(this.kg.data, k, b, g, nHeadKv);
        this.gather(this.vg.data, v, b, g, nHeadKv);
        transpose(this.vgT.data, this.vg.data, T, hd);
        for (let h = g * group; h < (g + 1) * group; h++) {
          this.gather(this.qh.data, q, b, h, nHead);
          this.engine.nt(this.sq.addr, this.kg.addr, this.qh.addr, T, hd, T);
          const po = (b * nHead + h) * T * T;
          for (let t = 0; t < T; t++) {
            const r = t * T;
            let max = -Infinity;
            for (let s = 0; s <= t; s++) if (S[r + s]! > max) max = S[r + s]!;
            let sum = 0;
            for (let s = 0; s <= t; s++) {
              const e = Math.exp((S[r + s]! - max) * scale);
              S[r + s] = e;
              sum += e;
            }
            const inv = 1 / sum;
            for (let s = 0; s <= t; s++) S[r + s] *= inv;
            S.fill(0, r + t + 1, r + T);
          }
          probs.set(S.subarray(0, T * T), po);
          this.engine.nt(this.oh.addr, this.vgT.addr, this.sq.addr, hd, T, T);
          this.scatter(out, this.oh.data, b, h, nHead);
        }
      }
    }
  }

  /** dq, dk, dv are overwritten. */
  backward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array): void {
    const { B, T, nHead, nHeadKv, headDim: hd, scale } = this.a;
    const group = nHead / nHeadKv;
    const P = this.prow.data;
    const dP = this.sq.data;
    const th = T * hd;
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < nHeadKv; g++) {
        this.gather(this.kg.data, k, b, g, nHeadKv);
        this.gather(this.vg.data, v, b, g, nHeadKv);
        transpose(this.kgT.data, this.kg.data, T, hd);
        this.dkg.data.fill(0, 0, th);
        this.dvg.data.fill(0, 0, th);
        for (let h = g * group; h < (g + 1) * group; h++) {
          const po = (b * nHead + h) * T * T;
          P.set(probs.subarray(po, po + T * T));
          this.gather(this.doh.data, dout, b, h, nHead);
          this.gather(this.qh.data, q, b, h, nHead);
          // dV += P^T dO
          transpose(this.dohT.data, this.doh.data, T, hd);
          transpose(this.sqT.data, P, T, T);
          this.engine.nt(this.part.addr, this.dohT.addr, this.sqT.addr, hd, T, T);
          for (let i = 0; i < th; i++) this.dvg.data[i] += this.part.data[i]!;
          // dP = dO V^T, then dS = P (dP - rowsum(P dP)) scale, in place.
          this.engine.nt(this.sq.addr, this.vg.addr, this.doh.addr, T, hd, T);
          for (let t = 0; t < T; t++) {
            const r = t * T;
            let pdp = 0;
            for (let s = 0; s <= t; s++) pdp += P[r + s]! * dP[r + s]!;
            for (let s = 0; s <= t; s++) dP[r + s] = P[r + s]! * (dP[r + s]! - pdp) * scale;
            dP.fill(0, r + t + 1, r + T);
          }
          // dQ = dS K
          this.engine.nt(this.oh.addr, this.kgT.addr, this.sq.addr, hd, T, T);
          this.scatter(dq, this.oh.data, b, h, nHead);
          // dK += dS^T Q
          transpose(this.qhT.data, this.qh.data, T, hd);
          transpose(this.sqT.data, dP, T, T);
          this.engine.nt(this.part.addr, this.qhT.addr, this.sqT.addr, hd, T, T);
          for (let i = 0; i < th; i++) this.dkg.data[i] += this.part.data[i]!;
        }
        this.scatter(dk, this.dkg.data, b, g, nHeadKv);
        this.scatter(dv, this.dvg.data, b, g, nHeadKv);
      }
    }
  }
}
