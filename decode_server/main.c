/* main.c — pdserve-decode: owns a paged KV pool that prefill workers write into, and generates the
 * rest of every sequence with continuous batching; with --colocated it also runs prefill itself.
 * Parse flags, then hand over to the shared worker runtime with the decode role (decode.c). */
#include "decode.h"
#include "common/util/log.h"

int main(int argc, char **argv)
{
    struct worker_opts opts;
    struct dc_state state = {0};
    log_init("decode");
    if (worker_parse_args(argc, argv, "pdserve-decode", true, &opts) < 0)
        return 2;
    return worker_main(&opts, &decode_role, &state);
}
