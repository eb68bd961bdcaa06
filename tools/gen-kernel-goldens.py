#!/usr/bin/env python3
"""Golden RoPE values for test/kernels/rope-golden.test.ts, from the numpy formulas in
../shared/UPSTREAM.md section 6 (jquesnelle/yarn LlamaYaRNScaledRotaryEmbedding; Chinese-LLaMA-Alpaca
patches for NTK; HF linear scaling). Independent of our TypeScript: float64 numpy throughout.

    python3 tools/gen-kernel-goldens.py > fixtures/golden/kernels/rope.json
"""
import json
import math

import numpy as np


def inv_freq_plain(dim, base):
    return 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float64) / dim))


def yarn(dim, base, scale, orig, beta_fast=32, beta_slow=1, extrapolation_factor=1.0, attn_factor=1.0):
    pos_freqs = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (scale * pos_freqs)

    def corr_dim(r):
        return (dim * math.log(orig / (r * 2 * math.pi))) / (2 * math.log(base))

    low = max(math.floor(corr_dim(beta_fast)), 0)
    high = min(math.ceil(corr_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    mask = (1 - ramp) * extrapolation_factor
    inv_freq = inv_freq_interpolation * (1 - mask) + inv_freq_extrapolation * mask
    mscale = (1.0 if scale <= 1 else 0.1 * math.log(scale) + 1.0) * attn_factor
    return inv_freq, mscale, low, high


def rotate(x, inv_freq, mscale, pos, neox):
    """x: (heads, head_dim); rotate the first 2*len(inv_freq) dims."""
    d = 2 * len(inv_freq)
    theta = pos * inv_freq
    c, s = np.cos(theta) * mscale, np.sin(theta) * mscale
    y = x.copy()
    if neox:  # HF rotate_half
        a, b = x[:, : d // 2], x[:, d // 2 : d]
        y[:, : d // 2] = a * c - b * s
        y[:, d // 2 : d] = a * s + b * c
    else:  # adjacent pairs (GGUF llama)
        a, b = x[:, 0:d:2], x[:, 1:d:2]
        y[:, 0:d:2] = a * c - b * s
        y[:, 1:d:2] = a * s + b * c
    return y


rng = np.random.default_rng(20240601)
cases = []


def case(name, scaling, inv_freq, mscale, n_dims, head_dim, neox, base, seq_len, extra=None):
    x = rng.standard_normal((1, head_dim)).astype(np.float32)
    pos = [0, 1, 17, 4095, 12000]
    out = [rotate(x.astype(np.float64), inv_freq, mscale, p, neox).astype(np.float32).tolist() for p in pos]
    c = {
        "name": name, "nDims": n_dims, "headDim": head_dim, "base": base, "neox": neox,
        "scaling": scaling, "seqLen": seq_len, "invFreq": inv_freq.tolist(), "mscale": mscale,
        "x": x.tolist(), "positions": pos, "rotated": out,
    }
    if extra:
        c.update(extra)
    cases.append(c)


d, base = 128, 10000.0
case("none", {"type": "none"}, inv_freq_plain(d, base), 1.0, d, d, False, base, 0)
case("none-neox-partial", {"type": "none"}, inv_freq_plain(64, 1e6), 1.0, 64, 128, True, 1e6, 0)
case("linear-4", {"type": "linear", "factor": 4.0}, inv_freq_plain(d, base) / 4.0, 1.0, d, d, False, base, 0)
# NTK, Chinese-LLaMA-Alpaca: base' = base * alpha^(dim/(dim-2))
case("ntk-alpha-2", {"type": "ntk", "alpha": 2.0}, inv_freq_plain(d, base * 2.0 ** (d / (d - 2))), 1.0, d, d, False, base, 0)
# v2 auto: alpha = (seq_len / (max_pos/2) - 1) * 1.0 when seq_len > max_pos (4K model at 6144 -> alpha 2)
alpha = (6144 / (4096 / 2) - 1) * 1.0
case("ntk-auto-6144", {"type": "ntk", "alpha": "auto", "maxPositions": 4096}, inv_freq_plain(d, base * alpha ** (d / (d - 2))),
     1.0, d, d, False, base, 6144, {"alpha": alpha, "scaledBase": base * alpha ** (d / (d - 2))})
# v1 auto: alpha = (seq_len/1024 - 1) * 1.1 past 2048 == maxPositions 2048, coeff 1.1
alpha1 = (3000 / 1024 - 1) * 1.1
case("ntk-auto-v1-3000", {"type": "ntk", "alpha": "auto", "maxPositions": 2048, "coeff": 1.1},
     inv_freq_plain(d, base * alpha1 ** (d / (d - 2))), 1.0, d, d, False, base, 3000, {"alpha": alpha1})
inv, ms, low, high = yarn(d, base, 16.0, 4096)
case("yarn-16-4096", {"type": "yarn", "factor": 16.0, "originalContext": 4096}, inv, ms, d, d, False, base, 0,
     {"low": low, "high": high})
inv, ms, low, high = yarn(64, 1e6, 4.0, 32768)
case("yarn-4-neox", {"type": "yarn", "factor": 4.0, "originalContext": 32768}, inv, ms, 64, 64, True, 1e6, 0,
     {"low": low, "high": high})



def short(v):
    """9 significant digits: plenty for float32 comparisons, a third of the file size."""
    if isinstance(v, float):
        return float("%.9g" % v)
    if isinstance(v, list):
        return [short(e) for e in v]
    if isinstance(v, dict):
        return {k: short(e) for k, e in v.items()}
    return v


print(json.dumps(short({"generator": "tools/gen-kernel-goldens.py (numpy %s, float64)" % np.__version__, "cases": cases})))
