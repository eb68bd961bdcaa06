/**
 * WGSL kernels: the forward program's ops (src/kernels/program.ts) as compute shaders over one
 * storage buffer that mirrors the kernel memory byte for byte, so every address in a program
 * means the same tensor on the GPU as in WebAssembly.
 *
 *   binding 0  mem:     array<u32>   the kernel memory (weights in ggml blocks, run state, KV cache)
 *   binding 1  op:      uniform      this op's arguments, one vec4 (kind, a, b, c) each, resolved
 *                                    here as the CPU executor resolves them: kind 0 a constant
 *                                    (f32 bits where the op takes a float), 1 a + c * reg[b],
 *                                    2 a + c * i32(mem[b]) (a routed expert), 3 f32(mem[b])
 *   binding 2  regs:    array<u32>   the run's registers (positions)
 *   binding 3  ropeTab: array<f32>   cos, sin (times mscale) for each new token and pair, made on
 *                                    the CPU in float64 as the reference kernel makes them
 *   binding 4  scratch: array<f32>   attention probabilities, one nCtx row per (token, head)
 *
 * op.head: (opcode, activation row stride, a per-shader constant, workgroups that have work).
 * Bounds that guard a workgroup barrier come from op.head (uniform), never from mem, so every
 * invocation of a workgroup reaches the barrier or none does (WGSL's uniformity rule).
 *
 * Layouts the GPU writes for itself (they fit in the bytes the reference layout reserves,
 * actBytes(type, cols), and use its row stride):
 *   Q8_0 activations (for Q4_0 / Q8_0 weights): i8 codes[cols] | f32 d[cols / 32]
 *   Q8_K activations (for Q4_K, Q5_K, Q6_K weights): i8 codes[cols] | f32 d[cols / 256]
 *   F16 activations: f32[cols], each rounded to f16;  F32 activations: f32[cols]
 *
 * Rounding follows llama.cpp as the reference kernels state it: activations to Q8_0 blocks
 * (d = f16(amax / 127), q = round-half-even(x * 127 / amax)) or to f16; the f16 KV cache's two
 * products round q and then the softmax probabilities to f16. Integer block dot products are
 * exact; float sums run in f32 in a different order from the CPU's, hence a tolerance.
 */
import { GGML_TYPES, GGMLType } from "../../formats/ggml-types.js";
import { PANEL_COLUMNS, PANEL_MIN_COLUMNS } from "../layout.js";

export const WORKGROUP = 64;

/** Bytes per weight block (Q4_0 18, Q8_0 34, Q4_K 144, Q5_K 176, Q6_K 210), as ggml-types.ts records them. */
const BYTES = (type: GGMLType): number => GGML_TYPES[type].bytesPerBlock;
export const ELEMENTWISE = 256;

