/* test_engine_threadpool.c — the compute threads: every task of every loop runs exactly once, on a
 * thread index below the pool's size, for pools of 1..4 threads and loops of 0..100 tasks back to
 * back (the pattern of a forward pass), and after the workers have gone to sleep. */
#include <stdatomic.h>
#include <unistd.h>

#include "tests/helpers/check.h"
#include "common/engine/threadpool.h"

struct counts {
    atomic_int runs[128];
    atomic_int bad_thread;
    int threads;
};

static void task(void *ctx, int t, int thread)
{
    struct counts *c = ctx;
    atomic_fetch_add(&c->runs[t], 1);
    if (thread < 0 || thread >= c->threads)
        atomic_fetch_add(&c->bad_thread, 1);
}

static void every_task_once(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        struct error err;
        struct tp_pool *p = tp_new(threads, &err);
        CHECK(p != NULL);
        CHECK_EQ_INT(tp_threads(p), threads);
        for (int round = 0; round < 300; round++) {
            int n = round % 101;
            if (round == 150)
                usleep(20000); /* long enough for the workers to sleep */
            struct counts c = {.threads = threads};
            tp_run(p, n, task, &c);
            int wrong = 0;
            for (int i = 0; i < 128; i++)
                wrong += atomic_load(&c.runs[i]) != (i < n);
            CHECK_MSG(wrong == 0 && atomic_load(&c.bad_thread) == 0, "%d threads, %d tasks: %d miscounted", threads,
                      n, wrong);
        }
        tp_free(p);
    }
    struct error err;
    CHECK(tp_new(0, &err) == NULL && strstr(err.msg, "threads"));
    tp_free(NULL);
}

int main(void)
{
    RUN(every_task_once);
    return check_report();
}
