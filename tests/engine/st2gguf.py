#!/usr/bin/python3
"""st2gguf.py - writes a Hugging Face model folder (as pdserve-mkmodel makes them: config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) as one GGUF v3 file the way llama.cpp's
convert_hf_to_gguf.py lays it out, so tests can check pdserve reads GGUF as llama.cpp users have it:

    st2gguf.py --model DIR --out FILE.gguf [--q8 SUBSTRING]... [--dtype keep|f32|f16]

- tensor names, metadata keys and types as llama.cpp writes them (general.architecture llama, qwen2,
  qwen3, gemma2, gemma3, phi3; "<arch>.embedding_length", ...), dims listed fastest first;
- llama.cpp's permutation of q/k rows for "llama" (RoPE pairs interleaved), Gemma's norms stored + 1;
- tensors whose name contains a --q8 substring quantized to Q8_0 (blocks of 32: f16 scale + int8);
- the tokenizer as tokenizer.ggml.*: a gpt2 vocabulary (tokens, token_type, merges, pre) for a byte-level
  BPE tokenizer.json, a llama (SentencePiece) one (tokens, scores, token_type) for a byte-fallback one;
  bos/eos/eot ids, add_bos_token, chat_template.
Only the standard library and numpy; reads safetensors with tests/engine/reference.py's reader.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402  (read_safetensors / load_weights)

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
ARCH = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
        "Qwen3ForCausalLM": "qwen3", "Gemma2ForCausalLM": "gemma2", "Gemma3ForCausalLM": "gemma3",
        "Phi3ForCausalLM": "phi3"}
LAYER_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.qkv_proj": "attn_qkv", "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up", "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "ffn_post_norm",
}


def gguf_name(hf, arch):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    parts = hf.split(".")
    layer, rest, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
    if rest == "post_attention_layernorm":
        name = "attn_post_norm" if arch.startswith("gemma") else "ffn_norm"
    else:
        name = LAYER_NAMES[rest]
    return "blk.%s.%s.%s" % (layer, name, kind)


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf.LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value, elem=None):
        self.kv.append((key, vtype, value, elem))

    @staticmethod
    def string(s):
        b = s.encode("utf-8") if isinstance(s, str) else s
        return struct.pack("<Q", len(b)) + b

    def value(self, vtype, v, elem):
        fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
               U64: "<Q", I64: "<q", F64: "<d"}
        if vtype == STRING:
            return self.string(v)
        if vtype == ARRAY:
            out = struct.pack("<IQ", elem, len(v))
            if elem == STRING:
                return out + b"".join(self.string(s) for s in v)
            return out + np.asarray(v, dtype=np.dtype(fmt[elem])).tobytes()
        return struct.pack(fmt[vtype], v)

    def write(self, path, alignment=32):
        head = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, v, elem in self.kv:
            head += self.string(key) + struct.pack("<I", vtype) + self.value(vtype, v, elem)
        offset, infos = 0, b""
        for name, ggml_type, shape, data in self.tensors:
            infos += self.string(name) + struct.pack("<I", len(shape))
            infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))   # ne0 = columns first
            infos += struct.pack("<IQ", ggml_type, offset)
            offset += (len(data) + alignment - 1) // alignment * alignment
        blob = head + infos
        blob += b"\0" * (-len(blob) % alignment)
        with open(path, "wb") as f:
            f.write(blob)
            for _, _, _, data in self.tensors:
                f.write(data + b"\0" * (-len(data) % alignment))


def q8_0(x):
    """Q8_0 as ggml quantizes it: per 32 values d = max|x| / 127, q = round(x / d)."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(blocks).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.round(blocks * inv[:, None]).astype(np.int8)
    out = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
    out["d"], out["q"] = d.astype(np.float16), q
    return out.tobytes()


def tensor_bytes(w, dtype, hf_dtype):
    if dtype == "f32" or (dtype == "keep" and hf_dtype == "float32"):
        return GGML_F32, w.astype("<f4").tobytes()
    if dtype == "f16" or hf_dtype == "float16":
        return GGML_F16, w.astype("<f2").tobytes()
    b = w.astype("<f4").view("<u4")   # values came from bf16: exact
    return GGML_BF16, (b >> 16).astype("<u2").tobytes()


