/* switch.c — a worker's live change of role (docs/workers.md, "Role switching").
 *
 * The frontend's rebalancer sends ROLE once it routes nothing new here and its sequences here have
 * ended. The worker still waits until its role holds no work (and DRAIN_GRACE_MS for messages already
 * on their way); then it stops the engine thread, closes its peers (prefill workers that pushed KV
 * here, or decode workers it pushed to: they forget this worker's pool), stops the old role, starts
 * the new one on the same model, KV pool and prefix cache, starts the engine thread again and
 * registers again. Decode and colocated are one role with prefill on or off: that switch needs no
 * drain. A switch that cannot drain within --drain-timeout is given up and the worker registers
 * unchanged: nothing in flight is ever failed for a switch. Loop thread only. */
#include "worker/worker_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/util/log.h"

#define SWITCH_POLL_MS 50

static const struct worker_slot *slot_for(const struct worker *w, uint8_t role)
{
    uint8_t want = role == WIRE_ROLE_COLOCATED ? WIRE_ROLE_DECODE : role;
    for (int i = 0; i < w->n_slots; i++)
        if (w->slots[i].role->role == want)
            return &w->slots[i];
    return NULL;
}

static void take_role(struct worker *w, const struct worker_slot *s, uint8_t role)
{
    w->role = s->role;
    w->state = s->state;
    w->opts.colocated = role == WIRE_ROLE_COLOCATED;
}

/* Stops the engine thread; what it said last is the old role's to handle. The engine takes all of
 * its mail before it returns, so what is left for it is a wake-up at most. */
static void stop_engine(struct worker *w)
{
    atomic_store(&w->engine_stop, true);
    worker_wake_engine(w);
    pthread_join(w->engine_thread, NULL);
    atomic_store(&w->engine_stop, false);
    worker_take_mail(w);
    for (struct mail *m = mailbox_take_all(&w->to_engine), *next; m; m = next) {
        next = m->next;
        free(m);
    }
}

static int start_role(struct worker *w, struct error *err)
{
    if (w->role->listens && worker_listen(w, err) < 0)
        return -1;
    if (!w->role->start || w->role->start(w, err) == 0)
        return 0;
    if (w->role->stop)
        w->role->stop(w); /* undoes what start did before it failed */
    return -1;
}

static void switch_now(struct worker *w)
{
    const struct worker_slot old = {w->role, w->state};
    uint8_t old_role = worker_wire_role(w);
    uint64_t t0 = uv_hrtime();
    struct error err;
    stop_engine(w);
    ucx_close_all_but(w->ucx, w->frontend);
    if (w->role->stop)
        w->role->stop(w);
    take_role(w, slot_for(w, w->sw.to), w->sw.to);
    if (start_role(w, &err) < 0) {
        log_error("switching from %s to %s: %s; staying %s", wire_role_name(old_role), wire_role_name(w->sw.to),
                  err.msg, wire_role_name(old_role));
        take_role(w, &old, old_role);
        if (start_role(w, &err) < 0) {
            log_error("restarting the %s role: %s; stopping", wire_role_name(old_role), err.msg);
            exit(1); /* no role to serve with: let the supervisor start us afresh */
        }
    } else {
        worker_status("switched from %s to %s in %.0f ms: %s", wire_role_name(old_role), worker_role_name(w),
                      (double)(uv_hrtime() - t0) / 1e6, w->sw.why);
    }
    worker_start_engine(w);
    worker_send_register(w);
}

static void on_switch_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    bool busy = w->role->busy(w) || now < w->sw.started_ms + DRAIN_GRACE_MS;
    if (busy && now < w->sw.deadline_ms)
        return;
    if (busy) {
        worker_switch_cancel(w, "work still in flight at --drain-timeout");
        return;
    }
    uv_timer_stop(t);
    w->sw.on = false;
    switch_now(w);
}

void worker_switch_init(struct worker *w)
{
    uv_timer_init(&w->loop, &w->sw.timer);
    w->sw.timer.data = w;
}

void worker_switch_cancel(struct worker *w, const char *why)
{
    if (!w->sw.on)
        return;
    uv_timer_stop(&w->sw.timer);
    w->sw.on = false;
    worker_status("switch to %s given up: %s; staying %s", wire_role_name(w->sw.to), why, worker_role_name(w));
    if (w->frontend)
        worker_send_register(w); /* the frontend routes here again */
}

static const char *refusal(const struct worker *w, uint8_t role)
{
    if (w->opts.pin_role)
        return "its role is pinned (--pin-role)";
    if (!slot_for(w, role))
        return "this daemon cannot take that role";
    if (w->draining)
        return "it is shutting down";
    if (w->sw.on)
        return "a switch is already under way";
    return NULL;
}

void worker_on_role(struct worker *w, const struct wire_role_switch *m)
{
    const char *no = refusal(w, m->role);
    if (m->role == worker_wire_role(w)) {
        /* already: nothing to do */
    } else if (no) {
        log_warn("the frontend asked this %s worker to become %s (%s); refused: %s", worker_role_name(w),
                 wire_role_name(m->role), m->why, no);
    } else if (slot_for(w, m->role)->role == w->role) { /* decode <-> colocated: prefill on or off */
        const char *from = worker_role_name(w);
        w->opts.colocated = m->role == WIRE_ROLE_COLOCATED;
        worker_status("switched from %s to %s: %s", from, worker_role_name(w), m->why);
    } else {
        w->sw.on = true;
        w->sw.to = m->role;
        w->sw.started_ms = uv_now(&w->loop);
        w->sw.deadline_ms = w->sw.started_ms + (uint64_t)w->opts.drain_s * 1000;
        snprintf(w->sw.why, sizeof w->sw.why, "%s", m->why);
        worker_status("switching from %s to %s once idle: %s", worker_role_name(w), wire_role_name(m->role),
                      m->why);
        uv_timer_start(&w->sw.timer, on_switch_timer, 0, SWITCH_POLL_MS);
        return;
    }
    worker_send_register(w); /* the frontend learns where it stands either way */
}
