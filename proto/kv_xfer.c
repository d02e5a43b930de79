/* kv_xfer.c — KV blocks between pools: registering pools, packing and unpacking rkeys, and sending a
 * layer's blocks as runs of contiguous blocks (kv_xfer.h) — by RMA put, or over tcp as messages that
 * the receiver checks and copies into the pool it offered.
 *
 * A layer on top of the transport core (ucx_internal.h): it keeps each peer's remote pool in the
 * peer's extension slot, counts its runs' completions itself, and claims the core's KV message id
 * while it offers a pool. The core never calls in here by name. */
#include "proto/kv_xfer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util/log.h"
#include "ucx_internal.h"

struct kvx_pool {
    struct ucx *u;
    ucp_mem_h memh;
    uint8_t *base;
    uint32_t n_layers, n_blocks;
    uint64_t block_bytes;
    bool offered; /* described to peers: KV runs sent as messages land here */
};

/* A peer's pool, once attached (the peer's extension slot). */
struct kvx_remote {
    ucp_rkey_h rkey;
    uint64_t base, block_bytes;
    uint32_t n_layers, n_blocks;
    bool by_am; /* send runs as messages, not puts (RMA to this peer is tcp's emulation) */
};

/* The runs of one kvx_put_layer call; the caller's callback fires when the last one completes. */
struct kvx_batch {
    struct ucx *u;
    struct ucx_peer *peer; /* holds a reference */
    ucx_done_cb cb;
    void *arg;
    int pending;
    ucs_status_t status; /* the first failure */
};

static int layout_bytes(uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes, size_t *out)
{
    if (!n_layers || !n_blocks || !block_bytes)
        return -1;
    unsigned __int128 total = (unsigned __int128)n_layers * n_blocks * block_bytes;
    if (total > SIZE_MAX / 2)
        return -1;
    *out = (size_t)total;
    return 0;
}

/* Registers [base, base + len) or, with base NULL, has UCX allocate it. */
static int pool_register(struct ucx *u, void *base, uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes,
                         struct kvx_pool **out, struct error *err)
{
    size_t len;
    if (layout_bytes(n_layers, n_blocks, block_bytes, &len))
        return error_set(err, "kv_xfer: bad pool layout %u layers x %u blocks x %llu bytes", n_layers, n_blocks,
                         (unsigned long long)block_bytes);
    struct kvx_pool *p = calloc(1, sizeof *p);
    if (!p)
        return error_set(err, "kv_xfer: out of memory");
    ucp_mem_map_params_t mp = {
        .field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                      UCP_MEM_MAP_PARAM_FIELD_PROT | UCP_MEM_MAP_PARAM_FIELD_FLAGS,
        .address = base,
        .length = len,
        .prot = UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE |
                (u->rma ? UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE : 0),
        .flags = base ? 0 : UCP_MEM_MAP_ALLOCATE,
    };
    ucs_status_t st = ucp_mem_map(u->ctx, &mp, &p->memh);
    ucp_mem_attr_t attr = {.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS};
    if (st == UCS_OK && !base && (st = ucp_mem_query(p->memh, &attr)) != UCS_OK)
        ucp_mem_unmap(u->ctx, p->memh);
    if (st != UCS_OK) {
        free(p);
        return error_set(err, "kv_xfer: %s the %zu-byte KV pool: %s (locked-memory limit? ulimit -l; /dev/shm "
                              "size?)", base ? "registering" : "allocating", len, ucs_status_string(st));
    }
    *p = (struct kvx_pool){u, p->memh, base ? base : attr.address, n_layers, n_blocks, block_bytes, false};
    if (!base)
        memset(p->base, 0, len);
    *out = p;
    return 0;
}

int kvx_pool_map(struct ucx *u, void *base, uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes,
                 struct kvx_pool **out, struct error *err)
{
    if (!base)
        return error_set(err, "kv_xfer: no pool memory given");
    return pool_register(u, base, n_layers, n_blocks, block_bytes, out, err);
}

int kvx_pool_alloc(struct ucx *u, uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes,
                   struct kvx_pool **out, struct error *err)
{
    return pool_register(u, NULL, n_layers, n_blocks, block_bytes, out, err);
}

void *kvx_pool_base(const struct kvx_pool *p)
{
    return p->base;
}

void kvx_pool_unmap(struct kvx_pool *p)
{
    if (!p)
        return;
    if (p->offered)
        ucx_am_release(p->u, UCX_AM_KV);
    ucp_mem_unmap(p->u->ctx, p->memh);
    free(p);
}

