/* failalloc_decode.c — the decode worker's role handlers (decode_server/decode.c) with every
 * allocation on their path failed once each (tests/helpers/failalloc.h).
 *
 * The handlers run in this process on a real worker: a real KV pool, a real UCX transport on
 * loopback whose two connections (the "frontend" and a "prefill worker") lead to a second UCX
 * instance here that records everything the decode side sends. This program plays the engine thread
 * (it takes DC_ADMIT/DC_ABORT mail and posts DC_TOKENS) and walks one scenario:
 *
 *   REGISTER from the prefill worker → the pool is described
 *   KV_RESERVE 1, 2 (granted), 3 (waits)      KV_DONE 1 → admitted, KV_ACK
 *   frontend ABORT 2 (granted: held), prefill ABORT 2 → blocks back, 3 granted
 *   engine tokens for 1, the last with a finish  → TOKENS, request forgotten
 *   KV_DONE 3 not matching its reservation      → an ERROR, blocks back
 *   KV_RESERVE 4 twice (the second refused), a GENERATE to a decode-only worker, ABORT 4 from both
 *
 * For N = 1, 2, ... the N-th allocation of the handlers fails, until the scenario runs without
 * reaching N. Each run must not crash, must give every KV block back, must send only ERRORs with a
 * message, and must end requests 1 and 3 visibly (TOKENS with a finish, or an ERROR) unless a send
 * itself failed (counted in the transport's send_errors). LeakSanitizer (make asan) checks that
 * nothing leaks. FAILALLOC_FROM=N starts the walk at N, to replay one run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "decode_server/decode.h"
#include "tests/helpers/check.h"
#include "tests/helpers/failalloc.h"

#define POOL_BLOCKS 32
#define BLOCK 16
#define MAX_SEEN 64

/* What the other side of the two connections received. */
struct seen {
    uint16_t type;
    uint64_t req_id;
    uint8_t finish;
    char error[WIRE_ERRMSG_MAX];
};

static struct {
    struct worker w;
    struct model model;
    struct dc_state st;
    struct ucx *other; /* the frontend and the prefill worker, as far as the decode side can tell */
    int accepted;
    struct ucx_peer *fe, *pf; /* the decode side's ends of the two connections */
    struct seen seen[MAX_SEEN];
    int n_seen;
    struct seq *running[8]; /* the sequences "the engine" holds */
    int n_running;
} T;

static void other_accept(struct ucx *u, struct ucx_peer *p, void *user)
{
    (void)u, (void)p, (void)user;
    T.accepted++;
}

static void other_message(struct ucx *u, struct ucx_peer *p, struct wire_msg *m, void *user)
{
    (void)u, (void)p, (void)user;
    if (T.n_seen == MAX_SEEN)
        return;
    struct seen *s = &T.seen[T.n_seen++];
    *s = (struct seen){m->type, m->req_id, 0, ""};
    if (m->type == WIRE_TOKENS)
        s->finish = m->u.tokens.finish;
    if (m->type == WIRE_ERROR)
        snprintf(s->error, sizeof s->error, "%s", m->u.error.message);
}

static void other_lost(struct ucx *u, struct ucx_peer *p, const char *reason, void *user)
{
    (void)u, (void)p, (void)user;
    fprintf(stderr, "failalloc_decode: a connection was lost: %s\n", reason);
}

static void decode_message(struct ucx *u, struct ucx_peer *p, struct wire_msg *m, void *user)
{
    (void)u, (void)p, (void)m, (void)user; /* the scenario calls the handlers itself */
}

static void decode_lost(struct ucx *u, struct ucx_peer *p, const char *reason, void *user)
{
    (void)u, (void)p, (void)user;
    fprintf(stderr, "failalloc_decode: the decode side lost a connection: %s\n", reason);
}

