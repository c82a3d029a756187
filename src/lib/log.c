#include "lib/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_LEVEL_INFO;
static FILE *log_file;          /* NULL = stderr */
static bool use_syslog;
static char log_ident[32] = "yubin";
static char log_role[32] = "";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_close(void)
{
	if (log_file != NULL)
		fclose(log_file);
	log_file = NULL;
	if (use_syslog)
		closelog();
	use_syslog = false;
}

int log_open(const char *target, enum log_level level, const char *ident,
	     const char **error_r)
{
	log_close();
	min_level = level;
	if (ident != NULL)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	if (target == NULL || strcmp(target, "stderr") == 0)
		return 0;
	if (strcmp(target, "syslog") == 0) {
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		use_syslog = true;
		return 0;
	}
	log_file = fopen(target, "ae");
	if (log_file == NULL) {
		*error_r = strerror(errno);
		return -1;
	}
	setvbuf(log_file, NULL, _IOLBF, 0);
	return 0;
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level < min_level)
		return;
	char line[2048];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (use_syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		syslog(prio[level], "%s%s%s: %s", log_role, log_role[0] ? " " : "",
		       level_names[level], line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	FILE *out = log_file != NULL ? log_file : stderr;
	fprintf(out, "%s.%03ldZ %s[%ld]: %s%s%s: %s\n", stamp, ts.tv_nsec / 1000000,
		log_ident, (long)getpid(), log_role, log_role[0] ? " " : "",
		level_names[level], line);
	fflush(out);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	abort();
}

const char *log_escape(const void *data, size_t len, char *out, size_t outsize)
{
	const unsigned char *p = data;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char tmp[5];
		size_t n;
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"') {
			tmp[0] = (char)p[i];
			n = 1;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			n = 4;
		}
		if (o + n + 4 > outsize) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}
