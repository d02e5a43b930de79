/* threadpool.h — the engine's compute threads: a fixed set that runs one parallel loop at a time for
 * the forward pass (matrix panels, attention tiles, rows of elementwise work).
 *
 * tp_run(p, n, fn, ctx) calls fn(ctx, task, thread) for every task in [0, n), spread over the pool's
 * threads and the calling thread (thread 0), and returns when all have finished. Tasks are taken in
 * order from a shared counter, so which thread runs a task varies; a task's result must not depend on
 * it (each thread has its own scratch, indexed by `thread`). Between loops the workers spin briefly
 * (a forward pass starts a loop every few microseconds), then sleep. One caller at a time. */
#ifndef PD_THREADPOOL_H
#define PD_THREADPOOL_H

#include "common/util/error.h"

struct tp_pool;
typedef void tp_fn(void *ctx, int task, int thread);

/* n_threads in 1..64 (1: tp_run calls fn inline, no threads are started). */
struct tp_pool *tp_new(int n_threads, struct error *err);
void tp_free(struct tp_pool *p); /* joins the workers; NULL is fine */
int tp_threads(const struct tp_pool *p);
void tp_run(struct tp_pool *p, int n_tasks, tp_fn *fn, void *ctx);

#endif
