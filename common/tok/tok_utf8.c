/* tok_utf8.c — the tokenizer's byte-string helpers: growable buffers, UTF-8 validation and lossy
 * decoding (the replacement rule of Rust's from_utf8_lossy and WHATWG's TextDecoder, so invalid bytes
 * become U+FFFD exactly where Hugging Face puts them), and GPT-2's ByteLevel byte ↔ character map. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

static int grow(char **data, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    char *p = realloc(*data, c);
    if (!p)
        return -1;
    *data = p;
    *cap = c;
    return 0;
}

int tok_str_put(struct tok_str *b, const void *p, size_t n)
{
    if (grow(&b->s, &b->cap, b->len + n + 1))
        return -1;
    if (n)
        memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

int tok_buf_put(struct tok_buf *b, const void *p, size_t n)
{
    if (grow(&b->data, &b->cap, b->len + n + 1))
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void tok_buf_free(struct tok_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* How many bytes of s[0..n) form a valid prefix of one UTF-8 character (Unicode table 3-7), and
 * whether it is complete. Returns the valid prefix length (0 if s[0] cannot start a character). */
static int utf8_prefix(const unsigned char *s, size_t n, int *need)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        *need = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        *need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        *need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        *need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        *need = 1;
        return 0;
    }
    int k = 1;
    for (; k < *need && (size_t)k < n; k++) {
        unsigned char b = s[k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
            break;
    }
    return k;
}

int tok_utf8_valid_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    int need, k = utf8_prefix(s, n, &need);
    return k == need ? k : 0;
}

uint32_t tok_utf8_decode(const unsigned char *s, int *len)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    if (c < 0xE0) {
        *len = 2;
        return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
           (s[3] & 0x3F);
}

int tok_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long tok_utf8_lossy(struct tok_buf *out, const unsigned char *s, size_t n, bool final)
{
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, run = 0;   /* s[run..i) is valid text not yet copied */
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int need, k = utf8_prefix(s + i, n - i, &need);
        if (k == need) {
            i += (size_t)k;
            continue;
        }
        if (!final && k > 0 && i + (size_t)k == n)
            break;   /* may still be completed by bytes not seen yet */
        if (tok_buf_put(out, s + run, i - run) || tok_buf_put(out, fffd, 3))
            return -1;
        i += k > 0 ? (size_t)k : 1;
        run = i;
    }
    if (tok_buf_put(out, s + run, i - run))
        return -1;
    return (long)i;
}

/* GPT-2: printable bytes stand for themselves, the other 68 are shifted to U+0100.. in byte order. */
static bool byte_is_printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_char(unsigned char b)
{
    if (byte_is_printable(b))
        return b;
    int n = 0;
    for (int i = 0; i < b; i++)
        n += !byte_is_printable(i);
    return 256 + (uint32_t)n;
}

int tok_char_to_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_is_printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68)
        return -1;
    int n = (int)(cp - 256);
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b) && n-- == 0)
            return b;
    return -1;
}

static int16_t rev[256 + 68];
static pthread_once_t rev_once = PTHREAD_ONCE_INIT;

static void rev_init(void)
{
    for (uint32_t c = 0; c < 256 + 68; c++)
        rev[c] = (int16_t)tok_char_to_byte(c);
}

bool tok_bytelevel_to_bytes(const char *s, size_t n, struct tok_str *out)
{
    pthread_once(&rev_once, rev_init);
    out->len = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int l = tok_utf8_valid_len(u + i, n - i);
        if (!l)
            return false;
        uint32_t cp = tok_utf8_decode(u + i, &l);
        if (cp >= 256 + 68 || rev[cp] < 0)
            return false;
        unsigned char b = (unsigned char)rev[cp];
        if (tok_str_put(out, &b, 1))
            return false;
        i += (size_t)l;
    }
    return true;
}
