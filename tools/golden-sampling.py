#!/usr/bin/env python3
"""Golden values for zh-llama's logits processors, sampler chains and PRNG, made with numpy.

An independent reference: each function below restates, in numpy, the code of one Hugging Face
transformers logits processor (generation/logits_process.py: RepetitionPenaltyLogitsProcessor,
TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper,
TypicalLogitsWarper, min_tokens_to_keep = 1, filter_value = -inf), the OpenAI frequency /
presence penalty formula, llama.cpp's default sampler chain (src/llama-sampling.cpp:
logit-bias, penalties, top-k, typical, top-p, min-p, temperature) and xoshiro128** seeded by
SplitMix64 (prng.di.unimi.it). It shares no code with src/generate/.

Arithmetic is float64 on float32 inputs. A case whose outcome hangs on a comparison closer than
MARGIN (a cumulative probability next to top_p, a probability next to min_p * max, ...) would
depend on float32-vs-float64 rounding, so the script redraws its input instead of keeping it.

Writes fixtures/golden/sampling/golden.json:
  inputs: [{name, logits}]      logits as numbers, null for -inf
  cases:  [{name, input, stages, params, context, prompt_length, kept, values}]
          kept = ids whose processed logit is finite (ascending), values = those logits
          (null for filter-only cases: the input's logits, unchanged)
  rng:    [{seed, uint32: [...], float: [...]}]   seed as a decimal string (may exceed 2^53)

Run: python3 tools/golden-sampling.py
"""
import json
import math
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures/golden/sampling/golden.json")
SEED = 20261122
MARGIN = 1e-5
NEG_INF = -np.inf


class Ambiguous(Exception):
    """The outcome depends on a comparison within MARGIN: redraw the input."""


def near(a, b):
    return abs(a - b) <= MARGIN * max(1.0, abs(b))


def softmax(s):
    m = np.max(s)
    e = np.exp(s - m)
    return e / e.sum()


def log_softmax(s):
    m = np.max(s)
    return s - (m + np.log(np.exp(s - m).sum()))


# ---- Hugging Face processors -----------------------------------------------------------------

def hf_repetition_penalty(s, input_ids, penalty):
    s = s.copy()
    ids = np.array(input_ids, dtype=np.int64)
    if ids.size == 0:
        return s
    score = s[ids]
    score = np.where(score < 0, score * penalty, score / penalty)
    s[ids] = score  # duplicates write the same value: each id penalised once
    return s


def hf_temperature(s, t):
    return s / t


def hf_top_k(s, k):
    k = min(max(k, 1), s.shape[-1])
    kth = np.sort(s)[::-1][k - 1]
    return np.where(s < kth, NEG_INF, s)


def hf_top_p(s, top_p):
    if top_p >= 1.0:
        return s
    order = np.argsort(s, kind="stable")  # ascending, as torch.sort(descending=False)
    sorted_logits = s[order]
    cum = np.cumsum(softmax(sorted_logits))
    remove = cum <= (1 - top_p)
    remove[-1:] = False  # min_tokens_to_keep = 1
    for c in cum:
        if near(c, 1 - top_p):
            raise Ambiguous("top_p")
    # a cut between two equal logits would depend on the sort order
    cut = np.nonzero(~remove)[0][0]
    if cut > 0 and sorted_logits[cut - 1] == sorted_logits[cut]:
        raise Ambiguous("top_p tie")
    out = s.copy()
    out[order[remove]] = NEG_INF
    return out


def hf_min_p(s, min_p):
    probs = softmax(s)
    top = probs.max()
    thr = min_p * top
    for p in probs[np.isfinite(s)]:
        if near(p / top, min_p):
            raise Ambiguous("min_p")
    remove = probs < thr
    order = np.argsort(-s, kind="stable")
    remove[order[0]] = False  # min_tokens_to_keep = 1
    return np.where(remove, NEG_INF, s)


