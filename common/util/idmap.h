/* idmap.h — a map from 64-bit request ids to pointers (open addressing, linear probing, tombstones).
 * Not thread-safe: each map belongs to one thread. */
#ifndef PD_IDMAP_H
#define PD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys;
    void **vals; /* NULL: empty; IDMAP_GONE: deleted */
    size_t cap, count, used;
};

int idmap_put(struct idmap *m, uint64_t key, void *val); /* replaces; -1 on out of memory */
void *idmap_get(const struct idmap *m, uint64_t key);
void *idmap_del(struct idmap *m, uint64_t key); /* returns the value removed, or NULL */
void idmap_free(struct idmap *m);
/* Iteration: for (size_t i = 0; idmap_next(m, &i, &key, &val);) — deleting the current key is safe. */
int idmap_next(const struct idmap *m, size_t *i, uint64_t *key, void **val);

#endif
