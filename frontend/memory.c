/* memory.c — the frontend's malloc policy: what a burst of big request bodies takes is given back
 * to the system afterwards instead of staying the process's size for ever.
 *
 * Two glibc behaviours kept it (16 concurrent 4 MB bodies: 469 MB at the peak, 290-370 MB kept):
 * glibc raises its mmap threshold to the size of the first large block freed, so from then on 4 MB
 * bodies and their copies come from the heap, whose free space it rarely returns; and the JSON
 * parser's many small blocks, allocated on the thread pool, spread over one arena per thread. So: a
 * fixed mmap threshold (large blocks go back to the system when freed), two arenas, and a
 * malloc_trim FE_TRIM_DELAY_MS after the last big body of a burst was parsed (a timer: by then the
 * request that carried it has been answered and freed too). */
#include "frontend/fe.h"

#include <malloc.h>

#define FE_MMAP_THRESHOLD (256u << 10)
#define FE_ARENAS 2
#define FE_TRIM_AFTER (1u << 20) /* body bytes parsed since the last trim that make one worth it */
#define FE_TRIM_DELAY_MS 200

void fe_memory_init(void)
{
    mallopt(M_MMAP_THRESHOLD, FE_MMAP_THRESHOLD);
    mallopt(M_ARENA_MAX, FE_ARENAS);
}

static void on_trim(uv_timer_t *t)
{
    struct fe *fe = t->data;
    malloc_trim(0); /* every arena: the parser's blocks were freed on the pool's threads */
    fe->parsed_since_trim = 0;
}

void fe_memory_body_done(struct fe *fe, size_t body_len)
{
    fe->parsed_since_trim += body_len;
    if (fe->parsed_since_trim < FE_TRIM_AFTER || fe->trim_timer_state < 0)
        return;
    if (fe->trim_timer_state == 0) {
        uv_timer_init(fe->loop, &fe->trim_timer);
        uv_unref((uv_handle_t *)&fe->trim_timer); /* never what keeps the loop running */
        fe->trim_timer.data = fe;
        fe->trim_timer_state = 1;
    }
    uv_timer_start(&fe->trim_timer, on_trim, FE_TRIM_DELAY_MS, 0); /* pushed back while the burst lasts */
}

void fe_memory_stop(struct fe *fe)
{
    if (fe->trim_timer_state == 1)
        uv_close((uv_handle_t *)&fe->trim_timer, NULL);
    fe->trim_timer_state = -1; /* bodies parsed during shutdown start no timer */
}
