#!/usr/bin/python3
"""reference.py - an independent float64 forward pass of a Llama-family model folder (Hugging Face
layout: config.json + model.safetensors or a sharded index), written from the equations with numpy,
to check pdserve's engine against.

    reference.py compare  --model DIR --ids JSON --logits FILE [--tol 1e-4]
    reference.py margins  --model DIR --ids JSON
    reference.py selftest --model DIR --ids JSON

compare: FILE holds float32 little-endian logits of every prompt position, row-major
[n_prompt][vocab] (what `pdserve-generate --dump-logits` writes). The error is
    max over positions p of  max_v |engine[p,v] - ref[p,v]| / max_v |ref[p,v]|
i.e. the worst absolute error of a row relative to that row's largest logit, so a row is judged at
the scale its argmax and softmax are decided at. Exits 1 when it exceeds --tol.

margins: the gap between the largest and second-largest logit at every position, absolute and relative
to the row's largest |logit| - how far float rounding would have to move a logit to flip a greedy token.

selftest: invariants that hold for a correct implementation, checked on the reference itself:
position-shift invariance of RoPE attention, causality, a second token-by-token implementation with a
KV cache and complex-number RoPE giving the same logits, and GQA equal to MHA with repeated K/V heads.

The model, in order (Llama / Mistral / Qwen2, as in Hugging Face transformers):
    x = embed[ids]
    per layer: h = rmsnorm(x) * w_in;  q,k,v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)
               q,k rotated by RoPE (rotate_half convention: pairs (i, i + d/2)) at their positions
               att = softmax(q k^T / sqrt(d) + causal mask), GQA: query head j uses kv head j // (H/K)
               x += (att v) Wo^T;  h = rmsnorm(x) * w_post;  x += (silu(h Wg^T) * (h Wu^T)) Wd^T
    logits = (rmsnorm(x) * w_norm) lm_head^T        (lm_head = embed when tied)
rmsnorm(x) = x / sqrt(mean(x^2) + eps).

What the other architectures change (transformers' modeling_qwen3 / gemma2 / gemma3 / phi3):
    Qwen3:  q, k = rmsnorm(q) * q_norm, rmsnorm(k) * k_norm per head, before RoPE; no biases.
    Gemma2: x = embed[ids] * sqrt(hidden) (the scalar rounded to torch_dtype); every rmsnorm multiplies
            by (1 + w); x += rmsnorm(attn) * (1 + w_post_attn); h = rmsnorm(x) * (1 + w_pre_ffn);
            x += rmsnorm(gelu_tanh(h Wg^T) * (h Wu^T) Wd^T) * (1 + w_post_ffn);
            scores = q k^T * query_pre_attn_scalar^-0.5, then cap * tanh(scores / cap);
            logits = cap_f * tanh(logits / cap_f); layers 0, 2, 4... see only the last sliding_window
            positions (key position > query position - sliding_window).
    Gemma3: Gemma2 without soft-capping, plus Gemma q/k norms; windowed layers are all but every
            sliding_window_pattern-th (layer_types when given), with RoPE base rope_local_base_freq.
    Phi3:   qkv_proj = [q; k; v] and gate_up_proj = [gate; up] fused; sliding_window on every layer;
            longrope: inverse frequencies divided by short_factor, cos and sin multiplied by
            attention_factor = sqrt(1 + ln(max_pos / orig) / ln(orig)).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}


def fail(msg):
    sys.stderr.write("reference.py: %s\n" % msg)
    sys.exit(2)


def read_safetensors(path):
    """All tensors of one .safetensors file as float64 arrays, after checking the header."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail("%s: shorter than the 8-byte header length" % path)
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        fail("%s: header length %d runs past the end of the file" % (path, hlen))
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            fail("%s: tensor %s has dtype %s (F32, F16, BF16 supported)" % (path, name, info["dtype"]))
        np_dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if end - begin != count * size or base + end > len(blob) or begin < 0:
            fail("%s: tensor %s: offsets [%d, %d) do not fit shape %s" % (path, name, begin, end, info["shape"]))
        raw = np.frombuffer(blob, dtype=np_dtype, count=count, offset=base + begin)
        if info["dtype"] == "BF16":
            # bfloat16 is the top half of a float32: shift the bits back into place.
            raw = (raw.astype(np.uint32) << 16).view("<f4")
        out[name] = raw.astype(np.float64).reshape(info["shape"])
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    weights = {}
    for shard in sorted(set(weight_map.values())):
        weights.update(read_safetensors(os.path.join(model_dir, shard)))
    missing = set(weight_map) - set(weights)
    if missing:
        fail("%s: the index names tensors no shard has: %s" % (index, sorted(missing)[:5]))
    return weights


