/* Logging: one line per event, `key=value` fields, the session id first.
 * Client bytes go through log_escape() before they reach a line; passwords,
 * AUTH data and message bodies are never logged. */
#ifndef YUBIN_LOG_H
#define YUBIN_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* target: "stderr", "syslog" or a file path (appended to). Returns -1 when a
 * file cannot be opened (logging then stays on stderr). May be called again
 * (SIGHUP) to switch target. */
int log_open(const char *target, enum log_level level, const char *ident,
	     const char **error_r);
void log_close(void);
/* "debug", "info", "warn", "error" -> level; -1 when unknown. */
int log_level_parse(const char *name, enum log_level *level_r);
/* The process role shown in each line: "master", "worker", "deliver"... */
void log_set_role(const char *role);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* What a process cannot recover from: logs and exits(1); the master
 * restarts a worker that does this. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A broken invariant: logs and aborts with a core. */
void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Writes a printable, quoted-safe copy of untrusted bytes into out (size
 * outsize, at least 8): non-printables become \xNN, and the copy is cut
 * with "..." when longer than fits. Returns out. */
const char *log_escape(const void *data, size_t len, char *out, size_t outsize);

#endif
