/* rebalance_policy.h — when the frontend's rebalancer (rebalance.h) moves a worker between the
 * prefill and the colocated role: the policy alone, pure (no loop, no cluster), so the frontend, its
 * tests and pdserve-plan's simulator (tools/plan/sim.c) run the same code.
 *
 * The policy (rb_decide, asked every RB_TICK_MS) works from:
 *
 *  - the prompt work, in workers: the prompt tokens sent for computing (those a prefix cache held
 *    are not) over the last --rebalance-window-s seconds, times the fastest prefill ms per token
 *    measured on a prefill worker (route_slo.h; the last such measure while there is none, and the
 *    colocated workers' only before the first), per second: the share of one worker's time the
 *    prompts take when nothing else shares its core;
 *  - a colocated worker becomes a dedicated prefill worker when that work would keep one more
 *    prefill worker at least `high` busy (work >= high * (P + 1), P prefill workers now) and
 *    colocation is failing: for a whole window, a prefilling worker's measured TTFT has stayed at
 *    RB_TTFT_PRESSURE of the TTFT SLO and a decoding worker's TPOT at RB_TPOT_PRESSURE of the TPOT
 *    SLO (when there is one). Colocated workers under the TPOT cut (docs/workers.md) keep decodes
 *    within their TPOT while both prefill; a prefill worker taken on the prompt work alone halved the
 *    cores that decode and the ones that prefill beside the decodes, and served less: simulated on
 *    this machine's logged passes, starting from two colocated workers, 2.08 req/s against 2.30 kept
 *    colocated at 512 in / 64 out (SLOs 945 / 15 ms), 3.05 against 3.31 at 1575 / 25 ms, and it took
 *    the worker at the moment's peaks of the two averages near capacity, hence the whole window;
 *    and only while the prefill workers, the new one included, could keep up with the prompts
 *    (work <= max_busy * (P + 1), --rebalance-max): past that, colocation fails because the cluster is
 *    overloaded, and a dedicated prefill worker queues the prompts longer still (bench-goodput,
 *    512 in / 64 out at 2.8 req/s, beyond every deployment's capacity: two colocated workers took a
 *    prefill worker in the warm-up, and kept it for the whole sweep, the work staying over `low`);
 *  - a prefill worker becomes colocated when the prefill workers would each be under `low` busy
 *    (work < low * P), so its core decodes too. Between the two the roles stay: a switch costs a
 *    drain, and the band keeps a steady load from flapping them.
 *
 * A prefill worker is given up only once the work has stayed under `low` for RB_SHRINK_WINDOWS
 * windows in a row: the tail of a burst, or a quiet window in steady traffic, is not a lower load.
 * (bench-goodput's sweeps at 512 in / 64 out, prompt work 0.63, gave the prefill worker up after
 * every run's tail and took it back at the next run's start: 12 switches in 7 minutes, each a drain,
 * and SLO routing at 0.79x the pure deployments.) Taking one on waits a single window: prompts
 * queueing behind too few prefill workers cost TTFT at once. So does giving one up while a decoding
 * worker's measured TPOT has reached RB_TPOT_PRESSURE of the TPOT SLO (--slo-tpot-ms): the decode
 * cores are then what the load is short of, and every window spent waiting breaks TPOTs (bench-
 * goodput, 128 in / 256 out: one colocated worker decoding everything for the 30 s before the
 * switch missed 32 of a run's 100 TPOTs, and that run decided the sweep).
 *
 * One switch at a time, none before prompts have been coming for a whole window and still are (one
 * in the last half window): an idle cluster says nothing about the next load, a window that began
 * idle understates it, and one that holds a lone request says nothing at all (bench-goodput keeps
 * three deployments up while it sweeps them in turn: the SLO-routed one, idle but for its 4-token
 * readiness probe, judged the window of that probe, gave its prefill worker up on the probe's TPOT,
 * took a worker back to prefill 70 s later on the probe's 18.7 ms a token, and gave it up again
 * 10 s after: three drains in its warm-up). None within a window of the last switch, never a pinned
 * worker (--pin-role), never a worker whose id another worker of the new role has (ids are unique
 * per role), never the last worker that decodes, and never the last prefill worker while a pure
 * decode worker (which only takes KV from prefill workers) is registered. */
