#!/usr/bin/python3
"""check_model.py - checks a model folder written by pdserve-mkmodel against the Hugging Face layout,
independently of the C code that wrote it:

    check_model.py layout DIR              every file, header, tensor name, shape and offset
    check_model.py same   DIR_A DIR_B      the two folders hold the same tensor values (e.g. sharded
                                           and not), whatever their files
    check_model.py rounded DIR_F32 DIR_X   DIR_X (F16 or BF16) holds DIR_F32's values rounded to
                                           nearest, ties to even

Prints what is wrong and exits 1 on the first problem.
"""
import json
import os
import struct
import sys

import numpy as np

SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def die(msg):
    print("check_model.py: " + msg)
    sys.exit(1)


def read_file(path):
    """(header dict, {name: raw bytes}) of one safetensors file, checking its structure."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    if (8 + n) % 8:
        die("%s: data does not start 8-byte aligned (header length %d)" % (path, n))
    text = blob[8:8 + n].decode("utf-8")
    if not text.rstrip(" ").endswith("}"):
        die("%s: header is not JSON padded with spaces" % path)
    header = json.loads(text)
    if header.get("__metadata__") != {"format": "pt"}:
        die("%s: __metadata__ is %r, want {'format': 'pt'}" % (path, header.get("__metadata__")))
    spans, raw = [], {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] not in SIZES:
            die("%s: %s has dtype %s" % (path, name, t["dtype"]))
        b, e = t["data_offsets"]
        if e - b != int(np.prod(t["shape"])) * SIZES[t["dtype"]]:
            die("%s: %s: %d bytes for shape %s %s" % (path, name, e - b, t["shape"], t["dtype"]))
        spans.append((b, e, name))
        raw[name] = blob[8 + n + b:8 + n + e]
    spans.sort()
    at = 0
    for b, e, name in spans:
        if b != at:
            die("%s: %s starts at %d, expected %d (gap or overlap)" % (path, name, b, at))
        at = e
    if 8 + n + at != len(blob):
        die("%s: tensors end at %d but the file has %d bytes" % (path, 8 + n + at, len(blob)))
    return header, raw


def read_dir(d):
    """{name: (dtype, shape, raw bytes)} over model.safetensors or every shard of the index."""
    index = os.path.join(d, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.exists(index):
        idx = json.load(open(index))
        files = sorted(set(idx["weight_map"].values()))
        total = 0
    out = {}
    for f in files:
        header, raw = read_file(os.path.join(d, f))
        for name, data in raw.items():
            if name in out:
                die("%s: tensor %s appears in two files" % (d, name))
            out[name] = (header[name]["dtype"], header[name]["shape"], data)
            if os.path.exists(index):
                if idx["weight_map"].get(name) != f:
                    die("%s: index says %s is in %s, found in %s" % (d, name, idx["weight_map"].get(name), f))
                total += len(data)
    if os.path.exists(index):
        if total != idx["metadata"]["total_size"] or set(idx["weight_map"]) != set(out):
            die("%s: index total_size/weight_map do not match the shards" % d)
    return out


def values(dtype, data):
    if dtype == "BF16":
        return (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
    return np.frombuffer(data, {"F32": "<f4", "F16": "<f2"}[dtype]).astype(np.float64)


def expected_shapes(c):
    d, q, kv = c["hidden_size"], c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    want = {"model.embed_tokens.weight": [c["vocab_size"], d], "model.norm.weight": [d]}
    if not c["tie_word_embeddings"]:
        want["lm_head.weight"] = [c["vocab_size"], d]
    for l in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % l
        want.update({p + "input_layernorm.weight": [d], p + "post_attention_layernorm.weight": [d],
                     p + "self_attn.q_proj.weight": [q, d], p + "self_attn.k_proj.weight": [kv, d],
                     p + "self_attn.v_proj.weight": [kv, d], p + "self_attn.o_proj.weight": [d, q],
                     p + "mlp.gate_proj.weight": [c["intermediate_size"], d],
                     p + "mlp.up_proj.weight": [c["intermediate_size"], d],
                     p + "mlp.down_proj.weight": [d, c["intermediate_size"]]})
        if c["model_type"] == "qwen2":
            want.update({p + "self_attn.q_proj.bias": [q], p + "self_attn.k_proj.bias": [kv],
                         p + "self_attn.v_proj.bias": [kv]})
    return want


def check_tokens(d, c):
    """Special ids in the configs exist in tokenizer.json; vocab rows past the tokenizer are zero."""
    tok = json.load(open(os.path.join(d, "tokenizer.json")))
    ids = dict(tok["model"]["vocab"])
    ids.update({t["content"]: t["id"] for t in tok["added_tokens"]})
    n_tokens = max(ids.values()) + 1
    if n_tokens > c["vocab_size"]:
        die("%s: tokenizer has %d tokens, vocab_size is %d" % (d, n_tokens, c["vocab_size"]))
    gen = json.load(open(os.path.join(d, "generation_config.json")))
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    for i in [c["bos_token_id"], c["eos_token_id"]] + eos:
        if i not in ids.values():
            die("%s: special token id %s is not in tokenizer.json" % (d, i))
    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    for key in ("bos_token", "eos_token"):
        if isinstance(tc.get(key), str) and tc[key] not in ids:
            die("%s: tokenizer_config %s %r is not a token" % (d, key, tc[key]))
    return n_tokens


def cmd_layout(d):
    c = json.load(open(os.path.join(d, "config.json")))
    arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}
    if c["architectures"] != [arch[c["model_type"]]]:
        die("%s: architectures %s for model_type %s" % (d, c["architectures"], c["model_type"]))
    tensors, want = read_dir(d), expected_shapes(c)
    if set(tensors) != set(want):
        die("%s: tensors differ from the config: extra %s, missing %s" %
            (d, sorted(set(tensors) - set(want))[:4], sorted(set(want) - set(tensors))[:4]))
    dtype = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[c["torch_dtype"]]
    n_tokens = check_tokens(d, c)
    for name, (dt, shape, data) in tensors.items():
        if shape != want[name] or dt != dtype:
            die("%s: %s is %s %s, want %s %s" % (d, name, dt, shape, dtype, want[name]))
        v = values(dt, data)
        if not np.all(np.isfinite(v)):
            die("%s: %s has non-finite values" % (d, name))
        if name.endswith("norm.weight") and not (np.all(np.abs(v - 1) <= 0.11) and np.std(v) > 0.01):
            die("%s: %s: RMSNorm weights should be 1 +- 0.1, are in [%g, %g]" % (d, name, v.min(), v.max()))
        if name in ("lm_head.weight", "model.embed_tokens.weight") and n_tokens < shape[0]:
            rows = np.sqrt(np.mean(v.reshape(shape) ** 2, axis=1))
            used, unused = rows[:n_tokens].min(), rows[n_tokens:].max()
            if not (0 < unused <= 0.1 * used):
                die("%s: %s: rows >= %d (no token) must be small but not zero: RMS up to %g vs at least %g"
                    % (d, name, n_tokens, unused, used))
    print("%s: %d tensors, %s, layout ok" % (d, len(tensors), dtype))


def cmd_same(a, b):
    ta, tb = read_dir(a), read_dir(b)
    if set(ta) != set(tb):
        die("%s and %s hold different tensors" % (a, b))
    for name in ta:
        if ta[name] != tb[name]:
            die("%s differs between %s and %s" % (name, a, b))
    print("%s and %s: the same %d tensors" % (a, b, len(ta)))


def cmd_rounded(a, b):
    ta, tb = read_dir(a), read_dir(b)
    for name in ta:
        f32 = np.frombuffer(ta[name][2], "<f4")
        dt, _, data = tb[name]
        if dt == "F16":
            # numpy's float32 -> float16 cast rounds to nearest, ties to even.
            ok = np.array_equal(np.frombuffer(data, "<u2"), f32.astype(np.float16).view("<u2"))
        else:
            # The stored bf16 must be whichever of the two neighbours (truncated, truncated + 1 ulp) is
            # closer, the even one on a tie.
            bits = f32.view("<u4")
            lo = (bits >> 16).astype(np.uint32)
            lo_v, hi_v = (lo << 16).view("<f4").astype(np.float64), ((lo + 1) << 16).view("<f4").astype(np.float64)
            x = f32.astype(np.float64)
            dl, dh = np.abs(x - lo_v), np.abs(hi_v - x)
            want = np.where(dl < dh, lo, np.where(dh < dl, lo + 1, np.where(lo % 2 == 0, lo, lo + 1)))
            ok = np.array_equal(np.frombuffer(data, "<u2").astype(np.uint32), want)
        if not ok:
            die("%s: %s is not %s's value rounded to nearest even" % (b, name, a))
    print("%s: every tensor is %s rounded to nearest even" % (b, a))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "layout" and len(sys.argv) == 3:
        cmd_layout(sys.argv[2])
    elif cmd in ("same", "rounded") and len(sys.argv) == 4:
        (cmd_same if cmd == "same" else cmd_rounded)(sys.argv[2], sys.argv[3])
    else:
        die("usage: check_model.py layout DIR | same DIR_A DIR_B | rounded DIR_F32 DIR_X")
