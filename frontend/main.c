/* main.c — pdserve-frontend: parse flags, load the tokenizer and template, start the HTTP server and
 * the worker listener, run the loop until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>

#include "frontend/fe.h"
#include "common/util/log.h"

static uv_signal_t sigs[2];

static void close_signals(struct fe *fe)
{
    (void)fe;
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL); /* with the server closed, the loop ends */
}

/* The first signal drains (requests in flight finish); a second one stops at once. */
static void on_signal(uv_signal_t *s, int signum)
{
    struct fe *fe = s->data;
    if (!fe->draining) {
        log_info("signal %d: draining (again to stop at once)", signum);
        fe_drain(fe, close_signals);
        return;
    }
    log_info("signal %d: stopping now", signum);
    if (uv_is_active((uv_handle_t *)&fe->drain_timer))
        uv_close((uv_handle_t *)&fe->drain_timer, NULL);
    fe_stop(fe);
    close_signals(fe);
}

int main(int argc, char **argv)
{
    static struct fe fe;
    struct error err;
    log_init("frontend");
    signal(SIGPIPE, SIG_IGN);
    fe_memory_init();
    if (fe_parse_args(argc, argv, &fe.cfg, &err)) {
        fprintf(stderr, "pdserve-frontend: %s\n", err.msg);
        return 2;
    }
    fe.loop = uv_default_loop();
    if (fe_load_model(&fe, &err) || fe_start(&fe, &err)) {
        log_error("%s", err.msg);
        fe_free(&fe);
        return 1;
    }
    int signums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(fe.loop, &sigs[i]);
        sigs[i].data = &fe;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    uv_run(fe.loop, UV_RUN_DEFAULT);
    fe_free(&fe);
    uv_loop_close(fe.loop);
    log_info("stopped");
    return 0;
}
