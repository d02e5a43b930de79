/* bench_engine.h — what pdserve-bench-engine's speed report (main.c) shares with its profiling mode
 * (profile.c): a clock, the bench's prompts, and running sequences to completion through engine_step. */
#ifndef PD_TOOLS_BENCH_ENGINE_H
#define PD_TOOLS_BENCH_ENGINE_H

#include "common/engine/engine.h"

double now(void);
/* n sequences of prompt_len deterministic ids (the same ids bench.mjs gives llama.cpp), greedy. */
void make_seqs(struct seq *seqs, int n, int prompt_len, int max_tokens, int vocab, int seed0);
/* engine_step until no sequence has work; secs and tokens generated. */
int run_seqs(struct engine *e, struct seq *seqs, int n, int budget, double *secs, int *tokens);
/* --profile: time forward passes of several shapes and write them to path for pdserve-plan. */
int profile_write(struct engine *e, const char *model_dir, int threads, const char *path);

#endif
