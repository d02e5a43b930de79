/* route_slo.c — SLO-aware routing: the online cost estimates and the choice of path (route_slo.h). */
#include "frontend/route_slo.h"

#define EWMA_WEIGHT 0.2 /* of the newest TPOT or TTFT; the prefill sums keep 1 − this of what came before */

static void ewma(double *avg, double x)
{
    *avg = *avg > 0 ? (1 - EWMA_WEIGHT) * *avg + EWMA_WEIGHT * x : x;
}

void slo_observe_prefill(struct slo_costs *w, double tokens, double ms)
{
    if (tokens < 1 || ms <= 0)
        return;
    decayed_add(&w->prefill, ms, tokens, 1 - EWMA_WEIGHT);
    w->prefill_ms_per_token = decayed_value(&w->prefill);
    ewma(&w->ttft_ms, ms);
}

void slo_observe_tpot(struct slo_costs *w, double ms)
{
    if (ms > 0)
        ewma(&w->tpot_ms, ms);
}

double slo_predict_ttft(const struct slo_costs *w, double tokens, double fallback)
{
    return tokens * (w->prefill_ms_per_token > 0 ? w->prefill_ms_per_token : fallback);
}

bool slo_go_local(const struct slo_route *r, const struct slo_paths *p, const struct slo_costs *local)
{
    if (p->split_ms <= SLO_SPLIT_SHARE * r->ttft_ms || p->local_ms >= p->split_ms)
        return false;
    if (r->tpot_ms <= 0)
        return true;
    /* The prompt passes up to this one's first token delay every token of the sequences decoding
     * there; spread over a sequence as long as this one, they must leave that worker's TPOT within
     * the SLO. Charging this prompt alone let a burst of them through, each fitting by itself. */
    double spread = p->local_ms / (p->out_tokens > 1 ? p->out_tokens - 1 : 1);
    return local->tpot_ms + spread <= r->tpot_ms;
}
