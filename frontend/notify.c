/* notify.c — systemd service notification for the frontend: READY=1 once both listeners are up,
 * STATUS= with the cluster's state, WATCHDOG=1 from the loop (so a stuck loop is restarted) when the
 * unit sets WatchdogSec, STOPPING=1 when a drain begins. Without systemd (no NOTIFY_SOCKET) every
 * call is a no-op. */
#include <systemd/sd-daemon.h>

#include "frontend/fe.h"

static void status(struct fe *fe)
{
    int n = 0;
    for (struct cl_worker *w = fe->cluster ? cluster_workers(fe->cluster) : NULL; w; w = w->next)
        n++;
    sd_notifyf(0, "STATUS=%s; %d workers registered, %d sequences in flight",
               fe->cluster && cluster_ready(fe->cluster) ? "serving" : "waiting for workers", n, fe->n_inflight);
}

static void on_watchdog(uv_timer_t *t)
{
    struct fe *fe = t->data;
    status(fe);
    sd_notify(0, "WATCHDOG=1");
}

void fe_notify_ready(struct fe *fe)
{
    sd_notify(0, "READY=1");
    status(fe);
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    uv_timer_init(fe->loop, &fe->watchdog);
    fe->watchdog.data = fe;
    uint64_t ms = usec / 2000 ? usec / 2000 : 1; /* twice per period, as sd_watchdog_enabled(3) advises */
    uv_timer_start(&fe->watchdog, on_watchdog, ms, ms);
    fe->watchdog_on = true;
}

void fe_notify_stopping(struct fe *fe)
{
    sd_notify(0, "STOPPING=1");
    if (fe->watchdog_on) {
        uv_close((uv_handle_t *)&fe->watchdog, NULL);
        fe->watchdog_on = false;
    }
}
