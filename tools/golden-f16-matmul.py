#!/usr/bin/env python3
"""Golden F16 matrix products made by llama.cpp's CPU backend: the summation order zh-llama follows.

Loads llama.cpp's prebuilt CPU backend (tools/.llama-cpp, npm node-llama-cpp; libggml-cpu-zen4.so,
the AVX-512 build node-llama-cpp picks on this project's machines) through ctypes, builds one-node
ggml graphs and computes them on 1 thread:
  ggml_mul_mat(W F16 [rows x cols], x F32 [nTok x cols])   tinyBLAS (16 lanes) when nTok >= 2,
                                                           cols % 16 == 0 and rows % 4 == 0;
                                                           ggml_vec_dot_f16 (64 lanes) otherwise
  ggml_mul_mat_id (8 experts, 2 per token)                 always ggml_vec_dot_f16
Shapes cover both orders, a leftover tail (cols % 64), rows % 4 != 0 and cols % 16 != 0.
Output (stdout, JSON): per case the shape, weights (f16 bits), activations (f32) and llama.cpp's y,
little-endian base64. Checked by test/kernels/f16-order.test.ts.

Run: tools/install-llama-cpp.sh && python3 tools/golden-f16-matmul.py > fixtures/golden/kernels/matmul-f16.json
"""
import base64
import ctypes
import json

import numpy as np

from ggml_ctypes import InitParams, P, VARIANT, base, cpu

SEED = 20261216
F32, F16, I32 = 0, 1, 26
for name, n in (("ggml_new_tensor_2d", 2), ("ggml_new_tensor_3d", 3)):
    getattr(base, name).restype = P
    getattr(base, name).argtypes = [P, ctypes.c_int] + [ctypes.c_int64] * n
base.ggml_mul_mat.restype = P
base.ggml_mul_mat.argtypes = [P, P, P]
base.ggml_mul_mat_id.restype = P
base.ggml_mul_mat_id.argtypes = [P, P, P, P]


def put(t, a):
    a = np.ascontiguousarray(a)
    ctypes.memmove(base.ggml_get_data(t), a.ctypes.data, a.nbytes)


def compute(ctx, out, n):
    g = base.ggml_new_graph(ctx)
    base.ggml_build_forward_expand(g, out)
    cpu.ggml_graph_compute_with_ctx(ctx, g, 1)
    return np.frombuffer(ctypes.string_at(base.ggml_get_data(out), 4 * n), dtype=np.float32).copy()


def mul_mat(w, x):
    rows, cols = w.shape
    ctx = base.ggml_init(InitParams(64 << 20, None, False))
    a = base.ggml_new_tensor_2d(ctx, F16, cols, rows)
    b = base.ggml_new_tensor_2d(ctx, F32, cols, x.shape[0])
    put(a, w)
    put(b, x)
    y = compute(ctx, base.ggml_mul_mat(ctx, a, b), rows * x.shape[0])
    base.ggml_free(ctx)
    return y


def mul_mat_id(w, x, ids):
    experts, rows, cols = w.shape
    n_tok, used = ids.shape
    ctx = base.ggml_init(InitParams(64 << 20, None, False))
    a = base.ggml_new_tensor_3d(ctx, F16, cols, rows, experts)
    b = base.ggml_new_tensor_3d(ctx, F32, cols, used, n_tok)
    i = base.ggml_new_tensor_2d(ctx, I32, used, n_tok)
    put(a, w)
    put(b, x)
    put(i, ids)
    y = compute(ctx, base.ggml_mul_mat_id(ctx, a, b, i), rows * used * n_tok)
    base.ggml_free(ctx)
    return y


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


rng = np.random.default_rng(SEED)
cases = []
# rows, cols, nTok: both orders, tails of 64, rows % 4 != 0, cols % 16 != 0, a 320-wide down projection.
for rows, cols, n_tok in [(16, 128, 1), (16, 128, 2), (12, 160, 3), (8, 320, 6), (20, 48, 5), (6, 128, 3), (8, 100, 4), (4, 1000, 1), (4, 1024, 7)]:
    w = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float16)
    x = (rng.standard_normal((n_tok, cols)) * 2).astype(np.float32)
    cases.append({"op": "mul_mat", "rows": rows, "cols": cols, "nTok": n_tok,
                  "w_f16_base64": b64(w.view(np.uint16)), "x_f32_base64": b64(x), "y_f32_base64": b64(mul_mat(w, x))})
# ggml_mul_mat_id: several tokens share an expert, still one dot product each (64 lanes).
w = (rng.standard_normal((8, 16, 160)) * 0.5).astype(np.float16)
x = rng.standard_normal((6, 2, 160)).astype(np.float32)
ids = np.array([[0, 3], [3, 0], [3, 5], [1, 3], [3, 2], [7, 3]], dtype=np.int32)
cases.append({"op": "mul_mat_id", "experts": 8, "rows": 16, "cols": 160, "nTok": 6, "ids": ids.tolist(),
              "w_f16_base64": b64(w.view(np.uint16)), "x_f32_base64": b64(x), "y_f32_base64": b64(mul_mat_id(w, x, ids))})
print(json.dumps({"generator": "tools/golden-f16-matmul.py", "backend": f"libggml-cpu-{VARIANT}.so", "cases": cases}, indent=1))
