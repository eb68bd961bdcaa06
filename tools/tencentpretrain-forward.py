#!/usr/bin/env python3
"""
An independent float64 numpy forward pass over checkpoints in their original layouts, to check
zh-llama's conversions against (numpy and Python's own zipfile/pickle only; no zh-llama code):

  tp PATH [--config FILE] [--heads N] --ids 1,2,3
      A TencentPretrain LLaMA (Linly's releases): one torch .bin, or a directory with
      tencentpretrain_model.bin.index.json and its shards. Follows TencentPretrain's model
      definition (tencentpretrain/layers, encoders, utils/rope.py, targets/lm_target.py):
        - word embedding, no scaling;
        - pre-norm TransformerLayer: hidden + attn(layer_norm_1(hidden)), then
          hidden + feed_forward(layer_norm_2(hidden)); encoder.layer_norm at the end;
        - RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, eps = layernorm_eps (opts default 1e-6);
        - MultiHeadedAttention: linear_layers[0..2] = q, k, v, viewed [seq, heads, head_size];
          k/v repeated per group (repeat_kv: KV head j serves query heads j*g .. j*g+g-1);
          apply_rotary_emb views each head's (2i, 2i+1) as a complex number and multiplies it by
          freqs_cis[pos, i] = polar(1, pos * theta_i), theta_i = 1 / 10000^(2i/d), computed in
          float32 as precompute_freqs_cis does; scores / sqrt(head_size) plus the causal mask
          (1 - tril) * -10000, softmax, then final_linear;
        - GatedFeedForward: linear_2(silu(linear_gate(x)) * linear_1(x));
        - target.lm.output_layer (no bias), or the embedding when absent (tie_weights).
  meta DIR --ids 1,2,3
      Meta's consolidated.NN.pth + params.json: the shards joined as Meta's model splits them
      (wq/wk/wv/w1/w3/output along dim 0, wo/w2/tok_embeddings along dim 1, norms from shard 0),
      then llama/model.py's forward, which is the same computation (its names differ).

Prints JSON: {"logits": [[...vocab] per position]}.
"""
import argparse, json, os, pickle, re, sys, zipfile
import numpy as np


# ---------------------------------------------------------------------------------------------
# torch zip checkpoints, read with zipfile + a restricted pickle.Unpickler

class _Storage:
    def __init__(self, dtype): self.dtype = dtype

_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64, "BFloat16Storage": "bf16"}


def read_torch(path):
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
    prefix = pkl[: -len("data.pkl")]

    def storage_bytes(key):
        return z.read(prefix + "data/" + key)

    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "collections" and name == "OrderedDict":
                import collections
                return collections.OrderedDict
            if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
                def rebuild(storage, offset, size, stride, *rest):
                    dtype, key = storage
                    raw = storage_bytes(key)
                    if dtype == "bf16":
                        arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
                    else:
                        arr = np.frombuffer(raw, dtype=dtype)
                    item = arr.itemsize
                    return np.lib.stride_tricks.as_strided(arr[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)).astype(np.float64)
                return rebuild
            if module == "torch._utils" and name == "_rebuild_parameter":
                return lambda data, *rest: data
            if module == "torch" and name in _DTYPES:
                return _Storage(_DTYPES[name])
            raise pickle.UnpicklingError(f"refusing {module}.{name}")

        def persistent_load(self, pid):
            _, st, key, _, _ = pid
            return (st.dtype, key)

    with z.open(pkl) as f:
        return dict(U(f).load())


# ---------------------------------------------------------------------------------------------
# The forward pass (one implementation; the two layouts are renamed into it)

