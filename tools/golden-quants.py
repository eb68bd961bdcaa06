#!/usr/bin/env python3
"""Golden values for zh-llama's ggml tensor types, made by ggml itself.

Calls ggml's own C functions (quantize_row_<type>_ref, dequantize_row_<type>, the fp16/bf16 row
converters, ggml_type_size / ggml_blck_size) from llama.cpp's prebuilt CPU build through ctypes,
on deterministic inputs, and writes small binary files under fixtures/golden/quants/:

  manifest.json          what every file holds (types, counts, which files), ggml's version
  sizes.json             ggml_type_size / ggml_blck_size for type ids 0..GGML_TYPE_COUNT-1
  input.f32              8192 float32 inputs in 32 super-blocks of 256: edge cases first
  <TYPE>.quant.bin       ggml's reference quantization of input.f32
  <TYPE>.quant.f32       ggml's dequantization of <TYPE>.quant.bin
  <TYPE>.random.bin      random bytes (2048 values' worth), any bit pattern in the scales
  <TYPE>.random.f32      ggml's dequantization of <TYPE>.random.bin
  fp-special.f32         float32 specials and random bit patterns for the F16 / BF16 converters
  F16.special.bin, BF16.special.bin   ggml's conversion of fp-special.f32
  f16-all.f32            ggml_fp16_to_fp32 of every one of the 65536 half bit patterns

All files are little-endian. Run: tools/install-llama-cpp.sh && python3 tools/golden-quants.py
"""
import ctypes
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINS = os.path.join(ROOT, "tools/.llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
OUT = os.path.join(ROOT, "fixtures/golden/quants")
SEED = 20261122
QK_K = 256

# ggml type ids (ggml.h, enum ggml_type) for the types the goldens cover.
TYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15,
    "IQ4_NL": 20, "IQ4_XS": 23, "BF16": 30, "TQ1_0": 34, "TQ2_0": 35, "MXFP4": 39,
}
GGML_TYPE_COUNT = 43  # the built library's enum (ids 40-42 are newer than zh-llama's table)

lib = ctypes.CDLL(os.path.join(BINS, "libggml-base.so"))
lib.ggml_type_size.restype = ctypes.c_size_t
lib.ggml_type_size.argtypes = [ctypes.c_int]
lib.ggml_blck_size.restype = ctypes.c_int64
lib.ggml_blck_size.argtypes = [ctypes.c_int]

F32P = ctypes.POINTER(ctypes.c_float)


def fn(name):
    f = getattr(lib, name)
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return f


def type_size(name):
    return lib.ggml_type_size(TYPES[name]), lib.ggml_blck_size(TYPES[name])


