#!/usr/bin/env python3
"""Golden Q4_0 / Q8_0 matrix products made by llama.cpp's CPU backend: the float order zh-llama follows.

Loads llama.cpp's prebuilt CPU backend (tools/.llama-cpp, npm node-llama-cpp; libggml-cpu-zen4.so,
the AVX-512 build node-llama-cpp picks on this project's machines) through ctypes and computes
ggml_mul_mat(W, x F32 [nTok x cols]) on 1 thread with W where llama.cpp puts model weights:
  Q4_0, rows % 8 == 0   CPU_REPACK buffer (block_q4_0x8): ggml_gemv_q4_0_8x8_q8_0 per token,
                        ggml_gemm_q4_0_8x8_q8_0 for each full group of 4 tokens;
                        y = fold over blocks b of  acc = fma(S_b, dW_b * dX_b, acc)  (S_b the exact
                        integer block sum)
  Q4_0, rows % 8 != 0   plain CPU buffer: ggml_vec_dot_q4_0_q8_0 (1 token) / tinyBLAS (2+ tokens),
  Q8_0 (never repacked  both 8 lanes: lane i = fma(dW_b * dX_b, S_b,i, lane i), S_b,i the integer
  on x86)               sum of codes 4i..4i+3 of block b; then ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
Output (stdout, JSON): per case the shape, weights (raw GGUF blocks), activations (f32) and
llama.cpp's y, little-endian base64. Checked by test/kernels/q4_0-q8_0-order.test.ts.

Run: tools/install-llama-cpp.sh && python3 tools/golden-q4_0-q8_0.py > fixtures/golden/kernels/matmul-q4_0-q8_0.json
"""
import base64
import ctypes
import json

import numpy as np

from ggml_ctypes import InitParams, P, VARIANT, base, cpu

SEED = 20261217
F32, Q4_0, Q8_0 = 0, 2, 8
base.ggml_new_tensor_2d.restype = P
base.ggml_new_tensor_2d.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
base.ggml_mul_mat.restype = P
base.ggml_mul_mat.argtypes = [P, P, P]
base.ggml_build_forward_expand.argtypes = [P, P]
base.ggml_backend_alloc_ctx_tensors_from_buft.restype = P
base.ggml_backend_alloc_ctx_tensors_from_buft.argtypes = [P, P]
base.ggml_backend_tensor_set.argtypes = [P, P, ctypes.c_size_t, ctypes.c_size_t]
base.ggml_backend_tensor_get.argtypes = [P, P, ctypes.c_size_t, ctypes.c_size_t]
base.ggml_backend_graph_compute.restype = ctypes.c_int
base.ggml_backend_graph_compute.argtypes = [P, P]
base.ggml_backend_buffer_free.argtypes = [P]
base.ggml_backend_free.argtypes = [P]
base.ggml_backend_buffer_get_type.restype = P
base.ggml_backend_buffer_get_type.argtypes = [P]
base.ggml_backend_buft_name.restype = ctypes.c_char_p
base.ggml_backend_buft_name.argtypes = [P]
cpu.ggml_backend_cpu_init.restype = P
cpu.ggml_backend_cpu_set_n_threads.argtypes = [P, ctypes.c_int]
cpu.ggml_backend_cpu_buffer_type.restype = P
repack_buft = getattr(cpu, "_Z35ggml_backend_cpu_repack_buffer_typev")
repack_buft.restype = P
backend = cpu.ggml_backend_cpu_init()
cpu.ggml_backend_cpu_set_n_threads(backend, 1)


def mul_mat(wtype, w, rows, cols, x, repack):
    """y [nTok x rows] = W x, W (raw blocks) in the repack or the plain CPU buffer, as llama.cpp loads weights."""
    n_tok = x.shape[0]
    cw = base.ggml_init(InitParams(1 << 20, None, True))
    cx = base.ggml_init(InitParams(1 << 20, None, True))
    a = base.ggml_new_tensor_2d(cw, wtype, cols, rows)
    b = base.ggml_new_tensor_2d(cx, F32, cols, n_tok)
    out = base.ggml_mul_mat(cx, a, b)
    bw = base.ggml_backend_alloc_ctx_tensors_from_buft(cw, repack_buft() if repack else cpu.ggml_backend_cpu_buffer_type())
    bx = base.ggml_backend_alloc_ctx_tensors_from_buft(cx, cpu.ggml_backend_cpu_buffer_type())
    name = base.ggml_backend_buft_name(base.ggml_backend_buffer_get_type(bw)).decode()
    assert name == ("CPU_REPACK" if repack else "CPU"), name
    w = np.ascontiguousarray(w)
    x = np.ascontiguousarray(x, dtype=np.float32)
    base.ggml_backend_tensor_set(a, w.ctypes.data, 0, w.nbytes)
    base.ggml_backend_tensor_set(b, x.ctypes.data, 0, x.nbytes)
    g = base.ggml_new_graph(cx)
    base.ggml_build_forward_expand(g, out)
    assert base.ggml_backend_graph_compute(backend, g) == 0
    y = np.zeros(rows * n_tok, dtype=np.float32)
    base.ggml_backend_tensor_get(out, y.ctypes.data, 0, y.nbytes)
    base.ggml_backend_buffer_free(bw)
    base.ggml_backend_buffer_free(bx)
    base.ggml_free(cw)
    base.ggml_free(cx)
    return y


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def weights(rng, wtype, rows, cols):
    nb = rows * cols // 32
    d = (rng.uniform(0.002, 0.05, nb) * rng.choice([-1, 1], nb)).astype(np.float16).view(np.uint8).reshape(nb, 2)
    if wtype == Q4_0:
        qs = rng.integers(0, 256, (nb, 16), dtype=np.uint8)
    else:
        qs = rng.integers(-127, 128, (nb, 32)).astype(np.int8).view(np.uint8)
    return np.concatenate([d, qs], axis=1).reshape(-1)


rng = np.random.default_rng(SEED)
cases = []
# (type, rows, cols, nTok): repacked Q4_0 (gemv, gemm groups of 4 + gemv tail, odd block counts),
# plain Q4_0 (rows % 8 != 0: vec_dot, tinyBLAS), Q8_0 (vec_dot, tinyBLAS).
SHAPES = [(Q4_0, 16, 256, 1), (Q4_0, 8, 288, 1), (Q4_0, 24, 768, 1), (Q4_0, 16, 288, 5), (Q4_0, 8, 96, 8), (Q4_0, 16, 160, 6),
          (Q4_0, 12, 256, 1), (Q4_0, 4, 288, 3),
          (Q8_0, 16, 256, 1), (Q8_0, 8, 288, 1), (Q8_0, 12, 288, 5), (Q8_0, 8, 96, 4), (Q8_0, 6, 160, 2)]
for wtype, rows, cols, n_tok in SHAPES:
    w = weights(rng, wtype, rows, cols)
    x = (rng.standard_normal((n_tok, cols)) * 2).astype(np.float32)
    repack = wtype == Q4_0 and rows % 8 == 0
    cases.append({"type": "Q4_0" if wtype == Q4_0 else "Q8_0", "rows": rows, "cols": cols, "nTok": n_tok,
                  "path": "CPU_REPACK" if repack else "CPU",
                  "w_base64": b64(w), "x_f32_base64": b64(x), "y_f32_base64": b64(mul_mat(wtype, w, rows, cols, x, repack))})
print(json.dumps({"generator": "tools/golden-q4_0-q8_0.py", "backend": f"libggml-cpu-{VARIANT}.so", "cases": cases}, indent=1))
