/* check.h — the assertions unit tests use. A failed CHECK prints where and why and counts a failure;
 * the test keeps going so one run shows every broken case. A test binary ends with
 * `return check_report();`, which prints the tally and returns non-zero on any failure. */
#ifndef PD_CHECK_H
#define PD_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond) CHECK_MSG(cond, "%s", #cond)
#define CHECK_MSG(cond, ...)                                                       \
    do {                                                                           \
        check_count++;                                                             \
        if (!(cond)) {                                                             \
            check_failures++;                                                      \
            fprintf(stderr, "%s:%d: check failed: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                         \
    CHECK_MSG((long long)(a) == (long long)(b), "%s == %s (%lld vs %lld)", #a, #b, \
              (long long)(a), (long long)(b))
#define CHECK_EQ_STR(a, b)                                                         \
    CHECK_MSG(strcmp((a), (b)) == 0, "%s == %s (\"%s\" vs \"%s\")", #a, #b, (a), (b))
#define CHECK_NEAR(a, b, tol)                                                      \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%s ~ %s (%g vs %g)", #a, #b, \
              (double)(a), (double)(b))

/* Runs one named case and says which one is running, so a crash in the log points at it. */
#define RUN(fn)                                                                    \
    do {                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                           \
        fn();                                                                      \
    } while (0)

static inline int check_report(void)
{
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