static ucs_status_t on_kv_run(void *arg, const void *header, size_t header_length, void *data, size_t length,
                             const ucp_am_recv_param_t *param);

int kvx_pool_describe(struct kvx_pool *p, struct wire_pool *out, struct error *err)
{
    *out = (struct wire_pool){(uint64_t)(uintptr_t)p->base, p->n_layers, p->n_blocks, p->block_bytes, 0, NULL};
    if (!p->offered && ucx_am_claim(p->u, UCX_AM_KV, on_kv_run, p, err) < 0)
        return -1;
    p->offered = true;
    if (!p->u->rma)
        return 0; /* no remote key: peers send the blocks as messages */
    void *rkey;
    size_t len;
    ucs_status_t st = ucp_rkey_pack(p->u->ctx, p->memh, &rkey, &len);
    if (st != UCS_OK)
        return error_set(err, "kv_xfer: packing the pool's rkey: %s", ucs_status_string(st));
    if (len > WIRE_MAX_RKEY) {
        ucp_rkey_buffer_release(rkey);
        return error_set(err, "kv_xfer: packed rkey is %zu bytes, the wire allows %d", len, WIRE_MAX_RKEY);
    }
    out->rkey = malloc(len ? len : 1);
    if (!out->rkey) {
        ucp_rkey_buffer_release(rkey);
        return error_set(err, "kv_xfer: out of memory");
    }
    memcpy(out->rkey, rkey, len);
    ucp_rkey_buffer_release(rkey);
    out->rkey_len = (uint32_t)len;
    return 0;
}

/* Whether KV runs to this peer go as messages: PDSERVE_KV_TRANSFER=am|put forces a way; by default
 * messages when the endpoint's first RMA lane is tcp. UCX 1.13 emulates puts over tcp with messages
 * the receiver acknowledges, and a receiver acknowledging puts from a sender that just died can
 * abort inside UCX (docs/transport.md); plain messages need no answer. RDMA keeps real one-sided
 * puts, and so does a pool in shared memory this process has mapped (a put is a memcpy). UCX 1.13
 * has no query for an endpoint's transports, so this reads the endpoint's printed configuration
 * ("lane[1]: 0:tcp/lo.0 ... rma_bw#0 ..."). */
static bool kv_by_am(const struct ucx_peer *peer, const struct kvx_remote *r)
{
    if (!r->rkey)
        return true;
    if (ucx_kv_mode() != UCX_KV_AUTO)
        return ucx_kv_mode() == UCX_KV_AM;
    void *mapped;
    if (ucp_rkey_ptr(r->rkey, r->base, &mapped) == UCS_OK)
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return 1;
    ucp_ep_print_info(peer->ep, f);
    fclose(f);
    bool am = true; /* no RMA lane at all: messages work everywhere */
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"))
        if (strstr(line, "rma_bw#0"))
            am = strstr(line, ":tcp/") != NULL;
    free(text);
    return am;
}

static void remote_free(void *ext)
{
    struct kvx_remote *r = ext;
    if (r->rkey)
        ucp_rkey_destroy(r->rkey);
    free(r);
}

/* The pool attached to peer, or NULL. */
static const struct kvx_remote *remote_of(const struct ucx_peer *peer)
{
    return peer->ext_free == remote_free ? peer->ext : NULL;
}

int kvx_peer_attach(struct ucx_peer *peer, const struct wire_pool *remote, struct error *err)
{
    size_t len;
    if (layout_bytes(remote->n_layers, remote->n_blocks, remote->block_bytes, &len))
        return error_set(err, "kv_xfer: peer %s sent an unusable pool (%u layers x %u blocks x %llu bytes)",
                         peer->name, remote->n_layers, remote->n_blocks, (unsigned long long)remote->block_bytes);
    if (peer->state != UCX_PEER_OPEN || !peer->ep)
        return error_set(err, "kv_xfer: peer %s is gone", peer->name);
    ucp_rkey_h rkey = NULL;
    if (peer->u->rma && remote->rkey_len) { /* both sides do RMA */
        ucs_status_t st = ucp_ep_rkey_unpack(peer->ep, remote->rkey, &rkey);
        if (st != UCS_OK)
            return error_set(err, "kv_xfer: unpacking the rkey of %s: %s (do both sides share a UCX_TLS "
                                  "transport that supports RMA?)", peer->name, ucs_status_string(st));
    }
    struct kvx_remote *r = calloc(1, sizeof *r);
    if (!r) {
        if (rkey)
            ucp_rkey_destroy(rkey);
        return error_set(err, "kv_xfer: out of memory attaching the pool of %s", peer->name);
    }
    *r = (struct kvx_remote){rkey, remote->base, remote->block_bytes, remote->n_layers, remote->n_blocks, false};
    r->by_am = kv_by_am(peer, r);
    if (peer->ext_free)
        peer->ext_free(peer->ext);
    peer->ext = r;
    peer->ext_free = remote_free;
    log_debug("kv_xfer: KV blocks to %s go by %s", peer->name, r->by_am ? "message (tcp)" : "RMA put");
    return 0;
}

