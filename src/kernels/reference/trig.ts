/**
 * sinf and cosf as glibc (2.28 and later, x86-64) computes them: llama.cpp's RoPE takes the cosf
 * and sinf of a float32 angle (ggml_rope_cache_init), and they are not correctly rounded — about
 * one angle in 60 of those RoPE uses comes out one ulp off the correctly rounded value, which in
 * an F16 model can flip an f16 rounding later. The algorithm is ARM's optimized-routines
 * sincosf, in glibc's x86-64 build with FMA (the one it picks on a CPU with FMA, whose compiler
 * fuses each a * b + c), all in float64:
 *   |y| < pi/4:   r = y, quadrant n = 0;
 *   |y| < 120:    n = the nearest multiple of pi/2 (y * 2/pi * 2^24, truncated, + 2^23, >> 24),
 *                 r = y - n pi/2 rounded once;
 *   otherwise:    Payne-Hanek: the fraction of y * 2/pi from 2/pi's bits (INV_PIO4), r = that * pi/2;
 *   sin r = r + r^3 s1 + r^5 (s2 + r^2 s3),   cos r = c0 + r^2 c1 + r^4 c2 + r^6 (c3 + r^2 c4),
 * the quadrant choosing the polynomial (odd n: the other one) and the sign (the second coefficient
 * table negates cos). Checked against this machine's libm on 1.8M angles, every RoPE angle among
 * them (test/kernels/trig.test.ts keeps a sample).
 */
const f = Math.fround;

/** A float64 from a C hex-float literal ("0x1.921fb54442d18p0"). */
function hexDouble(s: string): number {
  const m = /^(-?)0x1\.([0-9a-f]+)p([+-]?\d+)$/i.exec(s)!;
  return (m[1] ? -1 : 1) * (1 + parseInt(m[2]!, 16) / 16 ** m[2]!.length) * 2 ** Number(m[3]);
}

const HPI_INV = hexDouble("0x1.45f306dc9c883p23"); // 2/pi * 2^24
const HPI = hexDouble("0x1.921fb54442d18p0"); // pi/2
/** pi/2 in two parts: the top 46 bits (times an integer |n| < 128: exact) and the rest. */
const HPI_HI = HPI - (HPI % 2 ** -45);
const HPI_LO = HPI - HPI_HI;
const PI63 = hexDouble("0x1.921fb54442d18p-62"); // 2 pi * 2^-64
const PIO4 = f(hexDouble("0x1.921fb54442d18p-1"));

interface Poly { c0: number; c1: number; c2: number; c3: number; c4: number; s1: number; s2: number; s3: number }
const POLY: Poly = {
  c0: 1, c1: hexDouble("-0x1.ffffffd0c621cp-2"), c2: hexDouble("0x1.55553e1068f19p-5"),
  c3: hexDouble("-0x1.6c087e89a359dp-10"), c4: hexDouble("0x1.99343027bf8c3p-16"),
  s1: hexDouble("-0x1.555545995a603p-3"), s2: hexDouble("0x1.1107605230bc4p-7"), s3: hexDouble("-0x1.994eb3774cf24p-13"),
};
/** The same with cos negated (quadrants 2 and 3). */
const POLY_NEG: Poly = { ...POLY, c0: -POLY.c0, c1: -POLY.c1, c2: -POLY.c2, c3: -POLY.c3, c4: -POLY.c4 };
const SIGN = [1, -1, -1, 1];

/** 2/pi's binary expansion in 32-bit windows 8 bits apart (entry i ends at bit 8i + 8). */
const TWO_OVER_PI_HEX = "a2f9836e4e441529fc2757d1f534ddc0db6295993c439041";
const INV_PIO4 = Array.from({ length: 24 }, (_, i) => BigInt("0x" + TWO_OVER_PI_HEX.slice(0, 2 * i + 2)) & 0xffffffffn);

/**
 * a * b + c rounded once, in double-double (glibc's compiled code fuses these; the product's
 * error comes exactly from Veltkamp's split, the sum's from TwoSum).
 */
export function fma64(a: number, b: number, c: number): number {
  const p = a * b;
  const sa = 134217729 * a, ah = sa - (sa - a), al = a - ah;
  const sb = 134217729 * b, bh = sb - (sb - b), bl = b - bh;
  const e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  const s = p + c;
  const v = s - p;
  return s + (((p - (s - v)) + (c - v)) + e);
}

/** sin (even n) or cos (odd n) of the reduced r, as a float32. */
function poly(r: number, n: number, p: Poly): number {
  const r2 = r * r;
  if ((n & 1) === 0) {
    const r3 = r * r2;
    return f(fma64(r3 * r2, fma64(r2, p.s3, p.s2), fma64(r3, p.s1, r)));
  }
  const r4 = r2 * r2;
  return f(fma64(r4 * r2, fma64(r2, p.c4, p.c3), fma64(r4, p.c2, fma64(r2, p.c1, p.c0))));
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** y's reduction for |y| >= 120: [r, quadrant], from 2/pi's bits by exact integer products. */
function reduceLarge(xi: number): [number, number] {
  const at = (xi >>> 26) & 15;
  const m = BigInt((((xi & 0xffffff) | 0x800000) << ((xi >>> 23) & 7)) >>> 0);
  const mask = (1n << 64n) - 1n;
  const r0 = (m * INV_PIO4[at]!) & 0xffffffffn;
  let r = (((m * INV_PIO4[at + 8]!) >> 32n) | (r0 << 32n)) & mask;
  r = (r + m * INV_PIO4[at + 4]!) & mask;
  const n = ((r + (1n << 61n)) & mask) >> 62n;
  r = BigInt.asIntN(64, r - (n << 62n));
  return [Number(r) * PI63, Number(n)];
}

/** sinf (cos = false) or cosf (cos = true) of a float32 y. */
function sincosf(y: number, cos: boolean): number {
  F32[0] = y;
  const top = (U32[0]! >>> 20) & 0x7ff;
  F32[0] = PIO4;
  if (top < ((U32[0]! >>> 20) & 0x7ff)) {
    if (top < 0x398) return cos ? 1 : y; // |y| < 2^-12
    return poly(y, cos ? 1 : 0, POLY);
  }
  if (!Number.isFinite(y)) return NaN;
  let r: number, n: number, q: number;
  if (Math.abs(y) < 120) {
    n = ((Math.trunc(y * HPI_INV) | 0) + 0x800000) >> 24;
    r = (y - n * HPI_HI) - n * HPI_LO; // y - n pi/2, rounded once: the first difference is exact
    q = n;
  } else {
    F32[0] = y;
    [r, n] = reduceLarge(U32[0]!);
    q = n + (U32[0]! >>> 31);
  }
  return poly(r * SIGN[q & 3]!, cos ? n ^ 1 : n, q & 2 ? POLY_NEG : POLY);
}

export const sinf = (y: number): number => sincosf(f(y), false);
export const cosf = (y: number): number => sincosf(f(y), true);
