/* rma_probe.c — plays a hostile UCX peer: connects to a pdserve process, reads the KV pool address
 * from the REGISTER it is sent, and writes 64 bytes of 'X' there by RMA with a remote key of its own
 * making. Over tcp UCX emulates that put with a message whose handler writes wherever it says — in a
 * process that enabled UCP_FEATURE_RMA. pdserve enables it only with RDMA or PDSERVE_KV_TRANSFER=put
 * (proto/ucx.c), so the write must not land; tests/proto/rma.sh checks the pool afterwards.
 *
 *   rma_probe HOST:PORT        prints "probe: put to 0x... completed" (or why not); exit 0 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ucp/api/ucp.h>

#include "proto/ucx_internal.h" /* UCX_AM_ID: the id pdserve's messages travel on */
#include "proto/wire.h"

static ucp_worker_h worker;
static uint64_t pool_base;

static ucs_status_t on_message(void *arg, const void *header, size_t header_len, void *data, size_t len,
                               const ucp_am_recv_param_t *param)
{
    (void)arg, (void)header, (void)header_len;
    struct wire_msg m;
    struct error err;
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) && wire_decode(data, len, &m, &err) == 0) {
        if (m.type == WIRE_REGISTER && m.u.reg.pool.base)
            pool_base = m.u.reg.pool.base;
        wire_msg_release(&m);
    }
    return UCS_OK;
}

static void progress_for(int ms)
{
    for (int i = 0; i < ms; i++) {
        ucp_worker_progress(worker);
        usleep(1000);
    }
}

static ucs_status_t wait_req(ucs_status_ptr_t sp)
{
    if (!UCS_PTR_IS_PTR(sp))
        return UCS_PTR_STATUS(sp);
    ucs_status_t st;
    for (int i = 0; (st = ucp_request_check_status(sp)) == UCS_INPROGRESS && i < 5000; i++)
        progress_for(1);
    ucp_request_free(sp);
    return st;
}

int main(int argc, char **argv)
{
    char host[64];
    int port;
    if (argc != 2 || sscanf(argv[1], "%63[^:]:%d", host, &port) != 2)
        return fprintf(stderr, "usage: rma_probe HOST:PORT\n"), 2;
    ucp_params_t p = {.field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_AM | UCP_FEATURE_RMA};
    ucp_context_h ctx;
    ucp_worker_params_t wp = {0};
    if (ucp_init(&p, NULL, &ctx) != UCS_OK || ucp_worker_create(ctx, &wp, &worker) != UCS_OK)
        return fprintf(stderr, "probe: UCX init failed\n"), 1;
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                                               UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
                                 .id = UCX_AM_ID, .cb = on_message, .flags = UCP_AM_FLAG_WHOLE_MSG};
    ucp_worker_set_am_recv_handler(worker, &hp);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    ucp_ep_params_t ep_params = {.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                                               UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
                                 .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
                                 .sockaddr = {(struct sockaddr *)&sa, sizeof sa},
                                 .err_mode = UCP_ERR_HANDLING_MODE_PEER}; /* what pdserve's endpoints use */
    ucp_ep_h ep;
    if (ucp_ep_create(worker, &ep_params, &ep) != UCS_OK)
        return fprintf(stderr, "probe: cannot connect to %s\n", argv[1]), 1;
    for (int i = 0; i < 100 && !pool_base; i++)
        progress_for(50);
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
    if (ucp_mem_map(ctx, &mp, &memh) != UCS_OK || ucp_rkey_pack(ctx, memh, &packed, &packed_len) != UCS_OK ||
        ucp_ep_rkey_unpack(ep, packed, &rkey) != UCS_OK)
        return fprintf(stderr, "probe: cannot make a remote key\n"), 1;
    static char marker[64];
    memset(marker, 'X', sizeof marker);
    ucp_request_param_t rp = {0};
    ucs_status_t put = wait_req(ucp_put_nbx(ep, marker, sizeof marker, pool_base, rkey, &rp));
    ucs_status_t flush = wait_req(ucp_ep_flush_nbx(ep, &rp));
    progress_for(200);
    printf("probe: put to 0x%llx %s (flush: %s)\n", (unsigned long long)pool_base,
           put == UCS_OK ? "completed" : ucs_status_string(put), ucs_status_string(flush));
    ucp_rkey_destroy(rkey);
    ucp_rkey_buffer_release(packed);
    ucp_mem_unmap(ctx, memh);
    ucp_request_param_t close = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = UCP_EP_CLOSE_FLAG_FORCE};
    wait_req(ucp_ep_close_nbx(ep, &close));
    ucp_worker_destroy(worker);
    ucp_cleanup(ctx);
    return 0;
}
