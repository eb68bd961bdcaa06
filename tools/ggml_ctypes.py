"""llama.cpp's prebuilt CPU backend through ctypes, for the golden-output scripts beside this file.

tools/.llama-cpp holds npm node-llama-cpp (tools/install-llama-cpp.sh); VARIANT is the build it
picks on this project's machines (libggml-cpu-zen4.so, AVX-512). Importing this loads
libggml-base.so and the CPU backend and declares the calls every script makes; each script
declares the graph calls it uses itself.
"""
import ctypes
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINS = os.path.join(ROOT, "tools/.llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
VARIANT = "zen4"

base = ctypes.CDLL(os.path.join(BINS, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(os.path.join(BINS, f"libggml-cpu-{VARIANT}.so"), mode=ctypes.RTLD_GLOBAL)
cpu.ggml_cpu_init()


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


P = ctypes.c_void_p
base.ggml_init.restype = P
base.ggml_init.argtypes = [InitParams]
base.ggml_free.argtypes = [P]
# The graph calls every script makes: build a forward graph of one op, run it, read the result.
base.ggml_new_graph.restype = P
base.ggml_new_graph.argtypes = [P]
base.ggml_build_forward_expand.argtypes = [P, P]
base.ggml_get_data.restype = P
base.ggml_get_data.argtypes = [P]
cpu.ggml_graph_compute_with_ctx.argtypes = [P, P, ctypes.c_int]