/* One run of a batch completed (inside progress): the caller's callback once the last one has. */
static void batch_part_done(void *arg, ucs_status_t st)
{
    struct kvx_batch *b = arg;
    if (st != UCS_OK) {
        b->u->stats.put_errors++;
        if (b->status == UCS_OK)
            b->status = st;
    }
    if (--b->pending > 0)
        return;
    ucx_queue_done(b->u, b->peer, b->cb, b->arg, b->status);
    ucx_peer_unref(b->peer);
    free(b);
}

static int check_put(const struct ucx_peer *peer, const struct kvx_remote *r, const struct kvx_pool *local,
                     uint32_t layer, const uint32_t *src, const uint32_t *dst, uint32_t n, struct error *err)
{
    if (peer->state != UCX_PEER_OPEN || !peer->ep)
        return error_set(err, "kv_xfer: peer %s is gone", peer->name);
    if (!r)
        return error_set(err, "kv_xfer: no KV pool attached to peer %s (its REGISTER not seen yet?)", peer->name);
    if (r->block_bytes != local->block_bytes)
        return error_set(err, "kv_xfer: block size differs: %llu bytes here, %llu at %s (different model or "
                              "block_size?)", (unsigned long long)local->block_bytes,
                         (unsigned long long)r->block_bytes, peer->name);
    if (layer >= local->n_layers || layer >= r->n_layers)
        return error_set(err, "kv_xfer: layer %u out of range (%u here, %u at %s)", layer, local->n_layers,
                         r->n_layers, peer->name);
    for (uint32_t i = 0; i < n; i++)
        if (src[i] >= local->n_blocks || dst[i] >= r->n_blocks)
            return error_set(err, "kv_xfer: block pair %u -> %u out of range (%u here, %u at %s)", src[i],
                             dst[i], local->n_blocks, r->n_blocks, peer->name);
    return 0;
}

/* Sends one run as an eager message (never rendezvous: that would need answers from the receiver
 * again); the header lives in the op until the send completes. */
static ucs_status_ptr_t send_run(struct ucx_peer *peer, struct ucx_op *op, uint32_t layer, uint32_t dst,
                                 uint32_t count, const void *from, size_t bytes)
{
    uint8_t *h = malloc(UCX_TOKEN_LEN + WIRE_KV_RUN_SIZE); /* the receiver's token, then the run */
    if (!h)
        return UCS_STATUS_PTR(UCS_ERR_NO_MEMORY);
    memcpy(h, peer->tx_hdr, UCX_TOKEN_LEN);
    wire_encode_kv_run(h + UCX_TOKEN_LEN, &(struct wire_kv_run){layer, dst, count});
    op->buf = h;
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS,
        .cb.send = ucx_op_request_cb,
        .user_data = op,
        .flags = UCP_AM_SEND_FLAG_EAGER,
    };
    return ucp_am_send_nbx(peer->ep, UCX_AM_KV, h, UCX_TOKEN_LEN + WIRE_KV_RUN_SIZE, from, bytes, &rp);
}

/* Posts one run of `count` consecutive blocks; its completion counts down the batch. */
static void put_run(struct ucx_peer *peer, const struct kvx_remote *r, const struct kvx_pool *local,
                    struct kvx_batch *b, uint32_t layer, uint32_t src, uint32_t dst, uint32_t count)
{
    if (peer->state != UCX_PEER_OPEN || !peer->ep) { /* failed during an earlier run of this call */
        batch_part_done(b, UCS_ERR_CONNECTION_RESET);
        return;
    }
    struct ucx_op *op = ucx_op_new(peer, NULL, NULL);
    if (!op) {
        batch_part_done(b, UCS_ERR_NO_MEMORY);
        return;
    }
    op->raw_done = batch_part_done;
    op->raw_arg = b;
    size_t bytes = (size_t)count * local->block_bytes;
    const uint8_t *from = local->base + kvx_block_offset(layer, src, local->n_blocks, local->block_bytes);
    peer->u->stats.puts++;
    peer->u->stats.put_bytes += bytes;
    if (r->by_am) {
        ucx_op_track(op, send_run(peer, op, layer, dst, count, from, bytes));
        return;
    }
    uint64_t to = r->base + kvx_block_offset(layer, dst, r->n_blocks, r->block_bytes);
    ucp_request_param_t rp = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_MEMH,
        .cb.send = ucx_op_request_cb,
        .user_data = op,
        .memh = local->memh,
    };
    ucx_op_track(op, ucp_put_nbx(peer->ep, from, bytes, to, r->rkey, &rp));
}

