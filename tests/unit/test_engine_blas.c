/* test_engine_blas.c — OpenBLAS runs kernels this CPU can use (common/engine/blas_core.c).
 *
 * main() starts as every engine binary does, with blas_core_check(): on a CPU whose model OpenBLAS
 * does not know, that sets OPENBLAS_CORETYPE and runs this test again. Either way the kernel set in
 * use must then be one blas_core_better() finds nothing to improve on, unless the environment chose
 * it. The choice must also be stable (what it picks, it keeps), or a binary would re-execute forever. */
#include <cblas.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/check.h"
#include "common/engine/blas_core.h"
#include "common/util/log.h"

static bool caller_chose;

static void kernels_in_use_are_the_best(void)
{
    const char *core = openblas_get_corename();
    CHECK(core != NULL);
    if (!core || caller_chose)
        return;
    const char *better = blas_core_better(core);
    CHECK_MSG(better == NULL, "OpenBLAS runs its %s kernels; this CPU runs %s ones", core, better);
}

static void choice_is_stable(void)
{
    static const char *const cores[] = {"Prescott", "Core2", "Nehalem", "Sandybridge", "Haswell", "Zen",
                                        "SkylakeX", "Cooperlake", "SapphireRapids", "Unknown"};
    for (size_t i = 0; i < sizeof cores / sizeof *cores; i++) {
        const char *better = blas_core_better(cores[i]);
        if (better)
            CHECK_MSG(blas_core_better(better) == NULL, "%s -> %s -> %s", cores[i], better,
                      blas_core_better(better));
    }
    /* Names are OpenBLAS's, in any case. */
    CHECK(blas_core_better("skylakex") == blas_core_better("SKYLAKEX"));
}

static void generic_kernels_are_replaced_on_avx2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    CHECK_MSG((blas_core_better("Prescott") != NULL) == avx2, "Prescott on a CPU %s AVX2+FMA: %s",
              avx2 ? "with" : "without", blas_core_better("Prescott") ? "replaced" : "kept");
    if (avx2)
        CHECK(blas_core_better("Haswell") == NULL || __builtin_cpu_supports("avx512f"));
#endif
}

int main(int argc, char **argv)
{
    (void)argc;
    log_init("test_engine_blas");
    /* Whether whoever ran us chose the kernels, remembered across the re-exec. */
    if (!getenv("TEST_BLAS_CALLER_CHOSE"))
        setenv("TEST_BLAS_CALLER_CHOSE", getenv("OPENBLAS_CORETYPE") ? "1" : "0", 1);
    caller_chose = strcmp(getenv("TEST_BLAS_CALLER_CHOSE"), "1") == 0;
    blas_core_check(argv);
    RUN(kernels_in_use_are_the_best);
    RUN(choice_is_stable);
    RUN(generic_kernels_are_replaced_on_avx2);
    return check_report();
}
