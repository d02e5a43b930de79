/* tok_decode.c — ids to text, one-shot and incremental. Both run the same state machine, so the
 * pieces a stream emits always concatenate to the one-shot text:
 *   ByteLevel: tokens are bytes; emit all complete UTF-8, hold back an unfinished character (at the
 *     end it becomes one U+FFFD, as from_utf8_lossy/TextDecoder do), invalid bytes become U+FFFD;
 *   SentencePiece chain: Replace was applied to each piece at load; runs of <0xNN> byte tokens are held
 *     until the run ends, then emitted as their bytes if the whole run is valid UTF-8, else as one
 *     U+FFFD per byte (Rust tokenizers' ByteFallback); Strip drops the first leading characters. */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

struct tok_stream {
    const struct tokenizer *t;
    bool skip_special;
    struct tok_str pend;   /* ByteLevel: unfinished UTF-8; SentencePiece: the current byte-token run */
    int strip_left;        /* leading strip characters still to drop (0 once text has been emitted) */
    size_t carried;        /* bytes the last push appended for earlier tokens (see tok_stream_carried) */
};

struct tok_stream *tok_stream_new(const struct tokenizer *t, bool skip_special)
{
    struct tok_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->skip_special = skip_special;
    s->strip_left = t->byte_level ? 0 : t->dec_strip_start;
    return s;
}

void tok_stream_free(struct tok_stream *s)
{
    if (!s)
        return;
    free(s->pend.s);
    free(s);
}

static int emit(struct tok_stream *s, const char *p, size_t n, struct tok_buf *out)
{
    while (s->strip_left > 0 && n > 0 && p[0] == s->t->dec_strip_char) {
        p++;
        n--;
        s->strip_left--;
    }
    if (n > 0)
        s->strip_left = 0;
    return tok_buf_put(out, p, n);
}

static bool all_valid(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        int l = tok_utf8_valid_len(p + i, n - i);
        if (!l)
            return false;
        i += (size_t)l;
    }
    return true;
}

static int flush_byte_run(struct tok_stream *s, struct tok_buf *out)
{
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    int rc = 0;
    if (s->pend.len == 0)
        return 0;
    if (all_valid((const unsigned char *)s->pend.s, s->pend.len))
        rc = emit(s, s->pend.s, s->pend.len, out);
    else
        for (size_t i = 0; i < s->pend.len && rc == 0; i++)
            rc = emit(s, fffd, 3, out);
    s->pend.len = 0;
    return rc;
}

/* ByteLevel: emits what is complete in pend, keeps the unfinished tail. */
static int drain_utf8(struct tok_stream *s, struct tok_buf *out, bool final)
{
    if (s->pend.len == 0)
        return 0;
    long used = tok_utf8_lossy(out, (const unsigned char *)s->pend.s, s->pend.len, final);
    if (used < 0)
        return -1;
    if (used > 0) {
        memmove(s->pend.s, s->pend.s + used, s->pend.len - (size_t)used);
        s->pend.len -= (size_t)used;
    }
    return 0;
}

int tok_stream_push(struct tok_stream *s, int32_t id, struct tok_buf *out, struct error *err)
{
    const struct tokenizer *t = s->t;
    if (id < 0 || id >= t->n_ids || !(t->flags[id] & TOK_F_PRESENT))
        return 0;   /* Hugging Face skips ids that name no token */
    if (s->skip_special && (t->flags[id] & TOK_F_SPECIAL))
        return 0;
    int rc;
    s->carried = 0;
    if (t->byte_level) {
        rc = tok_str_put(&s->pend, tok_piece(t, id), t->piece_len[id]) || drain_utf8(s, out, false);
    } else if (t->dec_byte_fallback && (t->flags[id] & TOK_F_BYTE)) {
        rc = tok_str_put(&s->pend, &t->byte_val[id], 1);
    } else {
        size_t before = out->len;
        rc = flush_byte_run(s, out);
        s->carried = out->len - before;
        rc = rc || emit(s, tok_piece(t, id), t->piece_len[id], out);
    }
    return rc ? error_set(err, "tokenizer: out of memory while decoding") : 0;
}

bool tok_stream_pending(const struct tok_stream *s)
{
    return s->pend.len > 0;
}

size_t tok_stream_carried(const struct tok_stream *s)
{
    return s->carried;
}

int tok_stream_finish(struct tok_stream *s, struct tok_buf *out, struct error *err)
{
    int rc = s->t->byte_level ? drain_utf8(s, out, true) : flush_byte_run(s, out);
    return rc ? error_set(err, "tokenizer: out of memory while decoding") : 0;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, int n, bool skip_special, char **text, size_t *len,
               struct error *err)
{
    struct tok_stream s = {.t = t, .skip_special = skip_special,
                           .strip_left = t->byte_level ? 0 : t->dec_strip_start};
    struct tok_buf out = {0};
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = tok_stream_push(&s, ids[i], &out, err);
    if (rc == 0)
        rc = tok_stream_finish(&s, &out, err);
    if (rc == 0 && !out.data && tok_buf_put(&out, "", 0))
        rc = error_set(err, "tokenizer: out of memory while decoding");
    free(s.pend.s);
    if (rc) {
        tok_buf_free(&out);
        return -1;
    }
    *text = out.data;
    *len = out.len;
    return 0;
}
