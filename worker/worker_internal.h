/* worker_internal.h — what the runtime's two files share: worker.c (start-up, the frontend
 * connection, draining) and switch.c (a live change of role). Not for the roles. */
#ifndef PD_WORKER_INTERNAL_H
#define PD_WORKER_INTERNAL_H

#include "worker/worker.h"

/* Work the frontend placed here before it heard we are draining (or switching) can still arrive (a
 * KV_RESERVE from a prefill worker that got the GENERATE): a drain lasts at least this long. */
#define DRAIN_GRACE_MS 500

/* REGISTER to the frontend, describing the role the worker has now. */
void worker_send_register(struct worker *w);
/* Accepts peers at --listen (advertised as --advertise) from now on; once is enough. */
int worker_listen(struct worker *w, struct error *err);
/* Hands the engine's mail to the role (on_mail each, then after_mail). */
void worker_take_mail(struct worker *w);
/* Makes the engine thread look at worker_stopping() now rather than at its next wait's end. */
void worker_wake_engine(struct worker *w);
/* Starts the role's engine thread. */
void worker_start_engine(struct worker *w);
/* The role as the frontend sees it (enum wire_role), and its name. */
uint8_t worker_wire_role(const struct worker *w);
const char *worker_role_name(const struct worker *w);

/* switch.c */
void worker_switch_init(struct worker *w);
/* The frontend's ROLE: drain, switch, register again (or say why not by registering unchanged). */
void worker_on_role(struct worker *w, const struct wire_role_switch *m);
/* Gives up a switch in progress (the frontend is gone, or SIGTERM came): the role stays. */
void worker_switch_cancel(struct worker *w, const char *why);

#endif
