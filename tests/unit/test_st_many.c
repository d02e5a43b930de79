/* test_st_many.c — a safetensors header naming 200 000 tensors (a crafted file; real models have a few
 * thousand) loads in well under a second: every name is looked up while loading, and a linear lookup
 * made such a header take minutes (found while fuzzing safetensors headers). Names are still found. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/helpers/check.h"
#include "common/engine/safetensors.h"

#define N 200000

/* A file whose header names n empty F32 tensors "t0", "t1", ... */
static uint8_t *make_file(int n, size_t *size)
{
    size_t cap = 16 + (size_t)n * 64;
    uint8_t *f = malloc(cap);
    char *h = (char *)f + 8;
    size_t len = 0;
    h[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(h + len, cap - 8 - len, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                                i ? "," : "", i);
    h[len++] = '}';
    for (int i = 0; i < 8; i++)
        f[i] = (uint8_t)((uint64_t)len >> (8 * i));
    *size = 8 + len;
    return f;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    size_t size;
    uint8_t *f = make_file(N, &size);
    struct error err = {{0}};
    double t0 = now();
    struct st_set *s = st_open_buffer(f, size, "many.safetensors", &err);
    double secs = now() - t0;
    CHECK_MSG(s != NULL, "%s", err.msg);
    CHECK_MSG(secs < 10, "loading %d tensor names took %.1f s", N, secs);
    if (s) {
        CHECK_EQ_INT(st_count(s), N);
        const struct st_tensor *t = st_find(s, "t123456");
        CHECK(t && strcmp(t->name, "t123456") == 0);
        CHECK(st_find(s, "t200000") == NULL && st_find(s, "") == NULL);
        st_close(s);
    }
    free(f);
    return check_report();
}
