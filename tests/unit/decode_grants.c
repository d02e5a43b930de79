/* decode_grants.c — checks, against a real decode worker, that KV blocks granted to a transfer are
 * not granted again while the prefill worker may still be writing into them. It plays both the
 * frontend (the decode worker registers with it) and a prefill worker (it connects to the decode
 * worker and reserves blocks), so it controls the order in which the two hear of an abort:
 *
 *   A. The frontend aborts X (granted) while Y waits: no grant for Y until the prefill side says it
 *      stopped writing (its ABORT); then Y gets X's blocks.
 *   B. The frontend aborts Y (granted) while Z waits: the prefill's KV_DONE for Y ends the transfer;
 *      the decode worker answers ABORT (drop your copy) and grants Z.
 *   C. The frontend aborts Z, then the prefill side goes away: Z's blocks come back, and the frontend
 *      hears no error for a request it already ended.
 *
 *   decode_grants --ucx-port P     (the decode worker: --kv-blocks 8 --block-size 16, --frontend at P)
 *
 * Exit 0 when every check holds. tests/workers/grants.sh runs it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util/log.h"
#include "tests/helpers/check.h"
#include "proto/ucx.h"

enum { X = 1, Y = 2, Z = 3, MAX_ID = 4 };

static struct {
    uv_loop_t loop;
    uv_timer_t tick;
    struct ucx *ucx;
    struct ucx_peer *decode_fe; /* the decode worker's connection to us as its frontend */
    struct ucx_peer *decode;    /* our connection to it as a prefill worker */
    char decode_addr[WIRE_ADDR_MAX];
    bool pool_known;
    struct wire_load load;
    bool load_seen;
    /* per request id, what the decode worker said */
    int n_grant[MAX_ID];
    uint32_t grant[MAX_ID][16];
    bool waited[MAX_ID], aborted_to_us[MAX_ID], error_to_fe[MAX_ID];
} T;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs the loop until *flag is true or ms have passed; returns *flag. */
static bool wait_for(const bool *flag, double ms)
{
    double end = now_ms() + ms;
    while (!*flag && now_ms() < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    return *flag;
}

static void on_tick(uv_timer_t *t) { (void)t;}

static void send_to(struct ucx_peer *p, struct wire_msg *m)
{
    struct error err;
    if (!p || ucx_send(p, m, NULL, NULL, &err) < 0)
        fprintf(stderr, "decode_grants: sending %s: %s\n", wire_type_name(m->type), p ? err.msg : "no peer");
}

static void reserve(uint64_t id, uint32_t n_tokens)
{
    struct wire_msg m = {.type = WIRE_KV_RESERVE, .req_id = id, .u.reserve = {n_tokens, 1}};
    send_to(T.decode, &m);
}

static void simple(struct ucx_peer *p, uint16_t type, uint64_t id)
{
    struct wire_msg m = {.type = type, .req_id = id};
    send_to(p, &m);
}

static void kv_done(uint64_t id, uint32_t n_tokens)
{
    int32_t *prompt = calloc(n_tokens, sizeof *prompt);
    struct wire_msg m = {.type = WIRE_KV_DONE, .req_id = id};
    sample_params_default(&m.u.done.params);
    m.u.done.n_prompt = n_tokens;
    m.u.done.prompt = prompt;
    send_to(T.decode, &m);
    free(prompt);
}

static void on_message(struct ucx *u, struct ucx_peer *peer, struct wire_msg *msg, void *user)
{
    (void)u, (void)user;
    uint64_t id = msg->req_id;
    if (msg->type == WIRE_REGISTER && peer == T.decode) {
        T.pool_known = true;
        return;
    }
    if (msg->type == WIRE_REGISTER) {
        T.decode_fe = peer;
        snprintf(T.decode_addr, sizeof T.decode_addr, "%s", msg->u.reg.listen_addr);
        return;
    }
    if (msg->type == WIRE_LOAD) {
        T.load = msg->u.load;
        T.load_seen = true;
        return;
    }
    if (id >= MAX_ID)
        return;
    if (msg->type == WIRE_KV_GRANT) {
        T.n_grant[id] = (int)(msg->u.grant.n_blocks < 16 ? msg->u.grant.n_blocks : 16);
        memcpy(T.grant[id], msg->u.grant.blocks, (size_t)T.n_grant[id] * sizeof(uint32_t));
    } else if (msg->type == WIRE_KV_WAIT) {
        T.waited[id] = true;
    } else if (msg->type == WIRE_ABORT && peer == T.decode) {
        T.aborted_to_us[id] = true;
    } else if (msg->type == WIRE_ERROR && peer == T.decode_fe) {
        T.error_to_fe[id] = true;
    }
}

static void on_peer_lost(struct ucx *u, struct ucx_peer *peer, const char *reason, void *user)
{
    (void)u, (void)user;
    fprintf(stderr, "decode_grants: peer %s lost: %s\n", ucx_peer_name(peer), reason);
    if (peer == T.decode)
        T.decode = NULL;
    if (peer == T.decode_fe)
        T.decode_fe = NULL;
}

static bool granted(int id) { return T.n_grant[id] > 0; }

static bool wait_granted(int id, double ms)
{
    double end = now_ms() + ms;
    while (!granted(id) && now_ms() < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    return granted(id);
}

/* Lets the decode worker act on what it was sent (nothing is expected back). */
static void settle(double ms)
{
    bool never = false;
    wait_for(&never, ms);
}

static bool overlaps(int a, int b)
{
    for (int i = 0; i < T.n_grant[a]; i++)
        for (int j = 0; j < T.n_grant[b]; j++)
            if (T.grant[a][i] == T.grant[b][j])
                return true;
    return false;
}

/* Waits until a LOAD says the whole pool is free. */
static bool pool_free(double ms)
{
    double end = now_ms() + ms;
    bool free_now = false;
    while (!free_now && now_ms() < end) {
        T.load_seen = false;
        wait_for(&T.load_seen, 1000);
        free_now = T.load_seen && T.load.free_blocks == T.load.total_blocks;
    }
    return free_now;
}

static void case_frontend_then_prefill_abort(void)
{
    reserve(X, 100); /* 7 of 8 blocks */
    CHECK_MSG(wait_granted(X, 5000), "X (100 tokens) was not granted");
    reserve(Y, 60); /* 4 blocks: must wait */
    CHECK_MSG(wait_for(&T.waited[Y], 5000), "Y was not told to wait");
    simple(T.decode_fe, WIRE_ABORT, X); /* the frontend ends X; its prefill has not heard yet */
    settle(300);
    CHECK_MSG(!granted(Y), "Y got X's blocks (%u...) while X's prefill could still be writing them", T.grant[Y][0]);
    simple(T.decode, WIRE_ABORT, X); /* the prefill: flushed, stopped writing */
    CHECK_MSG(wait_granted(Y, 5000), "Y was not granted after X's prefill released X");
    CHECK_MSG(overlaps(X, Y), "Y's blocks are not X's; the case did not test reuse");
}

static void case_frontend_abort_then_kv_done(void)
{
    reserve(Z, 60); /* Y holds 4 of 8: waits */
    CHECK_MSG(wait_for(&T.waited[Z], 5000), "Z was not told to wait");
    simple(T.decode_fe, WIRE_ABORT, Y);
    settle(300);
    CHECK_MSG(!granted(Z), "Z got Y's blocks while Y's transfer was still open");
    kv_done(Y, 60); /* the transfer ends */
    CHECK_MSG(wait_for(&T.aborted_to_us[Y], 5000), "no ABORT for Y after its KV_DONE (our copy would never go)");
    CHECK_MSG(wait_granted(Z, 5000), "Z was not granted after Y's transfer ended");
}

static void case_frontend_abort_then_prefill_lost(void)
{
    simple(T.decode_fe, WIRE_ABORT, Z);
    settle(300);
    ucx_peer_close(T.decode);
    T.decode = NULL;
    CHECK_MSG(pool_free(5000), "the pool is not free after the prefill side left (%u of %u free)",
              T.load.free_blocks, T.load.total_blocks);
    CHECK_MSG(!T.error_to_fe[Z], "the frontend was told about a request it had already ended");
}

int main(int argc, char **argv)
{
    int port = 0;
    static const struct option longs[] = {{"ucx-port", 1, 0, 'u'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", longs, NULL)) != -1;)
        if (c == 'u')
            port = atoi(optarg);
    log_init("decode_grants");
    struct error err;
    uv_loop_init(&T.loop);
    uv_timer_init(&T.loop, &T.tick);
    uv_timer_start(&T.tick, on_tick, 10, 10); /* wakes the loop so wait_for sees time pass */
    struct ucx_handlers h = {NULL, on_message, on_peer_lost};
    if (ucx_create(&T.loop, &h, NULL, &T.ucx, &err) < 0 || ucx_listen(T.ucx, "127.0.0.1", (uint16_t)port, &err) < 0) {
        fprintf(stderr, "decode_grants: %s\n", err.msg);
        return 2;
    }
    bool registered = false;
    double end = now_ms() + 20000;
    while (!(registered = T.decode_fe && T.decode_addr[0]) && now_ms() < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    if (!registered || ucx_connect(T.ucx, T.decode_addr, &T.decode, &err) < 0) {
        fprintf(stderr, "decode_grants: no decode worker (%s)\n", registered ? err.msg : "it never registered");
        return 2;
    }
    struct wire_msg hello = {.type = WIRE_REGISTER};
    hello.u.reg.role = WIRE_ROLE_PREFILL;
    hello.u.reg.worker_id = 1;
    hello.u.reg.block_size = 16;
    send_to(T.decode, &hello);
    CHECK_MSG(wait_for(&T.pool_known, 10000), "the decode worker never answered our REGISTER");
    case_frontend_then_prefill_abort();
    case_frontend_abort_then_kv_done();
    case_frontend_abort_then_prefill_lost();
    ucx_destroy(T.ucx);
    uv_close((uv_handle_t *)&T.tick, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    uv_loop_close(&T.loop);
    return check_report();
}
