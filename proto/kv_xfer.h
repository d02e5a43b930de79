/* kv_xfer.h — moving KV cache blocks between processes by UCX RMA (one-sided puts).
 *
 * Pool layout (fixed by the engine): one contiguous buffer of n_layers * n_blocks * block_bytes
 * bytes; block (layer l, block b) starts at ((size_t)l * n_blocks + b) * block_bytes. Prefill and
 * decode pools differ in n_blocks, so each side's layout is explicit.
 *
 * Receiver (decode worker): kvx_pool_map its pool once at start, kvx_pool_describe it into the
 * REGISTER it sends to every prefill worker that connects.
 * Sender (prefill worker): kvx_pool_map its own pool too (the puts then read registered memory),
 * kvx_peer_attach the decode worker's REGISTER pool to the peer, then per computed layer
 * kvx_put_layer(layer, src block ids, dst block ids); after the last layer ucx_flush the peer and
 * send KV_DONE from the flush callback. UCX does not order RMA against Active Messages, so the
 * flush is what guarantees the receiver never sees KV_DONE before the data.
 *
 * All on the loop thread (ucx.h). If the peer is lost, every put in flight completes with an error. */
#ifndef PD_KV_XFER_H
#define PD_KV_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ucx.h"
#include "proto/wire.h"

struct kvx_pool; /* a registered local pool; owned by the caller of kvx_pool_map */

/* Registers [base, base + n_layers * n_blocks * block_bytes) with UCX for local and remote access.
 * The memory stays the caller's; it must outlive the pool handle. */
int kvx_pool_map(struct ucx *u, void *base, uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes,
                 struct kvx_pool **out, struct error *err);
/* Allocates the pool through UCX and registers it: with a shared-memory transport enabled, UCX
 * places it in a shared segment, and a sender on the same host then writes blocks with a plain
 * memcpy through the mapped segment instead of through tcp (see docs/transport.md for numbers).
 * The memory is zeroed and page-aligned; kvx_pool_base() gives its address; kvx_pool_unmap frees
 * it. */
int kvx_pool_alloc(struct ucx *u, uint32_t n_layers, uint32_t n_blocks, uint64_t block_bytes,
                   struct kvx_pool **out, struct error *err);
void *kvx_pool_base(const struct kvx_pool *p);

/* Deregisters (and frees, after kvx_pool_alloc). Puts reading from or writing to it must have completed (at shutdown: ucx_close_all,
 * then this, then ucx_destroy). */
void kvx_pool_unmap(struct kvx_pool *p);

/* Fills *out with the pool's address, layout and packed rkey for a REGISTER message, and offers the
 * pool: from now on KV runs that peers send as messages land in it (one pool per process offers;
 * kvx_pool_unmap withdraws it). out->rkey is malloc'd and owned by the caller (free it after
 * encoding). */
int kvx_pool_describe(struct kvx_pool *p, struct wire_pool *out, struct error *err);

/* Unpacks a remote pool's rkey on this peer's endpoint and remembers its layout, replacing any
 * earlier one. Checks the layout is sane (non-empty, no overflow). */
int kvx_peer_attach(struct ucx_peer *peer, const struct wire_pool *remote, struct error *err);

/* Copies layer `layer` of blocks src[i] (local pool) into blocks dst[i] (the peer's attached pool)
 * for i < n: one ucp_put_nbx per run of blocks consecutive on both sides. cb runs once when every
 * run has completed locally (status -1 if any failed); remote visibility needs ucx_flush. Returns
 * -1 without calling cb if the ids or layer are out of range, the block sizes differ, no pool is
 * attached, or the peer is gone. */
int kvx_put_layer(struct ucx_peer *peer, const struct kvx_pool *local, uint32_t layer, const uint32_t *src,
                  const uint32_t *dst, uint32_t n, ucx_done_cb cb, void *arg, struct error *err);

/* Byte offset of (layer, block) in a pool of this layout. */
static inline size_t kvx_block_offset(uint32_t layer, uint32_t block, uint32_t n_blocks, uint64_t block_bytes)
{
    return ((size_t)layer * n_blocks + block) * (size_t)block_bytes;
}

/* A run of KV blocks received as a message (tcp mode): the layer, first block and count its header
 * names (decoded even when refused, for the message), and the byte offset where it goes. */
struct kvx_run {
    uint32_t layer, dst, count;
    size_t offset;
};

/* Decodes a KV run message's header (header_length bytes) and checks it against a pool of this
 * layout: 0 when the header is well formed and the run, `length` bytes of blocks, fits the pool
 * exactly; -1 otherwise (the run is refused, never written). */
int kvx_run_place(const void *header, size_t header_length, size_t length, uint32_t n_layers, uint32_t n_blocks,
                  uint64_t block_bytes, struct kvx_run *run);

#endif
