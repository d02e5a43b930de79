/* blas_core.h — making OpenBLAS use the kernels this CPU can run (why: blas_core.c). */
#ifndef PDSERVE_BLAS_CORE_H
#define PDSERVE_BLAS_CORE_H

#include <stdbool.h>

/* The OPENBLAS_CORETYPE to ask for when OpenBLAS picked the kernel set `current` (its corename) on
 * this CPU: "SkylakeX" on an AVX-512 CPU, "Haswell" on an AVX2+FMA one, when `current` uses less;
 * NULL when `current` is as good. */
const char *blas_core_better(const char *current);

/* Call first in main() (log_init may come before), before any thread, file or socket is opened:
 * when OpenBLAS fell back to kernels weaker than the CPU's and OPENBLAS_CORETYPE is unset, sets it
 * and executes the program again with the same argv (returns only when it does not). */
void blas_core_check(char **argv);

#endif
