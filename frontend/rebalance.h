/* rebalance.h — live prefill:decode rebalancing (docs/frontend.md, "Rebalancing"). With --rebalance
 * the frontend moves workers between the prefill and the colocated role as the prompt work changes.
 * A switch: the worker is routed nothing new (cluster.h's switch_to), ROLE goes to it once our
 * sequences on it have ended (a prefill worker: at once; it drains its transfers itself), and it is
 * routed to again when it registers in its new role (or, having refused, in its old one). The worker
 * waits until it holds no work before it switches (worker/switch.c): nothing in flight is lost.
 *
 * When to switch, and which worker, is rebalance_policy.h's. */
#ifndef PD_REBALANCE_H
#define PD_REBALANCE_H

#include <stdint.h>

#include <uv.h>

#include "frontend/rebalance_policy.h"

/* The rebalancer on the frontend's loop: a tick every RB_TICK_MS. */
struct cluster;
struct rebalancer;
struct rebalancer *rebalancer_new(uv_loop_t *loop, struct cluster *c, const struct rb_config *cfg);
void rebalancer_free(struct rebalancer *r); /* run the loop once more afterwards: its timer closes */
/* A prompt was sent with `tokens` of it to compute (NULL r: rebalancing is off). */
void rebalancer_note_prompt(struct rebalancer *r, uint32_t tokens);
/* For /metrics: the prompt work last measured, in workers, and the switches done. */
double rebalancer_load(const struct rebalancer *r);
uint64_t rebalancer_switches(const struct rebalancer *r);

#endif