const PRELUDE = /* wgsl */ `
struct Op { head: vec4<u32>, args: array<vec4<u32>, 20> }
@group(0) @binding(0) var<storage, read_write> mem: array<u32>;
@group(0) @binding(1) var<uniform> op: Op;
@group(0) @binding(2) var<storage, read> regs: array<u32>;
@group(0) @binding(3) var<storage, read> ropeTab: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;

fn arg(i: u32) -> u32 {
  let a = op.args[i];
  switch a.x {
    case 0u: { return a.y; }
    case 1u: { return a.y + a.w * regs[a.z]; }
    case 2u: { return a.y + a.w * mem[a.z >> 2u]; }
    default: { return mem[a.z >> 2u]; }
  }
}
fn argf(i: u32) -> f32 { return bitcast<f32>(arg(i)); }

// Aligned f32 access by byte address.
fn ldf(b: u32) -> f32 { return bitcast<f32>(mem[b >> 2u]); }
fn stf(b: u32, v: f32) { mem[b >> 2u] = bitcast<u32>(v); }
// Four bytes at any byte address (ggml blocks are 18 or 34 bytes, so weights sit 2-aligned).
fn ld32(b: u32) -> u32 {
  let w = b >> 2u;
  let s = (b & 3u) * 8u;
  if (s == 0u) { return mem[w]; }
  return (mem[w] >> s) | (mem[w + 1u] << (32u - s));
}
// One byte at any address.
fn ldb(b: u32) -> u32 { return (mem[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu; }
// An f16 at a 2-aligned byte address.
fn ld16(b: u32) -> u32 { return (mem[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu; }
// Where block B of row r's group lies in a grouped matrix of ldy rows of cols values, blocks of
// bs values in bb bytes (src/kernels/layout.ts): rows longer than ${PANEL_MIN_COLUMNS} values lie in panels of
// ${PANEL_COLUMNS}, one after another, each a grouped matrix of its own.
fn groupedAt(w: u32, r: u32, B: u32, cols: u32, ldy: u32, bs: u32, bb: u32) -> u32 {
  let nb = cols / bs;
  var P = nb;
  if (cols > ${PANEL_MIN_COLUMNS}u) { P = ${PANEL_COLUMNS}u / bs; }
  let b0 = (B / P) * P;
  let pb = min(P, nb - b0);
  return w + b0 * ldy * bb + (r / 4u) * 4u * pb * bb + (B - b0) * 4u * bb;
}

// IEEE half <-> float, spelled out: exact, whatever the GPU does with f16 denormals.
fn h2f(h: u32) -> f32 {
  let e = (h >> 10u) & 31u;
  let m = h & 1023u;
  var v: f32;
  if (e == 0u) { v = f32(m) * 5.9604644775390625e-8; }
  else if (e == 31u) { v = bitcast<f32>(0x7f800000u | (m << 13u)); }
  else { v = bitcast<f32>(((e + 112u) << 23u) | (m << 13u)); }
  return select(v, -v, (h & 0x8000u) != 0u);
}
// Round to nearest even, as ggml's GGML_FP32_TO_FP16.
fn f2h(f: f32) -> u32 {
  let x = bitcast<u32>(f);
  let s = (x >> 16u) & 0x8000u;
  let a = x & 0x7fffffffu;
  if (a > 0x7f800000u) { return s | 0x7e00u; }
  if (a >= 0x477ff000u) { return s | 0x7c00u; }
  if (a < 0x38800000u) { return s | u32(round(bitcast<f32>(a) * 16777216.0)); }
  return s | ((a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u);
}
fn roundF16(f: f32) -> f32 { return h2f(f2h(f)); }
// llama.cpp's exp (ggml_v_expf, AVX-512; src/kernels/reference/norm.ts, vexpf), as near as a
// shader gets: n by round() (shader compilers may fold the CPU's add-and-subtract of 1.5 * 2^23),
// the rest with fma(), fused or not as the GPU does it.
fn vexpf(x: f32) -> f32 {
  let n = round(x * bitcast<f32>(0x3fb8aa3bu));
  let b = fma(-n, bitcast<f32>(0x35bfbe8eu), fma(-n, bitcast<f32>(0x3f317200u), x));
  if (abs(n) > 192.0) { return select(0.0, bitcast<f32>(0x7f800000u | u32(n != n)), n > 0.0); } // 0 or +inf (not a constant: WGSL refuses a constant inf)
  let u = b * b;
  let hi = fma(fma(bitcast<f32>(0x3c072010u), b, bitcast<f32>(0x3d2b9f17u)), u, fma(bitcast<f32>(0x3e2aaf33u), b, bitcast<f32>(0x3efffedbu)));
  return ldexp(fma(hi, u, fma(bitcast<f32>(0x3f7ffff6u), b, 1.0)), i32(n));
}
// a / b correctly rounded, for positive normal floats (long division on the mantissas): WGSL's
// division may be off by an ulp or two, and the Q8_0 scale 127 / amax decides where codes round.
fn divRN(a: f32, b: f32) -> f32 {
  let ab = bitcast<u32>(a);
  let bb = bitcast<u32>(b);
  let mb = (bb & 0x7fffffu) | 0x800000u;
  var rem = (ab & 0x7fffffu) | 0x800000u;
  var e = i32((ab >> 23u) & 255u) - i32((bb >> 23u) & 255u) + 127;
  if (rem < mb) { rem = rem << 1u; e -= 1; }
  var q = 0u;
  for (var i = 0u; i < 25u; i++) {
    q = q << 1u;
    if (rem >= mb) { rem -= mb; q |= 1u; }
    rem = rem << 1u;
  }
  var m = q >> 1u;
  if ((q & 1u) == 1u && (rem != 0u || (m & 1u) == 1u)) { m += 1u; }
  if (m == 0x1000000u) { m = 0x800000u; e += 1; }
  if (e <= 0 || e >= 255 || ((ab >> 23u) & 255u) == 0u) { return a / b; }
  return bitcast<f32>((u32(e) << 23u) | (m & 0x7fffffu));
}
fn i8at(w: u32, j: u32) -> i32 { return extractBits(bitcast<i32>(w), 8u * j, 8u); }

var<workgroup> red: array<f32, ${WORKGROUP}>;
// Sum (or max) of one value per invocation; every invocation gets the result.
fn wgSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;

/** Flat workgroup index over a 2-D grid (a dimension holds at most 65535 workgroups). */
const FLAT = "let wg = wid.x + wid.y * nwg.x;";
const WG_ARGS = "@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>";

/** quantize(type, x, xq, cols, nTok) -> Q8_0 codes and scales; one invocation per 32-block. */
const QUANTIZE_Q8_0 = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(1u); let xq = arg(2u); let cols = arg(3u); let nTok = arg(4u); let stride = op.head.y;
  let nb = cols / 32u;
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (i >= nb * nTok) { return; }
  let t = i / nb; let b = i % nb;
  let src = x + 4u * (t * cols + 32u * b);
  var amax = 0.0;
  for (var j = 0u; j < 32u; j++) { amax = max(amax, abs(ldf(src + 4u * j))); }
  let d = roundF16(divRN(amax, 127.0));
  var id = 0.0;
  if (amax != 0.0) { id = divRN(127.0, amax); }
  let row = xq + t * stride;
  for (var k = 0u; k < 8u; k++) {
    var w = 0u;
    for (var j = 0u; j < 4u; j++) {
      let q = i32(round(ldf(src + 4u * (4u * k + j)) * id));
      w |= (bitcast<u32>(q) & 0xffu) << (8u * j);
    }
    mem[(row + 32u * b + 4u * k) >> 2u] = w;
  }
  stf(row + cols + 4u * b, d);
}`;

