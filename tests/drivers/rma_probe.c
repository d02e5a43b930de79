/* rma_probe.c — plays a hostile UCX peer: joins a pdserve process (the handshake, with the same
 * cluster key: an authenticated peer that misbehaves), reads the KV pool address from the REGISTER it
 * is sent, and writes 64 bytes of 'X' there by RMA with a remote key of its own making. Over tcp UCX
 * emulates that put with a message whose handler writes wherever it says — in a process that enabled
 * UCP_FEATURE_RMA. pdserve enables it only with RDMA or PDSERVE_KV_TRANSFER=put (proto/ucx.c), so the
 * write must not land; tests/proto/rma.sh checks the pool afterwards.
 *
 *   rma_probe HOST:PORT        prints "probe: put to 0x... completed" (or why not); exit 0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ucx_internal.h" /* the peer's endpoint and the context, for a put of our own */
#include "proto/wire.h"

static uint64_t pool_base;

static void on_message(struct ucx *u, struct ucx_peer *p, struct wire_msg *m, void *user)
{
    (void)u, (void)p, (void)user;
    if (m->type == WIRE_REGISTER && m->u.reg.pool.base)
        pool_base = m->u.reg.pool.base;
}

static void on_lost(struct ucx *u, struct ucx_peer *p, const char *reason, void *user)
{
    (void)u, (void)p, (void)user;
    fprintf(stderr, "probe: peer lost: %s\n", reason);
    exit(1);
}

static void run_for(uv_loop_t *loop, uint64_t ms, const int *until)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end && !(until && *until)) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(loop);
    }
}

static int done_flag;
static ucs_status_t done_st;
static void on_done(void *request, ucs_status_t st, void *user_data)
{
    (void)user_data;
    ucp_request_free(request);
    done_st = st;
    done_flag = 1;
}

static ucs_status_t wait_req(uv_loop_t *loop, ucs_status_ptr_t sp)
{
    if (!UCS_PTR_IS_PTR(sp))
        return UCS_PTR_STATUS(sp);
    done_flag = 0;
    run_for(loop, 5000, &done_flag);
    return done_flag ? done_st : UCS_ERR_TIMED_OUT;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return fprintf(stderr, "usage: rma_probe HOST:PORT\n"), 2;
    setenv("PDSERVE_KV_TRANSFER", "put", 1); /* our own context needs RMA to issue the put */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ucx_handlers h = {NULL, on_message, on_lost};
    struct ucx *u;
    struct ucx_peer *p;
    struct error err;
    if (ucx_create(&loop, &h, NULL, &u, &err) || ucx_connect(u, argv[1], &p, &err))
        return fprintf(stderr, "probe: %s\n", err.msg), 1;
    for (int i = 0; i < 100 && !pool_base; i++)
        run_for(&loop, 50, NULL);
    if (!pool_base)
        return fprintf(stderr, "probe: no REGISTER with a pool address came\n"), 1;
    /* A remote key of our own making: the receiving side of UCX's tcp emulation checks none. */
    static char mine[64];
    ucp_mem_map_params_t mp = {.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH,
                               .address = mine, .length = sizeof mine};
    ucp_mem_h memh;
    void *packed;
    size_t packed_len;
    ucp_rkey_h rkey;
    if (ucp_mem_map(u->ctx, &mp, &memh) != UCS_OK || ucp_rkey_pack(u->ctx, memh, &packed, &packed_len) != UCS_OK ||
        ucp_ep_rkey_unpack(p->ep, packed, &rkey) != UCS_OK)
        return fprintf(stderr, "probe: cannot make a remote key\n"), 1;
    static char marker[64];
    memset(marker, 'X', sizeof marker);
    ucp_request_param_t rp = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK, .cb.send = on_done};
    ucs_status_t put = wait_req(&loop, ucp_put_nbx(p->ep, marker, sizeof marker, pool_base, rkey, &rp));
    ucs_status_t flush = wait_req(&loop, ucp_ep_flush_nbx(p->ep, &rp));
    run_for(&loop, 200, NULL);
    printf("probe: put to 0x%llx %s (flush: %s)\n", (unsigned long long)pool_base,
           put == UCS_OK ? "completed" : ucs_status_string(put), ucs_status_string(flush));
    ucp_rkey_destroy(rkey);
    ucp_rkey_buffer_release(packed);
    ucp_mem_unmap(u->ctx, memh);
    p->state = UCX_PEER_FAILED; /* a forced close: a flushing one would wait for the dropped put's answer */
    ucx_destroy(u);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
