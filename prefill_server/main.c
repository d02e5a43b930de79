/* main.c — pdserve-prefill: computes prompts and streams their KV cache to decode workers.
 * Parse flags, then hand over to the shared worker runtime with the prefill role (prefill.c). */
#include "common/util/log.h"
#include "prefill.h"

int main(int argc, char **argv)
{
    struct worker_opts opts;
    struct pf_state state = {0};
    log_init("prefill");
    if (worker_parse_args(argc, argv, "pdserve-prefill", false, &opts) < 0)
        return 2;
    return worker_main(&opts, &prefill_role, &state);
}