/**
 * quantize -> Q8_K codes and scales (ggml's quantize_row_q8_K): per 256-block, m = the value of
 * largest magnitude (the first), iscale = -127 / m, q = min(127, round-half-even(iscale * x)),
 * d = 1 / iscale. One invocation per block.
 */
const QUANTIZE_Q8_K = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(1u); let xq = arg(2u); let cols = arg(3u); let nTok = arg(4u); let stride = op.head.y;
  let nb = cols / 256u;
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (i >= nb * nTok) { return; }
  let t = i / nb; let b = i % nb;
  let src = x + 4u * (t * cols + 256u * b);
  let row = xq + t * stride;
  var amax = 0.0;
  var m = 0.0;
  for (var j = 0u; j < 256u; j++) {
    let v = ldf(src + 4u * j);
    if (abs(v) > amax) { amax = abs(v); m = v; }
  }
  var iscale = 0.0;
  var d = 0.0;
  if (amax != 0.0) {
    iscale = select(divRN(127.0, amax), -divRN(127.0, amax), m > 0.0);
    d = select(divRN(1.0, abs(iscale)), -divRN(1.0, abs(iscale)), iscale < 0.0);
  }
  for (var k = 0u; k < 64u; k++) {
    var w = 0u;
    for (var j = 0u; j < 4u; j++) {
      let q = min(127, i32(round(iscale * ldf(src + 4u * (4u * k + j)))));
      w |= (bitcast<u32>(q) & 0xffu) << (8u * j);
    }
    mem[(row + 256u * b + 4u * k) >> 2u] = w;
  }
  stf(row + cols + 4u * b, d);
}`;

/** quantize for F16 / F32 weights: f32 rows, f16-rounded for F16 (op.head.z = 1). */
const QUANTIZE_FLOAT = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(1u); let xq = arg(2u); let cols = arg(3u); let nTok = arg(4u); let stride = op.head.y;
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (i >= cols * nTok) { return; }
  let t = i / cols; let j = i % cols;
  var v = ldf(x + 4u * i);
  if (op.head.z == 1u) { v = roundF16(v); }
  stf(xq + t * stride + 4u * j, v);
}`;

