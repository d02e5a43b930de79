/* mailbox.h — the one way a daemon's two threads talk: a locked FIFO of messages ("mail") that
 * either wakes a libuv loop (uv_async) or a thread blocked in mailbox_wait (condition variable).
 *
 * Mail is intrusive: a sender embeds `struct mail` as the first member of its own struct, allocates
 * it, and gives up ownership by posting it; the receiver owns what it takes and frees it. */
#ifndef PD_MAILBOX_H
#define PD_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

struct mail {
    struct mail *next;
    int type; /* the receiver's own enum */
};

struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct mail *head, *tail;
    uv_async_t async; /* used when the receiver is a loop */
    bool has_async;
};

/* Receiver is a loop: `on_mail` runs on the loop thread after posts (several posts may fold into one
 * call; take everything with mailbox_take_all). async.data is set to `data`. */
int mailbox_init_loop(struct mailbox *mb, uv_loop_t *loop, uv_async_cb on_mail, void *data);
/* Receiver is a thread that calls mailbox_wait. */
void mailbox_init_thread(struct mailbox *mb);
/* Loop mailboxes: uv_close the async handle (run the loop once after); then mailbox_destroy. */
void mailbox_close(struct mailbox *mb);
/* Frees any mail still queued (with free()) and the lock. */
void mailbox_destroy(struct mailbox *mb);

void mailbox_post(struct mailbox *mb, struct mail *m);
/* Everything queued, oldest first (a NULL-terminated list through ->next), or NULL. */
struct mail *mailbox_take_all(struct mailbox *mb);
/* Blocks until mail is queued or timeout_ms passes (< 0: no limit). */
void mailbox_wait(struct mailbox *mb, int timeout_ms);

#endif