/* Runs the loop until the other side has seen `n` messages, or a second passed. */
static void pump_until(int n)
{
    uint64_t until = uv_now(&T.w.loop) + 1000;
    while (T.n_seen < n && uv_now(&T.w.loop) < until) {
        uv_run(&T.w.loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(&T.w.loop);
    }
}

/* Lets everything in flight arrive (the loop runs for 50 ms after the last arrival). */
static void settle(void)
{
    for (int quiet = 0, last = T.n_seen; quiet < 50; quiet++) {
        uv_run(&T.w.loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        if (T.n_seen != last)
            quiet = 0, last = T.n_seen;
    }
}

static int setup(void)
{
    struct error err;
    T.model.cfg = (struct model_config){0};
    T.model.cfg.n_layers = 2;
    T.model.cfg.n_kv_heads = 2;
    T.model.cfg.head_dim = 8;
    T.model.cfg.max_pos = 2048;
    struct worker *w = &T.w;
    w->opts = (struct worker_opts){.model_dir = "failalloc", .id = 7, .max_batch = 8, .block_size = BLOCK};
    w->role = &decode_role;
    w->model = &T.model;
    uv_loop_init(&w->loop);
    mailbox_init_thread(&w->to_engine);
    struct ucx_handlers other = {other_accept, other_message, other_lost};
    struct ucx_handlers mine = {NULL, decode_message, decode_lost};
    char addr[64];
    if (kv_pool_init(&w->engine.kv, &T.model.cfg, POOL_BLOCKS, BLOCK, KN_F16, &err) < 0 ||
        ucx_create(&w->loop, &other, NULL, &T.other, &err) < 0 || ucx_listen(T.other, "127.0.0.1", 0, &err) < 0 ||
        ucx_create(&w->loop, &mine, w, &w->ucx, &err) < 0 ||
        (snprintf(addr, sizeof addr, "127.0.0.1:%u", ucx_listen_port(T.other)),
         ucx_connect(w->ucx, addr, &T.fe, &err) < 0 || ucx_connect(w->ucx, addr, &T.pf, &err) < 0)) {
        fprintf(stderr, "failalloc_decode: setting up: %s\n", err.msg);
        return -1;
    }
    w->frontend = T.fe;
    /* Connections are proven by a round trip before sends go out: one LOAD on each. */
    struct wire_msg load = {.type = WIRE_LOAD};
    ucx_send(T.fe, &load, NULL, NULL, &err);
    ucx_send(T.pf, &load, NULL, NULL, &err);
    pump_until(2);
    T.n_seen = 0;
    return T.accepted == 2 ? 0 : -1;
}

/* ---- playing the engine thread ---- */

static void engine_take_mail(void)
{
    failalloc_pause(true);
    for (struct mail *m = mailbox_take_all(&T.w.to_engine), *next; m; m = next) {
        next = m->next;
        if (m->type == DC_ADMIT && T.n_running < 8) {
            T.running[T.n_running++] = ((struct dc_admit *)m)->seq;
        } else if (m->type == DC_ABORT) {
            for (int i = 0; i < T.n_running; i++)
                if (T.running[i]->id == ((struct dc_abort *)m)->req_id) {
                    engine_seq_release(T.running[i], &T.w.engine.kv);
                    free(T.running[i]);
                    T.running[i] = T.running[--T.n_running];
                    break;
                }
        }
        free(m);
    }
    failalloc_pause(false);
}

/* Three tokens for request id, the last one ending it; the engine then drops the sequence. */
static void engine_finish(uint64_t id)
{
    failalloc_pause(true);
    struct dc_tokens *t = calloc(1, sizeof *t + 4 * sizeof(struct dc_token));
    t->mail.type = DC_TOKENS;
    for (int i = 0; i < 3; i++)
        t->t[t->n++] = (struct dc_token){.req_id = id, .has_token = true, .token = 5 + i, .logprob = -0.5f,
                                         .finish = i == 2 ? FINISH_LENGTH : FINISH_NONE};
    t->t[t->n++] = (struct dc_token){.req_id = 999, .has_token = true, .token = 1}; /* not known here */
    for (int i = 0; i < T.n_running; i++)
        if (T.running[i]->id == id) {
            engine_seq_release(T.running[i], &T.w.engine.kv);
            free(T.running[i]);
            T.running[i] = T.running[--T.n_running];
            break;
        }
    failalloc_pause(false);
    decode_role.on_mail(&T.w, &t->mail);
    decode_role.after_mail(&T.w);
}

/* ---- the scenario ---- */

static void deliver(struct ucx_peer *from, struct wire_msg *m)
{
    decode_role.on_message(&T.w, from, m);
    failalloc_pause(true);
    wire_msg_release(m);
    failalloc_pause(false);
    engine_take_mail();
}

static void reserve(uint64_t id, uint32_t n_tokens)
{
    struct wire_msg m = {.type = WIRE_KV_RESERVE, .req_id = id};
    m.u.reserve = (struct wire_kv_reserve){.n_tokens = n_tokens, .prefill_worker_id = 1};
    deliver(T.pf, &m);
}

static void kv_done(uint64_t id, uint32_t n_prompt)
{
    failalloc_pause(true);
    struct wire_msg m = {.type = WIRE_KV_DONE, .req_id = id};
    m.u.done.n_prompt = n_prompt;
    m.u.done.prompt = calloc(n_prompt, sizeof *m.u.done.prompt);
    m.u.done.first_token = 3;
    sample_params_default(&m.u.done.params);
    m.u.done.params.max_tokens = 8;
    failalloc_pause(false);
    deliver(T.pf, &m);
}

static void scenario(void)
{
    struct wire_msg reg = {.type = WIRE_REGISTER};
    reg.u.reg.role = WIRE_ROLE_PREFILL;
    deliver(T.pf, &reg);
    reserve(1, 40);
    reserve(2, 40);
    reserve(3, 28 * BLOCK); /* waits: granting it would leave less than the margin free */
    kv_done(1, 40);
    deliver(T.fe, &(struct wire_msg){.type = WIRE_ABORT, .req_id = 2}); /* held: the prefill may write */
    deliver(T.pf, &(struct wire_msg){.type = WIRE_ABORT, .req_id = 2}); /* its blocks go; 3 is granted */
    engine_finish(1);
    kv_done(3, 7); /* not what was reserved */
    reserve(4, 16 * BLOCK); /* granted: every block is back */
    reserve(4, 16);         /* the same id again: refused */
    struct wire_msg gen = {.type = WIRE_GENERATE, .req_id = 5};
    deliver(T.fe, &gen); /* a decode-only worker refuses it */
    deliver(T.fe, &(struct wire_msg){.type = WIRE_ABORT, .req_id = 4}); /* granted: held */
    deliver(T.pf, &(struct wire_msg){.type = WIRE_ABORT, .req_id = 4});
}

static bool ended_visibly(uint64_t id)
{
    for (int i = 0; i < T.n_seen; i++)
        if (T.seen[i].req_id == id &&
            (T.seen[i].type == WIRE_ERROR || (T.seen[i].type == WIRE_TOKENS && T.seen[i].finish != FINISH_NONE)))
            return true;
    return false;
}

/* One run with allocation n failing; returns whether allocation n was reached. */
static bool run(long n)
{
    struct error err;
    T.n_seen = 0;
    memset(&T.st, 0, sizeof T.st);
    T.w.state = &T.st;
    uint64_t send_errors = ucx_stats(T.w.ucx)->send_errors;
    if (decode_role.start(&T.w, &err) < 0) {
        fprintf(stderr, "failalloc_decode: start: %s\n", err.msg);
        CHECK(0);
        return false;
    }
    failalloc_arm(n);
    scenario();
    bool fired = failalloc_disarm();
    settle();
    bool lost_sends = ucx_stats(T.w.ucx)->send_errors != send_errors;
    for (int i = 0; i < T.n_seen; i++)
        CHECK_MSG(T.seen[i].type != WIRE_ERROR || T.seen[i].error[0], "run %ld: request %llu: an ERROR with no message",
                  n, (unsigned long long)T.seen[i].req_id);
    CHECK_MSG(lost_sends || (ended_visibly(1) && ended_visibly(3)), "run %ld: request %s ended silently", n,
              ended_visibly(1) ? "3" : "1");
    if (!fired) { /* the whole scenario, nothing failed: exactly the expected ends */
        CHECK(ended_visibly(1) && ended_visibly(3) && ended_visibly(4) && ended_visibly(5) && !ended_visibly(2));
        CHECK_EQ_INT(T.st.reqs.count, 0);
    }
    decode_role.on_frontend_lost(&T.w); /* ends what is left, as a lost frontend would */
    engine_take_mail();
    while (T.n_running) { /* the engine thread stops too */
        struct seq *s = T.running[--T.n_running];
        engine_seq_release(s, &T.w.engine.kv);
        free(s);
    }
    decode_role.stop(&T.w); /* closes its timer: the loop frees it before the next run starts the role */
    uv_run(&T.w.loop, UV_RUN_NOWAIT);
    CHECK_MSG(kv_used(&T.w.engine.kv) == 0, "run %ld: %d KV blocks were not given back", n, kv_used(&T.w.engine.kv));
    return fired;
}

static void test_every_allocation(void)
{
    long n = getenv("FAILALLOC_FROM") ? atol(getenv("FAILALLOC_FROM")) : 1;
    while (run(n))
        n++;
    printf("failed each of the %ld allocations of the decode handlers' path once\n", n - 1);
    CHECK(n > 10); /* the wrappers really are on the path */
}

int main(void)
{
    log_init("failalloc_decode");
    if (setup() < 0) {
        fprintf(stderr, "failalloc_decode: no loopback UCX connection\n");
        return 1;
    }
    RUN(test_every_allocation);
    /* Both ends live in this process: close while the loop still progresses both UCX workers. */
    ucx_peer_close(T.fe);
    ucx_peer_close(T.pf);
    settle();
    ucx_close_all(T.other);
    ucx_destroy(T.w.ucx);
    ucx_destroy(T.other);
    uv_run(&T.w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&T.w.loop);
    mailbox_destroy(&T.w.to_engine);
    kv_pool_destroy(&T.w.engine.kv);
    return check_report();
}
