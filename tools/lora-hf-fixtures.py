#!/usr/bin/env python3
"""
Independent reference for zh-llama's checkpoint conversion and LoRA merging (numpy only, no
torch, no zh-llama code). Used by test/lora and test/convert.

  model DIR ...        a small HF LLaMA / Mixtral checkpoint with deterministic weights
                       (safetensors or torch .bin shards, written the way torch.save and
                       safetensors do: fake torch classes pickled by Python's own pickle)
  adapter DIR ...      a PEFT LoRA adapter for such a model (adapter_config.json + weights)
  check-merge ...      merges in numpy as the upstream low-memory script does and compares
                       with zh-llama's output (HF safetensors dir, Meta .pth dir, or GGUF)
  forward DIR IDS      float64 HF forward pass (rotate_half RoPE); last-position logits as JSON
  evil FILE CMD        a torch-style zip whose pickle calls os.system(CMD)

All formats are read and written here from their specifications (safetensors header, zip,
pickle protocol 2, GGUF v3), never with the code under test.
"""
import argparse, collections, io, json, os, pickle, struct, sys, types, zipfile
import numpy as np

# ----------------------------------------------------------------------------------------------
# dtypes

def to_bf16_bits(x):
    """float32 -> bf16 bit patterns, round to nearest even (NaN quieted)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded

def from_bf16_bits(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)

def encode(arr32, dtype):
    """float32 array -> bytes in dtype ('F32', 'F16', 'BF16')."""
    if dtype == "F32": return np.ascontiguousarray(arr32, dtype=np.float32).tobytes()
    if dtype == "F16": return np.ascontiguousarray(arr32, dtype=np.float32).astype(np.float16).tobytes()
    if dtype == "BF16": return to_bf16_bits(arr32).tobytes()
    raise ValueError(dtype)

def decode(raw, dtype, shape):
    if dtype == "F32": a = np.frombuffer(raw, dtype=np.float32)
    elif dtype == "F16": a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
    elif dtype == "BF16": a = from_bf16_bits(np.frombuffer(raw, dtype=np.uint16))
    else: raise ValueError(dtype)
    return a.reshape(shape).copy()

def round_to(arr32, dtype):
    return decode(encode(arr32, dtype), dtype, arr32.shape)

# ----------------------------------------------------------------------------------------------
# safetensors

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, offset = {}, 0
    if metadata: header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for _, _, _, raw in tensors: f.write(raw)

def read_safetensors(path):
    with open(path, "rb") as f: data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__": continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], decode(data[8 + n + b:8 + n + e], info["dtype"], info["shape"]))
    return out

# ----------------------------------------------------------------------------------------------
# torch zip checkpoints, without torch: Python's pickle with stand-in torch classes

STORAGE_OF = {"F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage"}
DTYPE_OF = {v: k for k, v in STORAGE_OF.items()}

def _fake_torch():
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch, "_zh_fake", False): return torch
    torch = types.ModuleType("torch"); torch._zh_fake = True
    utils = types.ModuleType("torch._utils")
    def _rebuild_tensor_v2(*args): raise RuntimeError("stand-in")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for storage in STORAGE_OF.values():
        cls = type(storage, (), {"__module__": "torch"})
        setattr(torch, storage, cls)
    torch._utils = utils
    sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils
    return torch

class _Storage:
    def __init__(self, key, dtype, raw, numel): self.key, self.dtype, self.raw, self.numel = key, dtype, raw, numel

class _Tensor:
    def __init__(self, storage, shape): self.storage, self.shape = storage, shape
    def __reduce_ex__(self, proto):
        torch = _fake_torch()
        stride, s = [], 1
        for d in reversed(self.shape): stride.insert(0, s); s *= d
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))

def write_torch(path, tensors, compress=False):
    """tensors: list of (name, dtype, shape, bytes) -> a torch.save-style zip."""
    torch = _fake_torch()
    storages, sd = [], collections.OrderedDict()
    for i, (name, dtype, shape, raw) in enumerate(tensors):
        st = _Storage(str(i), dtype, raw, int(np.prod(shape)) if shape else 1)
        storages.append(st)
        sd[name] = _Tensor(st, list(shape))
    buf = io.BytesIO()
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage): return ("storage", getattr(torch, STORAGE_OF[obj.dtype]), obj.key, "cpu", obj.numel)
            return None
    P(buf, protocol=2).dump(sd)
    archive = os.path.splitext(os.path.basename(path))[0]
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr(f"{archive}/data.pkl", buf.getvalue())
        z.writestr(f"{archive}/byteorder", "little")
        for st in storages: z.writestr(f"{archive}/data/{st.key}", st.raw)
        z.writestr(f"{archive}/version", "3\n")

def read_torch(path):
    """A restricted reader: only the names a state dict needs, nothing imported."""
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    prefix = pkl[:-len("data.pkl")]
    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"): return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                def rebuild(storage, offset, size, stride, *rest):
                    dtype, raw = storage
                    item = 4 if dtype == "F32" else 2
                    n = int(np.prod(size)) if size else 1
                    return (dtype, decode(raw[offset * item:(offset + n) * item], dtype, size))
                return rebuild
            if module == "torch" and name in DTYPE_OF: return DTYPE_OF[name]
            raise pickle.UnpicklingError(f"refused {module}.{name}")
        def persistent_load(self, pid):
            _, dtype, key, _, _ = pid
            return (dtype, z.read(f"{prefix}data/{key}"))
    return dict(U(io.BytesIO(z.read(pkl))).load())

def write_tensors(path, tensors, fmt, compress=False):
    if fmt == "safetensors": write_safetensors(path, tensors, {"format": "pt"})
    else: write_torch(path, tensors, compress)

def read_tensors(path):
    with open(path, "rb") as f: magic = f.read(2)
    return read_torch(path) if magic == b"PK" else read_safetensors(path)

def read_hf_dir(d):
    out = {}
    for n in sorted(os.listdir(d)):
        if (n.endswith(".safetensors") and not n.startswith("adapter")) or (n.startswith("pytorch_model") and n.endswith(".bin")):
            out.update(read_tensors(os.path.join(d, n)))
    return out

# ----------------------------------------------------------------------------------------------
# GGUF v3 (reading F32 / F16 / BF16 tensors and scalar metadata only)

def read_gguf(path):
    with open(path, "rb") as f: data = f.read()
    pos = 0
    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos); pos += struct.calcsize("<" + fmt); return v[0]
    def rstr():
        nonlocal pos
        n = rd("Q"); s = data[pos:pos + n].decode(); pos += n; return s
    scal = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    def rval(t):
        if t == 8: return rstr()
        if t == 9:
            it = rd("I"); n = rd("Q"); return [rval(it) for _ in range(n)]
        return rd(scal[t])
    assert data[:4] == b"GGUF"; pos = 4
    version = rd("I"); nt = rd("Q"); nkv = rd("Q")
    meta = {}
    for _ in range(nkv):
        k = rstr(); t = rd("I"); meta[k] = rval(t)
    infos = []
    for _ in range(nt):
        name = rstr(); nd = rd("I"); shape = [rd("Q") for _ in range(nd)]; typ = rd("I"); off = rd("Q")
        infos.append((name, shape, typ, off))
    align = meta.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, shape, typ, off in infos:
        n = int(np.prod(shape)); dt = {0: "F32", 1: "F16", 30: "BF16"}.get(typ)
        if dt is None: continue
        item = 4 if dt == "F32" else 2
        tensors[name] = (dt, decode(data[start + off:start + off + n * item], dt, list(reversed(shape))))
    return meta, tensors

# ----------------------------------------------------------------------------------------------
# model and adapter generation

def rng_array(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)

def hf_shapes(c):
    h, ff, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd = h // c["num_attention_heads"]; kv = c["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", [c["vocab_size"], h])]
    for l in range(L):
        p = f"model.layers.{l}."
        out += [(p + "self_attn.q_proj.weight", [h, h]), (p + "self_attn.k_proj.weight", [kv, h]),
                (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, h])]
        if c.get("num_local_experts"):
            out.append((p + "block_sparse_moe.gate.weight", [c["num_local_experts"], h]))
            for e in range(c["num_local_experts"]):
                q = p + f"block_sparse_moe.experts.{e}."
                out += [(q + "w1.weight", [ff, h]), (q + "w2.weight", [h, ff]), (q + "w3.weight", [ff, h])]
        else:
            out += [(p + "mlp.gate_proj.weight", [ff, h]), (p + "mlp.down_proj.weight", [h, ff]), (p + "mlp.up_proj.weight", [ff, h])]
        out += [(p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h])]
    out.append(("model.norm.weight", [h]))
    if not c.get("tie_word_embeddings"): out.append(("lm_head.weight", [c["vocab_size"], h]))
    return out

def cmd_model(a):
    os.makedirs(a.dir, exist_ok=True)
    c = {"architectures": ["MixtralForCausalLM" if a.experts else "LlamaForCausalLM"], "model_type": "mixtral" if a.experts else "llama",
         "hidden_size": a.hidden, "intermediate_size": a.ffn, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
         "num_key_value_heads": a.kv_heads or a.heads, "vocab_size": a.vocab, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": bool(a.tie),
         "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[a.dtype]}
    if a.experts: c.update(num_local_experts=a.experts, num_experts_per_tok=2)
    if a.rope_scaling: c["rope_scaling"] = json.loads(a.rope_scaling)
    rng = np.random.default_rng(a.seed)
    tensors = []
    for name, shape in hf_shapes(c):
        if len(shape) == 1: arr = (1 + rng_array(rng, shape, 0.1)).astype(np.float32)
        else: arr = rng_array(rng, shape, a.scale)
        tensors.append((name, a.dtype, shape, encode(arr, a.dtype)))
    shards = np.array_split(np.arange(len(tensors)), a.shards)
    ext = "safetensors" if a.format == "safetensors" else "bin"
    stem = "model" if a.format == "safetensors" else "pytorch_model"
    weight_map, total = {}, 0
    for i, idx in enumerate(shards):
        name = f"{stem}.{ext}" if a.shards == 1 else f"{stem}-{i + 1:05d}-of-{a.shards:05d}.{ext}"
        part = [tensors[j] for j in idx]
        write_tensors(os.path.join(a.dir, name), part, a.format, a.compress)
        for t in part: weight_map[t[0]] = name; total += len(t[3])
    if a.shards > 1:
        with open(os.path.join(a.dir, f"{stem}.{ext}.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(a.dir, "config.json"), "w") as f: json.dump(c, f, indent=2)
    with open(os.path.join(a.dir, "generation_config.json"), "w") as f: json.dump({"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.2}, f)

def cmd_adapter(a):
    os.makedirs(a.dir, exist_ok=True)
    c = json.load(open(os.path.join(a.base, "config.json")))
    shapes = dict(hf_shapes(c))
    rng = np.random.default_rng(a.seed)
    targets = a.targets.split(",") if a.targets else []
    mts = a.modules_to_save.split(",") if a.modules_to_save else []
    tensors = []
    P = "base_model.model."
    for name, shape in hf_shapes(c):
        module = name[:-len(".weight")]
        if module.split(".")[-1] in targets and len(shape) == 2:
            rows, cols = shape
            out_f, in_f = (cols, rows) if a.fan_in_fan_out else (rows, cols)
            A = rng_array(rng, [a.r, in_f], a.scale); B = rng_array(rng, [out_f, a.r], a.scale)
            suffix = ".default" if a.adapter_name else ""
            tensors.append((P + module + f".lora_A{suffix}.weight", a.dtype, [a.r, in_f], encode(A, a.dtype)))
            tensors.append((P + module + f".lora_B{suffix}.weight", a.dtype, [out_f, a.r], encode(B, a.dtype)))
    for m in mts:
        name = {"embed_tokens": "model.embed_tokens.weight", "lm_head": "lm_head.weight"}[m]
        h = c["hidden_size"]
        rows = a.vocab if a.vocab else shapes[name][0]
        arr = rng_array(rng, [rows, h], 0.05)
        tensors.append((P + name, a.dtype, [rows, h], encode(arr, a.dtype)))
    fname = "adapter_model.safetensors" if a.format == "safetensors" else "adapter_model.bin"
    write_tensors(os.path.join(a.dir, fname), tensors, a.format)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": a.r, "lora_alpha": a.alpha, "lora_dropout": 0.05,
           "target_modules": targets, "fan_in_fan_out": bool(a.fan_in_fan_out), "modules_to_save": mts or None,
           "use_rslora": bool(a.rslora), "bias": "none", "inference_mode": True, "base_model_name_or_path": a.base}
    with open(os.path.join(a.dir, "adapter_config.json"), "w") as f: json.dump(cfg, f, indent=2)
    if a.config:
        with open(os.path.join(a.dir, "config.json"), "w") as f: json.dump({**c, **json.loads(a.config)}, f, indent=2)

# ----------------------------------------------------------------------------------------------
# reference merge (the upstream low-memory loop) and comparison

def load_adapter(d):
    cfg = json.load(open(os.path.join(d, "adapter_config.json")))
    path = [os.path.join(d, n) for n in ("adapter_model.safetensors", "adapter_model.bin") if os.path.exists(os.path.join(d, n))][0]
    sd = {k.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B."): v for k, v in read_tensors(path).items()}
    return cfg, sd

def reference_merge(base_dir, lora_dirs):
    sd = read_hf_dir(base_dir)
    dtypes = {k: v[0] for k, v in sd.items()}
    vals = {k: v[1] for k, v in sd.items()}
    for d in lora_dirs:
        cfg, lsd = load_adapter(d)
        r, alpha = cfg["r"], cfg["lora_alpha"]
        scaling = np.float32(alpha / np.sqrt(r) if cfg.get("use_rslora") else alpha / r)
        for k in list(vals):
            saved = "base_model.model." + k
            if saved in lsd: vals[k] = lsd[saved][1].copy()
            A = saved.replace(".weight", ".lora_A.weight")
            if A in lsd:
                Bm = lsd[saved.replace(".weight", ".lora_B.weight")][1]
                # B @ A accumulated in float64 and rounded once to float32, then scaled in float32.
                delta = (Bm.astype(np.float64) @ lsd[A][1].astype(np.float64)).astype(np.float32)
                if cfg.get("fan_in_fan_out"): delta = delta.T
                vals[k] = (vals[k].astype(np.float32) + (delta * scaling).astype(np.float32)).astype(np.float32)
    return {k: round_to(v, dtypes[k]) for k, v in vals.items()}, dtypes

def permute(w, n_head):
    """llama.cpp / upstream: HF rotate-half rows -> adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

