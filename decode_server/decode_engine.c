/* decode_engine.c — the decode worker's engine thread: continuous batching (decode.h).
 *
 * Each iteration: take admissions and aborts, pick the batch (decoding sequences first, then prompt
 * chunks of colocated requests or recomputations, under the token budget and --max-batch), run one
 * forward pass, report every new token to the loop in one mail, drop finished sequences.
 *
 * TPOT SLOs (Sarathi-Serve's stall-free batching, held to the mean): when a decoding sequence carries
 * one, the step's prompt tokens are cut to what fits in the time the tightest such sequence can give
 * this step, predicted from this worker's own measured step costs. A sequence can give SLO_SHARE of
 * its SLO for every token it has had since its first, this one included, less what those took: its
 * mean time per token, which its SLO bounds (TPOT as pdserve-bench and vLLM measure it), so never
 * passes SLO_SHARE of the SLO, and a sequence that ran under it has time to give. It also lends what
 * its next steps will leave (each step of decodes alone leaves what it takes less than SLO_SHARE of
 * the SLO), for as many tokens as max_tokens still allows, at most SLO_LEND_TOKENS: a sequence that
 * runs to its length then ends within SLO_SHARE of its SLO, one that stops sooner (a stop token) may
 * end above it by what it lent. Prompts wait while that time gathers to what SLO_MIN_PROMPT tokens
 * cost, or the rest of the waiting prompts if less, as long as waiting can pay: before the first
 * waiting prompt is due (waiting one step more, then taking SLO_MIN_PROMPT tokens a step, it would
 * miss its TTFT SLO), the tightest sequence gathers that time, or ends. Otherwise a step takes
 * SLO_MIN_PROMPT tokens at once: held until due, the prompt would cost the decodes as much, only
 * later, and its TTFT besides. A certain TTFT miss is never traded for a possible TPOT one: the
 * decodes' time is a mean over their whole length, which one step more moves by a little. A step
 * also takes SLO_MIN_PROMPT tokens when nothing gathers (or prompts would never advance).
 *
 * Without the cut one 512-token prompt makes every running sequence wait for its whole prefill. The
 * cut's earlier versions, each measured by bench-goodput: cutting each step to the SLO starved
 * prompts of a busy worker (16 tokens a step while its decodes alone took most of the SLO; 128 in /
 * 256 out: p90 TTFT 556 ms against 146 uncut); taking SLO_MIN_PROMPT tokens whenever the time fell
 * short broke the TPOT of sequences decoding beside a queue of prompts (512 in / 64 out at 2.47
 * req/s: 17 of 19 misses were TPOT, in runs of 5-14 steps of 80-180 ms); lending nothing ahead kept
 * every TPOT but starved prompts beside long decodes (128 in / 256 out: 35 of 100 TTFTs missed at
 * 3.06 req/s, none of the TPOTs); lending 64 tokens ahead still held prompts for 1.3-1.7 s beside
 * young decodes, which have little to give (128 in / 256 out at 1.93 req/s: 22 of 100 TTFTs missed,
 * 2 TPOTs; two uncut colocated workers missed none), hence the TTFT deadline; holding each prompt until
 * due when nothing would gather in time cost TTFT and saved no TPOT (two colocated workers, 128 in /
 * 256 out at 1.9 req/s, SLOs 209 / 12 ms: 96% and 88% of 200 met against 99.5% and 95.5% uncut), hence
 * waiting only while it can pay (the same runs: 99.5% and 100% against 97.5% and 99.5%). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "common/util/log.h"

/* Step costs, measured on this worker's steps (an EWMA of weight COST_WEIGHT): a step of decodes
 * alone, and what each prompt token adds to one. token_s is measured from steps of at least
 * COST_MIN_TOKENS prompt tokens, whose time the fixed part does not swamp; 0 until then. */