def hf_typical(s, mass):
    if mass >= 1.0:
        return s
    normalized = log_softmax(s)
    p = np.exp(normalized)
    with np.errstate(invalid="ignore"):
        ent = -np.nansum(normalized * p)
    shifted = np.abs(-normalized - ent)
    order = np.argsort(shifted, kind="stable")
    sorted_scores = shifted[order]
    cum = np.cumsum(softmax(s[order]))
    for c in cum:
        if near(c, mass):
            raise Ambiguous("typical")
    last_ind = min(int((cum < mass).sum()), len(s) - 1)
    remove = sorted_scores > sorted_scores[last_ind]
    remove[:1] = False
    out = s.copy()
    out[order[remove]] = NEG_INF
    return out


def openai_penalties(s, generated, frequency, presence):
    s = s.copy()
    ids, counts = np.unique(np.array(generated, dtype=np.int64), return_counts=True)
    for i, c in zip(ids, counts):
        s[i] = s[i] - c * frequency - (1.0 if c > 0 else 0.0) * presence
    return s


def hf_chain(s, context, p):
    """Processors then warpers, as GenerationMixin._get_logits_processor orders them."""
    if p.get("repetition_penalty", 1.0) != 1.0:
        s = hf_repetition_penalty(s, context, p["repetition_penalty"])
    if p.get("temperature", 1.0) != 1.0:
        s = hf_temperature(s, p["temperature"])
    if p.get("top_k", 0) != 0:
        s = hf_top_k(s, p["top_k"])
    if p.get("top_p", 1.0) < 1.0:
        s = hf_top_p(s, p["top_p"])
    if p.get("min_p", 0.0) > 0:
        s = hf_min_p(s, p["min_p"])
    if p.get("typical_p", 1.0) < 1.0:
        s = hf_typical(s, p["typical_p"])
    return s


# ---- llama.cpp's chain, on a candidate list ---------------------------------------------------

def llama_cpp_chain(s, context, p):
    """llama.cpp: logit_bias, penalties(last_n), top_k, typical, top_p, min_p, temp."""
    ids = np.arange(len(s))
    x = s.copy()
    for tok, b in p.get("logit_bias", {}).items():
        x[int(tok)] += b
    last_n = p.get("penalty_last_n", 64)
    window = context[-last_n:] if last_n > 0 else []
    uniq, counts = np.unique(np.array(window, dtype=np.int64), return_counts=True)
    for tok, c in zip(uniq, counts):
        if x[tok] <= 0:
            x[tok] *= p.get("repetition_penalty", 1.0)
        else:
            x[tok] /= p.get("repetition_penalty", 1.0)
        x[tok] -= c * p.get("frequency_penalty", 0.0) + (c > 0) * p.get("presence_penalty", 0.0)
    # top_k: sort descending, truncate
    k = p.get("top_k", 0)
    order = np.argsort(-x[ids], kind="stable")
    ids = ids[order]
    if 0 < k < len(ids):
        if x[ids[k - 1]] == x[ids[k]]:
            raise Ambiguous("top_k tie")
        ids = ids[:k]
    # typical
    tp = p.get("typical_p", 1.0)
    if tp < 1.0:
        probs = softmax(x[ids])
        logp = np.log(probs)
        ent = -np.sum(probs * logp)
        shifted = np.abs(-logp - ent)
        o = np.argsort(shifted, kind="stable")
        cum = 0.0
        last = len(o)
        for i, j in enumerate(o):
            cum += probs[j]
            if near(cum, tp):
                raise Ambiguous("typical")
            if cum > tp:
                last = i + 1
                break
        if last < len(o) and near(shifted[o[last - 1]], shifted[o[last]]):
            raise Ambiguous("typical tie")
        ids = ids[o[:last]]
        ids = ids[np.argsort(-x[ids], kind="stable")]
    # top_p
    pp = p.get("top_p", 1.0)
    if pp < 1.0:
        probs = softmax(x[ids])
        cum = 0.0
        last = len(ids)
        for i in range(len(ids)):
            cum += probs[i]
            if near(cum, pp):
                raise Ambiguous("top_p")
            if cum >= pp:
                last = i + 1
                break
        ids = ids[:last]
    # min_p, in the logit domain as llama.cpp does
    mp = p.get("min_p", 0.0)
    if mp > 0:
        m = x[ids].max()
        thr = m + math.log(mp)
        for v in x[ids]:
            if near(v, thr):
                raise Ambiguous("min_p")
        ids = ids[x[ids] >= thr]
    t = p.get("temperature", 1.0)
    out = np.full(len(s), NEG_INF)
    out[ids] = x[ids] / t
    return out


