/* log.h — one line per event on stderr: time (or, on the journal, the priority), level, process tag, message. The level comes from
 * PDSERVE_LOG (debug|info|warn|error, default info) or log_set_level(). Thread-safe: each line is
 * written with a single write(2). */
#ifndef PD_LOG_H
#define PD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Tag printed on every line, e.g. "prefill:0"; the string must outlive all logging. Also looks whether
 * stderr is the journal ($JOURNAL_STREAM): then lines carry a syslog priority prefix and no time. */
void log_init(const char *tag);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One cause of a line that a flood could repeat without end (refused connections, failed accepts):
 * at most one line per interval, which says how many like it were left out since the last.
 * Zero-initialise one per cause; it belongs to one thread. */
struct log_limit {
    unsigned long long next_ms; /* no line before this (monotonic clock) */
    unsigned long long left_out; /* events since the last line */
};
void log_limited(struct log_limit *l, int interval_ms, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(...) (log_enabled(LOG_DEBUG) ? log_msg(LOG_DEBUG, __VA_ARGS__) : (void)0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