#define COST_WEIGHT 0.2
#define COST_MIN_TOKENS 16
struct dc_costs {
    double decode_s, token_s;
};
/* Under a TPOT SLO a sequence's mean time per token aims at this share of it, the rest being the
 * margin for what the worker does not see (mail, token reports, the frontend, timing noise); and a
 * step with prompt tokens carries at least SLO_MIN_PROMPT of them (or the whole rest of a prompt that
 * has fewer). Small chunks cost more a token on a CPU (a 16-token prompt pass 0.75 ms a
 * token on the `small` preset, 128 tokens 0.55): with 16, a busy colocated pair of workers serving
 * 128 in / 256 out under the SLOs reached 2.61 req/s, with 128 2.96 (bench-goodput). */
#define SLO_SHARE 0.9
#define SLO_MIN_PROMPT 128
#define SLO_LEND_TOKENS 64

struct dc_engine {
    struct worker *w;
    struct seq **seqs; /* admitted, oldest first; the first max_batch of them run */
    int n, cap;
    struct seq **batch; /* this iteration's, in priority order */
    int *before;        /* n_tokens of each batch member before the step */
    int n_decoding;     /* batch[0..n_decoding) decode one token each; the rest compute prompts */
    struct dc_costs costs;
    struct dc_tokens *out; /* tokens of this iteration, posted to the loop in one mail */
    int out_cap;
};

static int grow(struct dc_engine *de, int need)
{
    if (need <= de->cap)
        return 0;
    int cap = need * 2;
    struct seq **s = realloc(de->seqs, (size_t)cap * sizeof *s), **b;
    if (s)
        de->seqs = s;
    b = realloc(de->batch, (size_t)cap * sizeof *b);
    if (b)
        de->batch = b;
    int *bf = realloc(de->before, (size_t)cap * sizeof *bf);
    if (bf)
        de->before = bf;
    if (!s || !b || !bf)
        return -1;
    de->cap = cap;
    return 0;
}

static void emit(struct dc_engine *de, struct dc_token k)
{
    int n = de->out ? de->out->n : 0;
    if (!de->out || n == de->out_cap) {
        int cap = n ? 2 * n : 64;
        struct dc_tokens *o = realloc(de->out, sizeof *o + (size_t)cap * sizeof(struct dc_token));
        if (!o) {
            log_error("out of memory reporting tokens; request %llu loses one", (unsigned long long)k.req_id);
            prompt_logprobs_free(k.prompt_lp);
            return;
        }
        o->n = n;
        o->mail.type = DC_TOKENS;
        de->out = o;
        de->out_cap = cap;
    }
    de->out->t[de->out->n++] = k;
}

static void flush_tokens(struct dc_engine *de)
{
    if (de->out)
        mailbox_post(&de->w->to_loop, &de->out->mail);
    de->out = NULL;
}

