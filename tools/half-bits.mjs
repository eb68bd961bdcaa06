// f16 bits of small numbers, for tools that write block scales (tools/big-model.mjs,
// tools/bench-matmul-ab.mjs) without loading the library.

/** A positive or negative float to the nearest f16 bits, subnormal halves included (no inf / NaN needed here). */
export function halfBits(x) {
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | Math.round(a * 2 ** 24);
  let e = Math.floor(Math.log2(a));
  let m = Math.round((a / 2 ** e - 1) * 1024);
  if (m === 1024) (m = 0), e++;
  return sign | ((e + 15) << 10) | m;
}
