/* main.c — pdserve-prefill: computes prompts and streams their KV cache to decode workers.
 * Parse flags, then hand over to the shared worker runtime with the prefill role (prefill.c), and the
 * decode role (decode_server/) as the one the frontend's rebalancer may switch it to (colocated). */
#include "common/engine/blas_core.h"
#include "common/util/log.h"
#include "decode_server/decode.h"
#include "prefill.h"

int main(int argc, char **argv)
{
    struct worker_opts opts;
    struct pf_state prefill = {0};
    struct dc_state decode = {0};
    log_init("prefill");
    blas_core_check(argv);
    if (worker_parse_args(argc, argv, "pdserve-prefill", false, &opts) < 0)
        return 2;
    struct worker_slot roles[] = {{&prefill_role, &prefill}, {&decode_role, &decode}};
    return worker_main(&opts, roles, 2);
}