#ifndef PD_REBALANCE_POLICY_H
#define PD_REBALANCE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend/route_slo.h"

#define RB_MAX_WINDOW_S 600
#define RB_MAX_WORKERS 256 /* the workers one decision looks at */
#define RB_SHRINK_WINDOWS 3 /* windows the work must stay under `low` before a prefill worker goes */
#define RB_TPOT_PRESSURE 0.8 /* ... unless a decoding worker's TPOT is at this share of the SLO */
#define RB_TTFT_PRESSURE 0.8 /* one is taken on only while a prefilling worker's TTFT is at this share */

struct rb_config {
    double low, high; /* busy shares of one worker (above) */
    double max_busy;  /* a prefill worker is taken on only while they would be at most this busy; 0: no cap */
    int window_s;     /* the measure's window, and the least time between switches */
    int tpot_slo_ms;  /* the frontend's TPOT SLO (--slo-tpot-ms); 0: none, no decode pressure */
    int ttft_slo_ms;  /* its TTFT SLO (--slo-ttft-ms); 0: none, prompt work alone takes one on */
};

/* The defaults of pdserve-frontend's --rebalance-* flags, and so of pdserve-plan's. */
#define RB_CONFIG_DEFAULTS {.low = 0.3, .high = 0.6, .max_busy = 0.8, .window_s = 10}

struct rb_state {
    uint64_t tokens[RB_MAX_WINDOW_S + 1]; /* prompt tokens sent per second: a ring of the window's
                                           * whole seconds and the current one */
    uint64_t second;                  /* the current second */
    uint64_t quiet_until_ms;          /* no switch before then */
    uint64_t busy_since_ms;           /* the first prompt after a window without any */
    uint64_t last_prompt_ms;          /* the latest prompt */
    bool low;                         /* the work has been under `low` since low_since_ms */
    uint64_t low_since_ms;
    bool straining;                   /* colocation has missed both SLOs' pressure marks since ... */
    uint64_t straining_since_ms;
    double load;                      /* the last prompt work measured, in workers */
    double prefill_ms_per_token;      /* the last fastest prefill worker's measure; 0: none yet */
    char why[256];                    /* the switch under way's reason */
    uint64_t n_switches;              /* done (the worker registered in its new role) */
};

/* A worker as the policy sees it. */
struct rb_worker {
    uint32_t id;
    uint8_t role;          /* enum wire_role */
    bool pinned;           /* its daemon does not switch */
    double ms_per_token;   /* measured prefill speed; 0: not yet */
    int inflight;          /* sequences of ours on it: the least busy one is switched */
    double tpot_ms;        /* measured TPOT of the sequences it decoded (route_slo.h); 0: not yet */
    double ttft_ms;        /* measured TTFT of the prompts it prefilled (route_slo.h); 0: not yet */
};

/* A worker as the policy sees it, from the router's measured costs of it; `held`: it must not switch. */
struct rb_worker rb_worker_of(uint32_t id, uint8_t role, bool held, int inflight, const struct slo_costs *costs);

struct rb_decision {
    int index;    /* into the workers given */
    uint8_t to;   /* WIRE_ROLE_PREFILL or WIRE_ROLE_COLOCATED */
    char why[256];
};

/* 0 when the band is sound (low < high < max_busy, or max_busy 0); else -1, and why in err. Both the
 * frontend's flags and pdserve-plan's are checked here. */
int rb_config_check(const struct rb_config *c, char *err, size_t errlen);
void rb_init(struct rb_state *s, const struct rb_config *c, uint64_t now_ms);
/* `tokens` prompt tokens were sent for computing at now_ms. */
void rb_note_prompt(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, uint32_t tokens);
/* A switch ended (done or given up) at now_ms: the next one waits a window. */
void rb_switched(struct rb_state *s, const struct rb_config *c, uint64_t now_ms);
/* Whether a worker should switch now; fills *d if so. Updates s->load. */
bool rb_decide(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, const struct rb_worker *w, int n,
               struct rb_decision *d);

/* The rebalancer asks rb_decide (and follows a switch under way) this often. */
#define RB_TICK_MS 250

#endif