/**
 * matmul(type, w, xq, y, cols, rows, nTok, ldy): one workgroup per (row, token); invocations
 * take blocks in turn, then sum. y[t * ldy + r] = W[r] . xq[t].
 */
function matmul(blockDot: string, unit: number): string {
  return /* wgsl */ `
@compute @workgroup_size(${WORKGROUP})
fn main(${WG_ARGS}) {
  ${FLAT}
  let w = arg(1u); let xq = arg(2u); let y = arg(3u); let cols = arg(4u); let rows = arg(5u); let ldy = arg(7u);
  let stride = op.head.y; let rowBytes = op.head.z;
  if (wg >= op.head.w) { return; }
  let r = wg % rows; let t = wg / rows;
  let lid = lidv.x;
  let wr = w + r * rowBytes;
  let xr = xq + t * stride;
  var acc = 0.0;
  for (var b = lid; b < cols / ${unit}u; b += ${WORKGROUP}u) {
    ${blockDot}
  }
  let total = wgSum(lid, acc);
  if (lid == 0u) { stf(y + 4u * (t * ldy + r), total); }
}`;
}

const DOT_Q8_0 = /* wgsl */ `
    let o = wr + ${BYTES(GGMLType.Q8_0)}u * b;
    var sumi = 0;
    for (var k = 0u; k < 8u; k++) {
      let wv = ld32(o + 2u + 4u * k);
      let xv = mem[(xr + 32u * b + 4u * k) >> 2u];
      for (var j = 0u; j < 4u; j++) { sumi += i8at(wv, j) * i8at(xv, j); }
    }
    acc += h2f(ld16(o)) * ldf(xr + cols + 4u * b) * f32(sumi);`;

// A Q4_0 matrix of a multiple of 8 rows lies in groups of four rows (src/kernels/layout.ts):
// block b of row r at group base + 72 b, its scale at + 2 (r % 4), code bytes 4k.. at + 8 + 16 k + 4 (r % 4).
const DOT_Q4_0 = /* wgsl */ `
    let grouped = ldy % 8u == 0u;
    let o = select(wr + ${BYTES(GGMLType.Q4_0)}u * b, groupedAt(w, r, b, cols, ldy, 32u, 18u), grouped);
    let so = select(o, o + 2u * (r % 4u), grouped);
    var sumi = 0;
    for (var k = 0u; k < 4u; k++) {
      let wv = ld32(select(o + 2u + 4u * k, o + 8u + 16u * k + 4u * (r % 4u), grouped));
      let lo = mem[(xr + 32u * b + 4u * k) >> 2u];
      let hi = mem[(xr + 32u * b + 16u + 4u * k) >> 2u];
      for (var j = 0u; j < 4u; j++) {
        let byte = (wv >> (8u * j)) & 0xffu;
        sumi += (i32(byte & 15u) - 8) * i8at(lo, j) + (i32(byte >> 4u) - 8) * i8at(hi, j);
      }
    }
    acc += h2f(ld16(so)) * ldf(xr + cols + 4u * b) * f32(sumi);`;

/**
 * Q6_K: super-blocks of 256 in 210 bytes (ql[128] low nibbles | qh[64] high 2-bit pairs |
 * i8 scales[16] | f16 d); one loop step is a 16-value sub-block s of super-block B.
 */
