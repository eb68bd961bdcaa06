/*
 * sinf and cosf as glibc (x86-64, its build with FMA) computes them, for RoPE's angles: the same
 * steps as src/kernels/reference/trig.ts, which says why and how (ARM's optimized-routines
 * sincosf in float64; the reduction y - n pi/2 rounded once, pi/2 split so that the first
 * difference is exact; Payne-Hanek above 120 with 2/pi's bits; each a * b + c of the polynomials
 * fused: f64x2.relaxed_madd where it is, else in double-double).
 */
import { fusedMadd64Ok } from "./fma";

const HPI_INV: f64 = reinterpret<f64>(0x41645f306dc9c883); // 2/pi * 2^24
const HPI: f64 = reinterpret<f64>(0x3ff921fb54442d18); // pi/2
const HPI_HI: f64 = reinterpret<f64>(0x3ff921fb54442d00); // its top 46 bits
const HPI_LO: f64 = HPI - HPI_HI;
const PI63: f64 = reinterpret<f64>(0x3c1921fb54442d18); // 2 pi * 2^-64
const C1: f64 = reinterpret<f64>(0xbfdffffffd0c621c);
const C2: f64 = reinterpret<f64>(0x3fa55553e1068f19);
const C3: f64 = reinterpret<f64>(0xbf56c087e89a359d);
const C4: f64 = reinterpret<f64>(0x3ef99343027bf8c3);
const S1: f64 = reinterpret<f64>(0xbfc555545995a603);
const S2: f64 = reinterpret<f64>(0x3f81107605230bc4);
const S3: f64 = reinterpret<f64>(0xbf2994eb3774cf24);

/** fusedMadd64Ok(), read once per instance (trig's callers do not hoist it). */
let fused64: bool = false;
let fused64Known: bool = false;

// @ts-ignore: decorator
@inline
function probe(): void {
  if (!fused64Known) {
    fused64 = fusedMadd64Ok();
    fused64Known = true;
  }
}

/** 2/pi's binary expansion in 32-bit windows 8 bits apart (entry i ends at bit 8i + 8). */
const INV_PIO4: StaticArray<u32> = [
  0x000000a2, 0x0000a2f9, 0x00a2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
  0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
  0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

/**
 * a * b + c rounded once: f64x2.relaxed_madd where it is fused (fma.ts, fusedMadd64Ok), else in
 * double-double (Veltkamp's split, TwoSum), as the reference computes it.
 */
// @ts-ignore: decorator
@inline
function fma64(a: f64, b: f64, c: f64): f64 {
  if (ASC_FEATURE_RELAXED_SIMD && fused64) return f64x2.extract_lane(f64x2.relaxed_madd(f64x2.splat(a), f64x2.splat(b), f64x2.splat(c)), 0);
  const p = a * b;
  const sa = 134217729.0 * a;
  const ah = sa - (sa - a);
  const al = a - ah;
  const sb = 134217729.0 * b;
  const bh = sb - (sb - b);
  const bl = b - bh;
  const e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  const s = p + c;
  const v = s - p;
  return s + (((p - (s - v)) + (c - v)) + e);
}

/** sin (even n) or cos (odd n) of the reduced r; neg: the cosine polynomial negated. */
function poly(r: f64, n: i32, neg: bool): f32 {
  const r2 = r * r;
  if ((n & 1) == 0) {
    const r3 = r * r2;
    return <f32>fma64(r3 * r2, fma64(r2, S3, S2), fma64(r3, S1, r));
  }
  const sg: f64 = neg ? -1 : 1;
  const r4 = r2 * r2;
  return <f32>fma64(r4 * r2, fma64(r2, sg * C4, sg * C3), fma64(r4, sg * C2, fma64(r2, sg * C1, sg)));
}

/**
 * cosf(y) * ms to cs and sinf(y) * ms to cs + 4 (RoPE's table: one reduction for both, as
 * glibc's sincosf, whose results are its sinf's and cosf's).
 */
export function cosSinTo(y: f32, ms: f32, cs: usize): void {
  probe();
  const xi = reinterpret<u32>(y);
  const top = (xi >> 20) & 0x7ff;
  if (top < 0x3f4) {
    // |y| < 0.75 (abstop12(y) < abstop12(pi/4))
    const small = top < 0x398; // |y| < 2^-12
    store<f32>(cs, (small ? <f32>1 : poly(<f64>y, 1, false)) * ms);
    store<f32>(cs, (small ? y : poly(<f64>y, 0, false)) * ms, 4);
    return;
  }
  if (top >= 0x7f8) {
    store<f32>(cs, NaN);
    store<f32>(cs, NaN, 4);
    return;
  }
  const r = reduce(y, xi, top);
  store<f32>(cs, poly(r, quadrant ^ 1, cosNegated) * ms);
  store<f32>(cs, poly(r, quadrant, cosNegated) * ms, 4);
}

/** The quadrant n the last reduce (or reduceLarge) found, and whether the cosine polynomial is negated there. */
let quadrant: i32 = 0;
let cosNegated: bool = false;

/**
 * y (bits xi, |y| >= 0.75, finite; top: its top 12 bits) reduced to r in [-pi/4, pi/4] with the
 * sign poly wants, its quadrant in `quadrant` and `cosNegated`: by n = round(y * 2/pi) in two
 * steps below 120, by Payne-Hanek above.
 */
function reduce(y: f32, xi: u32, top: u32): f64 {
  let r: f64;
  let q: i32;
  if (top < 0x42f) {
    // |y| < 120
    const x = <f64>y;
    const n = (<i32>(x * HPI_INV) + 0x800000) >> 24;
    r = (x - <f64>n * HPI_HI) - <f64>n * HPI_LO; // rounded once: the first difference is exact
    quadrant = n;
    q = n;
  } else {
    r = reduceLarge(xi);
    q = quadrant + <i32>(xi >> 31);
  }
  cosNegated = (q & 2) != 0;
  return (q & 3) == 1 || (q & 3) == 2 ? -r : r;
}

/** Payne-Hanek reduction of |y| >= 120 (bits xi): r, and the quadrant in `quadrant`. */
function reduceLarge(xi: u32): f64 {
  const at = <i32>((xi >> 26) & 15);
  const m = ((xi & 0xffffff) | 0x800000) << ((xi >> 23) & 7);
  let r0 = <u64>(m * unchecked(INV_PIO4[at]));
  const r1 = <u64>m * <u64>unchecked(INV_PIO4[at + 4]);
  const r2 = <u64>m * <u64>unchecked(INV_PIO4[at + 8]);
  r0 = (r2 >> 32) | (r0 << 32);
  r0 += r1;
  const nn = (r0 + (<u64>1 << 61)) >> 62;
  r0 -= nn << 62;
  quadrant = <i32>nn;
  return <f64>(<i64>r0) * PI63;
}

/** sinf (cos = false) or cosf (cos = true) of y. */
function sincosf(y: f32, cos: bool): f32 {
  probe();
  const xi = reinterpret<u32>(y);
  const top = (xi >> 20) & 0x7ff;
  if (top < 0x3f4) {
    // |y| < 0.75 (abstop12(y) < abstop12(pi/4))
    if (top < 0x398) return cos ? <f32>1 : y; // |y| < 2^-12
    return poly(<f64>y, cos ? 1 : 0, false);
  }
  if (top >= 0x7f8) return NaN;
  const r = reduce(y, xi, top);
  return poly(r, cos ? quadrant ^ 1 : quadrant, cosNegated);
}

export function sinf(y: f32): f32 {
  return sincosf(y, false);
}

export function cosf(y: f32): f32 {
  return sincosf(y, true);
}
