/* blas_core.c — making OpenBLAS use the kernels this CPU can run (blas_core.h).
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: when the library loads, it reads the CPU's model from
 * CPUID and picks a kernel set for it. A CPU model it does not know (a virtual machine reporting
 * "Intel(R) Xeon(R) Processor", a CPU newer than the library) gets a generic fallback. On this
 * project's 2-core VM (AVX-512) it picked "Prescott", SSE3 kernels: sgemm ran at 37 GFLOP/s, with
 * OPENBLAS_CORETYPE=SkylakeX at 185, and a 512-token prefill went from 623 to 2,130 tokens/s.
 *
 * The library reads OPENBLAS_CORETYPE only while it loads, before main() runs, so the remedy is to set
 * it and execute the program again, as the first thing main() does (log_init, which opens nothing,
 * may come before): nothing is open yet, the process keeps its pid, and it costs a few milliseconds
 * once. An OPENBLAS_CORETYPE already set (the operator's choice, or our own after the re-exec) is
 * never overridden. */
#include "common/engine/blas_core.h"

#include <cblas.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/util/log.h"

/* OpenBLAS's kernel sets (its corename table) that use AVX-512, and those that use at least AVX2. */
static const char *const avx512_cores[] = {"skylakex", "cooperlake", "sapphirerapids", NULL};
static const char *const avx2_cores[] = {"haswell", "zen", "excavator", "skylakex", "cooperlake",
                                         "sapphirerapids", NULL};

static bool listed(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return true;
    return false;
}

const char *blas_core_better(const char *current)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return listed(current, avx512_cores) ? NULL : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return listed(current, avx2_cores) ? NULL : "Haswell";
#endif
    (void)current;
    return NULL;
}

void blas_core_check(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return;
    const char *current = openblas_get_corename();
    const char *better = current ? blas_core_better(current) : NULL;
    if (!better)
        return;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    log_info("OpenBLAS chose its %s kernels on a CPU that runs %s ones: starting again with "
             "OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE to choose)", current, better, better);
    if (setenv("OPENBLAS_CORETYPE", better, 1) == 0)
        execv(self, argv);
    log_warn("cannot execute %s again (%s): going on with OpenBLAS's %s kernels", self, strerror(errno), current);
    unsetenv("OPENBLAS_CORETYPE");
}