const DOT_Q6_K = /* wgsl */ `
    let B = b / 16u; let s = b % 16u;
    let o = wr + ${BYTES(GGMLType.Q6_K)}u * B;
    let grouped = ldy % 4u == 0u; let k4 = 4u * (r % 4u); let gB = groupedAt(w, r, B, cols, ldy, 256u, 210u);
    let sc = extractBits(bitcast<i32>(ldb(select(o + 192u + s, gB + 16u * (s >> 2u) + k4 + (s & 3u), grouped))), 0u, 8u);
    var dot = 0;
    for (var l = 0u; l < 16u; l++) {
      let v = 16u * s + l;
      var code = 0u;
      if (grouped) {
        code = q6kGroupedCode(gB + 64u + 48u * s + k4, l);
      } else {
        let h = v >> 7u; let k = (v >> 5u) & 3u; let li = v & 31u;
        let ql = ldb(o + 64u * h + li + (k & 1u) * 32u);
        var low = ql >> 4u;
        if (k < 2u) { low = ql & 15u; }
        let high = (ldb(o + 128u + 32u * h + li) >> (2u * k)) & 3u;
        code = low | (high << 4u);
      }
      let xv = extractBits(bitcast<i32>(ldb(xr + 256u * B + v)), 0u, 8u);
      dot += (i32(code) - 32) * xv;
    }
    acc += ldf(xr + cols + 4u * B) * h2f(ld16(select(o + 208u, gB + 832u + k4 / 2u, grouped))) * f32(sc * dot);`;

/**
 * A Q6_K matrix of a multiple of 4 rows lies in groups of four rows (src/kernels/layout.ts):
 * super-block B of row r at group base gB = + 840 B; its scale byte i at gB + 16 (i / 4) +
 * 4 (r % 4) + i % 4, its d at gB + 832 + 2 (r % 4), and sub-block s's codes packed at
 * p = gB + 64 + 48 s + 4 (r % 4): code l < 12 in the low six bits of p + 16 (l / 4) + l % 4,
 * code 12 + j's bits 2i, 2i + 1 in the top two of p + 16 i + j.
 */
const Q6_K_GROUPED = /* wgsl */ `
fn q6kGroupedCode(p: u32, l: u32) -> u32 {
  if (l < 12u) { return ldb(p + 16u * (l >> 2u) + (l & 3u)) & 63u; }
  let j = l - 12u;
  return (ldb(p + j) >> 6u) | ((ldb(p + 16u + j) >> 6u) << 2u) | ((ldb(p + 32u + j) >> 6u) << 4u);
}
`;

/**
 * Q4_K (144 bytes: f16 d | f16 dmin | 12 bytes of 6-bit scales and mins | qs[128]) and Q5_K
 * (176 bytes: the same, qh[32] before qs). One loop step is a 32-value sub-block s of B:
 * d * sc * sum(q x) - dmin * m * sum(x), times the activation scale.
 * A Q4_K matrix of a multiple of 4 rows (grouped4) lies in groups of four rows
 * (src/kernels/layout.ts): super-block B of row r at group base + 576 B, its d at + 2 (r % 4),
 * dmin at + 8 + 2 (r % 4), scale byte i at + 16 + 16 (i / 4) + 4 (r % 4) + i % 4, code byte l at
 * + 64 + 16 (l / 4) + 4 (r % 4) + l % 4.
 */
function dotQ45K(blockBytes: number, qs: number, fifthBit: boolean, grouped4 = false): string {
  // address of scale byte i / code byte l of super-block B
  const scAt = (i: string) => grouped4 ? `select(sb + ${i}, gB + 16u + 16u * ((${i}) >> 2u) + k4 + ((${i}) & 3u), grouped)` : `sb + ${i}`;
  const qAt = (l: string) => grouped4 ? `select(o + ${qs}u + ${l}, gB + 64u + 16u * ((${l}) >> 2u) + k4 + ((${l}) & 3u), grouped)` : `o + ${qs}u + ${l}`;
  return /* wgsl */ `
    let B = b / 8u; let s = b % 8u;
    let o = wr + ${blockBytes}u * B;
    let sb = o + 4u;
    ${grouped4 ? "let grouped = ldy % 4u == 0u; let k4 = 4u * (r % 4u); let gB = groupedAt(w, r, B, cols, ldy, 256u, 144u);" : ""}
    var sc: u32; var mn: u32;
    if (s < 4u) { sc = ldb(${scAt("s")}) & 63u; mn = ldb(${scAt("(s + 4u)")}) & 63u; }
    else {
      sc = (ldb(${scAt("(s + 4u)")}) & 15u) | ((ldb(${scAt("(s - 4u)")}) >> 6u) << 4u);
      mn = (ldb(${scAt("(s + 4u)")}) >> 4u) | ((ldb(${scAt("s")}) >> 6u) << 4u);
    }
    let c = s >> 1u;
    var dot = 0;
    var xsum = 0;
    for (var l = 0u; l < 32u; l++) {
      let byte = ldb(${qAt("(32u * c + l)")});
      var q = select(byte & 15u, byte >> 4u, (s & 1u) == 1u);
      ${fifthBit ? "q |= ((ldb(o + 16u + l) >> s) & 1u) << 4u;" : ""}
      let xv = extractBits(bitcast<i32>(ldb(xr + 256u * B + 32u * s + l)), 0u, 8u);
      dot += i32(q) * xv;
      xsum += xv;
    }
    ${grouped4
      ? "let dAt = select(o, gB + k4 / 2u, grouped); let dminAt = select(o + 2u, gB + 8u + k4 / 2u, grouped);"
      : "let dAt = o; let dminAt = o + 2u;"}
    acc += ldf(xr + cols + 4u * B) * (h2f(ld16(dAt)) * f32(i32(sc) * dot) - h2f(ld16(dminAt)) * f32(i32(mn) * xsum));`;
}

