#!/usr/bin/env python3
"""Prints how ggml's own GGUF reader (gguf_init_from_file in llama.cpp's libggml-base.so,
installed by tools/install-llama-cpp.sh) sees a GGUF file, as JSON. Tests compare this with
zh-llama's reader, so a file zh-llama writes is known to be accepted by llama.cpp.

usage: ggml-gguf-summary.py LIBGGML_BASE.so FILE.gguf
Exit status 3 and {"error": ...} when ggml refuses the file."""
import ctypes, json, sys

lib = ctypes.CDLL(sys.argv[1])
path = sys.argv[2].encode()

class InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]

c_i64, c_sz, c_p, c_s = ctypes.c_int64, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
sig = {
    "gguf_init_from_file": (c_p, [c_s, InitParams]),
    "gguf_get_version": (ctypes.c_uint32, [c_p]),
    "gguf_get_alignment": (c_sz, [c_p]),
    "gguf_get_data_offset": (c_sz, [c_p]),
    "gguf_get_n_kv": (c_i64, [c_p]),
    "gguf_get_key": (c_s, [c_p, c_i64]),
    "gguf_get_kv_type": (ctypes.c_int, [c_p, c_i64]),
    "gguf_get_arr_type": (ctypes.c_int, [c_p, c_i64]),
    "gguf_get_arr_n": (c_sz, [c_p, c_i64]),
    "gguf_get_arr_str": (c_s, [c_p, c_i64, c_sz]),
    "gguf_get_val_str": (c_s, [c_p, c_i64]),
    "gguf_get_val_u32": (ctypes.c_uint32, [c_p, c_i64]),
    "gguf_get_val_i32": (ctypes.c_int32, [c_p, c_i64]),
    "gguf_get_val_f32": (ctypes.c_float, [c_p, c_i64]),
    "gguf_get_val_u64": (ctypes.c_uint64, [c_p, c_i64]),
    "gguf_get_val_bool": (ctypes.c_bool, [c_p, c_i64]),
    "gguf_get_n_tensors": (c_i64, [c_p]),
    "gguf_get_tensor_name": (c_s, [c_p, c_i64]),
    "gguf_get_tensor_type": (ctypes.c_int, [c_p, c_i64]),
    "gguf_get_tensor_offset": (c_sz, [c_p, c_i64]),
    "gguf_get_tensor_size": (c_sz, [c_p, c_i64]),
    "ggml_get_tensor": (c_p, [c_p, c_s]),
    "gguf_free": (None, [c_p]),
}
for name, (res, args) in sig.items():
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = res, args

ggml_ctx = ctypes.c_void_p()
ctx = lib.gguf_init_from_file(path, InitParams(True, ctypes.pointer(ggml_ctx)))
if not ctx:
    print(json.dumps({"error": "gguf_init_from_file refused the file"}))
    sys.exit(3)

STRING, ARRAY = 8, 9
scalar_readers = {4: lib.gguf_get_val_u32, 5: lib.gguf_get_val_i32, 6: lib.gguf_get_val_f32, 7: lib.gguf_get_val_bool, 10: lib.gguf_get_val_u64}
kv = []
for i in range(lib.gguf_get_n_kv(ctx)):
    entry = {"key": lib.gguf_get_key(ctx, i).decode(), "type": lib.gguf_get_kv_type(ctx, i)}
    if entry["type"] == ARRAY:
        entry["arr_type"] = lib.gguf_get_arr_type(ctx, i)
        entry["n"] = lib.gguf_get_arr_n(ctx, i)
        if entry["arr_type"] == STRING:
            entry["value"] = [lib.gguf_get_arr_str(ctx, i, j).decode("utf-8", "surrogateescape") for j in range(entry["n"])]
    elif entry["type"] == STRING:
        entry["value"] = lib.gguf_get_val_str(ctx, i).decode("utf-8", "surrogateescape")
    elif entry["type"] in scalar_readers:
        entry["value"] = scalar_readers[entry["type"]](ctx, i)
    kv.append(entry)

tensors = []
for i in range(lib.gguf_get_n_tensors(ctx)):
    name = lib.gguf_get_tensor_name(ctx, i)
    t = lib.ggml_get_tensor(ggml_ctx, name)
    # struct ggml_tensor { enum ggml_type type; <pad>; ggml_backend_buffer * buffer; int64_t ne[4]; ... }
    ne = list((ctypes.c_int64 * 4).from_address(t + 16))
    tensors.append({
        "name": name.decode(), "type": lib.gguf_get_tensor_type(ctx, i),
        "offset": lib.gguf_get_tensor_offset(ctx, i), "size": lib.gguf_get_tensor_size(ctx, i), "ne": ne,
    })

print(json.dumps({
    "version": lib.gguf_get_version(ctx), "alignment": lib.gguf_get_alignment(ctx),
    "data_offset": lib.gguf_get_data_offset(ctx), "kv": kv, "tensors": tensors,
}, ensure_ascii=False))
lib.gguf_free(ctx)
