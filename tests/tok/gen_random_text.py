#!/usr/bin/env python3
"""Writes tests/tok/corpus/random_unicode.txt: seeded random "words" from many scripts, with combining
marks, emoji, digits of other scripts, symbols, and assorted separators, to stress the regex classes,
NFC and byte fallback. Only characters assigned in Python's Unicode version are used, and a few whose
whitespace class differs between JavaScript's \\s and Oniguruma/PCRE2 (U+0085, U+FEFF) are left out,
so the JS reference and Hugging Face's Rust agree on every character.
Run from the repository root: python3 tests/tok/gen_random_text.py"""
import random
import unicodedata as ud

RANGES = [(0x41, 0x7A), (0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F), (0x5D0, 0x5EA),
          (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE5B), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F),
          (0x20A0, 0x20C0), (0x2100, 0x218B), (0x2460, 0x24FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF),
          (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF), (0x1D400, 0x1D7FF),
          (0x20000, 0x2A6DF)]
MARKS = [(0x300, 0x36F), (0x1AB0, 0x1ACE), (0x20D0, 0x20F0), (0x591, 0x5C7), (0x64B, 0x65F)]
SEPS = [" ", " ", " ", "  ", "\t", "\n", " \n", "\n\n", "\u00a0", "\u3000", "   ", ", ", ". ", "'s ", "'LL "]
EXCLUDE = {0x85, 0xFEFF}


def pick(rng, ranges):
    while True:
        lo, hi = rng.choice(ranges)
        cp = rng.randint(lo, hi)
        cat = ud.category(chr(cp))
        if cp not in EXCLUDE and cat not in ("Cn", "Cs", "Co", "Cc"):
            return chr(cp)


def word(rng):
    out = []
    for _ in range(rng.randint(1, 8)):
        out.append(pick(rng, RANGES))
        while rng.random() < 0.15:
            out.append(pick(rng, MARKS))
    return "".join(out)


def main():
    rng = random.Random(20240611)
    parts = []
    for _ in range(700):
        parts.append(word(rng))
        parts.append(rng.choice(SEPS))
    with open("tests/tok/corpus/random_unicode.txt", "w", encoding="utf-8") as f:
        f.write("".join(parts))


main()
