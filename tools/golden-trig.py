#!/usr/bin/env python3
"""Golden sinf / cosf: what llama.cpp's RoPE gets from this machine's glibc (ggml_rope_cache_init).

glibc's sinf / cosf (x86-64, 2.28 and later: ARM's optimized-routines sincosf, the FMA build on a
CPU with FMA) are not correctly rounded; src/kernels/reference/trig.ts and assembly/trig.ts
reproduce them. Inputs: RoPE's float32 angles (theta_0 = pos, theta_{i+1} = theta_i *
powf(base, -2/n), for a few bases, head sizes and positions up to 32768), uniform values up to 200
and 1e5, the branch edges (2^-12, 0.75, 120), zeros, subnormals, infinities and NaN.
Output (stdout, JSON): x, sinf(x), cosf(x) as float32, little-endian base64. Checked by
test/kernels/trig.test.ts.

Run: python3 tools/golden-trig.py > fixtures/golden/kernels/trig.json
"""
import base64
import ctypes
import ctypes.util
import json
import platform

import numpy as np

libm = ctypes.CDLL(ctypes.util.find_library("m"))
for name in ("sinf", "cosf"):
    getattr(libm, name).restype = ctypes.c_float
    getattr(libm, name).argtypes = [ctypes.c_float]
libm.powf.restype = ctypes.c_float
libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]

rng = np.random.default_rng(20261218)
f32 = np.float32
angles = []
for base, dims in ((10000.0, 32), (10000.0, 64), (10000.0, 128), (1e6, 128)):
    scale = f32(libm.powf(f32(base), f32(-2.0 / dims)))
    for pos in list(range(0, 300, 7)) + [1000, 2047, 4095, 8191, 16383, 32767]:
        theta = f32(pos)
        for _ in range(dims // 2):
            angles.append(theta)
            theta = f32(theta * scale)
edges = [0.0, -0.0, 2.0**-12, -(2.0**-12), 2.0**-13, 1e-40, 0.75, -0.75, 0.7499999, 0.785398, 119.99999, 120.0, -120.0,
         128.0, 1e30, -1e30, np.inf, -np.inf, np.nan]
x = np.concatenate([
    np.array(angles, dtype=f32),
    rng.uniform(-200, 200, 600).astype(f32),
    rng.uniform(-1e5, 1e5, 300).astype(f32),
    np.array(edges, dtype=f32),
])
s = np.array([libm.sinf(float(v)) for v in x], dtype=f32)
c = np.array([libm.cosf(float(v)) for v in x], dtype=f32)
b64 = lambda a: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
print(json.dumps({
    "generator": "tools/golden-trig.py",
    "libc": " ".join(platform.libc_ver()),
    "count": int(x.size),
    "x_f32_base64": b64(x), "sin_f32_base64": b64(s), "cos_f32_base64": b64(c),
}, indent=1))