int kvx_put_layer(struct ucx_peer *peer, const struct kvx_pool *local, uint32_t layer, const uint32_t *src,
                  const uint32_t *dst, uint32_t n, ucx_done_cb cb, void *arg, struct error *err)
{
    const struct kvx_remote *r = remote_of(peer);
    if (check_put(peer, r, local, layer, src, dst, n, err))
        return -1;
    struct kvx_batch *b = calloc(1, sizeof *b);
    if (!b)
        return error_set(err, "kv_xfer: out of memory");
    *b = (struct kvx_batch){peer->u, peer, cb, arg, 1, UCS_OK}; /* 1: held until every run is posted */
    ucx_peer_ref(peer);
    for (uint32_t i = 0; i < n;) {
        uint32_t run = 1;
        while (i + run < n && src[i + run] == src[i] + run && dst[i + run] == dst[i] + run)
            run++;
        b->pending++;
        put_run(peer, r, local, b, layer, src[i], dst[i], run);
        i += run;
    }
    batch_part_done(b, UCS_OK);
    return 0;
}

int kvx_run_place(const void *header, size_t header_length, size_t length, uint32_t n_layers, uint32_t n_blocks,
                  uint64_t block_bytes, struct kvx_run *run)
{
    struct wire_kv_run h;
    int bad = wire_decode_kv_run(header, header_length, &h);
    *run = (struct kvx_run){h.layer, h.dst, h.count, 0};
    if (bad || !run->count || run->layer >= n_layers || run->dst >= n_blocks ||
        run->count > n_blocks - run->dst || length != (size_t)run->count * block_bytes)
        return -1;
    run->offset = kvx_block_offset(run->layer, run->dst, n_blocks, block_bytes);
    return 0;
}

/* Why a received KV run is refused (NULL: it is accepted, and *run says where it goes). */
static const char *run_refusal(const struct kvx_pool *pool, const struct ucx_peer *p, int rndv,
                               const void *header, size_t header_length, size_t length, struct kvx_run *run)
{
    if (kvx_run_place(header, header_length, length, pool->n_layers, pool->n_blocks, pool->block_bytes, run))
        return "does not fit the pool";
    if (rndv)
        return "sent by rendezvous";
    if (!p || p->state != UCX_PEER_OPEN)
        return "from no open peer";
    return NULL;
}

/* A KV run sent as a message (the handler of UCX_AM_KV while `arg`, a pool, is offered): checked
 * against that pool, then copied into it. A run that does not fit it exactly is refused and
 * counted, never written. */
static ucs_status_t on_kv_run(void *arg, const void *header, size_t header_length, void *data, size_t length,
                             const ucp_am_recv_param_t *param)
{
    const struct kvx_pool *pool = arg;
    struct ucx *u = pool->u;
    struct ucx_peer *p = ucx_peer_by_header(u, header, header_length);
    struct kvx_run run = {0};
    int rndv = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
    const char *why = p ? run_refusal(pool, p, rndv, (const uint8_t *)header + UCX_TOKEN_LEN,
                                      header_length - UCX_TOKEN_LEN, length, &run)
                        : "from no authenticated peer";
    if (why) {
        u->stats.kv_rejected++;
        if (u->stats.kv_rejected <= 20 || u->stats.kv_rejected % 1000 == 0)
            log_warn("ucx: refused a KV run from %s (layer %u, blocks %u+%u, %zu bytes; %s)", p ? p->name : "?",
                     run.layer, run.dst, run.count, length, why);
        if (rndv)
            ucp_am_data_release(u->worker, data);
        return UCS_OK;
    }
    ucx_peer_heard(p);
    memcpy(pool->base + run.offset, data, length);
    u->stats.kv_rx++;
    u->stats.kv_rx_bytes += length;
    return UCS_OK;
}