/** Two f16 weights per word (rows of F16 weights are 4-aligned: cols is even). */
const DOT_F16 = /* wgsl */ `
    let wv = mem[(wr + 4u * b) >> 2u];
    acc += h2f(wv & 0xffffu) * ldf(xr + 8u * b) + h2f(wv >> 16u) * ldf(xr + 8u * b + 4u);`;

const DOT_F32 = /* wgsl */ `
    acc += ldf(wr + 4u * b) * ldf(xr + 4u * b);`;

/** rmsnorm(x, w, y, n, eps, nTok): one workgroup per row; w = 0 means no weight. */
const RMSNORM = /* wgsl */ `
@compute @workgroup_size(${WORKGROUP})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(0u); let w = arg(1u); let y = arg(2u); let n = arg(3u); let eps = argf(4u);
  let lid = lidv.x;
  if (wg >= op.head.w) { return; }
  let xr = x + 4u * wg * n; let yr = y + 4u * wg * n;
  var s = 0.0;
  for (var j = lid; j < n; j += ${WORKGROUP}u) { let v = ldf(xr + 4u * j); s += v * v; }
  let sumSq = wgSum(lid, s);
  let scale = 1.0 / sqrt(sumSq / f32(n) + eps);
  for (var j = lid; j < n; j += ${WORKGROUP}u) {
    var v = ldf(xr + 4u * j) * scale;
    if (w != 0u) { v = v * ldf(w + 4u * j); }
    stf(yr + 4u * j, v);
  }
}`;

/** rope(x, cs, nHeads, headDim, nDims, pos, invFreq, mscale, neox, nTok, ld): one invocation per (token, head, pair). */
const ROPE = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(0u); let nHeads = arg(2u); let headDim = arg(3u); let half = arg(4u) / 2u;
  let neox = arg(8u); let nTok = arg(9u); let ld = arg(10u);
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (i >= nTok * nHeads * half) { return; }
  let p = i % half; let h = (i / half) % nHeads; let t = i / (half * nHeads);
  let c = ropeTab[2u * (t * half + p)];
  let s = ropeTab[2u * (t * half + p) + 1u];
  let o = t * ld + h * headDim;
  var ia = o + 2u * p; var ib = o + 2u * p + 1u;
  if (neox != 0u) { ia = o + p; ib = o + p + half; }
  let a = ldf(x + 4u * ia); let b = ldf(x + 4u * ib);
  stf(x + 4u * ia, fma(a, c, -(b * s)));
  stf(x + 4u * ib, fma(a, s, b * c));
}`;

/** storeF16(x, h, n): two values per invocation (h is 4-aligned, n even: checked on the CPU). */
const STORE_F16 = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let x = arg(0u); let h = arg(1u); let n = arg(2u);
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (2u * i >= n) { return; }
  mem[(h >> 2u) + i] = f2h(ldf(x + 8u * i)) | (f2h(ldf(x + 8u * i + 4u)) << 16u);
}`;

/** copy(src, dst, bytes): whole words (4-aligned: checked on the CPU). */
const COPY = /* wgsl */ `
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let src = arg(0u); let dst = arg(1u); let bytes = arg(2u);
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  if (4u * i >= bytes) { return; }
  mem[(dst >> 2u) + i] = mem[(src >> 2u) + i];
}`;

