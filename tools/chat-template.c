/* chat-template.c — pdserve-chat-template: renders a model folder's chat template for a conversation
 * from the command line, to see exactly what prompt the frontend will tokenize, and to time renders.
 *   pdserve-chat-template MODEL_DIR [--template NAME] [--no-generation-prompt] [--kwargs JSON]
 *                         [--bench N] [MESSAGES_FILE]
 *   pdserve-chat-template --raw TEMPLATE_FILE [CONTEXT_JSON_FILE]
 * MESSAGES_FILE (default stdin) holds a JSON array of messages, or an object {"messages": [...],
 * "tools": [...], ...} whose other keys are passed to the template. --raw renders any Jinja template
 * file with a JSON object as its variables, without the chat layer (to try a template out). Exit
 * status 1 on a template error (e.g. raise_exception), with the message on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tmpl/chat.h"
#include "common/util/log.h"
#include "common/tmpl/tmpl.h"

struct opts {
    const char *dir, *file, *name, *kwargs;
    bool no_gen, raw;
    int bench;
};

static int usage(FILE *f)
{
    fprintf(f, "usage: pdserve-chat-template MODEL_DIR [--template NAME] [--no-generation-prompt] "
                    "[--kwargs JSON] [--bench N] [MESSAGES_FILE]\n"
                    "       pdserve-chat-template --raw TEMPLATE_FILE [CONTEXT_JSON_FILE]\n");
    return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-generation-prompt"))
            o->no_gen = true;
        else if (!strcmp(a, "--raw"))
            o->raw = true;
        else if (!strcmp(a, "--template") && i + 1 < argc)
            o->name = argv[++i];
        else if (!strcmp(a, "--kwargs") && i + 1 < argc)
            o->kwargs = argv[++i];
        else if (!strcmp(a, "--bench") && i + 1 < argc)
            o->bench = atoi(argv[++i]);
        else if (a[0] == '-' && a[1])
            return -1;
        else if (!o->dir)
            o->dir = a;
        else if (!o->file)
            o->file = a;
        else
            return -1;
    }
    return o->dir ? 0 : -1;
}

/* Splits the input into the messages array and the other keys (template arguments). */
static int load_input(const struct opts *o, json_t **messages, json_t **extra)
{
    json_error_t je;
    json_t *in = o->file && strcmp(o->file, "-") ? json_load_file(o->file, 0, &je) : json_loadf(stdin, 0, &je);
    if (!in) {
        fprintf(stderr, "pdserve-chat-template: %s: %s (line %d)\n", o->file ? o->file : "stdin", je.text, je.line);
        return -1;
    }
    *extra = json_object();
    if (json_is_object(in)) {
        *messages = json_incref(json_object_get(in, "messages"));
        json_object_update(*extra, in);
        json_object_del(*extra, "messages");
        json_decref(in);
    } else {
        *messages = in;
    }
    json_t *kw = o->kwargs ? json_loads(o->kwargs, 0, &je) : NULL;
    if (o->kwargs && !json_is_object(kw)) {
        fprintf(stderr, "pdserve-chat-template: --kwargs must be a JSON object\n");
        json_decref(kw);
        return -1;
    }
    if (kw)
        json_object_update(*extra, kw);
    json_decref(kw);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run(const struct chat_template *c, const struct opts *o, json_t *messages, json_t *extra)
{
    struct error err = { 0 };
    char *out = NULL;
    double t0 = now();
    int n = o->bench > 0 ? o->bench : 1;
    for (int i = 0; i < n; i++) {
        free(out);
        if (chat_render(c, messages, !o->no_gen, extra, &out, &err)) {
            fprintf(stderr, "pdserve-chat-template: %s\n", err.msg);
            return 1;
        }
    }
    if (o->bench > 0)
        printf("%d renders, %.1f us each, %zu bytes of prompt\n", n, (now() - t0) / n * 1e6, strlen(out));
    else
        fputs(out, stdout);
    free(out);
    return 0;
}

/* --raw: o->dir is the template file, o->file the context. */
static int run_raw(const struct opts *o)
{
    struct error err = { 0 };
    FILE *f = fopen(o->dir, "rb");
    if (!f) {
        fprintf(stderr, "pdserve-chat-template: %s: cannot open\n", o->dir);
        return 1;
    }
    size_t cap = 1 << 16, n = 0, r;
    char *src = malloc(cap);
    while (src && (r = fread(src + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap)
            src = realloc(src, cap *= 2);
    fclose(f);
    json_error_t je;
    json_t *ctx = o->file ? json_load_file(o->file, 0, &je) : NULL;
    struct tmpl *t = src && (!o->file || ctx) ? tmpl_parse(src, n, &err) : NULL;
    char *out = NULL;
    int rc = t && tmpl_render(t, ctx, NULL, &out, &n, &err) == 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "pdserve-chat-template: %s\n", o->file && !ctx ? je.text : err.msg);
    else
        fwrite(out, 1, n, stdout);
    free(out);
    tmpl_free(t);
    json_decref(ctx);
    free(src);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    log_init("chat-template");
    if (parse_opts(argc, argv, &o))
        return usage(stderr);
    if (o.raw)
        return run_raw(&o);
    struct error err = { 0 };
    struct chat_template *c = chat_load(o.dir, o.name, &err);
    if (!c) {
        fprintf(stderr, "pdserve-chat-template: %s\n", err.msg);
        return 1;
    }
    json_t *messages = NULL, *extra = NULL;
    int rc = load_input(&o, &messages, &extra) ? 1 : run(c, &o, messages, extra);
    json_decref(messages);
    json_decref(extra);
    chat_free(c);
    return rc;
}
