/* threadpool.c — the compute threads declared in threadpool.h. */
#include "common/engine/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/* Spins before a worker sleeps between loops (each a pause instruction, a few tens of ns on this
 * CPU: a fraction of a millisecond in all). A forward pass starts a loop every 10-100 µs, so workers
 * in a busy engine never sleep and a loop starts without a wake-up (a futex wake costs microseconds,
 * paid up to 40 times a decode step); an idle engine stops burning the core soon after. Not tuned
 * further. */
#define TP_SPINS 4000

struct tp_pool {
    int n;
    pthread_t *tids;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint gen;   /* bumped for every loop */
    atomic_int next;   /* next task to take */
    atomic_int active; /* workers still inside the current loop */
    atomic_int sleepers; /* workers waiting on `wake` (the caller signals only then) */
    int n_tasks;
    tp_fn *fn;
    void *ctx;
    bool stop;
};

struct tp_arg {
    struct tp_pool *p;
    int thread;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(struct tp_pool *p, int thread)
{
    for (int t; (t = atomic_fetch_add(&p->next, 1)) < p->n_tasks;)
        p->fn(p->ctx, t, thread);
}

static void *worker(void *arg)
{
    struct tp_arg a = *(struct tp_arg *)arg;
    struct tp_pool *p = a.p;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && ++spins < TP_SPINS)
            cpu_relax();
        if (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !p->stop)
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (p->stop)
            return NULL;
        seen = atomic_load(&p->gen);
        run_tasks(p, a.thread);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
    }
}

struct tp_pool *tp_new(int n_threads, struct error *err)
{
    if (n_threads < 1 || n_threads > 64) {
        error_set(err, "--threads %d: must be in 1..64", n_threads);
        return NULL;
    }
    struct tp_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tids = calloc((size_t)n_threads, sizeof *p->tids))) {
        free(p);
        error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 1; i < n_threads; i++) {
        struct tp_arg *a = malloc(sizeof *a);
        if (a)
            *a = (struct tp_arg){p, i};
        if (!a || pthread_create(&p->tids[i], NULL, worker, a) != 0) {
            free(a);
            error_set(err, "cannot start compute thread %d of %d", i + 1, n_threads);
            tp_free(p);
            return NULL;
        }
        p->n = i + 1;
    }
    p->n = n_threads;
    return p;
}

void tp_free(struct tp_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n; i++)
        if (p->tids[i])
            pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->tids);
    free(p);
}

int tp_threads(const struct tp_pool *p)
{
    return p ? p->n : 1;
}

void tp_run(struct tp_pool *p, int n_tasks, tp_fn *fn, void *ctx)
{
    if (n_tasks <= 0)
        return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n - 1);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: a worker either sees it or is counted in sleepers */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, 0);
    while (atomic_load_explicit(&p->active, memory_order_acquire) > 0)
        cpu_relax();
}