/** Element-wise ops over n values: swiglu, add, mul, silu, axpy (op.head.z picks). */
const ELEMENTWISE_OPS = /* wgsl */ `
fn silu(v: f32) -> f32 { return v / (1.0 + vexpf(0.0 - v)); }
@compute @workgroup_size(${ELEMENTWISE})
fn main(${WG_ARGS}) {
  ${FLAT}
  let i = wg * ${ELEMENTWISE}u + lidv.x;
  switch op.head.z {
    case 0u: { // swiglu(a, b, out, n)
      if (i >= arg(3u)) { return; }
      stf(arg(2u) + 4u * i, silu(ldf(arg(0u) + 4u * i)) * ldf(arg(1u) + 4u * i));
    }
    case 1u: { // add
      if (i >= arg(3u)) { return; }
      stf(arg(2u) + 4u * i, ldf(arg(0u) + 4u * i) + ldf(arg(1u) + 4u * i));
    }
    case 2u: { // mul
      if (i >= arg(3u)) { return; }
      stf(arg(2u) + 4u * i, ldf(arg(0u) + 4u * i) * ldf(arg(1u) + 4u * i));
    }
    case 3u: { // silu(a, out, n)
      if (i >= arg(2u)) { return; }
      stf(arg(1u) + 4u * i, silu(ldf(arg(0u) + 4u * i)));
    }
    default: { // axpy(a, s, out, n): out += s * a
      if (i >= arg(3u)) { return; }
      let o = arg(2u) + 4u * i;
      stf(o, ldf(o) + argf(1u) * ldf(arg(0u) + 4u * i));
    }
  }
}`;

/**
 * attention(q, k, v, out, scores, scoresStride, qh, qhStride, nHead, nKvHead, headDim, pos, nTok,
 * kvType, scale): one workgroup per (token, head); kvType 0 = f32, 1 = f16 (a Q8_0 cache is
 * refused on the CPU side). Scores, then softmax in place in scratch (one nCtx row each), then
 * the weighted sum of V rows, one output dimension per invocation.
 */
const ATTENTION = /* wgsl */ `
@compute @workgroup_size(${WORKGROUP})
fn main(${WG_ARGS}) {
  ${FLAT}
  let q = arg(0u); let k = arg(1u); let v = arg(2u); let out = arg(3u);
  let nCtx = arg(5u) / 4u; let nHead = arg(8u); let nKvHead = arg(9u); let headDim = arg(10u);
  let pos = arg(11u); let kvF16 = arg(13u) == 1u; let scale = argf(14u);
  let lid = lidv.x;
  if (wg >= op.head.w) { return; }
  let h = wg % nHead; let t = wg / nHead;
  let g = h / (nHead / nKvHead);
  let nKv = pos + t + 1u;
  let qo = q + 4u * (t * nHead + h) * headDim;
  let eb = select(4u, 2u, kvF16);
  let rowBytes = nKvHead * headDim * eb;
  let sc = wg * nCtx;

  var m = -3.4e38;
  for (var j = lid; j < nKv; j += ${WORKGROUP}u) {
    let kr = k + j * rowBytes + g * headDim * eb;
    var dot = 0.0;
    for (var d = 0u; d < headDim; d++) {
      var qd = ldf(qo + 4u * d);
      var kd: f32;
      if (kvF16) { qd = roundF16(qd); kd = h2f(ld16(kr + 2u * d)); } else { kd = ldf(kr + 4u * d); }
      dot += qd * kd;
    }
    let s = dot * scale;
    scratch[sc + j] = s;
    m = max(m, s);
  }
  let mx = wgMax(lid, m);
  var sum = 0.0;
  for (var j = lid; j < nKv; j += ${WORKGROUP}u) {
    let e = vexpf(scratch[sc + j] - mx);
    scratch[sc + j] = e;
    sum += e;
  }
  let inv = 1.0 / wgSum(lid, sum);
  for (var j = lid; j < nKv; j += ${WORKGROUP}u) {
    var p = scratch[sc + j] * inv;
    if (kvF16) { p = roundF16(p); }
    scratch[sc + j] = p;
  }
  storageBarrier();
  workgroupBarrier();
  for (var d = lid; d < headDim; d += ${WORKGROUP}u) {
    var acc = 0.0;
    for (var j = 0u; j < nKv; j++) {
      let vr = v + j * rowBytes + g * headDim * eb;
      var vd: f32;
      if (kvF16) { vd = h2f(ld16(vr + 2u * d)); } else { vd = ldf(vr + 4u * d); }
      acc += scratch[sc + j] * vd;
    }
    stf(out + 4u * ((t * nHead + h) * headDim + d), acc);
  }
}`;

