/* failalloc.h — allocation-failure injection for unit tests, in the manner of SQLite's fault
 * injection: "let allocations 1..N-1 succeed, fail the Nth", repeated for every N along a path until
 * the path runs without reaching N, so that every allocation on it fails once.
 *
 * A test program that includes this header is linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=strdup,--wrap=strndup (the Makefile does that for tests/unit/failalloc_*.c):
 * every call to those functions from pdserve's own code (the static libraries) then goes through the
 * counters below. Calls inside shared libraries (libc's own, UCX, libuv, jansson) are not counted:
 * they are other projects' code, and pdserve checks their results where it calls them.
 *
 * Counting is per thread and only while armed, so the armed thread's path is what is walked. */
#ifndef PD_FAILALLOC_H
#define PD_FAILALLOC_H

#include <stdbool.h>

/* From now on, on this thread, allocation number n (1-based) fails, and only it. */
void failalloc_arm(long n);
/* Stops counting on this thread. Returns whether the armed allocation was reached (and failed). */
bool failalloc_disarm(void);
/* Allocations counted on this thread since failalloc_arm. */
long failalloc_count(void);
/* While paused, this thread's allocations are neither counted nor failed: the test's own work
 * between the steps of the path it walks. */
void failalloc_pause(bool paused);

#endif
