/* The delivery pipeline: resolves each recipient through the directory
 * (aliases expanded) and saves one copy per account through the store.
 * Later issues add Sieve, forwarding, vacation and virus scanning here, so
 * that every way mail arrives (MX, submission, `yubin deliver`, lists) takes
 * the same path. */
#ifndef YUBIN_DELIVER_H
#define YUBIN_DELIVER_H

#include <stddef.h>

struct dir;
struct yubin_config;

enum deliver_status {
	DELIVER_OK,
	DELIVER_UNKNOWN_USER,   /* not an account or alias of a hosted domain */
	DELIVER_TEMPFAIL,       /* try again later: disk, lock, quota if so configured */
	DELIVER_PERMFAIL,       /* will not succeed: over quota (permanent), too big */
};

struct deliver_result {
	const char *recipient;
	enum deliver_status status;
	char *reason;           /* human-readable, for logs and bounces; may be NULL */
};

/* Delivers the message in fd (a seekable file positioned anywhere) to each
 * recipient. results must have room for count entries; free each reason
 * with deliver_results_free(). Returns the worst status. */
enum deliver_status deliver_message(const struct yubin_config *config,
				    struct dir *dir, int fd,
				    const char *const *recipients, size_t count,
				    struct deliver_result *results);
void deliver_results_free(struct deliver_result *results, size_t count);
/* sysexits(3) code for a status: 0, 67, 75, 77. */
int deliver_exit_code(enum deliver_status status);

#endif
