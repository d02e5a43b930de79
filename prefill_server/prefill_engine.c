/* prefill_engine.c — the prefill worker's engine thread: FCFS prompts batched under the token budget,
 * each layer announced to the loop as soon as its KV is in the cache (so the push to the decode
 * worker overlaps the rest of the forward pass), first token sampled, KV held until released. */
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "prefill.h"

struct pf_engine {
    struct worker *w;
    struct seq **queue; /* prompts not yet fully computed, oldest first */
    int n_queue;
    struct seq **held; /* prompts computed, KV kept until PF_FREE */
    int n_held, cap;
    struct seq **final; /* sequences whose prompt the current step completes */
    int n_final;
    struct step_result step; /* of the step in progress; filled before its first layer */
};

static void post(struct worker *w, void *mail, int type)
{
    ((struct mail *)mail)->type = type;
    mailbox_post(&w->to_loop, mail);
}

static int find(struct seq **list, int n, uint64_t id)
{
    for (int i = 0; i < n; i++)
        if (list[i]->id == id)
            return i;
    return -1;
}

static struct pf_seq *pf_seq_of(struct seq *s)
{
    return (struct pf_seq *)s; /* seq is its first member */
}

static void drop(struct pf_engine *pe, struct seq **list, int *n, int i)
{
    struct pf_seq *ps = pf_seq_of(list[i]);
    engine_seq_release(&ps->seq, &pe->w->engine.kv);
    free(ps->failed);
    free(ps);
    memmove(&list[i], &list[i + 1], (size_t)(*n - i - 1) * sizeof *list);
    (*n)--;
}

/* Tells the loop that s failed, with its preallocated mail (once). */
static void announce_failed(struct pf_engine *pe, struct seq *s, const char *why)
{
    struct pf_seq *ps = pf_seq_of(s);
    if (!ps->failed)
        return;
    snprintf(ps->failed->message, sizeof ps->failed->message, "%s", why);
    post(pe->w, ps->failed, PF_FAILED);
    ps->failed = NULL;
}

static bool grow_lists(struct pf_engine *pe);

static void take_mail(struct pf_engine *pe)
{
    for (struct mail *m = mailbox_take_all(&pe->w->to_engine), *next; m; m = next) {
        next = m->next;
        if (m->type == PF_NEW) {
            struct seq *s = &((struct pf_new *)m)->ps->seq;
            pe->queue[pe->n_queue++] = s; /* grow_lists keeps room for one more */
            if (!grow_lists(pe)) {
                announce_failed(pe, s, "the prefill worker ran out of memory queueing the prompt");
                drop(pe, pe->queue, &pe->n_queue, pe->n_queue - 1);
            }
        } else if (m->type == PF_FREE) {
            uint64_t id = ((struct pf_id *)m)->req_id;
            pf_cancel_remove(&((struct pf_state *)pe->w->state)->cancel, id);
            int i;
            if ((i = find(pe->queue, pe->n_queue, id)) >= 0) {
                log_debug("request %llu: dropped with %d of its %d prompt tokens computed", (unsigned long long)id,
                          pe->queue[i]->n_cached, pe->queue[i]->n_prompt);
                drop(pe, pe->queue, &pe->n_queue, i);
            }
            else if ((i = find(pe->held, pe->n_held, id)) >= 0)
                drop(pe, pe->held, &pe->n_held, i);
        }
        free(m);
    }
}

/* forward()'s per-layer hook: at layer 0 the batch is built, so announce the block tables of the
 * prompts this step completes; then announce every layer as it lands in the cache. */
static void announce_final(struct pf_engine *pe, struct seq *s);

static bool on_layer(void *ctx, int layer)
{
    struct pf_engine *pe = ctx;
    struct engine *e = &pe->w->engine;
    struct pf_state *ps = pe->w->state;
    if (pf_cancel_all(&ps->cancel, pe->queue, pe->step.n_scheduled))
        return false; /* every prompt in this pass was ended: stop between layers */
    if (layer == 0) {
        pe->n_final = 0;
        for (int i = 0; i < pe->step.n_tokens; i++)
            if (e->want[i])
                announce_final(pe, pe->queue[e->seq_of[i]]);
    }
    if (!pe->n_final)
        return true;
    struct pf_layer *m = malloc(sizeof *m + (size_t)pe->n_final * sizeof(uint64_t));
    if (!m) { /* the loop would wait for this layer for ever: fail them after the step instead */
        for (int i = 0; i < pe->n_final; i++)
            pf_seq_of(pe->final[i])->doomed = true;
        return true;
    }
    m->layer = (uint32_t)layer;
    m->n = (uint32_t)pe->n_final;
    for (int i = 0; i < pe->n_final; i++)
        m->req_ids[i] = pe->final[i]->id;
    post(pe->w, m, PF_LAYER);
    return true;
}

static void announce_final(struct pf_engine *pe, struct seq *s)
{
    pe->final[pe->n_final++] = s;
    struct pf_final *m = malloc(sizeof *m + (size_t)s->kv.n_blocks * sizeof(uint32_t));
    if (!m) {
        pf_seq_of(s)->doomed = true;
        return;
    }
    m->req_id = s->id;
    m->n_blocks = (uint32_t)s->kv.n_blocks;
    for (int b = 0; b < s->kv.n_blocks; b++)
        m->blocks[b] = (uint32_t)s->kv.blocks[b];
    post(pe->w, m, PF_FINAL);
}