META = {"model.embed_tokens.weight": "tok_embeddings.weight", "model.norm.weight": "norm.weight", "lm_head.weight": "output.weight"}
META_L = {"self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk", "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
          "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2", "mlp.up_proj": "feed_forward.w3",
          "input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm"}
GGUF_L = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
          "mlp.gate_proj": "ffn_gate", "mlp.down_proj": "ffn_down", "mlp.up_proj": "ffn_up", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}

def rename(k, table_global, table_layer, layer_fmt):
    if k in table_global: return table_global[k]
    parts = k.split(".")
    return layer_fmt.format(parts[2], table_layer[".".join(parts[3:5])] if parts[3] in ("self_attn", "mlp") else table_layer[parts[3]])

def ulps(a, b, dtype):
    """Distance in units of the dtype's last place."""
    if dtype == "F32": ia, ib = a.astype(np.float32).view(np.int32).astype(np.int64), b.astype(np.float32).view(np.int32).astype(np.int64)
    elif dtype == "F16": ia, ib = a.astype(np.float16).view(np.int16).astype(np.int64), b.astype(np.float16).view(np.int16).astype(np.int64)
    else: ia, ib = to_bf16_bits(a).view(np.int16).astype(np.int64), to_bf16_bits(b).view(np.int16).astype(np.int64)
    return np.abs(ia - ib)

