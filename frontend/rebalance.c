/* rebalance.c — carrying the rebalancer's decisions out on the frontend's loop (rebalance.h); the
 * decisions are rebalance_policy.c's. */
#include "frontend/rebalance.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/util/log.h"
#include "frontend/cluster.h"
#include "proto/wire.h"

/* A switch not finished (the worker registered again) this long after it began is given up. */
#define RB_GIVE_UP_MS 60000

struct rebalancer {
    uv_loop_t *loop;
    struct cluster *cluster;
    struct rb_config cfg;
    struct rb_state st;
    uv_timer_t tick;
    uint32_t switching; /* the id of the worker being switched; 0: none */
    uint8_t target;     /* the role it is switching to */
};

/* The worker being switched (no other has its id: rb_decide never picks one whose id the other role
 * uses), or NULL once it is gone. */
static struct cl_worker *switching_worker(struct rebalancer *r)
{
    struct cl_worker *w = cluster_workers(r->cluster);
    while (w && w->id != r->switching)
        w = w->next;
    return w;
}

static void send_role(struct cl_worker *w, const char *why)
{
    struct wire_msg m = {.type = WIRE_ROLE};
    m.u.role.role = w->switch_to;
    snprintf(m.u.role.why, sizeof m.u.role.why, "%s", why);
    struct error err;
    if (ucx_send(w->peer, &m, NULL, NULL, &err) < 0) {
        log_warn("rebalance: sending ROLE to worker %u: %s; it keeps its role", w->id, err.msg);
        w->switch_to = 0;
        return;
    }
    w->switch_sent = true;
}

/* A switch under way: ROLE once our sequences there have ended; done when the worker registered. */
static void follow(struct rebalancer *r, uint64_t now)
{
    struct cl_worker *w = switching_worker(r);
    if (!w || !w->switch_to) { /* registered again (cluster.c cleared switch_to), or gone */
        if (w && w->role == r->target)
            r->st.n_switches++;
        rb_switched(&r->st, &r->cfg, now);
        r->switching = 0;
    } else if (now > w->switch_ms + RB_GIVE_UP_MS) {
        log_warn("rebalance: worker %u did not switch to %s within %d s; routing to it as %s again", w->id,
                 wire_role_name(w->switch_to), RB_GIVE_UP_MS / 1000, wire_role_name(w->role));
        w->switch_to = 0;
    } else if (!w->switch_sent && (w->role == WIRE_ROLE_PREFILL || w->inflight == 0)) {
        send_role(w, r->st.why);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct rebalancer *r = t->data;
    uint64_t now = uv_now(r->loop);
    if (r->switching) {
        follow(r, now);
        return;
    }
    struct rb_worker ws[RB_MAX_WORKERS];
    struct cl_worker *cw[RB_MAX_WORKERS];
    int n = 0;
    for (struct cl_worker *w = cluster_workers(r->cluster); w && n < RB_MAX_WORKERS; w = w->next, n++) {
        cw[n] = w;
        ws[n] = rb_worker_of(w->id, w->role, w->reg.pinned || w->load.draining, w->inflight, &w->slo);
    }
    struct rb_decision d;
    if (!rb_decide(&r->st, &r->cfg, now, ws, n, &d))
        return;
    struct cl_worker *w = cw[d.index];
    log_info("rebalance: switching %s worker %u to %s: %s", wire_role_name(w->role), w->id, wire_role_name(d.to),
             d.why);
    snprintf(r->st.why, sizeof r->st.why, "%s", d.why);
    w->switch_to = d.to;
    w->switch_ms = now;
    w->switch_sent = false;
    r->switching = w->id;
    r->target = d.to;
    follow(r, now);
}

struct rebalancer *rebalancer_new(uv_loop_t *loop, struct cluster *c, const struct rb_config *cfg)
{
    struct rebalancer *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->loop = loop;
    r->cluster = c;
    r->cfg = *cfg;
    rb_init(&r->st, cfg, uv_now(loop));
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, RB_TICK_MS, RB_TICK_MS);
    return r;
}

static void free_rebalancer(uv_handle_t *h) { free(h->data); }

void rebalancer_free(struct rebalancer *r)
{
    if (r)
        uv_close((uv_handle_t *)&r->tick, free_rebalancer);
}

void rebalancer_note_prompt(struct rebalancer *r, uint32_t tokens)
{
    if (r)
        rb_note_prompt(&r->st, &r->cfg, uv_now(r->loop), tokens);
}

double rebalancer_load(const struct rebalancer *r) { return r ? r->st.load : 0; }
uint64_t rebalancer_switches(const struct rebalancer *r) { return r ? r->st.n_switches : 0; }
