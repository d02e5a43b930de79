/* idmap.c — the request-id map (idmap.h). */
#include "common/util/idmap.h"

#include <stdlib.h>

static char gone_marker;
#define IDMAP_GONE ((void *)&gone_marker)

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static int grow(struct idmap *m)
{
    struct idmap old = *m;
    size_t cap = old.cap ? old.cap * 2 : 64;
    while (old.count * 2 >= cap)
        cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        *m = old;
        return -1;
    }
    m->cap = cap;
    m->count = m->used = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i] && old.vals[i] != IDMAP_GONE)
            idmap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
    return 0;
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
    if ((m->used + 1) * 4 >= m->cap * 3 && grow(m) < 0)
        return -1;
    size_t i = slot_of(key, m->cap), tomb = (size_t)-1;
    for (; m->vals[i]; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == IDMAP_GONE) {
            if (tomb == (size_t)-1)
                tomb = i;
        } else if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
    }
    if (tomb != (size_t)-1)
        i = tomb;
    else
        m->used++;
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return 0;
}

static size_t find(const struct idmap *m, uint64_t key)
{
    if (!m->cap)
        return (size_t)-1;
    for (size_t i = slot_of(key, m->cap); m->vals[i]; i = (i + 1) & (m->cap - 1))
        if (m->vals[i] != IDMAP_GONE && m->keys[i] == key)
            return i;
    return (size_t)-1;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
    size_t i = find(m, key);
    return i == (size_t)-1 ? NULL : m->vals[i];
}

void *idmap_del(struct idmap *m, uint64_t key)
{
    size_t i = find(m, key);
    if (i == (size_t)-1)
        return NULL;
    void *v = m->vals[i];
    m->vals[i] = IDMAP_GONE;
    m->count--;
    return v;
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->count = m->used = 0;
}

int idmap_next(const struct idmap *m, size_t *i, uint64_t *key, void **val)
{
    for (; *i < m->cap; (*i)++) {
        if (m->vals[*i] && m->vals[*i] != IDMAP_GONE) {
            *key = m->keys[*i];
            *val = m->vals[*i];
            (*i)++;
            return 1;
        }
    }
    return 0;
}