def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def forward(W, ids, layers, heads, kv_heads, eps):
    """W: TencentPretrain names, float64 arrays."""
    x = W["embedding.word.embedding.weight"][ids]
    T, hidden = x.shape
    hd = hidden // heads
    # precompute_freqs_cis: float32 frequencies and angles, complex64 polar form.
    freqs = (np.float32(1.0) / (np.float32(10000.0) ** (np.arange(0, hd, 2, dtype=np.float32)[: hd // 2] / np.float32(hd)))).astype(np.float32)
    ang = np.outer(np.arange(T).astype(np.float32), freqs).astype(np.float32)
    cos, sin = np.cos(ang).astype(np.float32).astype(np.float64), np.sin(ang).astype(np.float32).astype(np.float64)

    def rotary(v):  # v: [T, H, hd]; pairs (2i, 2i+1) as complex, times freqs_cis[pos, i]
        re_, im = v[..., 0::2], v[..., 1::2]
        c, s = cos[:, None, :], sin[:, None, :]
        out = np.empty_like(v)
        out[..., 0::2] = re_ * c - im * s
        out[..., 1::2] = re_ * s + im * c
        return out

    mask = (1.0 - np.tril(np.ones((T, T)))) * -10000.0
    silu = lambda z: z / (1.0 + np.exp(-z))
    for l in range(layers):
        p = f"encoder.transformer.{l}."
        y = rms(x, W[p + "layer_norm_1.weight"], eps)
        q = (y @ W[p + "self_attn.linear_layers.0.weight"].T).reshape(T, heads, hd)
        k = (y @ W[p + "self_attn.linear_layers.1.weight"].T).reshape(T, kv_heads, hd)
        v = (y @ W[p + "self_attn.linear_layers.2.weight"].T).reshape(T, kv_heads, hd)
        g = heads // kv_heads
        k = np.repeat(k, g, axis=1)  # repeat_kv: [.., kv, None, ..].expand(.., kv, g, ..)
        v = np.repeat(v, g, axis=1)
        q, k = rotary(q), rotary(k)
        q, k, v = q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(float(hd)) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(T, heads * hd)
        x = x + o @ W[p + "self_attn.final_linear.weight"].T
        y = rms(x, W[p + "layer_norm_2.weight"], eps)
        ff = silu(y @ W[p + "feed_forward.linear_gate.weight"].T) * (y @ W[p + "feed_forward.linear_1.weight"].T)
        x = x + ff @ W[p + "feed_forward.linear_2.weight"].T
    y = rms(x, W["encoder.layer_norm.weight"], eps)
    head = W.get("target.lm.output_layer.weight", W["embedding.word.embedding.weight"])
    return y @ head.T


# ---------------------------------------------------------------------------------------------

def cmd_tp(a):
    if os.path.isdir(a.path):
        index = os.path.join(a.path, "tencentpretrain_model.bin.index.json")
        files = sorted(set(json.load(open(index))["weight_map"].values()))
        W = {}
        for f in files:
            W.update(read_torch(os.path.join(a.path, f)))
    else:
        W = read_torch(a.path)
    cfg = json.load(open(a.config)) if a.config else {}
    hidden = W["embedding.word.embedding.weight"].shape[1]
    heads = a.heads or cfg["heads_num"]
    hd = hidden // heads
    kv = cfg.get("local_kv_heads_num", W["encoder.transformer.0.self_attn.linear_layers.1.weight"].shape[0] // hd)
    layers = cfg.get("layers_num") or 1 + max(int(m.group(1)) for k in W for m in [re.match(r"encoder\.transformer\.(\d+)\.", k)] if m)
    eps = cfg.get("layernorm_eps", 1e-6)
    ids = [int(t) for t in a.ids.split(",")]
    print(json.dumps({"logits": forward(W, ids, layers, heads, kv, eps).tolist()}))


META_SPLIT_0 = ("wq", "wk", "wv", "w1", "w3", "output")
META_SPLIT_1 = ("wo", "w2", "tok_embeddings")


def cmd_meta(a):
    params = json.load(open(os.path.join(a.dir, "params.json")))
    shards = sorted(n for n in os.listdir(a.dir) if re.fullmatch(r"consolidated\.\d+\.pth", n))
    parts = [read_torch(os.path.join(a.dir, n)) for n in shards]
    M = {}
    for key in parts[0]:
        if key == "rope.freqs":
            continue
        short = key.split(".")[-2]
        if len(parts) == 1 or short not in META_SPLIT_0 + META_SPLIT_1:
            M[key] = parts[0][key]
        else:
            M[key] = np.concatenate([p[key] for p in parts], axis=0 if short in META_SPLIT_0 else 1)
    # Meta -> TencentPretrain names (scripts/convert_llama_to_tencentpretrain.py's table).
    W = {"embedding.word.embedding.weight": M["tok_embeddings.weight"], "encoder.layer_norm.weight": M["norm.weight"]}
    if "output.weight" in M:
        W["target.lm.output_layer.weight"] = M["output.weight"]
    L = params["n_layers"]
    for l in range(L):
        m, p = f"layers.{l}.", f"encoder.transformer.{l}."
        for src, dst in [("attention.wq", "self_attn.linear_layers.0"), ("attention.wk", "self_attn.linear_layers.1"), ("attention.wv", "self_attn.linear_layers.2"),
                         ("attention.wo", "self_attn.final_linear"), ("feed_forward.w1", "feed_forward.linear_gate"), ("feed_forward.w3", "feed_forward.linear_1"),
                         ("feed_forward.w2", "feed_forward.linear_2"), ("attention_norm", "layer_norm_1"), ("ffn_norm", "layer_norm_2")]:
            W[p + dst + ".weight"] = M[m + src + ".weight"]
    heads = params["n_heads"]
    kv = params.get("n_kv_heads", heads)
    ids = [int(t) for t in a.ids.split(",")]
    print(json.dumps({"logits": forward(W, ids, L, heads, kv, params.get("norm_eps", 1e-5)).tolist()}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tp")
    t.add_argument("path")
    t.add_argument("--config")
    t.add_argument("--heads", type=int)
    t.add_argument("--ids", required=True)
    m = sub.add_parser("meta")
    m.add_argument("dir")
    m.add_argument("--ids", required=True)
    a = ap.parse_args()
    {"tp": cmd_tp, "meta": cmd_meta}[a.cmd](a)


if __name__ == "__main__":
    main()
