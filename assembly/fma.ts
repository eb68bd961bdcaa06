/*
 * Fused multiply-add rounded once, as x86's vfmadd: the float order of llama.cpp's kernels,
 * which accumulate with _mm256_fmadd_ps.
 *
 * WebAssembly has no fma instruction. The relaxed-SIMD build has f32x4.relaxed_madd, which V8
 * compiles to vfmadd where the CPU has FMA3 and to a multiply then an add where it has not;
 * fusedMaddOk() tells which, once per instance, from inputs whose fused and unfused results
 * differ. Everywhere else (the plain build; a CPU without FMA3) fma4 computes the same bits in
 * f64: the product of two floats is exact in f64, and the f64 sum rounds again only when it needs
 * more than 53 bits. If that second rounding put it exactly halfway between two floats (the only
 * case where rounding twice differs from rounding once), fmaf fixes the last bit (musl's fmaf).
 */

/**
 * fma(x, y, z) rounded once (see above). Scalar: the slow path of fma4, and the whole of it in
 * k_quants_low.ts.
 */
export function fmaf(x: f32, y: f32, z: f32): f32 {
  const xy = <f64>x * <f64>y;
  const r = xy + <f64>z;
  let i = reinterpret<u64>(r);
  const e = <i32>((i >> 52) & 0x7ff);
  if ((i & 0x1fffffff) != 0x10000000 || e == 0x7ff || (r - xy == <f64>z && r - <f64>z == xy)) return <f32>r;
  const neg = (i >> 63) != 0;
  const err = neg == (<f64>z > xy) ? xy - r + <f64>z : <f64>z - r + xy;
  if (neg == (err < 0)) i++;
  else i--;
  return <f32>reinterpret<f64>(i);
}

let fusedState: i32 = -1;

/**
 * Whether f32x4.relaxed_madd rounds once on this runtime and CPU. (1 + 2^-12)^2 - (1 + 2^-11)
 * is 2^-24 fused and 0 unfused (the rounded square ties to 1 + 2^-11). The inputs come from
 * memory.size() so that the optimizer cannot fold the probe at build time. Always false in the
 * plain build.
 */
export function fusedMaddOk(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  if (fusedState < 0) {
    const one = <f32>(<i32>memory.size() > 0 ? 1 : 2);
    const a = f32x4.splat(one + <f32>2.44140625e-4); // 1 + 2^-12
    const c = f32x4.splat(-(one + <f32>4.8828125e-4)); // -(1 + 2^-11)
    const r = f32x4.relaxed_madd(a, a, c);
    fusedState = f32x4.extract_lane(r, 0) == <f32>5.9604644775390625e-8 && f32x4.extract_lane(r, 3) == <f32>5.9604644775390625e-8 ? 1 : 0;
  }
  return fusedState == 1;
}

let fused64State: i32 = -1;

/**
 * Whether f64x2.relaxed_madd rounds once: (1 + 2^-27)^2 - (1 + 2^-26) is 2^-54 fused and 0
 * unfused. Always false in the plain build.
 */
export function fusedMadd64Ok(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  if (fused64State < 0) {
    const one = <f64>(<i32>memory.size() > 0 ? 1 : 2);
    const a = f64x2.splat(one + 7.450580596923828e-9); // 1 + 2^-27
    const c = f64x2.splat(-(one + 1.4901161193847656e-8)); // -(1 + 2^-26)
    const r = f64x2.relaxed_madd(a, a, c);
    fused64State = f64x2.extract_lane(r, 0) == 5.551115123125783e-17 && f64x2.extract_lane(r, 1) == 5.551115123125783e-17 ? 1 : 0;
  }
  return fused64State == 1;
}

/** fmaf on each lane, for the rare steps fma4's f64 path cannot settle. */
function fmaLanes(a: v128, b: v128, c: v128): v128 {
  let r = f32x4.splat(fmaf(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0), f32x4.extract_lane(c, 0)));
  r = f32x4.replace_lane(r, 1, fmaf(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1), f32x4.extract_lane(c, 1)));
  r = f32x4.replace_lane(r, 2, fmaf(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2), f32x4.extract_lane(c, 2)));
  return f32x4.replace_lane(r, 3, fmaf(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3), f32x4.extract_lane(c, 3)));
}

/**
 * a * b + c on four f32 lanes, rounded once. `fused`: fusedMaddOk() (a loop hoists it); then
 * one relaxed_madd. Otherwise two f64x2 halves: exact products, sums rounded to f32 unless one
 * lies exactly halfway between two floats (low 29 bits 0x10000000: an exact tie, or an f64 sum
 * rounded onto one), which goes to fmaf lane by lane.
 */
// @ts-ignore: decorator
@inline
export function fma4(a: v128, b: v128, c: v128, fused: bool): v128 {
  if (ASC_FEATURE_RELAXED_SIMD && fused) return f32x4.relaxed_madd(a, b, c);
  const r0 = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b)), f64x2.promote_low_f32x4(c));
  const a1 = f64x2.promote_low_f32x4(i32x4.shuffle(a, a, 2, 3, 2, 3));
  const b1 = f64x2.promote_low_f32x4(i32x4.shuffle(b, b, 2, 3, 2, 3));
  const r1 = f64x2.add(f64x2.mul(a1, b1), f64x2.promote_low_f32x4(i32x4.shuffle(c, c, 2, 3, 2, 3)));
  const low29 = i64x2.splat(0x1fffffff);
  const half = i64x2.splat(0x10000000);
  if (v128.any_true(v128.or(i64x2.eq(v128.and(r0, low29), half), i64x2.eq(v128.and(r1, low29), half)))) return fmaLanes(a, b, c);
  return i32x4.shuffle(f32x4.demote_f64x2_zero(r0), f32x4.demote_f64x2_zero(r1), 0, 1, 4, 5);
}
