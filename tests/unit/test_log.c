/* test_log.c — the logger writes one line per event, with the level and tag, drops what is below the
 * level, and turns control bytes inside a message (newlines, terminal escapes a peer could put into a
 * name it sends) into '?', so no one outside the process can forge a log line; a flood of one cause
 * (log_limited) gives one line per interval that counts what it left out. With stderr on the journal
 * ($JOURNAL_STREAM naming it) a line starts with its syslog priority and has no time; a stale
 * $JOURNAL_STREAM (stderr redirected since) changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util/log.h"
#include "tests/helpers/check.h"

/* Runs fn with stderr redirected into a pipe and returns what it wrote (NUL-terminated). */
static const char *capture(void (*fn)(void))
{
    static char buf[8192];
    int fds[2], saved = dup(STDERR_FILENO);
    if (pipe(fds) != 0 || saved < 0)
        return "";
    dup2(fds[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void forged(void)
{
    log_warn("cluster: worker registered (model %s)", "m\n12:00:00.000 error frontend: fake\r\x1b[2J");
}

static void levels(void)
{
    log_debug("hidden %d", 1);
    log_info("shown %d", 2);
}

static void long_line(void)
{
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    log_error("%s", big);
}

static void flood(void)
{
    struct log_limit l = {0};
    for (int i = 0; i < 10000; i++)
        log_limited(&l, 60000, LOG_WARN, "refused connection %d", i);
    l.next_ms = 0; /* as if the interval had passed */
    log_limited(&l, 60000, LOG_WARN, "refused connection %d", 10000);
}

/* As capture(), but with $JOURNAL_STREAM naming the pipe (journal) or not (a stale value). */
static const char *capture_journal(void (*fn)(void), int journal)
{
    static char buf[8192];
    int fds[2], saved = dup(STDERR_FILENO);
    struct stat st;
    if (pipe(fds) != 0 || saved < 0 || fstat(fds[1], &st) != 0)
        return "";
    char env[64];
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (journal ? 0 : 1));
    setenv("JOURNAL_STREAM", env, 1);
    dup2(fds[1], STDERR_FILENO);
    log_init("test:1");
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = 0;
    unsetenv("JOURNAL_STREAM");
    log_init("test:1");
    return buf;
}

static void journal_lines(void)
{
    log_info("shown %d", 3);
    log_warn("careful %d", 4);
    log_error("broken %d", 5);
}

static int count(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

int main(void)
{
    log_init("test:1");
    log_set_level(LOG_INFO);
    const char *out = capture(forged);
    CHECK_EQ_INT(count(out, '\n'), 1);
    CHECK(strstr(out, " warn  test:1: cluster: worker registered (model m?12:00:00.000 error frontend: fake??[2J)\n"));
    CHECK(!strchr(out, '\r') && !strchr(out, '\x1b'));

    out = capture(levels);
    CHECK(!strstr(out, "hidden"));
    CHECK(strstr(out, " info  test:1: shown 2\n") != NULL);

    out = capture(long_line);
    CHECK_EQ_INT(count(out, '\n'), 1);
    CHECK(strlen(out) < 2100 && out[strlen(out) - 1] == '\n');

    out = capture(flood);
    CHECK_EQ_INT(count(out, '\n'), 2);
    CHECK(strstr(out, "refused connection 0\n") != NULL);
    CHECK(strstr(out, "refused connection 10000 (and 9999 more like this in the last 60 s)\n") != NULL);

    out = capture_journal(journal_lines, 1);
    CHECK(strcmp(out, "<6>info  test:1: shown 3\n<4>warn  test:1: careful 4\n<3>error test:1: broken 5\n") == 0);
    out = capture_journal(journal_lines, 0);
    CHECK(out[0] != '<' && strstr(out, " warn  test:1: careful 4\n") != NULL);
    return check_report();
}