static void remove_at(struct dc_engine *de, int i)
{
    engine_seq_release(de->seqs[i], &de->w->engine.kv);
    free(de->seqs[i]);
    memmove(&de->seqs[i], &de->seqs[i + 1], (size_t)(de->n - i - 1) * sizeof *de->seqs);
    de->n--;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void take_mail(struct dc_engine *de)
{
    for (struct mail *m = mailbox_take_all(&de->w->to_engine), *next; m; m = next) {
        next = m->next;
        if (m->type == DC_ADMIT) {
            struct seq *s = ((struct dc_admit *)m)->seq;
            if (engine_seq_n_generated(s) > 0) /* a prefill worker's, with its first token */
                s->first_token_s = now_s();
            else if (s->ttft_slo_ms)
                s->ttft_deadline_s = now_s() + s->ttft_slo_ms / 1e3;
            if (grow(de, de->n + 1) == 0) {
                de->seqs[de->n++] = s;
            } else {
                emit(de, (struct dc_token){.req_id = s->id, .finish = FINISH_ERROR, .error = DC_ERR_NOMEM});
                engine_seq_release(s, &de->w->engine.kv);
                free(s);
            }
        } else if (m->type == DC_ABORT) {
            for (int i = 0; i < de->n; i++)
                if (de->seqs[i]->id == ((struct dc_abort *)m)->req_id) {
                    remove_at(de, i);
                    break;
                }
        }
        free(m);
    }
}

/* The batch: running decodes first (one token each), then sequences with more to compute (prompt
 * chunks, recomputations) — a sequence not started yet only if the pool can hold its tokens now. */
static int pick_batch(struct dc_engine *de)
{
    struct engine *e = &de->w->engine;
    int limit = de->n < de->w->opts.max_batch ? de->n : de->w->opts.max_batch, nb = 0;
    int free_blocks = e->kv.n_blocks - kv_used(&e->kv);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < limit; i++) {
            struct seq *s = de->seqs[i];
            bool decoding = s->n_tokens - s->n_cached == 1 && s->n_cached > 0;
            if (decoding != (pass == 0))
                continue;
            if (!decoding && s->n_cached == 0) {
                int need = kv_blocks_for(&e->kv, s->n_tokens);
                if (need > free_blocks)
                    continue;
                free_blocks -= need;
            }
            de->before[nb] = s->n_tokens;
            de->batch[nb++] = s;
        }
        if (pass == 0)
            de->n_decoding = nb;
    }
    return nb;
}

/* The time s can give this step (above), a step of decodes alone taking decode_s. */
static double time_to_give(const struct seq *s, double decode_s, double now)
{
    double share = s->tpot_slo_ms / 1e3 * SLO_SHARE;
    int tokens = engine_seq_n_generated(s); /* since its first, with this step's */
    int ahead = s->params.max_tokens - tokens - 1;
    ahead = ahead < SLO_LEND_TOKENS ? ahead : SLO_LEND_TOKENS;
    double lent = ahead > 0 && share > decode_s ? ahead * (share - decode_s) : 0;
    return share * tokens - (now - s->first_token_s) + lent;
}

/* The steps of decodes alone the prompts of the step's batch [n_decoding, nb) can still wait: after
 * them, one more and then SLO_MIN_PROMPT tokens a step would miss the first one's TTFT SLO (above).
 * At most 0 once one is due; INFINITY when none has a TTFT SLO. */
static double prompt_slack(const struct dc_engine *de, int nb, double now)
{
    double slack = INFINITY, d = de->costs.decode_s;
    for (int i = de->n_decoding; i < nb; i++) {
        const struct seq *s = de->batch[i];
        if (!s->ttft_slo_ms || engine_seq_n_generated(s) > 0)
            continue; /* no TTFT SLO, or recomputing after a preemption: its first token is out */
        int rest = s->n_tokens - s->n_cached, steps = (rest + SLO_MIN_PROMPT - 1) / SLO_MIN_PROMPT;
        double spare = s->ttft_deadline_s - now - rest * de->costs.token_s - steps * d;
        double k = d > 0 ? spare / d - 1 : spare > 0 ? INFINITY : 0; /* d: not measured yet */
        slack = k < slack ? k : slack;
    }
    return slack;
}

/* Whether holding the prompts can pay (above): within `slack` steps, before the first is due, the
 * tightest sequence (`left` tokens to go) gathers the `need` its `room` lacks, or ends. Its time grows
 * by `per_step` a step only until its last SLO_LEND_TOKENS, which it has lent already. */
static bool worth_waiting(double room, double need, double per_step, double slack, int left)
{
    if (slack >= left)
        return true;
    double gaining = left - 1 - SLO_LEND_TOKENS > 0 ? left - 1 - SLO_LEND_TOKENS : 0;
    return room + (slack < gaining ? slack : gaining) * per_step >= need;
}

