/* progress.c — live progress of a run on stderr: a bar redrawn in place on a terminal, or one
 * plain line every 5 s when stderr is a file or pipe (logs stay readable). The run updates the
 * counters; a timer on the run's loop draws them. */
#include "bench.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 30

static void draw(struct bench_progress *p, int final)
{
    double el = (double)(uv_hrtime() - p->t0_ns) / 1e9;
    double achieved = el > 0 ? p->done / el : 0;
    char target[32];
    if (isinf(p->rate))
        snprintf(target, sizeof target, "inf");
    else
        snprintf(target, sizeof target, "%.2f", p->rate);
    if (!p->tty) {
        fprintf(stderr, "bench: rate %s: %d/%d done, %d failed, %d in flight, %.2f req/s, %.1f s\n",
                target, p->done, p->total, p->failed, p->in_flight, achieved, el);
        return;
    }
    char bar[BAR_WIDTH + 1];
    int fill = p->total ? p->done * BAR_WIDTH / p->total : 0;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\r\033[K[%s] %d/%d  failed %d  in flight %d  %.2f req/s (target %s)  %.1fs%s",
            bar, p->done, p->total, p->failed, p->in_flight, achieved, target, el,
            final ? "\n" : "");
}

static void on_tick(uv_timer_t *t)
{
    struct bench_progress *p = t->data;
    uint64_t now = uv_hrtime();
    if (p->tty || now - p->last_print_ns >= 5000000000ull) {
        p->last_print_ns = now;
        draw(p, 0);
    }
}

int bench_progress_start(struct bench_progress *p, uv_loop_t *loop, int mode, int total,
                         double rate)
{
    memset(p, 0, sizeof *p);
    p->tty = mode == 1 || (mode == -1 && isatty(STDERR_FILENO));
    p->total = total;
    p->rate = rate;
    p->t0_ns = p->last_print_ns = uv_hrtime();
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    if (mode != 0)
        uv_timer_start(&p->timer, on_tick, p->tty ? 100 : 1000, p->tty ? 100 : 1000);
    return 0;
}

void bench_progress_stop(struct bench_progress *p)
{
    if (uv_is_active((uv_handle_t *)&p->timer) || p->tty)
        draw(p, 1);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, NULL);
}