def add_tokenizer(wr, model_dir, cfg):
    tj = json.load(open(os.path.join(model_dir, "tokenizer.json")))
    tc_path = os.path.join(model_dir, "tokenizer_config.json")
    tc = json.load(open(tc_path)) if os.path.exists(tc_path) else {}
    vocab = dict(tj["model"]["vocab"])
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    for i, t in added.items():
        vocab[t["content"]] = i
    n = max(vocab.values()) + 1
    tokens, types = ["[PAD%d]" % i for i in range(n)], [5] * n
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = 1
    spm = bool(tj["model"].get("byte_fallback"))
    for i, t in added.items():
        types[i] = (2 if t["content"] == tj["model"].get("unk_token") else 3) if t.get("special") else 4
    if spm:
        for i, text in enumerate(tokens):
            if types[i] == 1 and len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
                types[i] = 6
        wr.add("tokenizer.ggml.model", STRING, "llama")
        wr.add("tokenizer.ggml.tokens", ARRAY, tokens, STRING)
        # SentencePiece keeps a score per piece and the merges follow from them; tokenizer.json keeps
        # the merges. A piece's score is minus the rank of its first merge (pieces no merge makes rank
        # after all of them), so the merges rebuilt from the scores are the file's merges.
        rank = {}
        for k, m in enumerate(tj["model"]["merges"]):
            piece = m.replace(" ", "", 1) if isinstance(m, str) else "".join(m)
            rank.setdefault(piece, k)
        scores = [-float(rank.get(tokens[i], len(rank) + i)) for i in range(n)]
        wr.add("tokenizer.ggml.scores", ARRAY, scores, F32)
        norm = json.dumps(tj.get("normalizer"))
        wr.add("tokenizer.ggml.add_space_prefix", BOOL, "Prepend" in norm)
    else:
        regex = json.dumps(tj.get("pre_tokenizer"))
        pre = "llama-bpe" if "{1,3}" in regex else "qwen2" if "NFC" in json.dumps(tj.get("normalizer")) else "gpt-2"
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        wr.add("tokenizer.ggml.model", STRING, "gpt2")
        wr.add("tokenizer.ggml.pre", STRING, pre)
        wr.add("tokenizer.ggml.tokens", ARRAY, tokens, STRING)
        wr.add("tokenizer.ggml.merges", ARRAY, merges, STRING)
    wr.add("tokenizer.ggml.token_type", ARRAY, types, I32)

    def tok_id(v):
        v = v.get("content") if isinstance(v, dict) else v
        return vocab.get(v) if v is not None else None
    bos, eot = tok_id(tc.get("bos_token")), tok_id(tc.get("eos_token"))
    eos = cfg.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    if bos is not None:
        wr.add("tokenizer.ggml.bos_token_id", U32, bos)
    if eos is not None:
        wr.add("tokenizer.ggml.eos_token_id", U32, eos)
    if eot is not None and eot != eos:
        wr.add("tokenizer.ggml.eot_token_id", U32, eot)
    post = json.dumps(tj.get("post_processor"))
    wr.add("tokenizer.ggml.add_bos_token", BOOL, bos is not None and "SpecialToken" in post)
    if isinstance(tc.get("chat_template"), str):
        wr.add("tokenizer.chat_template", STRING, tc["chat_template"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--q8", action="append", default=[], help="quantize tensors whose GGUF name contains this")
    ap.add_argument("--dtype", default="keep", choices=["keep", "f32", "f16"])
    ap.add_argument("--dequant-out", help="also write a folder whose F32 safetensors hold the values the GGUF "
                    "stores (Q8_0 tensors dequantized): the model the GGUF file must behave as")
    ap.add_argument("--no-permute", action="store_true", help="skip llama.cpp's q/k permutation (a control)")
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    arch = ARCH[cfg["architectures"][0]]
    w = reference.load_weights(args.model)
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or cfg["hidden_size"] // heads

    wr = Writer()
    wr.add("general.architecture", STRING, arch)
    wr.add("general.name", STRING, os.path.basename(args.model.rstrip("/")))
    wr.add("general.alignment", U32, 32)
    a = arch + "."
    wr.add(a + "context_length", U32, cfg["max_position_embeddings"])
    wr.add(a + "embedding_length", U32, cfg["hidden_size"])
    wr.add(a + "block_count", U32, cfg["num_hidden_layers"])
    wr.add(a + "feed_forward_length", U32, cfg["intermediate_size"])
    wr.add(a + "attention.head_count", U32, heads)
    wr.add(a + "attention.head_count_kv", U32, kv_heads)
    wr.add(a + "attention.key_length", U32, hd)
    wr.add(a + "attention.value_length", U32, hd)
    wr.add(a + "attention.layer_norm_rms_epsilon", F32, cfg.get("rms_norm_eps", 1e-6))
    wr.add(a + "rope.freq_base", F32, cfg.get("rope_theta", 10000.0))
    if cfg.get("sliding_window") and arch in ("gemma2", "gemma3", "phi3"):
        wr.add(a + "attention.sliding_window", U32, cfg["sliding_window"])
    for key in ("attn_logit_softcapping", "final_logit_softcapping"):
        if cfg.get(key):
            wr.add(a + key, F32, cfg[key])
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        wr.add(a + "rope.scaling.type", STRING, "linear")
        wr.add(a + "rope.scaling.factor", F32, rs["factor"])
    elif kind == "llama3":   # llama.cpp: per-frequency divisors in a rope_freqs tensor
        freqs = 1.0 / cfg.get("rope_theta", 10000.0) ** (np.arange(0, hd, 2) / hd)
        factor, low, high = rs["factor"], rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
        old = rs.get("original_max_position_embeddings", 8192)
        out = []
        for f in freqs:
            wavelen = 2 * np.pi / f
            if wavelen < old / high:
                out.append(1.0)
            elif wavelen > old / low:
                out.append(factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                out.append(1 / ((1 - smooth) / factor + smooth))
        wr.tensors.append(("rope_freqs.weight", GGML_F32, [hd // 2], np.asarray(out, "<f4").tobytes()))
    elif kind in ("longrope", "su"):   # llama.cpp: rope_factors_short/long tensors + attn_factor
        orig = cfg.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        wr.add(a + "rope.scaling.original_context_length", U32, orig)
        ratio = cfg["max_position_embeddings"] / orig
        wr.add(a + "rope.scaling.attn_factor", F32, np.sqrt(1 + np.log(ratio) / np.log(orig)) if ratio > 1 else 1.0)
        for which in ("short", "long"):
            wr.tensors.append(("rope_factors_%s.weight" % which, GGML_F32, [hd // 2],
                               np.asarray(rs[which + "_factor"], "<f4").tobytes()))
    elif rs:
        sys.exit("st2gguf.py: rope_scaling %s is not written by this script" % rs)
    add_tokenizer(wr, args.model, cfg)

    hf_dtype = cfg.get("torch_dtype", "float32")
    dequant = {}
    for name in sorted(w, key=lambda k: (k != "model.embed_tokens.weight", k)):
        t = w[name]
        gname = gguf_name(name, arch)
        hf_value = t
        if arch == "llama" and ".attn_q." in gname and not args.no_permute:
            t = permute(t, heads)
        elif arch == "llama" and ".attn_k." in gname and not args.no_permute:
            t = permute(t, kv_heads)
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            t = t + 1   # llama.cpp's RMSNorm is plain: the converter folds Gemma's (1 + w) in
        if any(s in gname for s in args.q8) and t.ndim == 2 and t.shape[1] % 32 == 0:
            wr.tensors.append((gname, GGML_Q8_0, list(t.shape), q8_0(t)))
            hf_value = dequant_q8_0(q8_0(hf_value), hf_value.shape)   # rows permute, blocks do not
        else:
            # a norm + 1 is no longer exact in bf16: keep those in f32
            keep = "f32" if (arch.startswith("gemma") and name.endswith("norm.weight")) else args.dtype
            ty, data = tensor_bytes(t, keep, hf_dtype)
            wr.tensors.append((gname, ty, list(t.shape), data))
            if ty == GGML_F16:
                hf_value = hf_value.astype(np.float16).astype(np.float64)
        dequant[name] = hf_value
    wr.write(args.out)
    if args.dequant_out:
        write_folder(args.model, args.dequant_out, dequant)


def dequant_q8_0(data, shape):
    blocks = np.frombuffer(data, dtype=[("d", "<f2"), ("q", "i1", 32)])
    return (blocks["d"].astype(np.float64)[:, None] * blocks["q"].astype(np.float64)).reshape(shape)


def write_folder(src, dst, tensors):
    """A copy of the model folder with every tensor in F32 (one model.safetensors)."""
    import shutil
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if f.endswith(".json") and not f.startswith("model.safetensors"):
            shutil.copy(os.path.join(src, f), dst)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["torch_dtype"] = "float32"
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    header, off, blobs = {}, 0, []
    for name, t in tensors.items():
        b = np.asarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
