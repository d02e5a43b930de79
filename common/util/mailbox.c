/* mailbox.c — the locked FIFO between a daemon's loop and engine threads (mailbox.h). */
#include "common/util/mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int mailbox_init_loop(struct mailbox *mb, uv_loop_t *loop, uv_async_cb on_mail, void *data)
{
    mailbox_init_thread(mb);
    mb->has_async = true;
    mb->async.data = data;
    return uv_async_init(loop, &mb->async, on_mail);
}

void mailbox_init_thread(struct mailbox *mb)
{
    pthread_mutex_init(&mb->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&mb->cond, &attr);
    pthread_condattr_destroy(&attr);
    mb->head = mb->tail = NULL;
    mb->has_async = false;
}

void mailbox_close(struct mailbox *mb)
{
    if (mb->has_async && !uv_is_closing((uv_handle_t *)&mb->async))
        uv_close((uv_handle_t *)&mb->async, NULL);
}

void mailbox_destroy(struct mailbox *mb)
{
    for (struct mail *m = mailbox_take_all(mb), *next; m; m = next) {
        next = m->next;
        free(m);
    }
    pthread_mutex_destroy(&mb->lock);
    pthread_cond_destroy(&mb->cond);
}

void mailbox_post(struct mailbox *mb, struct mail *m)
{
    m->next = NULL;
    pthread_mutex_lock(&mb->lock);
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    pthread_cond_signal(&mb->cond);
    pthread_mutex_unlock(&mb->lock);
    if (mb->has_async)
        uv_async_send(&mb->async);
}

struct mail *mailbox_take_all(struct mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    struct mail *m = mb->head;
    mb->head = mb->tail = NULL;
    pthread_mutex_unlock(&mb->lock);
    return m;
}

void mailbox_wait(struct mailbox *mb, int timeout_ms)
{
    pthread_mutex_lock(&mb->lock);
    if (!mb->head) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&mb->cond, &mb->lock);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&mb->cond, &mb->lock, &ts);
        }
    }
    pthread_mutex_unlock(&mb->lock);
}
