/* utf8.h — for the fuzz harnesses: is a byte string valid UTF-8 (no overlongs, no surrogates, nothing
 * beyond U+10FFFF)? Written here, not taken from common/, so a harness does not check the tokenizer's
 * UTF-8 with the tokenizer's own code. */
#ifndef PD_FUZZ_UTF8_H
#define PD_FUZZ_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xc2))
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp < 0xe000))
            return false;
        i += len;
    }
    return true;
}

#endif