/* The prompt tokens a step may carry while the tightest decoding sequence can give `give` seconds
 * and gathers `per_step` more with each step of decodes alone, `waiting` prompt tokens being ready
 * (above): what fits, once that is SLO_MIN_PROMPT or all that wait; none while waiting can pay; and
 * SLO_MIN_PROMPT when it cannot (nothing gathers, or not enough before a prompt is due) or a prompt
 * token's cost is not measured yet. */
static int prompt_room(const struct dc_costs *c, double give, double per_step, int waiting, double slack, int left)
{
    double room = give - c->decode_s;
    if (c->token_s <= 0 || per_step <= 0)
        return SLO_MIN_PROMPT;
    int least = waiting < SLO_MIN_PROMPT ? waiting : SLO_MIN_PROMPT;
    if (room >= least * c->token_s)
        return (int)(room / c->token_s);
    return worth_waiting(room, least * c->token_s, per_step, slack, left) ? 0 : SLO_MIN_PROMPT;
}

/* The step's token budget: --token-budget, or, when prompt tokens wait and a decoding sequence has a
 * TPOT SLO, its decodes plus the prompt tokens prompt_room allows. */
static int step_budget(const struct dc_engine *de, int nb, double now)
{
    int full = de->w->opts.token_budget, waiting = 0;
    for (int i = de->n_decoding; i < nb; i++)
        waiting += de->batch[i]->n_tokens - de->batch[i]->n_cached;
    if (waiting == 0)
        return full; /* nothing to cut (nor to count as cut: after_step) */
    const struct seq *tightest = NULL;
    double give = 0;
    for (int i = 0; i < de->n_decoding; i++) {
        const struct seq *s = de->batch[i];
        if (!s->tpot_slo_ms)
            continue;
        double g = time_to_give(s, de->costs.decode_s, now);
        if (!tightest || g < give)
            tightest = s, give = g;
    }
    if (!tightest)
        return full;
    double per_step = tightest->tpot_slo_ms / 1e3 * SLO_SHARE - de->costs.decode_s;
    int left = tightest->params.max_tokens - engine_seq_n_generated(tightest);
    int prompt = prompt_room(&de->costs, give, per_step, waiting, prompt_slack(de, nb, now), left);
    return de->n_decoding + prompt < full ? de->n_decoding + prompt : full;
}

static double ewma(double old, double x)
{
    return old > 0 ? old + COST_WEIGHT * (x - old) : x;
}

static void learn_costs(struct dc_costs *c, int n_decoding, int n_prompt, double seconds)
{
    if (n_prompt == 0 && n_decoding > 0)
        c->decode_s = ewma(c->decode_s, seconds);
    else if (n_prompt >= COST_MIN_TOKENS) {
        double per = (seconds - (n_decoding ? c->decode_s : 0)) / n_prompt;
        if (per > 0)
            c->token_s = ewma(c->token_s, per);
    }
}

/* Frees the newest sequence's blocks; it recomputes from its tokens when there is room again. */
static bool preempt_newest(struct dc_engine *de)
{
    for (int i = de->n - 1; i > 0; i--) {
        struct seq *s = de->seqs[i];
        if (s->kv.n_blocks == 0)
            continue;
        log_info("KV pool full: preempting request %llu (%d tokens) for recomputation",
                 (unsigned long long)s->id, s->n_tokens);
        engine_seq_uncache(s, &de->w->engine.kv);
        worker_note_preemption(de->w);
        return true;
    }
    return false;
}

/* Reports the batch's new tokens and finishes; a sequence that ended with FINISH_ERROR this
 * iteration did so for `why`. */
