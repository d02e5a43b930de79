/* rebalance_policy.c — when to move a worker between the prefill and the colocated role
 * (rebalance_policy.h). */
#include "frontend/rebalance_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"

static int window(const struct rb_config *c)
{
    return c->window_s < 1 ? 1 : c->window_s > RB_MAX_WINDOW_S ? RB_MAX_WINDOW_S : c->window_s;
}

/* The ring holds the window's whole seconds and the current one. */
static uint64_t slot(const struct rb_config *c, uint64_t second)
{
    return second % (uint64_t)(window(c) + 1);
}

/* Moves the ring to now's second, zeroing the seconds it passes. */
static void advance(struct rb_state *s, const struct rb_config *c, uint64_t now_ms)
{
    uint64_t sec = now_ms / 1000;
    for (int i = 0; s->second < sec && i <= window(c); i++)
        s->tokens[slot(c, ++s->second)] = 0;
    s->second = sec;
}

int rb_config_check(const struct rb_config *c, char *err, size_t errlen)
{
    if (c->low >= c->high)
        return snprintf(err, errlen, "--rebalance-low (%g) must be below --rebalance-high (%g), or roles would flap",
                        c->low, c->high), -1;
    if (c->max_busy > 0 && c->max_busy <= c->high)
        return snprintf(err, errlen, "--rebalance-max (%g) must be above --rebalance-high (%g), or no prefill worker "
                        "is ever taken on (0: no cap)", c->max_busy, c->high), -1;
    return 0;
}

struct rb_worker rb_worker_of(uint32_t id, uint8_t role, bool held, int inflight, const struct slo_costs *costs)
{
    return (struct rb_worker){.id = id, .role = role, .pinned = held, .ms_per_token = costs->prefill_ms_per_token,
                              .inflight = inflight, .tpot_ms = costs->tpot_ms, .ttft_ms = costs->ttft_ms};
}

void rb_init(struct rb_state *s, const struct rb_config *c, uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->second = now_ms / 1000;
    s->quiet_until_ms = now_ms + (uint64_t)window(c) * 1000;
}

/* Prompt tokens in the window's whole seconds. */
static uint64_t window_tokens(const struct rb_state *s, const struct rb_config *c)
{
    uint64_t sum = 0;
    for (uint64_t i = 1; i <= (uint64_t)window(c) && i <= s->second; i++)
        sum += s->tokens[slot(c, s->second - i)];
    return sum;
}

void rb_note_prompt(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, uint32_t tokens)
{
    advance(s, c, now_ms);
    if (window_tokens(s, c) == 0 && s->tokens[slot(c, s->second)] == 0)
        s->busy_since_ms = now_ms;
    s->tokens[slot(c, s->second)] += tokens;
    s->last_prompt_ms = now_ms;
}

void rb_switched(struct rb_state *s, const struct rb_config *c, uint64_t now_ms)
{
    s->quiet_until_ms = now_ms + (uint64_t)window(c) * 1000;
    s->low = false;
}

/* Whether `cond`, true now, has held since it last turned true (*on, *since) for `for_ms`. */
static bool held_for(bool *on, uint64_t *since, bool cond, uint64_t now_ms, uint64_t for_ms)
{
    if (cond && !*on)
        *since = now_ms;
    *on = cond;
    return cond && now_ms >= *since + for_ms;
}

/* Whether the work has stayed under `low` for RB_SHRINK_WINDOWS windows, as of this tick. */
static bool low_for_long(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, int n_prefill)
{
    bool low = n_prefill > 0 && s->load < c->low * n_prefill;
    return held_for(&s->low, &s->low_since_ms, low, now_ms, (uint64_t)RB_SHRINK_WINDOWS * (uint64_t)window(c) * 1000);
}

/* Whether the prefilling workers' TTFT and the decoding workers' TPOT have both stayed past their
 * pressure marks for a whole window, as of this tick (always, without SLOs to judge by: the prompt
 * work alone decides). A moment's peak of the two averages near capacity is not colocation failing. */
static bool strained_for_long(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, bool strained)
{
    if (c->ttft_slo_ms <= 0)
        return true;
    return held_for(&s->straining, &s->straining_since_ms, strained, now_ms, (uint64_t)window(c) * 1000);
}

/* The cost of a prompt token on a core of its own: the fastest prefill measured on a prefill worker,
 * remembered for when there is none; before any prefill worker was measured, the fastest colocated
 * one. A colocated worker's measure (dispatch to first token) also counts the decode passes its
 * prompts share steps with, so it rises with the decode load: taken as the prompts' cost, it had a
 * deployment of colocated workers see twice the prompt work its prefill worker had seen a minute
 * before, and switch back and forth every window (bench-goodput, 512 in / 64 out). */
static double prompt_ms_per_token(struct rb_state *s, const struct rb_worker *w, int n)
{
    double prefill = 0, colocated = 0;
    for (int i = 0; i < n; i++) {
        double *best = w[i].role == WIRE_ROLE_PREFILL ? &prefill : &colocated;
        if (w[i].ms_per_token > 0 && (*best == 0 || w[i].ms_per_token < *best))
            *best = w[i].ms_per_token;
    }
    if (prefill > 0)
        s->prefill_ms_per_token = prefill;
    return s->prefill_ms_per_token > 0 ? s->prefill_ms_per_token : colocated;
}

static bool decodes(uint8_t role) { return role == WIRE_ROLE_DECODE || role == WIRE_ROLE_COLOCATED; }

/* The highest TPOT measured on a decoding worker when it has reached RB_TPOT_PRESSURE of the SLO;
 * else 0. */
