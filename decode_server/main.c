/* main.c — pdserve-decode: owns a paged KV pool that prefill workers write into, and generates the
 * rest of every sequence with continuous batching; with --colocated it also runs prefill itself.
 * Parse flags, then hand over to the shared worker runtime with the decode role (decode.c), and the
 * prefill role (prefill_server/) as the one the frontend's rebalancer may switch it to. */
#include "decode.h"
#include "common/engine/blas_core.h"
#include "common/util/log.h"
#include "prefill_server/prefill.h"

int main(int argc, char **argv)
{
    struct worker_opts opts;
    struct dc_state decode = {0};
    struct pf_state prefill = {0};
    log_init("decode");
    blas_core_check(argv);
    if (worker_parse_args(argc, argv, "pdserve-decode", true, &opts) < 0)
        return 2;
    struct worker_slot roles[] = {{&decode_role, &decode}, {&prefill_role, &prefill}};
    return worker_main(&opts, roles, 2);
}