def cmd_check_merge(a):
    expected, dtypes = reference_merge(a.base, a.lora)
    c = json.load(open(os.path.join(a.base, "config.json")))
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    if a.format == "hf": got = read_hf_dir(a.merged); names = {k: k for k in expected}
    elif a.format == "pth":
        got = {}
        for n in sorted(os.listdir(a.merged)):
            if n.endswith(".pth"): got.update(read_torch(os.path.join(a.merged, n)))
        names = {k: rename(k, META, META_L, "layers.{}.{}.weight") for k in expected}
    else:
        _, got = read_gguf(a.merged)
        names = {k: rename(k, {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}, GGUF_L, "blk.{}.{}.weight") for k in expected}
    result = {"tensors": 0, "max_ulps": 0, "mismatched": [], "shapes": {}}
    for k, want in expected.items():
        if k.endswith("rotary_emb.inv_freq"): continue
        if a.format != "hf":
            if k.endswith("q_proj.weight"): want = permute(want, nh)
            if k.endswith("k_proj.weight"): want = permute(want, nkv)
        name = names[k]
        if name not in got: result["mismatched"].append(f"{k}: missing as {name}"); continue
        dt, have = got[name]
        if list(have.shape) != list(want.shape): result["mismatched"].append(f"{k}: shape {list(have.shape)} != {list(want.shape)}"); continue
        out_dtype = a.dtype or (dt if a.format != "gguf" or len(want.shape) > 1 else dtypes[k])
        if a.format == "gguf" and len(want.shape) == 1: out_dtype = dtypes[k]
        u = int(ulps(have, round_to(want.astype(np.float32), out_dtype), out_dtype).max()) if have.size else 0
        result["tensors"] += 1
        result["max_ulps"] = max(result["max_ulps"], u)
        if u > a.max_ulps: result["mismatched"].append(f"{k}: {u} ulps ({out_dtype})")
        if k in ("model.embed_tokens.weight", "lm_head.weight"): result["shapes"][k] = list(have.shape)
    print(json.dumps(result))
    sys.exit(1 if result["mismatched"] else 0)

