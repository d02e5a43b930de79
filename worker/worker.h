/* worker.h — what the prefill, decode and colocated daemons share: flags, model and engine set-up,
 * the two threads (a libuv loop for the network, an engine thread for compute) and their mailboxes,
 * the connection to the frontend (REGISTER, periodic LOAD, reconnect after either side restarts),
 * SIGTERM draining, systemd notification (READY, STATUS, WATCHDOG), and switching between roles
 * when the frontend asks (switch.c).
 *
 * A daemon fills a `struct worker_role` with each role's behaviour and calls worker_main() with the
 * roles it can take, the first one to start in. Every role
 * callback except engine_main runs on the loop thread; engine_main runs on the engine thread and
 * returns when worker_stopping() says so. */
#ifndef PD_WORKER_H
#define PD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "common/engine/engine.h"
#include "common/util/mailbox.h"
#include "common/engine/model.h"
#include "proto/ucx.h"
#include "proto/wire.h"

struct worker_opts {
    const char *model_dir, *frontend, *listen, *advertise, *name;
    uint32_t id;
    int threads, kv_blocks, block_size, max_batch, token_budget, load_ms, drain_s;
    int kv_wait_s; /* a decode worker refuses a reservation that waited this long for blocks */
    enum model_weights weights; /* --weights */
    enum kn_dtype kv_dtype;     /* --kv-dtype */
    double kv_gib;
    bool colocated;
    bool pin_role;      /* --pin-role: the frontend may not switch this worker's role */
    bool no_prefix_cache;
    const char *cluster_key_file; /* NULL: systemd's credential, or none */
    bool insecure_cluster;        /* non-loopback addresses without a cluster key */
    const char *step_log;         /* --step-log: each step's shape and time appended here */
};

struct worker;

struct worker_role {
    enum wire_role role;
    bool listens; /* accepts peer connections (decode workers) */
    /* After the model, engine and transport are up, before the first connection. Optional. */
    int (*start)(struct worker *w, struct error *err);
    /* At shutdown or when switching away from the role, after the engine thread has stopped and
     * (switching) the role's peers were closed, before the transport is destroyed. Leaves nothing
     * behind: start may run again later on the same state. */
    void (*stop)(struct worker *w);
    void (*on_message)(struct worker *w, struct ucx_peer *from, struct wire_msg *msg);
    void (*on_peer_lost)(struct worker *w, struct ucx_peer *peer);         /* not the frontend */
    void (*on_frontend_lost)(struct worker *w);  /* abort everything the frontend was waiting for */
    void (*on_mail)(struct worker *w, struct mail *m); /* from the engine thread; takes ownership */
    void (*after_mail)(struct worker *w); /* once all mail queued so far was handed over; optional */
    void (*fill_load)(struct worker *w, struct wire_load *load);
    void (*fill_register)(struct worker *w, struct wire_register *reg); /* after the common fields */
    bool (*busy)(struct worker *w); /* in-flight work that draining must wait for */
    void (*engine_main)(struct worker *w);
};

/* The engine thread's counters for LOAD (wire_steps): step times, preemptions and steps shortened
 * for a TPOT SLO, since start. */
struct worker_stats {
    _Atomic uint64_t bucket[WIRE_STEP_BUCKETS], count, sum_ns, preemptions, slo_steps;
};

/* A role the daemon can take, and the state it keeps there. */
struct worker_slot {
    const struct worker_role *role;
    void *state;
};
#define WORKER_MAX_ROLES 2

/* A role switch the frontend asked for (switch.c). */
struct worker_switch {
    bool on;
    uint8_t to; /* enum wire_role */
    uint64_t started_ms, deadline_ms;
    char why[WIRE_ERRMSG_MAX];
    uv_timer_t timer;
};

struct worker {
    struct worker_opts opts;
    const struct worker_role *role; /* the one it has now, one of slots[] */
    void *state; /* the role's own */
    struct worker_slot slots[WORKER_MAX_ROLES];
    int n_slots;
    struct worker_switch sw;
    atomic_bool engine_stop; /* the engine thread returns: the role is being switched */
    uv_loop_t loop;
    struct ucx *ucx;
    struct ucx_peer *frontend; /* NULL while disconnected */
    bool registered;
    struct model *model;
    struct engine engine;
    struct mailbox to_engine, to_loop;
    pthread_t engine_thread;
    atomic_bool stopping;
    bool draining;
    uint64_t drain_started_ms, drain_deadline_ms;
    uv_timer_t load_timer, reconnect_timer, drain_timer;
    bool keys_resync; /* the next LOAD restarts the frontend's index of our cached blocks */
    struct worker_stats stats;
    FILE *step_log; /* --step-log, written by the engine thread */
    uv_signal_t sigterm, sigint;
    char advertise[WIRE_ADDR_MAX];
};

/* Parses the flags every worker takes (see `usage`); daemon-specific ones are none so far but
 * --colocated for decode. Exits on --help; returns -1 on a bad flag. */
int worker_parse_args(int argc, char **argv, const char *prog, bool allow_colocated, struct worker_opts *o);
/* Runs the daemon until SIGTERM/SIGINT has drained it: returns the process exit status. It starts in
 * slots[0]'s role; the others are the roles the frontend may switch it to (none with --pin-role). */
int worker_main(const struct worker_opts *o, const struct worker_slot *slots, int n_slots);

/* From the engine thread: engine_step of at most `budget` tokens (--token-budget, or fewer), its time
 * counted in the LOAD's step histogram when it computed tokens and was not stopped by on_layer (and,
 * with --step-log, the step written there as a pass of pdserve-plan's profile). */
int worker_step(struct worker *w, struct seq **seqs, int n, int budget, bool (*on_layer)(void *ctx, int layer),
                void *ctx, struct step_result *res, struct error *err);
/* From the engine thread: a sequence gave its KV blocks up to be computed again. */
void worker_note_preemption(struct worker *w);
/* From the engine thread: a step carried fewer prompt tokens to keep a TPOT SLO. */
void worker_note_slo_step(struct worker *w);

/* Sends to the frontend; a message while disconnected is dropped (the frontend forgot us anyway). */
void worker_send_frontend(struct worker *w, const struct wire_msg *m);
/* PROMPT_LOGPROBS for a request whose prompt was computed here, with k alternatives a token. */
void worker_send_prompt_logprobs(struct worker *w, uint64_t req_id, const struct prompt_logprobs *p, int k);
/* A disaggregated peer must hold its KV cache in the same dtype and its weights the same way as this
 * worker; -1 with the reason (and the flag to fix) otherwise. */
int worker_check_pair(const struct worker *w, const struct wire_register *peer, struct error *err);
/* Fills the REGISTER that introduces this worker, to the frontend or to a peer worker: role, id,
 * batch, KV layout, listen address, model, and what the role adds (a decode worker: its pool).
 * r->pool.rkey, if set, is the caller's to free. */
void worker_describe(struct worker *w, struct wire_register *r);
/* The engine thread's view: true once the daemon is shutting down or switching roles (engine_main
 * returns; a switch starts the new role's engine afterwards). */
static inline bool worker_stopping(struct worker *w)
{
    return atomic_load(&w->stopping) || atomic_load(&w->engine_stop);
}
/* Convenience for roles: sends an ERROR for req_id to the frontend. */
void worker_send_error(struct worker *w, uint64_t req_id, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Logs an operator-facing line and sets it as the systemd STATUS. */
void worker_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
