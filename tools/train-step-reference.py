#!/usr/bin/env python3
"""One training step of a tiny LLaMA in numpy (float64), written independently of zh-llama's
TypeScript trainer, to check it: forward, backward, gradient accumulation, clipping by global
norm and one AdamW update (torch.optim.AdamW semantics).

usage: train-step-reference.py IN.safetensors OUT.safetensors

IN holds the initial weights under their GGUF names ("token_embd.weight" [V, C], "blk.0.attn_q.weight"
[out, in], norms [C]) and, in its __metadata__ under "step", a JSON object:
  config: {nVocab, nEmbd, nLayer, nHead, nHeadKv, headDim, nFf, rmsEps, ropeFreqBase, nRot, tiedEmbeddings}
  batches: [{ids: [[...T] x B], targets: [[...T] x B]}, ...]   (one per micro-batch; -100 = no loss)
  lr, beta1, beta2, eps, weightDecay, maxGradNorm, decay: [names decayed]
OUT gets the updated weights under the same names, the (unclipped) gradients as "grad.NAME", and
metadata {"loss": mean loss over counted targets, "grad_norm": global norm before clipping}.

Model (as llama.cpp runs a GGUF LLaMA): RMSNorm with weight; q, k rotated by RoPE in adjacent
pairs (x[2i], x[2i+1]) over the first nRot dims of each head, theta = pos * base^(-2i/nRot);
causal attention, query head h reading kv head h // (nHead / nHeadKv); SwiGLU FFN; lm_head (or
the embeddings when tied); cross-entropy averaged over the micro-batch's counted targets and the
micro-batches' gradients averaged (loss / accum), as HF's Trainer does.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + b : base + e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header = {"__metadata__": meta}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for raw in blobs:
            f.write(raw)


def rmsnorm_fwd(x, g, eps):
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * r * g, r


def rmsnorm_bwd(dy, x, g, r):
    xh = x * r
    dg = np.sum(dy * xh, axis=tuple(range(dy.ndim - 1)))
    dxh = dy * g
    dx = r * (dxh - xh * np.mean(dxh * xh, axis=-1, keepdims=True))
    return dx, dg


def rope_tables(T, n_rot, base):
    inv = base ** (-np.arange(0, n_rot, 2) / n_rot)
    ang = np.arange(T)[:, None] * inv[None, :]
    return np.cos(ang), np.sin(ang)  # [T, n_rot/2]


def rope(x, c, s, n_rot, inverse=False):
    """x: [B, T, H, hd]; rotates pairs (2i, 2i+1) of the first n_rot dims."""
    y = x.copy()
    a = x[..., 0:n_rot:2]
    b = x[..., 1:n_rot:2]
    cc = c[None, :, None, :]
    ss = s[None, :, None, :] * (-1.0 if inverse else 1.0)
    y[..., 0:n_rot:2] = a * cc - b * ss
    y[..., 1:n_rot:2] = a * ss + b * cc
    return y


def silu(x):
    return x / (1.0 + np.exp(-x))


def micro_batch(W, cfg, ids, targets, grads, loss_scale):
    B, T = ids.shape
    C, H, Hkv, hd, F = cfg["nEmbd"], cfg["nHead"], cfg["nHeadKv"], cfg["headDim"], cfg["nFf"]
    group = H // Hkv
    eps = cfg["rmsEps"]
    n_rot = cfg["nRot"]
    cos, sin = rope_tables(T, n_rot, cfg["ropeFreqBase"])
    scale = 1.0 / np.sqrt(hd)
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    E = W["token_embd.weight"]
    Wout = E if cfg["tiedEmbeddings"] else W["output.weight"]

    x = E[ids]
    caches = []
    for l in range(cfg["nLayer"]):
        p = f"blk.{l}."
        h1, r1 = rmsnorm_fwd(x, W[p + "attn_norm.weight"], eps)
        q = rope((h1 @ W[p + "attn_q.weight"].T).reshape(B, T, H, hd), cos, sin, n_rot)
        k = rope((h1 @ W[p + "attn_k.weight"].T).reshape(B, T, Hkv, hd), cos, sin, n_rot)
        v = (h1 @ W[p + "attn_v.weight"].T).reshape(B, T, Hkv, hd)
        kk = np.repeat(k, group, axis=2)
        vv = np.repeat(v, group, axis=2)
        S = np.einsum("bthd,bshd->bhts", q, kk) * scale
        S = np.where(mask[None, None], -np.inf, S)
        P = np.exp(S - S.max(axis=-1, keepdims=True))
        P /= P.sum(axis=-1, keepdims=True)
        O = np.einsum("bhts,bshd->bthd", P, vv).reshape(B, T, H * hd)
        mid = x + O @ W[p + "attn_output.weight"].T
        h2, r2 = rmsnorm_fwd(mid, W[p + "ffn_norm.weight"], eps)
        G = h2 @ W[p + "ffn_gate.weight"].T
        U = h2 @ W[p + "ffn_up.weight"].T
        A = silu(G) * U
        out = mid + A @ W[p + "ffn_down.weight"].T
        caches.append((x, h1, r1, q, kk, vv, P, O, mid, h2, r2, G, U, A))
        x = out
    hf, rf = rmsnorm_fwd(x, W["output_norm.weight"], eps)
    logits = hf @ Wout.T  # [B, T, V]
    valid = targets >= 0
    count = int(valid.sum())
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    tgt = np.where(valid, targets, 0)
    nll = -np.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0]
    loss_sum = float(np.sum(nll * valid))

    # Backward.
    dlogits = np.exp(logp)
    onehot = np.zeros_like(dlogits)
    np.put_along_axis(onehot, tgt[..., None], 1.0, axis=-1)
    dlogits = (dlogits - onehot) * valid[..., None] * (loss_scale / max(count, 1))
    dWout = np.einsum("btv,btc->vc", dlogits, hf)
    if cfg["tiedEmbeddings"]:
        grads["token_embd.weight"] += dWout
    else:
        grads["output.weight"] += dWout
    dhf = dlogits @ Wout
    dx, dg = rmsnorm_bwd(dhf, x, W["output_norm.weight"], rf)
    grads["output_norm.weight"] += dg
    for l in reversed(range(cfg["nLayer"])):
        p = f"blk.{l}."
        (xin, h1, r1, q, kk, vv, P, O, mid, h2, r2, G, U, A) = caches[l]
        # FFN branch: out = mid + A Wd^T
        grads[p + "ffn_down.weight"] += np.einsum("btc,btf->cf", dx, A)
        dA = dx @ W[p + "ffn_down.weight"]
        sg = 1.0 / (1.0 + np.exp(-G))
        dG = dA * U * (sg * (1 + G * (1 - sg)))
        dU = dA * silu(G)
        grads[p + "ffn_gate.weight"] += np.einsum("btf,btc->fc", dG, h2)
        grads[p + "ffn_up.weight"] += np.einsum("btf,btc->fc", dU, h2)
        dh2 = dG @ W[p + "ffn_gate.weight"] + dU @ W[p + "ffn_up.weight"]
        dmid_n, dg2 = rmsnorm_bwd(dh2, mid, W[p + "ffn_norm.weight"], r2)
        grads[p + "ffn_norm.weight"] += dg2
        dmid = dx + dmid_n
        # Attention branch: mid = x + O Wo^T
        grads[p + "attn_output.weight"] += np.einsum("btc,bto->co", dmid, O)
        dO = (dmid @ W[p + "attn_output.weight"]).reshape(B, T, H, hd)
        dP = np.einsum("bthd,bshd->bhts", dO, vv)
        dvv = np.einsum("bhts,bthd->bshd", P, dO)
        dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True)) * scale
        dq = np.einsum("bhts,bshd->bthd", dS, kk)
        dkk = np.einsum("bhts,bthd->bshd", dS, q)
        dk = dkk.reshape(B, T, Hkv, group, hd).sum(axis=3)
        dv = dvv.reshape(B, T, Hkv, group, hd).sum(axis=3)
        dq = rope(dq, cos, sin, n_rot, inverse=True).reshape(B, T, H * hd)
        dk = rope(dk, cos, sin, n_rot, inverse=True).reshape(B, T, Hkv * hd)
        dv = dv.reshape(B, T, Hkv * hd)
        grads[p + "attn_q.weight"] += np.einsum("bto,btc->oc", dq, h1)
        grads[p + "attn_k.weight"] += np.einsum("bto,btc->oc", dk, h1)
        grads[p + "attn_v.weight"] += np.einsum("bto,btc->oc", dv, h1)
        dh1 = dq @ W[p + "attn_q.weight"] + dk @ W[p + "attn_k.weight"] + dv @ W[p + "attn_v.weight"]
        dx_n, dg1 = rmsnorm_bwd(dh1, xin, W[p + "attn_norm.weight"], r1)
        grads[p + "attn_norm.weight"] += dg1
        dx = dmid + dx_n
    np.add.at(grads["token_embd.weight"], ids.reshape(-1), dx.reshape(-1, C))
    return loss_sum, count


def main():
    src, dst = sys.argv[1], sys.argv[2]
    W, meta = read_safetensors(src)
    step = json.loads(meta["step"])
    cfg = step["config"]
    grads = {name: np.zeros_like(w) for name, w in W.items()}
    accum = len(step["batches"])
    loss_sum, count = 0.0, 0
    for mb in step["batches"]:
        s, c = micro_batch(W, cfg, np.array(mb["ids"]), np.array(mb["targets"]), grads, 1.0 / accum)
        loss_sum += s
        count += c
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    clipped = {n: g.copy() for n, g in grads.items()}
    if step["maxGradNorm"] > 0:
        coef = step["maxGradNorm"] / (norm + 1e-6)
        if coef < 1:
            for g in clipped.values():
                g *= coef
    # torch.optim.AdamW, first step (t = 1) from zero moments.
    lr, b1, b2, eps, wd = step["lr"], step["beta1"], step["beta2"], step["eps"], step["weightDecay"]
    decay = set(step["decay"])
    out = {}
    for name, w in W.items():
        g = clipped[name]
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        w = w * (1 - lr * wd) if name in decay else w.copy()
        w = w - (lr / (1 - b1)) * m / (np.sqrt(v) / np.sqrt(1 - b2) + eps)
        out[name] = w
    for name, g in grads.items():
        out["grad." + name] = g
    write_safetensors(dst, out, {"loss": repr(loss_sum / max(count, 1)), "grad_norm": repr(norm)})


if __name__ == "__main__":
    main()