/* Returns false when memory ran out (s is then doomed). */
static bool announce_first(struct pf_engine *pe, struct seq *s)
{
    struct pf_first *m = calloc(1, sizeof *m);
    if (!m) {
        pf_seq_of(s)->doomed = true;
        return false;
    }
    m->req_id = s->id;
    m->token = s->tokens[s->n_tokens - 1];
    m->logprob = s->last_logprob;
    m->top = s->last_top;
    m->prompt_lp = s->prompt_lp;
    s->prompt_lp = NULL;
    m->rng = s->rng;
    m->finish = s->finish;
    m->cached_tokens = (uint32_t)s->n_cache_hit;
    post(pe->w, m, PF_FIRST);
    return true;
}

static void fail_head(struct pf_engine *pe, const char *why)
{
    announce_failed(pe, pe->queue[0], why);
    drop(pe, pe->queue, &pe->n_queue, 0);
}

static void publish_load(struct pf_engine *pe)
{
    struct pf_state *ps = pe->w->state;
    uint32_t tokens = 0;
    for (int i = 0; i < pe->n_queue; i++)
        tokens += (uint32_t)(pe->queue[i]->n_tokens - pe->queue[i]->n_cached);
    atomic_store(&ps->load.queued_requests, (uint32_t)pe->n_queue);
    atomic_store(&ps->load.queued_tokens, tokens);
    atomic_store(&ps->load.held, (uint32_t)pe->n_held);
}

/* After a step: prompts now complete get their first token announced and move to `held`; those an
 * announcement failed for are failed instead. */
static void finish_step(struct pf_engine *pe)
{
    for (int i = 0; i < pe->n_queue;) {
        struct seq *s = pe->queue[i];
        if (!pf_seq_of(s)->doomed && s->n_cached < s->n_prompt) {
            i++;
            continue;
        }
        if (pf_seq_of(s)->doomed || !announce_first(pe, s)) {
            announce_failed(pe, s, "the prefill worker ran out of memory reporting the prompt's progress");
            drop(pe, pe->queue, &pe->n_queue, i);
            continue;
        }
        pe->held[pe->n_held++] = s;
        memmove(&pe->queue[i], &pe->queue[i + 1], (size_t)(pe->n_queue - i - 1) * sizeof *pe->queue);
        pe->n_queue--;
    }
}

/* The head of the queue cannot get its blocks and no computed prompt will give any back: the blocks
 * are held by later prompts, partly computed (chunks) or matched in the prefix cache. The newest one
 * gives its blocks up and is computed again later, so the queue moves in order instead of failing a
 * prompt that fits the pool (prompts that cannot fit it are refused before they are queued).
 * Returns false when there was nothing to take back. */
static bool release_newest(struct pf_engine *pe)
{
    for (int i = pe->n_queue - 1; i > 0; i--) {
        struct seq *s = pe->queue[i];
        if (s->kv.n_blocks == 0)
            continue;
        log_info("prefill KV pool full: request %llu gives back its %d blocks for request %llu",
                 (unsigned long long)s->id, s->kv.n_blocks, (unsigned long long)pe->queue[0]->id);
        engine_seq_uncache(s, &pe->w->engine.kv);
        worker_note_preemption(pe->w);
        return true;
    }
    return false;
}

/* One forward pass over the head of the queue. Returns false when there was nothing it could do. */
static bool step(struct pf_engine *pe)
{
    struct worker *w = pe->w;
    struct error err;
    if (worker_step(w, pe->queue, pe->n_queue, w->opts.token_budget, on_layer, pe, &pe->step, &err) < 0) {
        log_error("prefill step failed: %s", err.msg);
        fail_head(pe, err.msg);
        return true;
    }
    if (pe->step.n_tokens == 0 && pe->step.out_of_blocks && pe->n_held == 0 && !release_newest(pe)) {
        fail_head(pe, "the prompt needs more KV blocks than this prefill worker's whole pool; raise "
                      "--kv-gib or --kv-blocks");
        return true;
    }
    finish_step(pe);
    return pe->step.n_tokens > 0;
}

static bool grow_lists(struct pf_engine *pe)
{
    int need = pe->n_queue + pe->n_held + 64;
    if (need <= pe->cap)
        return true;
    int cap = need * 2;
    struct seq **q = realloc(pe->queue, (size_t)cap * sizeof *q);
    if (q)
        pe->queue = q;
    struct seq **h = realloc(pe->held, (size_t)cap * sizeof *h);
    if (h)
        pe->held = h;
    struct seq **f = realloc(pe->final, (size_t)cap * sizeof *f);
    if (f)
        pe->final = f;
    if (!q || !h || !f)
        return false;
    pe->cap = cap;
    return true;
}

void prefill_engine_main(struct worker *w)
{
    struct pf_engine pe = {.w = w};
    if (!grow_lists(&pe)) {
        log_error("out of memory starting the engine thread");
        return;
    }
    while (!worker_stopping(w)) {
        take_mail(&pe);
        bool progressed = pe.n_queue > 0 && step(&pe);
        publish_load(&pe);
        if (!progressed)
            mailbox_wait(&w->to_engine, 100);
    }
    take_mail(&pe); /* what was sent last is ended with the rest */
    while (pe.n_queue)
        drop(&pe, pe.queue, &pe.n_queue, 0);
    while (pe.n_held)
        drop(&pe, pe.held, &pe.n_held, 0);
    free(pe.queue);
    free(pe.held);
    free(pe.final);
}
