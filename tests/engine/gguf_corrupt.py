#!/usr/bin/python3
"""gguf_corrupt.py - writes a damaged copy of a GGUF file, one field at a time, for the tests that check
pdserve refuses it with a message naming what is wrong (and, under ASan, reads nothing out of bounds).

    gguf_corrupt.py IN OUT MODE [TENSOR]

MODE: truncate (cut the file inside TENSOR's data), misalign (TENSOR's offset + 1), q4k (TENSOR's type
to Q4_K), overlap (TENSOR's offset = the previous tensor's), swapdims (TENSOR's two dims swapped),
bigdims (TENSOR's first dim x 4096), magic, version, counts (tensor count 2^40), strlen (first metadata
key's length past the end), arch (general.architecture = "mamba").
"""
import struct
import sys


def parse(blob):
    """Offsets of the fields the modes patch: {tensor name: (dims_pos, n_dims, type_pos, offset_pos)}."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", blob, 8)
    kvs = {}

    def string(p):
        (n,) = struct.unpack_from("<Q", blob, p)
        return blob[p + 8:p + 8 + n].decode(), p + 8 + n

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(p, t):
        if t == 8:
            return string(p)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", blob, p)
            p += 12
            for _ in range(n):
                p = skip(p, et)
            return p
        return p + sizes[t]
    for _ in range(n_kv):
        key_pos = pos
        key, pos = string(pos)
        (t,) = struct.unpack_from("<I", blob, pos)
        kvs[key] = (key_pos, pos + 4, t)
        pos = skip(pos + 4, t)
    tensors = {}
    for _ in range(n_tensors):
        name, pos = string(pos)
        (nd,) = struct.unpack_from("<I", blob, pos)
        dims_pos = pos + 4
        pos = dims_pos + 8 * nd
        tensors[name] = (dims_pos, nd, pos, pos + 4)
        pos += 12
    return kvs, tensors


def main():
    src, dst, mode = sys.argv[1:4]
    name = sys.argv[4] if len(sys.argv) > 4 else None
    blob = bytearray(open(src, "rb").read())
    kvs, tensors = parse(blob)
    order = list(tensors)
    if name:
        dims_pos, nd, type_pos, off_pos = tensors[name]
    if mode == "truncate":
        (off,) = struct.unpack_from("<Q", blob, off_pos)
        # the data section starts after the infos, aligned; find it from the last tensor info
        last = tensors[order[-1]]
        info_end = last[3] + 8
        data_start = (info_end + 31) // 32 * 32
        blob = blob[:data_start + off + 8]
    elif mode == "misalign":
        struct.pack_into("<Q", blob, off_pos, struct.unpack_from("<Q", blob, off_pos)[0] + 1)
    elif mode == "q4k":
        struct.pack_into("<I", blob, type_pos, 12)
    elif mode == "overlap":
        prev = tensors[order[order.index(name) - 1]]
        blob[off_pos:off_pos + 8] = blob[prev[3]:prev[3] + 8]
    elif mode == "swapdims":
        a, b = struct.unpack_from("<QQ", blob, dims_pos)
        struct.pack_into("<QQ", blob, dims_pos, b, a)
    elif mode == "bigdims":
        struct.pack_into("<Q", blob, dims_pos, struct.unpack_from("<Q", blob, dims_pos)[0] * 4096)
    elif mode == "magic":
        blob[0:4] = b"GGML"
    elif mode == "version":
        struct.pack_into("<I", blob, 4, 4)
    elif mode == "counts":
        struct.pack_into("<Q", blob, 8, 1 << 40)
    elif mode == "strlen":
        key_pos = min(p for p, _, _ in kvs.values())
        struct.pack_into("<Q", blob, key_pos, len(blob))
    elif mode == "arch":
        _, val_pos, _ = kvs["general.architecture"]
        (n,) = struct.unpack_from("<Q", blob, val_pos)
        blob[val_pos + 8:val_pos + 8 + n] = b"mamba" + b"2" * (n - 5)
    else:
        sys.exit("unknown mode " + mode)
    open(dst, "wb").write(bytes(blob))


if __name__ == "__main__":
    main()