# ----------------------------------------------------------------------------------------------
# float64 HF forward pass (rotate_half RoPE, as transformers' LlamaModel)

def rms(x, w, eps): return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

def cmd_forward(a):
    c = json.load(open(os.path.join(a.dir, "config.json")))
    W = {k: v[1].astype(np.float64) for k, v in read_hf_dir(a.dir).items()}
    ids = [int(t) for t in a.ids.split(",")]
    h, nh = c["hidden_size"], c["num_attention_heads"]; nkv = c.get("num_key_value_heads", nh); hd = h // nh
    eps, theta = c["rms_norm_eps"], c.get("rope_theta", 10000.0)
    scale = 1.0
    rs = c.get("rope_scaling")
    if rs and rs.get("type") == "linear": scale = rs["factor"]
    T = len(ids)
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.outer(np.arange(T) / scale, inv); emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb), np.sin(emb)
    def rot(x): return np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)
    x = W["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        y = rms(x, W[p + "input_layernorm.weight"], eps)
        q = (y @ W[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd).transpose(1, 0, 2)
        k = (y @ W[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2)
        v = (y @ W[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2)
        q = q * cos + rot(q) * sin; k = k * cos + rot(k) * sin
        k = np.repeat(k, nh // nkv, 0); v = np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + np.triu(np.full((T, T), -np.inf), 1)
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        x = x + (s @ v).transpose(1, 0, 2).reshape(T, h) @ W[p + "self_attn.o_proj.weight"].T
        y = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        silu = lambda z: z / (1 + np.exp(-z))
        if c.get("num_local_experts"):
            logits = y @ W[p + "block_sparse_moe.gate.weight"].T
            pr = np.exp(logits - logits.max(-1, keepdims=True)); pr /= pr.sum(-1, keepdims=True)
            out = np.zeros_like(y)
            for t in range(T):
                top = np.argsort(-pr[t])[:c["num_experts_per_tok"]]; wts = pr[t, top] / pr[t, top].sum()
                for e, wt in zip(top, wts):
                    q2 = p + f"block_sparse_moe.experts.{e}."
                    out[t] += wt * ((silu(y[t] @ W[q2 + "w1.weight"].T) * (y[t] @ W[q2 + "w3.weight"].T)) @ W[q2 + "w2.weight"].T)
            x = x + out
        else:
            x = x + (silu(y @ W[p + "mlp.gate_proj.weight"].T) * (y @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    y = rms(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    print(json.dumps((y[-1] @ head.T).tolist()))

def cmd_evil(a):
    class Evil:
        def __reduce__(self): return (os.system, (a.command,))
    payload = pickle.dumps(collections.OrderedDict([("w", Evil())]), protocol=2)
    with zipfile.ZipFile(a.file, "w") as z:
        z.writestr("archive/data.pkl", payload); z.writestr("archive/version", "3\n")

def main():
    ap = argparse.ArgumentParser(); sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model"); m.add_argument("dir")
    for k, v in dict(hidden=16, ffn=32, layers=2, heads=4, kv_heads=0, vocab=64, shards=1, seed=1, experts=0).items(): m.add_argument("--" + k.replace("_", "-"), type=int, default=v)
    m.add_argument("--scale", type=float, default=0.2); m.add_argument("--dtype", default="F32"); m.add_argument("--format", default="safetensors")
    m.add_argument("--tie", action="store_true"); m.add_argument("--rope-scaling"); m.add_argument("--compress", action="store_true")
    d = sub.add_parser("adapter"); d.add_argument("dir"); d.add_argument("--base", required=True)
    for k, v in dict(r=4, seed=2, vocab=0).items(): d.add_argument("--" + k, type=int, default=v)
    d.add_argument("--alpha", type=float, default=8); d.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,down_proj,up_proj")
    d.add_argument("--modules-to-save", default=""); d.add_argument("--fan-in-fan-out", action="store_true"); d.add_argument("--rslora", action="store_true")
    d.add_argument("--dtype", default="F32"); d.add_argument("--format", default="safetensors"); d.add_argument("--adapter-name", action="store_true")
    d.add_argument("--config"); d.add_argument("--scale", type=float, default=0.5)
    c = sub.add_parser("check-merge"); c.add_argument("--base", required=True); c.add_argument("--lora", action="append", default=[])
    c.add_argument("--merged", required=True); c.add_argument("--format", default="hf"); c.add_argument("--max-ulps", type=int, default=0); c.add_argument("--dtype")
    f = sub.add_parser("forward"); f.add_argument("dir"); f.add_argument("ids")
    e = sub.add_parser("evil"); e.add_argument("file"); e.add_argument("command")
    a = ap.parse_args()
    {"model": cmd_model, "adapter": cmd_adapter, "check-merge": cmd_check_merge, "forward": cmd_forward, "evil": cmd_evil}[a.cmd](a)

if __name__ == "__main__":
    main()
