/* memory.c — the frontend's malloc policy: what a burst of big request bodies takes is given back
 * to the system afterwards instead of staying the process's size for ever.
 *
 * Two glibc behaviours kept it (16 concurrent 4 MB bodies: 469 MB at the peak, 290-370 MB kept):
 * glibc raises its mmap threshold to the size of the first large block freed, so from then on 4 MB
 * bodies and their copies come from the heap, whose free space it rarely returns; and the JSON
 * parser's millions of small blocks, allocated on the thread pool, spread over one arena per thread.
 * So: a fixed mmap threshold (large blocks go back to the system when freed), two arenas, and a
 * malloc_trim when a burst is over. */
#include "frontend/fe.h"

#include <malloc.h>

#define FE_MMAP_THRESHOLD (256u << 10)
#define FE_ARENAS 2
#define FE_TRIM_AFTER (1u << 20) /* bodies of at least this many bytes parsed since the last trim */

static size_t parsed_since_trim;

void fe_memory_init(void)
{
    mallopt(M_MMAP_THRESHOLD, FE_MMAP_THRESHOLD);
    mallopt(M_ARENA_MAX, FE_ARENAS);
}

void fe_memory_body_done(struct fe *fe, size_t body_len)
{
    parsed_since_trim += body_len;
    if (fe->n_preparing == 0 && parsed_since_trim >= FE_TRIM_AFTER) {
        malloc_trim(0); /* every arena: the parser's blocks were freed on the pool's threads */
        parsed_since_trim = 0;
    }
}