static double decode_pressure(const struct rb_config *c, const struct rb_worker *w, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++)
        if (decodes(w[i].role) && w[i].tpot_ms > worst)
            worst = w[i].tpot_ms;
    return c->tpot_slo_ms > 0 && worst >= RB_TPOT_PRESSURE * c->tpot_slo_ms ? worst : 0;
}

/* The highest TTFT measured on a worker that prefills when it has reached RB_TTFT_PRESSURE of the
 * SLO; else 0. Without a TTFT SLO, -1: the prompt work alone decides. */
static double prefill_pressure(const struct rb_config *c, const struct rb_worker *w, int n)
{
    if (c->ttft_slo_ms <= 0)
        return -1;
    double worst = 0;
    for (int i = 0; i < n; i++)
        if (w[i].role != WIRE_ROLE_DECODE && w[i].ttft_ms > worst)
            worst = w[i].ttft_ms;
    return worst >= RB_TTFT_PRESSURE * c->ttft_slo_ms ? worst : 0;
}

/* Worker ids are unique per role (prefill, or decoding): another worker of the role w[i] would take
 * holds its id, and the two would be taken for one. */
static bool id_taken(const struct rb_worker *w, int n, int i, uint8_t to)
{
    for (int j = 0; j < n; j++)
        if (j != i && w[j].id == w[i].id && decodes(w[j].role) == decodes(to))
            return true;
    return false;
}

/* The unpinned worker of role `from` with the fewest of our sequences on it that can take role
 * `to`; -1 if none. */
static int least_busy(const struct rb_worker *w, int n, uint8_t from, uint8_t to)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (w[i].role == from && !w[i].pinned && !id_taken(w, n, i, to) &&
            (best < 0 || w[i].inflight < w[best].inflight))
            best = i;
    return best;
}

static bool decide(struct rb_decision *d, int index, uint8_t to)
{
    d->index = index;
    d->to = to;
    d->why[0] = '\0';
    return index >= 0;
}

/* Appends to the decision's reason (cut at its size). */
__attribute__((format(printf, 2, 3))) static void add_why(struct rb_decision *d, const char *fmt, ...)
{
    size_t len = strlen(d->why);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why + len, sizeof d->why - len, fmt, ap);
    va_end(ap);
}

bool rb_decide(struct rb_state *s, const struct rb_config *c, uint64_t now_ms, const struct rb_worker *w, int n,
               struct rb_decision *d)
{
    advance(s, c, now_ms);
    double ms = prompt_ms_per_token(s, w, n);
    uint64_t sum = window_tokens(s, c);
    double tokens_per_s = (double)sum / window(c);
    s->load = tokens_per_s * ms / 1000;
    int n_prefill = 0, n_decoding = 0, n_pure_decode = 0;
    for (int i = 0; i < n; i++) {
        n_prefill += w[i].role == WIRE_ROLE_PREFILL;
        n_decoding += decodes(w[i].role);
        n_pure_decode += w[i].role == WIRE_ROLE_DECODE;
    }
    double pressure = decode_pressure(c, w, n), waiting = prefill_pressure(c, w, n);
    bool shrink = low_for_long(s, c, now_ms, n_prefill) || (s->low && pressure > 0);
    bool colocation_fails = strained_for_long(s, c, now_ms, waiting != 0 && (c->tpot_slo_ms <= 0 || pressure > 0));
    bool window_busy = sum > 0 && now_ms >= s->busy_since_ms + (uint64_t)window(c) * 1000 &&
                       now_ms < s->last_prompt_ms + (uint64_t)window(c) * 500;
    if (ms <= 0 || !window_busy || now_ms < s->quiet_until_ms)
        return false; /* nothing measured, not a whole window of traffic to judge by, or too soon */
    char work[96];
    snprintf(work, sizeof work, "prompt work %.2f workers (%.0f tokens/s x %.3f ms)", s->load, tokens_per_s, ms);
    bool can_keep_up = c->ttft_slo_ms <= 0 || c->max_busy <= 0 || s->load <= c->max_busy * (n_prefill + 1);
    if (s->load >= c->high * (n_prefill + 1) && colocation_fails && can_keep_up && n_decoding > 1 &&
        decide(d, least_busy(w, n, WIRE_ROLE_COLOCATED, WIRE_ROLE_PREFILL), WIRE_ROLE_PREFILL)) {
        add_why(d, "%s would keep %d prefill worker%s at least %.2f busy", work, n_prefill + 1, n_prefill ? "s" : "",
                c->high);
        if (waiting > 0)
            add_why(d, ", and for a window a prefilling worker's TTFT is %.0f ms of the %d ms SLO", waiting,
                    c->ttft_slo_ms);
        if (pressure > 0)
            add_why(d, ", a decoding worker's TPOT %.1f ms of %d", pressure, c->tpot_slo_ms);
        return true;
    }
    if (shrink && !(n_prefill == 1 && n_pure_decode > 0) &&
        decide(d, least_busy(w, n, WIRE_ROLE_PREFILL, WIRE_ROLE_COLOCATED), WIRE_ROLE_COLOCATED)) {
        add_why(d, "%s keeps %d prefill worker%s under %.2f busy each, for %d s", work, n_prefill,
                n_prefill > 1 ? "s" : "", c->low, (int)((now_ms - s->low_since_ms) / 1000));
        if (pressure > 0)
            add_why(d, ", while a decoding worker's TPOT is %.1f ms of the %d ms SLO", pressure, c->tpot_slo_ms);
        return true;
    }
    return false;
}