# ---- xoshiro128** / SplitMix64 ------------------------------------------------------------------

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31), state


class Xoshiro128ss:
    def __init__(self, seed):
        a, st = splitmix64(seed)
        b, _ = splitmix64(st)
        self.s = [a & M32, a >> 32, b & M32, b >> 32]

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & M32
        result = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result

    def next_float(self):
        a = self.next() >> 5
        b = self.next() >> 6
        return (a * 67108864 + b) / 9007199254740992.0


# ---- cases ---------------------------------------------------------------------------------------

def draw_input(rng, kind, n):
    if kind == "normal":
        x = rng.normal(0, 1.5, n)
    elif kind == "flat":
        x = rng.normal(0, 1.2, n)
    elif kind == "peaked":
        x = rng.normal(0, 1, n)
        x[rng.choice(n, 4, replace=False)] += rng.uniform(6, 12, 4)
    elif kind == "masked":
        x = rng.normal(0, 2, n)
        x[rng.choice(n, n // 4, replace=False)] = NEG_INF
    elif kind == "ties":
        # values on a coarse grid, so top-k boundaries fall on ties (HF keeps them all)
        x = np.round(rng.normal(0, 2, n))
    else:
        raise ValueError(kind)
    return x.astype(np.float32).astype(np.float64)


def single(stage, **params):
    return {"stages": [stage], "params": params}


def chain(order, **params):
    return {"stages": order, "params": params}


HF = ["penalties", "logit_bias", "temperature", "top_k", "top_p", "min_p", "typical_p"]
LLAMA = ["logit_bias", "penalties", "top_k", "typical_p", "top_p", "min_p", "temperature"]

SPECS = [
    ("repetition 1.1", single("penalties", repetition_penalty=1.1), "hf"),
    ("repetition 1.3", single("penalties", repetition_penalty=1.3), "hf"),
    ("repetition 0.8", single("penalties", repetition_penalty=0.8), "hf"),
    ("frequency/presence", single("penalties", frequency_penalty=0.3, presence_penalty=0.5), "openai"),
    ("temperature 0.2", single("temperature", temperature=0.2), "hf"),
    ("temperature 1.7", single("temperature", temperature=1.7), "hf"),
    ("top_k 1", single("top_k", top_k=1), "hf"),
    ("top_k 5", single("top_k", top_k=5), "hf"),
    ("top_k 40", single("top_k", top_k=40), "hf"),
    ("top_k > vocab", single("top_k", top_k=100000), "hf"),
    ("top_p 0.5", single("top_p", top_p=0.5), "hf"),
    ("top_p 0.9", single("top_p", top_p=0.9), "hf"),
    ("top_p 0.99", single("top_p", top_p=0.99), "hf"),
    ("top_p 1.0", single("top_p", top_p=1.0), "hf"),
    ("min_p 0.05", single("min_p", min_p=0.05), "hf"),
    ("min_p 0.3", single("min_p", min_p=0.3), "hf"),
    ("typical 0.2", single("typical_p", typical_p=0.2), "hf"),
    ("typical 0.5", single("typical_p", typical_p=0.5), "hf"),
    ("typical 0.9", single("typical_p", typical_p=0.9), "hf"),
    ("hf upstream defaults", chain(HF, repetition_penalty=1.1, temperature=0.2, top_k=40, top_p=0.9), "hf"),
    ("hf all warpers", chain(HF, repetition_penalty=1.2, temperature=0.8, top_k=50, top_p=0.95, min_p=0.02, typical_p=0.95), "hf"),
    ("hf no top_k", chain(HF, repetition_penalty=1.1, temperature=0.7, top_p=0.8), "hf"),
    ("llama.cpp defaults", chain(LLAMA, repetition_penalty=1.1, frequency_penalty=0.2, presence_penalty=0.1,
                                 penalty_last_n=64, top_k=40, top_p=0.95, min_p=0.05, temperature=0.8), "llama.cpp"),
    ("llama.cpp typical + bias", chain(LLAMA, repetition_penalty=1.05, penalty_last_n=16, top_k=30, typical_p=0.9,
                                       top_p=0.9, min_p=0.1, temperature=0.5, logit_bias={"3": 2.5, "7": -1.5}), "llama.cpp"),
]

INPUTS = [("normal", 64), ("normal", 200), ("peaked", 160), ("masked", 128), ("ties", 100), ("flat", 1200)]
DENSE = ("repetition", "frequency", "temperature", "top_k > vocab", "top_p 1.0")


def FILTER_ONLY(spec):
    return all(st in ("top_k", "top_p", "min_p", "typical_p") for st in spec["stages"])


def run_case(x, context, spec, flavour):
    p = spec["params"]
    if flavour == "hf":
        return hf_chain(x, context, p)
    if flavour == "openai":
        return openai_penalties(x, context, p["frequency_penalty"], p["presence_penalty"])
    return llama_cpp_chain(x, context, p)


def jnum(v):
    """Inputs are float32 values: their shortest float32 spelling reads back exactly."""
    return None if v == NEG_INF else float(str(np.float32(v)))


def short(v):
    """9 significant digits: far below the tests' 1e-6 tolerance, half the bytes of repr."""
    return float(f"{v:.9g}")


def main():
    rng = np.random.default_rng(SEED)
    inputs = []
    cases = []
    for input_index, (kind, n) in enumerate(INPUTS):
        # one input per kind; a case that is ambiguous on it gets its own redrawn input
        x = draw_input(rng, kind, n)
        context = [int(i) for i in rng.integers(0, n, 24)] + [int(np.argmax(x))] * 3
        inputs.append({"name": f"{kind} {n}", "logits": [jnum(v) for v in x]})
        for name, spec, flavour in SPECS:
            if kind == "ties" and name.startswith(("top_p", "typical", "min_p", "hf", "llama")):
                continue  # ties are for top-k; elsewhere they only make cases ambiguous
            if kind in ("flat", "ties") and name.startswith(DENSE):
                continue  # the large input is for filters that keep few tokens (keeps the file small)
            xi, ii, ctx = x, input_index, context
            for attempt in range(50):
                try:
                    out = run_case(xi, ctx, spec, flavour)
                    break
                except Ambiguous:
                    xi = draw_input(rng, kind, n)
                    ctx = [int(i) for i in rng.integers(0, n, 24)]
                    inputs.append({"name": f"{kind} {n} (redrawn for {name})", "logits": [jnum(v) for v in xi]})
                    ii = len(inputs) - 1
            else:
                raise SystemExit(f"no unambiguous input for {name} on {kind}")
            kept = [i for i in range(n) if np.isfinite(out[i])]
            cases.append({
                "name": f"{name} / {kind} {n}",
                "input": ii,
                "stages": spec["stages"],
                "params": spec["params"],
                "context": ctx,
                # OpenAI counts generated tokens, llama.cpp its whole window: both are "everything
                # in context is generated" here
                "prompt_length": 0,
                "kept": kept,
                # pure filters leave the surviving logits as they were: only the ids are stored
                "values": None if FILTER_ONLY(spec) else [short(out[i]) for i in kept],
            })

    rngs = []
    for seed in [0, 1, 42, 2**32 + 7, 2**53 - 1, 2**64 - 1]:
        g = Xoshiro128ss(seed)
        u = [g.next() for _ in range(8)]
        f = [g.next_float() for _ in range(4)]
        rngs.append({"seed": str(seed), "uint32": u, "float": f})

    doc = {
        "note": "made by tools/golden-sampling.py (numpy " + np.__version__ + "), an independent numpy "
                "restatement of HF transformers' logits processors, OpenAI penalties, llama.cpp's "
                "sampler chain and xoshiro128**/SplitMix64; see the script's docstring",
        "margin": MARGIN,
        "inputs": inputs,
        "cases": cases,
        "rng": rngs,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{OUT}: {len(inputs)} inputs, {len(cases)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