/**
 * moeRoute(logits, probs, nExpert, k, norm, idx, wt): softmax, the k largest (ties: lower id),
 * renormalised; one invocation (nExpert is small).
 */
const MOE_ROUTE = /* wgsl */ `
@compute @workgroup_size(1)
fn main() {
  let logits = arg(0u); let probs = arg(1u); let n = arg(2u); let k = arg(3u); let norm = arg(4u);
  let idx = arg(5u); let wt = arg(6u);
  var m = -3.4e38;
  for (var e = 0u; e < n; e++) { m = max(m, ldf(logits + 4u * e)); }
  var sum = 0.0;
  for (var e = 0u; e < n; e++) { let v = exp(ldf(logits + 4u * e) - m); stf(probs + 4u * e, v); sum += v; }
  let inv = 1.0 / sum;
  for (var e = 0u; e < n; e++) { stf(probs + 4u * e, ldf(probs + 4u * e) * inv); }
  var picked = 0.0;
  for (var i = 0u; i < k; i++) {
    var best = 0u; var bestP = -1.0;
    for (var e = 0u; e < n; e++) {
      var taken = false;
      for (var j = 0u; j < i; j++) { if (mem[(idx >> 2u) + j] == e) { taken = true; } }
      let p = ldf(probs + 4u * e);
      if (!taken && p > bestP) { best = e; bestP = p; }
    }
    mem[(idx >> 2u) + i] = best;
    stf(wt + 4u * i, bestP);
    picked += bestP;
  }
  if (norm != 0u) { for (var i = 0u; i < k; i++) { stf(wt + 4u * i, ldf(wt + 4u * i) / picked); } }
}`;

export type ShaderName =
  | "quantize_q8_0" | "quantize_q8_K" | "quantize_float"
  | "matmul_q4_0" | "matmul_q8_0" | "matmul_q4_K" | "matmul_q5_K" | "matmul_q6_K" | "matmul_f16" | "matmul_f32"
  | "rmsnorm" | "rope" | "store_f16" | "copy" | "elementwise" | "attention" | "moe_route";

/** Each shader's WGSL; matmul's `unit` is how many weights one loop step covers. */
export const SHADERS: Record<ShaderName, string> = {
  quantize_q8_0: PRELUDE + QUANTIZE_Q8_0,
  quantize_q8_K: PRELUDE + QUANTIZE_Q8_K,
  quantize_float: PRELUDE + QUANTIZE_FLOAT,
  matmul_q4_0: PRELUDE + matmul(DOT_Q4_0, 32),
  matmul_q8_0: PRELUDE + matmul(DOT_Q8_0, 32),
  matmul_q4_K: PRELUDE + matmul(dotQ45K(BYTES(GGMLType.Q4_K), 16, false, true), 32),
  matmul_q5_K: PRELUDE + matmul(dotQ45K(BYTES(GGMLType.Q5_K), 48, true), 32),
  matmul_q6_K: PRELUDE + Q6_K_GROUPED + matmul(DOT_Q6_K, 16),
  matmul_f16: PRELUDE + matmul(DOT_F16, 2),
  matmul_f32: PRELUDE + matmul(DOT_F32, 1),
  rmsnorm: PRELUDE + RMSNORM,
  rope: PRELUDE + ROPE,
  store_f16: PRELUDE + STORE_F16,
  copy: PRELUDE + COPY,
  elementwise: PRELUDE + ELEMENTWISE_OPS,
  attention: PRELUDE + ATTENTION,
  moe_route: PRELUDE + MOE_ROUTE,
};
