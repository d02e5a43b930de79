/* log.c — the process-wide logger declared in log.h. One event is one line: control bytes in a
 * message (a newline or terminal escape inside a name a peer or client sent) are written as '?',
 * so nobody outside can forge log lines. When stderr is the journal (a systemd service), each line
 * starts with its syslog priority instead of the time: journald stores it as the entry's PRIORITY
 * (so `journalctl -p warning` finds warnings) and records the time itself. */
#include "common/util/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_tag = "pdserve";
static int log_level = -1;
static bool log_journal; /* stderr is a journald stream: "<N>" priority prefixes, no time */

/* systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the stream it connected stdout/stderr to; it is
 * the journal only if stderr is still that stream (a child may have redirected it). */
static bool stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int level_from_env(void)
{
    const char *s = getenv("PDSERVE_LOG");
    if (!s)
        return LOG_INFO;
    if (!strcmp(s, "debug"))
        return LOG_DEBUG;
    if (!strcmp(s, "warn"))
        return LOG_WARN;
    if (!strcmp(s, "error"))
        return LOG_ERROR;
    return LOG_INFO;
}

void log_init(const char *tag)
{
    log_tag = tag;
    log_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
    log_level = (int)level;
}

int log_enabled(enum log_level level)
{
    if (log_level < 0)
        log_level = level_from_env();
    return (int)level >= log_level;
}

/* Writes one line; `suffix` (may be "") follows the message. */
static void log_line(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    static const int syslog_prio[] = {7, 6, 4, 3}; /* LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR */
    char line[2048];
    int n;
    if (log_journal) {
        n = snprintf(line, sizeof line, "<%d>%-5s %s: ", syslog_prio[level], names[level], log_tag);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s: ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level], log_tag);
    }
    int start = n;
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (n < (int)sizeof line - 2)
        n += snprintf(line + n, sizeof line - (size_t)n - 1, "%s", suffix);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = start; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, "", fmt, ap);
    va_end(ap);
}

void log_limited(struct log_limit *l, int interval_ms, enum log_level level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    if (now < l->next_ms) {
        l->left_out++;
        return;
    }
    char suffix[96] = "";
    if (l->left_out)
        snprintf(suffix, sizeof suffix, " (and %llu more like this in the last %d s)", l->left_out,
                 interval_ms / 1000);
    l->left_out = 0;
    l->next_ms = now + (unsigned long long)interval_ms;
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, suffix, fmt, ap);
    va_end(ap);
}