def quantize(name, x):
    """ggml's reference quantizer (the 'from_float_ref' trait) on float32 array x."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    ts, bs = type_size(name)
    assert x.size % bs == 0
    out = np.zeros(x.size // bs * ts, dtype=np.uint8)
    f = {
        "F16": "ggml_fp32_to_fp16_row",
        "BF16": "ggml_fp32_to_bf16_row_ref",
    }.get(name, f"quantize_row_{name.lower().replace('_k', '_K')}_ref")
    fn(f)(x.ctypes.data, out.ctypes.data, x.size)
    return out


def dequantize(name, q, count):
    q = np.ascontiguousarray(q, dtype=np.uint8)
    ts, bs = type_size(name)
    assert q.size == count // bs * ts
    out = np.zeros(count, dtype=np.float32)
    if name == "F32":
        return q.view(np.float32).copy()
    f = {
        "F16": "ggml_fp16_to_fp32_row",
        "BF16": "ggml_bf16_to_fp32_row",
    }.get(name, f"dequantize_row_{name.lower().replace('_k', '_K')}")
    fn(f)(q.ctypes.data, out.ctypes.data, count)
    return out


def make_input(rng):
    """32 super-blocks of 256 values; each a case that has tripped quantizers before."""
    n = 256
    g = lambda s=1.0: (rng.standard_normal(n) * s).astype(np.float32)
    blocks = []
    blocks.append(np.zeros(n, np.float32))                                   # 0 all zero
    blocks.append(np.full(n, 0.37, np.float32))                              # 1 identical
    blocks.append(np.full(n, -1.5, np.float32))                              # 2 identical, negative
    b = g(); b[5::32] = -8.0 * np.abs(b).max(); blocks.append(b)             # 3 max-abs negative in every 32
    blocks.append(g(2.0e4))                                                  # 4 huge (fp16 overflow of d/min)
    blocks.append(g(1.0e-5))                                                 # 5 tiny: fp16 subnormal scales
    blocks.append(g(1.0e-39))                                                # 6 float32 subnormal inputs
    b = g(0.01); b[::37] = np.where(np.arange(b[::37].size) % 2, 1.0, -1.0); blocks.append(b)  # 7 outliers
    blocks.append(rng.uniform(0.5, 2.0, n).astype(np.float32))               # 8 all positive
    blocks.append(rng.uniform(-2.0, -0.5, n).astype(np.float32))             # 9 all negative
    b = g(); b.reshape(16, 16)[::2] = 0; blocks.append(b)                    # 10 zero sub-blocks
    blocks.append(rng.integers(-1, 2, n).astype(np.float32))                 # 11 ternary
    blocks.append(np.linspace(-1, 1, n, dtype=np.float32))                   # 12 ramp
    blocks.append((rng.integers(-16, 17, n) / 2).astype(np.float32))         # 13 exact halves (ties)
    b = g(); b *= np.float32(65504.0 * 8) / np.abs(b).max(); blocks.append(b)  # 14 fp16 max boundary
    b = g(); b[:128] *= 1e-3; b[128:] *= 1e3; blocks.append(b)               # 15 mixed ranges
    for k in range(16):                                                      # 16-31 weight-like
        blocks.append(g(0.02 if k % 2 == 0 else 1.0))
    x = np.concatenate(blocks).astype(np.float32)
    assert x.size == 32 * n and np.all(np.isfinite(x))
    return x


def make_fp_special(rng):
    """Inputs for the float32 -> f16 / bf16 converters: specials, ties, random bit patterns."""
    vals = [0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.996, 65520.0, -65520.0, 1e10, 5.96e-8,
            2.98e-8, 2.9802322e-08, 2.9802326e-08, 6.1035156e-05, 6.097555e-05, 1.0, -1.0, 1e-45, 1e-40]
    bits = [0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA5A5A5, 0xFF812345, 0x7FFFFFFF, 0x00000001,
            0x80000001, 0x007FFFFF, 0x7F7FFFFF, 0xFF7FFFFF]
    s = np.array(vals, np.float32).view(np.uint32).tolist() + bits
    # Every 16th positive finite half h: h itself, the midpoint to the next half, and the
    # floats one ulp either side of that midpoint (round-to-nearest-even in both directions).
    h = np.arange(0, 0x7C00, 16, dtype=np.uint16)
    lo = h.view(np.float16).astype(np.float32).astype(np.float64)
    hi = (h + 1).view(np.float16).astype(np.float32).astype(np.float64)
    mid = ((lo + hi) / 2).astype(np.float32)  # exact: the midpoint fits in float32
    mb = mid.view(np.uint32)
    near = np.stack([lo.astype(np.float32).view(np.uint32), mb - 1, mb, mb + 1], 1).ravel()
    # bf16 ties: low 16 bits exactly 0x8000, with even and odd kept bits.
    r = rng.integers(0, 2**32, 1024, dtype=np.uint64).astype(np.uint32)
    ties = (r & 0xFFFF0000) | 0x8000
    rand = rng.integers(0, 2**32, 2048, dtype=np.uint64).astype(np.uint32)
    allb = np.concatenate([np.array(s, np.uint32), near, near | 0x80000000, ties, rand]).astype(np.uint32)
    pad = (-allb.size) % 256
    allb = np.concatenate([allb, np.zeros(pad, np.uint32)])
    return allb.view(np.float32)


def random_bytes(rng, name, count):
    ts, bs = type_size(name)
    return rng.integers(0, 256, count // bs * ts, dtype=np.uint16).astype(np.uint8)


def main():
    meta_path = os.path.join(BINS, "_nlcBuildMetadata.json")
    with open(meta_path) as f:
        build = json.load(f)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)

    sizes = {str(t): {"type_size": int(lib.ggml_type_size(t)), "blck_size": int(lib.ggml_blck_size(t))}
             for t in range(GGML_TYPE_COUNT)}
    with open(os.path.join(OUT, "sizes.json"), "w") as f:
        f.write("{\n" + ",\n".join(f'  "{k}": {json.dumps(v)}' for k, v in sizes.items()) + "\n}\n")

    x = make_input(rng)
    x.tofile(os.path.join(OUT, "input.f32"))
    manifest = {
        "generator": "tools/golden-quants.py",
        "ggml": {"library": "libggml-base.so from @node-llama-cpp/linux-x64",
                 "llamaCpp": build["buildOptions"]["llamaCpp"]},
        "seed": SEED,
        "input": {"file": "input.f32", "count": int(x.size)},
        "types": {},
    }
    random_count = 2048
    for name in TYPES:
        entry = {"id": TYPES[name]}
        if name != "F32":
            q = quantize(name, x)
            if name == "IQ4_NL":
                # For a block of zeros ggml packs index bytes it never wrote (stack contents);
                # store zeros there so the file is reproducible (d is 0 in those blocks).
                zero = np.abs(x.reshape(-1, 32)).max(1) < 1e-15
                q.reshape(-1, 18)[zero, 2:] = 0
            q.tofile(os.path.join(OUT, f"{name}.quant.bin"))
            dequantize(name, q, x.size).tofile(os.path.join(OUT, f"{name}.quant.f32"))
            entry["quant"] = {"bin": f"{name}.quant.bin", "f32": f"{name}.quant.f32", "count": int(x.size)}
        rb = random_bytes(rng, name, random_count)
        rb.tofile(os.path.join(OUT, f"{name}.random.bin"))
        dequantize(name, rb, random_count).tofile(os.path.join(OUT, f"{name}.random.f32"))
        entry["random"] = {"bin": f"{name}.random.bin", "f32": f"{name}.random.f32", "count": random_count}
        manifest["types"][name] = entry

    sp = make_fp_special(rng)
    sp.tofile(os.path.join(OUT, "fp-special.f32"))
    manifest["fpSpecial"] = {"file": "fp-special.f32", "count": int(sp.size), "outputs": {}}
    for name in ("F16", "BF16"):
        quantize(name, sp).tofile(os.path.join(OUT, f"{name}.special.bin"))
        manifest["fpSpecial"]["outputs"][name] = f"{name}.special.bin"

    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    dequantize("F16", halves.view(np.uint8), 65536).tofile(os.path.join(OUT, "f16-all.f32"))
    manifest["f16All"] = {"file": "f16-all.f32", "count": 65536}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
