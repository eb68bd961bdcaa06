/*
 * Streaming read of [p, p + bytes) with 128-bit loads: the ceiling for memory-bound kernels.
 * Four independent OR chains keep loads in flight; the result only defeats dead-code removal.
 */
export function stream_read(p: usize, bytes: i32): i32 {
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  let c = i32x4.splat(0);
  let d = i32x4.splat(0);
  const end = p + <usize>bytes;
  for (let o = p; o + 64 <= end; o += 64) {
    a = v128.or(a, v128.load(o));
    b = v128.or(b, v128.load(o, 16));
    c = v128.or(c, v128.load(o, 32));
    d = v128.or(d, v128.load(o, 48));
  }
  const s = v128.or(v128.or(a, b), v128.or(c, d));
  return i32x4.extract_lane(s, 0) | i32x4.extract_lane(s, 1) | i32x4.extract_lane(s, 2) | i32x4.extract_lane(s, 3);
}
