#!/usr/bin/env python3
"""Golden dot products for the Q2_K, Q3_K and IQ4_XS kernels, made by llama.cpp's CPU backend.

Loads llama.cpp's prebuilt CPU backends (tools/.llama-cpp, npm node-llama-cpp) through ctypes and
calls, on deterministic inputs, the functions its matrix products run:
  quantize_row_q8_K                     the activations (Q8_K blocks: d f32, qs i8[256], bsums i16[16])
  ggml_vec_dot_<type>_q8_K              one weight row . one activation row
in the AVX2 backend (libggml-cpu-haswell.so) and, where this CPU runs it, the AVX-512 one
(libggml-cpu-icelake.so); the script fails unless every backend gives the same bits. Each type
gets 12 rows of 1024 weights: rows 0-5 random bytes with random f16 scales, rows 6-11 ggml's own
quantization of Gaussian rows, against 5 activation rows (a four-token tile and one more). Output
(stdout, JSON): the float32 activations, llama.cpp's Q8_K blocks of them, the weight bytes and
y[token][row], all little-endian base64.

Run: tools/install-llama-cpp.sh && python3 tools/golden-vec-dot.py > fixtures/golden/kernels/vec-dot-k-low.json
Checked by test/kernels/k-quants-low.test.ts.
"""
import base64
import ctypes
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINS = os.path.join(ROOT, "tools/.llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
SEED = 20261207
ROWS, COLS, TOKENS = 12, 1024, 5
TYPES = {"Q2_K": (10, 84, [80, 82]), "Q3_K": (11, 110, [108]), "IQ4_XS": (23, 136, [0])}
Q8K_BYTES = 4 + 256 + 32

base = ctypes.CDLL(os.path.join(BINS, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
flags = open("/proc/cpuinfo").read()
variants = ["haswell"] + (["icelake"] if " avx512vnni" in flags or " avx512_vnni" in flags else [])
cpus = {v: ctypes.CDLL(os.path.join(BINS, f"libggml-cpu-{v}.so")) for v in variants}
for lib in cpus.values():
    lib.ggml_cpu_init()


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def quantize_ref(name, x):
    out = np.zeros(x.size // 256 * TYPES[name][1], dtype=np.uint8)
    f = getattr(base, f"quantize_row_{name.lower().replace('_k', '_K')}_ref")
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    f(np.ascontiguousarray(x, dtype=np.float32).ctypes.data, out.ctypes.data, x.size)
    return out


def q8_k(lib, x):
    out = np.zeros(x.size // 256 * Q8K_BYTES, dtype=np.uint8)
    lib.quantize_row_q8_K.restype = None
    lib.quantize_row_q8_K.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.quantize_row_q8_K(np.ascontiguousarray(x, dtype=np.float32).ctypes.data, out.ctypes.data, x.size)
    return out


def vec_dot(lib, name, w, y):
    f = getattr(lib, f"ggml_vec_dot_{name.lower().replace('_k', '_K')}_q8_K")
    f.restype = None
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    s = np.zeros(1, dtype=np.float32)
    f(COLS, s.ctypes.data, 0, w.ctypes.data, 0, y.ctypes.data, 0, 1)
    return s[0]


rng = np.random.default_rng(SEED)
x = (rng.standard_normal(TOKENS * COLS) * 2).astype(np.float32)
x[COLS + 256: COLS + 512] = 0  # a token with an all-zero super-block (d = 0)
acts = {v: [q8_k(lib, x[t * COLS:(t + 1) * COLS]) for t in range(TOKENS)] for v, lib in cpus.items()}
for v in variants:
    assert all(np.array_equal(a, b) for a, b in zip(acts[v], acts[variants[0]])), f"quantize_row_q8_K differs in {v}"

out = {
    "generator": "tools/golden-vec-dot.py",
    "backends": [f"libggml-cpu-{v}.so" for v in variants],
    "rows": ROWS, "cols": COLS, "tokens": TOKENS,
    "x_f32": b64(x),
    "q8_K": b64(np.concatenate(acts[variants[0]])),
    "types": {},
}
for name, (_, block, scales) in TYPES.items():
    nb = COLS // 256
    w = rng.integers(0, 256, ROWS * nb * block, dtype=np.uint8)
    for b in range(6 * nb):
        for o in scales:
            w[b * block + o: b * block + o + 2] = np.frombuffer(np.float16(rng.uniform(-2e-3, 2e-3)).tobytes(), dtype=np.uint8)
    w[6 * nb * block:] = quantize_ref(name, (rng.standard_normal(6 * COLS) * 0.05).astype(np.float32))
    y = np.zeros((TOKENS, ROWS), dtype=np.float32)
    for v, lib in cpus.items():
        got = np.array([[vec_dot(lib, name, w[r * nb * block:(r + 1) * nb * block], acts[v][t]) for r in range(ROWS)] for t in range(TOKENS)], dtype=np.float32)
        if v == variants[0]:
            y = got
        assert np.array_equal(got.view(np.uint32), y.view(np.uint32)), f"{name}: {v} differs from {variants[0]}"
    out["types"][name] = {"w": b64(w), "y": b64(y)}
json.dump(out, sys.stdout)
print()
print(f"golden-vec-dot: {', '.join(out['types'])} on {', '.join(out['backends'])}", file=sys.stderr)
