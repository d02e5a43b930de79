/* cancel.c — the prefill worker's cancellation notice between its two threads: the loop thread lists
 * a request it has ended, and the engine thread, between the layers of a forward pass, stops the
 * pass when every prompt in it is listed — so a client that gives up on a long prompt stops the
 * computation within a layer, not a whole chunk. The PF_FREE mail that follows still does the
 * freeing; taking it takes the id off the list. */
#include "prefill.h"

void pf_cancel_init(struct pf_cancel *c)
{
    pthread_mutex_init(&c->lock, NULL);
    c->n = 0;
}

void pf_cancel_destroy(struct pf_cancel *c)
{
    pthread_mutex_destroy(&c->lock);
}

void pf_cancel_add(struct pf_cancel *c, uint64_t id)
{
    pthread_mutex_lock(&c->lock);
    if (c->n < PF_CANCEL_MAX) /* a longer list only means passes that run to their chunk's end */
        c->ids[c->n++] = id;
    pthread_mutex_unlock(&c->lock);
}

void pf_cancel_remove(struct pf_cancel *c, uint64_t id)
{
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n; i++)
        if (c->ids[i] == id) {
            c->ids[i] = c->ids[--c->n];
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

bool pf_cancel_all(struct pf_cancel *c, struct seq *const *seqs, int n)
{
    pthread_mutex_lock(&c->lock);
    bool all = n > 0;
    for (int i = 0; i < n && all; i++) {
        bool found = false;
        for (int j = 0; j < c->n && !found; j++)
            found = c->ids[j] == seqs[i]->id;
        all = found;
    }
    pthread_mutex_unlock(&c->lock);
    return all;
}
