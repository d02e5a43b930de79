/* route_slo.h — SLO-aware routing, DistServe's conditional disaggregation (docs/frontend.md,
 * "SLO-aware routing"). With --slo-ttft-ms the frontend chooses per sequence between the
 * disaggregated path (a prefill worker computes the prompt and streams its KV to a decode worker) and
 * the local one (a colocated worker, which also decodes, prefills the prompt itself), from live queue
 * state and per-worker costs measured online:
 *
 *  - each worker's prefill speed, in ms per queued prompt token: from dispatch to first token over the
 *    prompt tokens that were ahead of it (its own included), averaged over its recent sequences by
 *    their tokens (common/util/decayed.h);
 *  - each decode-capable worker's time per output token: an EWMA over the gaps between the tokens
 *    its sequences receive (a message of n tokens counts once, its wait over n).
 *
 * The disaggregated path is taken whenever its predicted TTFT is within SLO_SPLIT_SHARE of the SLO:
 * it keeps prompt work out of the decode passes, and the share leaves the prediction room to be
 * wrong (taken up to the SLO itself, a prefill worker ran at the SLO's edge, where any prompt
 * predicted short missed). Otherwise the local path is taken if it predicts a shorter TTFT and, with
 * --slo-tpot-ms, the prompt work that worker has to do up to this prompt's first token (the prompts
 * already sent there and this one), spread over this sequence's tokens, keeps its TPOT within the
 * SLO: all of that work lands in the lives of the sequences decoding there, since the worker holds no
 * prompt past its TTFT SLO. Everything here runs on the loop thread. */
#ifndef PD_ROUTE_SLO_H
#define PD_ROUTE_SLO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util/decayed.h"

struct cl_worker;

#define SLO_SPLIT_SHARE 0.8 /* of the TTFT SLO: a prefill worker predicted past it is not counted on */

/* Online costs of one worker (kept in struct cl_worker). 0: not measured yet. */
struct slo_costs {
    double prefill_ms_per_token; /* decayed_value(&prefill) */
    double tpot_ms;
    double ttft_ms;              /* EWMA of its prompts' dispatch to first token */
    struct decayed_ratio prefill; /* ms over prompt tokens */
};

struct slo_route {
    double ttft_ms, tpot_ms; /* 0: SLO-aware routing off */
    uint64_t n_split, n_local; /* sequences routed each way while on */
};

/* The first token of a prompt arrived `ms` after dispatch; `tokens` prompt tokens were ahead of it on
 * w, its own included. */
void slo_observe_prefill(struct slo_costs *w, double tokens, double ms);
/* A token of a sequence decoding on w came `ms` after the one before. */
void slo_observe_tpot(struct slo_costs *w, double ms);
/* Predicted TTFT on a worker with `tokens` prompt tokens to compute up to this prompt's last;
 * `fallback` is the ms per token assumed until it has been measured. */
double slo_predict_ttft(const struct slo_costs *w, double tokens, double fallback);
/* The two paths for one sequence, as predicted. */
struct slo_paths {
    double split_ms, local_ms; /* TTFT each way; local_ms is also the colocated worker's prompt work */
    uint32_t out_tokens;       /* the sequence's max_tokens */
};

/* Whether the local path is the one to take (rules above); local: the colocated worker's costs. */
bool slo_go_local(const struct slo_route *r, const struct slo_paths *p, const struct slo_costs *local);

#endif