def rope_inv_freq(cfg, head_dim, theta=None, scaling=True):
    """theta^(-2i/d), then Llama 3's rope_scaling: long wavelengths slowed by `factor`, short ones
    kept, and a linear blend (in 1/wavelength) between the two cut-offs."""
    theta = cfg.get("rope_theta", 10000.0) if theta is None else theta
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    rs = (cfg.get("rope_scaling") or {}) if scaling else {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        return inv / rs["factor"]
    if kind in ("longrope", "su"):
        return inv / np.asarray(rs["short_factor"], dtype=np.float64)
    if kind != "llama3":
        return inv
    factor, low, high = rs["factor"], rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    orig = rs.get("original_max_position_embeddings", 8192)
    wavelen = 2 * np.pi / inv
    smooth = (orig / wavelen - low) / (high - low)
    blended = (1 - smooth) * inv / factor + smooth * inv
    return np.where(wavelen > orig / low, inv / factor, np.where(wavelen < orig / high, inv, blended))


def kv_round(x, dtype):
    """K and V as the engine's cache holds them: rounded to f16 or bf16 (round-to-nearest-even)."""
    if dtype == "f16":
        return x.astype(np.float32).astype(np.float16).astype(np.float64)
    if dtype == "bf16":
        b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        return b.astype(np.uint32).view(np.float32).astype(np.float64)
    return x


def round_to(x, dtype):
    """A Python float as transformers' tensor of torch_dtype holds it (Gemma's embedding normalizer)."""
    if dtype == "bfloat16":
        b = np.array([x], dtype="<f4").view("<u4").astype(np.uint64)
        b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
        return float(b.astype("<u4").view("<f4")[0])
    if dtype == "float16":
        return float(np.float16(x))
    return float(np.float32(x))


class Model:
    kv_dtype = "f32"

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = cfg = json.load(f)
        self.arch = cfg["architectures"][0]
        self.gemma = self.arch in ("Gemma2ForCausalLM", "Gemma3ForCausalLM")
        self.w = load_weights(model_dir)
        self.dim = cfg["hidden_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads", self.n_heads)
        self.hd = cfg.get("head_dim") or self.dim // self.n_heads
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.inv_freq = rope_inv_freq(cfg, self.hd)
        self.embed = self.w["model.embed_tokens.weight"]
        tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in self.w
        self.lm_head = self.embed if tied else self.w["lm_head.weight"]
        self.setup_arch(cfg)

    def setup_arch(self, cfg):
        """The per-architecture constants, each from the published config defaults."""
        g2 = self.arch == "Gemma2ForCausalLM"
        self.embed_scale = round_to(self.dim ** 0.5, cfg.get("torch_dtype")) if self.gemma else 1.0
        self.norm_add = 1.0 if self.gemma else 0.0
        self.scale = (cfg.get("query_pre_attn_scalar") or 256) ** -0.5 if self.gemma else self.hd ** -0.5
        self.attn_cap = cfg.get("attn_logit_softcapping", 50.0 if g2 else None) if self.gemma else None
        self.final_cap = cfg.get("final_logit_softcapping", 30.0 if g2 else None) if self.gemma else None
        self.rope_mscale = 1.0
        rs = cfg.get("rope_scaling") or {}
        if rs.get("type", rs.get("rope_type")) in ("longrope", "su"):
            orig = cfg.get("original_max_position_embeddings", cfg["max_position_embeddings"])
            factor = cfg["max_position_embeddings"] / orig
            self.rope_mscale = rs.get("attention_factor") or (
                1.0 if factor <= 1 else np.sqrt(1 + np.log(factor) / np.log(orig)))
        # sliding window per layer (None: the whole context)
        sw = cfg.get("sliding_window")
        if self.arch in ("Qwen2ForCausalLM", "Qwen3ForCausalLM", "LlamaForCausalLM"):
            sw = None
        types = cfg.get("layer_types")
        if types is None:
            pattern = {"Gemma2ForCausalLM": 2, "Gemma3ForCausalLM": cfg.get("sliding_window_pattern", 6)}.get(self.arch, 1)
            types = ["sliding_attention" if pattern == 1 or (l + 1) % pattern else "full_attention"
                     for l in range(self.n_layers)]
        self.window = [sw if (sw and t == "sliding_attention") else None for t in types]
        local = rope_inv_freq(cfg, self.hd, cfg.get("rope_local_base_freq", 10000.0), scaling=False)
        self.layer_freq = [local if (self.arch == "Gemma3ForCausalLM" and self.window[l]) else self.inv_freq
                           for l in range(self.n_layers)]
        # Phi3's fused projections, split as its modeling code does (q | k | v rows; gate | up rows)
        q, kv = self.n_heads * self.hd, self.n_kv * self.hd
        for l in range(self.n_layers):
            qkv = self.lw(l, "self_attn.qkv_proj.weight")
            if qkv is not None:
                pre = "model.layers.%d." % l
                self.w[pre + "self_attn.q_proj.weight"] = qkv[:q]
                self.w[pre + "self_attn.k_proj.weight"] = qkv[q:q + kv]
                self.w[pre + "self_attn.v_proj.weight"] = qkv[q + kv:]
                gu = self.lw(l, "mlp.gate_up_proj.weight")
                half = gu.shape[0] // 2
                self.w[pre + "mlp.gate_proj.weight"], self.w[pre + "mlp.up_proj.weight"] = gu[:half], gu[half:]

    def lw(self, layer, name):
        return self.w.get("model.layers.%d.%s" % (layer, name))

    def rmsnorm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * (self.norm_add + weight)

    def qkv(self, l, h):
        """q [n, H, hd], k, v [n, K, hd] before RoPE, q/k normed per head where the model has q_norm."""
        n = h.shape[0]
        q = self.proj(l, "self_attn.q_proj", h).reshape(n, self.n_heads, self.hd)
        k = self.proj(l, "self_attn.k_proj", h).reshape(n, self.n_kv, self.hd)
        v = self.proj(l, "self_attn.v_proj", h).reshape(n, self.n_kv, self.hd)
        if self.lw(l, "self_attn.q_norm.weight") is not None:
            q = self.rmsnorm(q, self.lw(l, "self_attn.q_norm.weight"))
            k = self.rmsnorm(k, self.lw(l, "self_attn.k_norm.weight"))
        return q, k, v

    def cap(self, x, c):
        return c * np.tanh(x / c) if c else x

    def sublayer_out(self, l, y, norm):
        """Gemma normalises a sub-layer's output before adding it to the residual stream."""
        return self.rmsnorm(y, self.lw(l, norm)) if self.gemma else y

    def rope(self, x, pos, inv_freq=None):
        """x [n, heads, hd] at positions pos [n]: x*cos + rotate_half(x)*sin."""
        ang = np.outer(pos, self.inv_freq if inv_freq is None else inv_freq)   # [n, hd/2]
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :] * self.rope_mscale
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :] * self.rope_mscale
        half = self.hd // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rotated * sin

    def proj(self, l, name, h):
        y = h @ self.lw(l, name + ".weight").T
        b = self.lw(l, name + ".bias")
        return y + b if b is not None else y

    def attention(self, l, h, pos):
        n = h.shape[0]
        q, k, v = self.qkv(l, h)
        q, k = self.rope(q, pos, self.layer_freq[l]), self.rope(k, pos, self.layer_freq[l])
        # the engine caches K before longrope's cos/sin factor (it folds the factor's square into the
        # score scale), so K is rounded as it is without that factor
        k = kv_round(k / self.rope_mscale, self.kv_dtype) * self.rope_mscale
        v = kv_round(v, self.kv_dtype)
        group = self.n_heads // self.n_kv
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = self.cap(np.einsum("qhd,khd->hqk", q, k) * self.scale, self.attn_cap)
        qi, ki = np.arange(n)[:, None], np.arange(n)[None, :]
        allowed = ki <= qi
        if self.window[l]:
            allowed &= ki > qi - self.window[l]
        scores = np.where(allowed, scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        att = scores / scores.sum(axis=-1, keepdims=True)
        out = np.einsum("hqk,khd->qhd", att, v).reshape(n, self.n_heads * self.hd)
        return self.proj(l, "self_attn.o_proj", out)

    def mlp(self, l, h):
        g = h @ self.lw(l, "mlp.gate_proj.weight").T
        u = h @ self.lw(l, "mlp.up_proj.weight").T
        if self.gemma:   # gelu_pytorch_tanh
            act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        else:            # silu
            act = g / (1 + np.exp(-g))
        return (act * u) @ self.lw(l, "mlp.down_proj.weight").T

    def ffn_norm(self):
        return "pre_feedforward_layernorm.weight" if self.gemma else "post_attention_layernorm.weight"

    def forward(self, ids, pos=None):
        """Logits [len(ids), vocab] of every position, causal attention over the whole prompt."""
        pos = np.arange(len(ids), dtype=np.float64) if pos is None else np.asarray(pos, dtype=np.float64)
        x = self.embed[np.asarray(ids)] * self.embed_scale
        for l in range(self.n_layers):
            a = self.attention(l, self.rmsnorm(x, self.lw(l, "input_layernorm.weight")), pos)
            x = x + self.sublayer_out(l, a, "post_attention_layernorm.weight")
            f = self.mlp(l, self.rmsnorm(x, self.lw(l, self.ffn_norm())))
            x = x + self.sublayer_out(l, f, "post_feedforward_layernorm.weight")
        return self.cap(self.rmsnorm(x, self.w["model.norm.weight"]) @ self.lm_head.T, self.final_cap)


def rel_error(got, ref):
    """max over rows of max|got - ref| / max|ref| (see the module comment)."""
    scale = np.maximum(np.max(np.abs(ref), axis=1), 1e-300)  # an all-zero row: any error is huge
    return float(np.max(np.max(np.abs(got - ref), axis=1) / scale))


def margins(logits):
    top2 = np.sort(logits, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    return gap, gap / np.maximum(np.max(np.abs(logits), axis=1), 1e-300)


def cmd_compare(args, model, ids):
    ref = model.forward(ids)
    raw = np.fromfile(args.logits, dtype="<f4")
    if raw.size != ref.size:
        fail("%s: %d floats, expected %d positions x %d vocab = %d" % (args.logits, raw.size, ref.shape[0],
                                                                    ref.shape[1], ref.size))
    got = raw.astype(np.float64).reshape(ref.shape)
    err = rel_error(got, ref)
    agree = int(np.sum(np.argmax(got, axis=1) == np.argmax(ref, axis=1)))
    print("%s: %d positions, max relative error %.3e (tolerance %.0e), argmax agrees at %d/%d" %
          (os.path.basename(args.model.rstrip("/")), len(ids), err, args.tol, agree, len(ids)))
    return 0 if err <= args.tol and np.all(np.isfinite(got)) else 1


def cmd_margins(args, model, ids):
    gap, rel = margins(model.forward(ids))
    print("%s: %d positions; top1-top2 gap: min %.4g, 1st percentile %.4g, median %.4g; relative to max|logit|:"
          " min %.3e, 1st percentile %.3e, median %.3e" %
          (os.path.basename(args.model.rstrip("/")), len(ids), gap.min(), np.percentile(gap, 1),
           np.median(gap), rel.min(), np.percentile(rel, 1), np.median(rel)))
    return 0


def forward_stepwise(model, ids):
    """A second implementation for the self-test: one token at a time with a growing KV cache,
    RoPE as complex multiplication of (x[i] + j*x[i + d/2]) by e^(j*pos*freq), heads in explicit loops."""
    half, group = model.hd // 2, model.n_heads // model.n_kv
    cache = [([], []) for _ in range(model.n_layers)]

    def rotate(vec, p, freq):
        c = (vec[:half] + 1j * vec[half:]) * np.exp(1j * p * freq) * model.rope_mscale
        return np.concatenate([c.real, c.imag])

    rows = []
    for p, tok in enumerate(ids):
        x = model.embed[tok] * model.embed_scale
        for l in range(model.n_layers):
            h = model.rmsnorm(x, model.lw(l, "input_layernorm.weight"))
            q, k, v = (t[0] for t in model.qkv(l, h[None, :]))
            freq = model.layer_freq[l]
            cache[l][0].append(np.stack([rotate(k[j], p, freq) for j in range(model.n_kv)]))
            cache[l][1].append(v)
            first = max(0, p - model.window[l] + 1) if model.window[l] else 0
            ks, vs = np.stack(cache[l][0][first:]), np.stack(cache[l][1][first:])   # [t, kv, hd]
            out = []
            for j in range(model.n_heads):
                s = model.cap(ks[:, j // group, :] @ rotate(q[j], p, freq) * model.scale, model.attn_cap)
                a = np.exp(s - s.max())
                out.append((a / a.sum()) @ vs[:, j // group, :])
            a = model.proj(l, "self_attn.o_proj", np.concatenate(out))
            x = x + model.sublayer_out(l, a, "post_attention_layernorm.weight")
            f = model.mlp(l, model.rmsnorm(x, model.lw(l, model.ffn_norm())))
            x = x + model.sublayer_out(l, f, "post_feedforward_layernorm.weight")
        rows.append(model.cap(model.rmsnorm(x, model.w["model.norm.weight"]) @ model.lm_head.T, model.final_cap))
    return np.stack(rows)


def as_mha(model):
    """The same model with every K/V head repeated for its query heads: must give the same logits."""
    group = model.n_heads // model.n_kv
    for l in range(model.n_layers):
        for name in ("k_proj", "v_proj"):
            for part in ("weight", "bias"):
                key = "model.layers.%d.self_attn.%s.%s" % (l, name, part)
                if key in model.w:
                    t = model.w[key].reshape((model.n_kv, model.hd) + model.w[key].shape[1:])
                    model.w[key] = np.repeat(t, group, axis=0).reshape((-1,) + model.w[key].shape[1:])
    model.n_kv = model.n_heads
    return model


def cmd_selftest(args, model, ids):
    base = model.forward(ids)
    checks = [
        ("positions shifted by 1000 give the same logits (RoPE is relative)",
         rel_error(model.forward(ids, np.arange(len(ids)) + 1000.0), base), 1e-9),
        ("a prefix's logits do not depend on later tokens (causal)",
         rel_error(model.forward(ids[: len(ids) // 2 + 1]), base[: len(ids) // 2 + 1]), 1e-12),
        ("token-by-token with a KV cache and complex RoPE gives the same logits",
         rel_error(forward_stepwise(model, ids), base), 1e-10),
        ("GQA equals MHA with repeated K/V heads",
         rel_error(as_mha(model).forward(ids), base), 1e-12),
    ]
    bad = 0
    for what, err, tol in checks:
        ok = err <= tol
        bad += not ok
        print("%s  %s (error %.2e, tolerance %.0e)" % ("ok  " if ok else "FAIL", what, err, tol))
    if not np.all(np.isfinite(base)):
        print("FAIL  logits are not all finite")
        bad += 1
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["compare", "margins", "selftest"])
    ap.add_argument("--model", required=True, help="model folder (config.json + safetensors)")
    ap.add_argument("--ids", required=True, help="prompt token ids as a JSON array")
    ap.add_argument("--logits", help="compare: float32 [n_prompt][vocab] logits file")
    ap.add_argument("--tol", type=float, default=1e-4, help="compare: maximum relative error")
    ap.add_argument("--kv-dtype", choices=["f32", "f16", "bf16"], default="f32",
                    help="round K and V as a KV cache of this dtype does")
    args = ap.parse_args()
    ids = json.loads(args.ids)
    if not ids or not all(isinstance(i, int) for i in ids):
        fail("--ids must be a non-empty JSON array of token ids")
    model = Model(args.model)
    model.kv_dtype = args.kv_dtype
    if max(ids) >= model.embed.shape[0] or min(ids) < 0:
        fail("--ids: token id out of range for vocab %d" % model.embed.shape[0])
    if args.command == "compare" and not args.logits:
        fail("compare needs --logits FILE")
    return {"compare": cmd_compare, "margins": cmd_margins, "selftest": cmd_selftest}[args.command](
        args, model, ids)


if __name__ == "__main__":
    sys.exit(main())