static void report_and_reap(struct dc_engine *de, int nb, enum dc_error why)
{
    for (int i = 0; i < nb; i++) {
        struct seq *s = de->batch[i];
        enum dc_error error = s->finish == FINISH_ERROR ? why : DC_ERR_NONE;
        for (int t = de->before[i]; t < s->n_tokens; t++) {
            emit(de, (struct dc_token){.req_id = s->id, .has_token = true, .token = s->tokens[t],
                                       .logprob = s->last_logprob, .top = s->last_top,
                                       .cached_tokens = (uint32_t)s->n_cache_hit,
                                       .prompt_lp = t == s->n_prompt ? s->prompt_lp : NULL,
                                       .finish = t == s->n_tokens - 1 ? s->finish : FINISH_NONE,
                                       .error = t == s->n_tokens - 1 ? error : DC_ERR_NONE});
            if (t == s->n_prompt)
                s->prompt_lp = NULL; /* the token took it */
        }
        if (de->before[i] == s->n_tokens && s->finish != FINISH_NONE) /* ended without a token */
            emit(de, (struct dc_token){.req_id = s->id, .finish = s->finish, .error = error});
    }
    for (int i = 0; i < de->n;)
        if (de->seqs[i]->finish != FINISH_NONE)
            remove_at(de, i);
        else
            i++;
    flush_tokens(de);
}

/* Learns the step's costs, counts it when a TPOT SLO cut its prompt tokens, and notes when the
 * sequences whose prompts it finished got their first token. */
static void after_step(struct dc_engine *de, int budget, const struct step_result *r, double now)
{
    for (int i = 0; i < r->n_scheduled; i++)
        if (de->before[i] <= de->batch[i]->n_prompt && engine_seq_n_generated(de->batch[i]) > 0)
            de->batch[i]->first_token_s = now;
    int decodes = de->n_decoding < r->n_scheduled ? de->n_decoding : r->n_scheduled;
    learn_costs(&de->costs, decodes, r->n_tokens - decodes, r->seconds);
    if (budget < de->w->opts.token_budget && r->n_tokens >= budget)
        worker_note_slo_step(de->w);
}

/* One iteration; returns false when there was nothing to compute. */
static bool iterate(struct dc_engine *de)
{
    struct worker *w = de->w;
    int nb = pick_batch(de);
    if (nb == 0)
        return false;
    struct step_result r;
    struct error err;
    enum dc_error why = DC_ERR_NONE;
    int budget = step_budget(de, nb, now_s());
    if (worker_step(w, de->batch, nb, budget, NULL, NULL, &r, &err) < 0) {
        log_error("decode step failed: %s; failing the batch", err.msg);
        for (int i = 0; i < nb; i++)
            de->batch[i]->finish = FINISH_ERROR;
        why = DC_ERR_STEP;
    } else if (r.out_of_blocks && !preempt_newest(de)) {
        /* Nobody newer to preempt: wait for older sequences to finish — unless this one alone
         * holds every block in use, and so can never fit. */
        struct seq *s = de->batch[r.n_scheduled];
        if (s->kv.n_blocks == kv_used(&w->engine.kv)) {
            log_error("request %llu (%d tokens) needs more KV blocks than the whole pool; ending it",
                      (unsigned long long)s->id, s->n_tokens);
            s->finish = FINISH_ERROR;
            why = DC_ERR_KV_FULL;
        }
    }
    if (why != DC_ERR_STEP)
        after_step(de, budget, &r, now_s());
    report_and_reap(de, nb, why);
    return r.n_tokens > 0;
}

void decode_engine_main(struct worker *w)
{
    struct dc_engine de = {.w = w};
    struct dc_state *d = w->state;
    while (!worker_stopping(w)) {
        take_mail(&de);
        bool progressed = iterate(&de);
        atomic_store(&d->load.running, (uint32_t)(de.n < w->opts.max_batch ? de.n : w->opts.max_batch));
        atomic_store(&d->load.waiting, (uint32_t)(de.n > w->opts.max_batch ? de.n - w->opts.max_batch : 0));
        if (!progressed)
            mailbox_wait(&w->to_engine, de.n ? 5 : 100);
    }
    take_mail(&de); /* what was sent last is ended with the rest */
    while (de.n)
        remove_at(&de, 0);
    free(de.out);
    free(de.seqs);
    free(de.batch);
    free(de.before);
}
