#!/usr/bin/env python3
"""Golden SiLU, SwiGLU and softmax made by llama.cpp's CPU backend: the exp zh-llama follows.

Loads llama.cpp's prebuilt CPU backend (tools/.llama-cpp, npm node-llama-cpp; libggml-cpu-zen4.so,
the AVX-512 build node-llama-cpp picks on this project's machines) through ctypes, builds one-node
ggml graphs and computes them on 1 thread:
  ggml_silu(x)                 rows of a multiple of 16: every value through ggml_v_silu
  ggml_swiglu_split(g, u)      silu(g) * u, the same blocks
  ggml_soft_max(x)             rows of 8..128: blocks of 16 with ggml_v_expf, the rest with expf
  ggml_soft_max_ext(x, mask)   rows of n_kv = 64 with the positions from nKv on masked (-inf), as
                               llama.cpp's KQ rows: every block a vector block
Inputs: normal and uniform values, the ranges where 2^n leaves the normal floats (|x| ~ 87..104,
where ggml_v_expf's result is subnormal, zero or infinite), zeros, subnormals, infinities.
Output (stdout, JSON): per case the op, shape, inputs and llama.cpp's output, little-endian
base64. Checked by test/kernels/exp-order.test.ts.

Run: tools/install-llama-cpp.sh && python3 tools/golden-exp-ops.py > fixtures/golden/kernels/exp-ops.json
"""
import base64
import ctypes
import json

import numpy as np

from ggml_ctypes import InitParams, P, VARIANT, base, cpu

SEED = 20261217
F32 = 0
base.ggml_new_tensor_2d.restype = P
base.ggml_new_tensor_2d.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
for name in ("ggml_silu", "ggml_soft_max"):
    getattr(base, name).restype = P
    getattr(base, name).argtypes = [P, P]
base.ggml_swiglu_split.restype = P
base.ggml_swiglu_split.argtypes = [P, P, P]
base.ggml_soft_max_ext.restype = P
base.ggml_soft_max_ext.argtypes = [P, P, P, ctypes.c_float, ctypes.c_float]


def tensor(ctx, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    t = base.ggml_new_tensor_2d(ctx, F32, a.shape[1], a.shape[0])
    ctypes.memmove(base.ggml_get_data(t), a.ctypes.data, a.nbytes)
    return t


def run(build, *arrays):
    """build(ctx, *tensors) -> the op's tensor; computed on 1 thread, returned as float32."""
    ctx = base.ggml_init(InitParams(64 << 20, None, False))
    out = build(ctx, *[tensor(ctx, a) for a in arrays])
    g = base.ggml_new_graph(ctx)
    base.ggml_build_forward_expand(g, out)
    cpu.ggml_graph_compute_with_ctx(ctx, g, 1)
    n = arrays[0].size
    y = np.frombuffer(ctypes.string_at(base.ggml_get_data(out), 4 * n), dtype=np.float32).copy()
    base.ggml_free(ctx)
    return y


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


rng = np.random.default_rng(SEED)
edges = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, np.inf, -np.inf, 0.5, -0.5, 88.0, -88.0], dtype=np.float32)
pieces = [
    rng.standard_normal(1024) * 3,
    rng.uniform(-20, 20, 1024),
    rng.uniform(-110, 110, 512),
    rng.uniform(86, 105, 256) * rng.choice([-1, 1], 256),
    np.tile(edges, 16)[:192],
]
x = rng.permutation(np.concatenate(pieces)).astype(np.float32)  # 3008 values: 188 rows of 16
u = rng.standard_normal(x.size).astype(np.float32)
cases = [
    {"op": "silu", "rows": 47, "cols": 64, "x_f32_base64": b64(x), "y_f32_base64": b64(run(base.ggml_silu, x.reshape(47, 64)))},
    {"op": "swiglu", "rows": 47, "cols": 64, "x_f32_base64": b64(x), "u_f32_base64": b64(u),
     "y_f32_base64": b64(run(base.ggml_swiglu_split, x.reshape(47, 64), u.reshape(47, 64)))},
]
for cols, scale in [(8, 3), (16, 3), (37, 5), (64, 10), (96, 4), (128, 20)]:
    s = (rng.standard_normal((6, cols)) * scale).astype(np.float32)
    cases.append({"op": "soft_max", "rows": 6, "cols": cols, "x_f32_base64": b64(s), "y_f32_base64": b64(run(base.ggml_soft_max, s))})
# KQ rows: n_kv = 64 columns, row r sees positions 0..nKv[r]-1 (the rest masked, as causal attention).
n_kv = [1, 5, 16, 17, 31, 40, 63, 64]
s = (rng.standard_normal((len(n_kv), 64)) * 6).astype(np.float32)
mask = np.zeros_like(s)
for r, n in enumerate(n_kv):
    mask[r, n:] = -np.inf
y = run(lambda ctx, a, m: base.ggml_soft_max_ext(ctx, a, m, 1.0, 0.0), s, mask)
cases.append({"op": "soft_max_masked", "rows": len(n_kv), "cols": 64, "nKv": n_kv, "x_f32_base64": b64(s), "y_f32_base64": b64(y)})
print(json.dumps({"generator": "tools/golden-exp-ops.py", "backend": f"libggml-cpu-{VARIANT}.so", "cases": cases}, indent=1))
