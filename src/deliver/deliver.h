/* The delivery pipeline: resolves each recipient through the directory
 * (aliases expanded) and saves one copy per account through the store.
 * Later issues add Sieve, forwarding, vacation and virus scanning here, so
 * that every way mail arrives (MX, submission, `yubin deliver`, lists) takes
 * the same path. */
#ifndef YUBIN_DELIVER_H
#define YUBIN_DELIVER_H

#include <stddef.h>
#include <stdint.h>

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

/* How deliver sends the mail it makes (redirects, vacation replies,
 * rejections, forwarded copies): through the outbound queue, which lives in
 * the smtp module. deliver must not depend on smtp (smtp calls deliver), so
 * the program registers the queue once at start (deliver_set_outbox); with
 * none registered such actions fail temporarily. */
struct deliver_outbox {
	void *context;
	/* Queues one message from env_from ("" = null sender) to rcpts: the
	 * bytes of prefix followed by the bytes of body_fd from body_offset to
	 * its end (body_fd -1: prefix only). Durable when it returns 0. */
	int (*send)(void *context, const char *env_from, const char *const *rcpts,
		    size_t rcpt_count, const void *prefix, size_t prefix_len, int body_fd,
		    uint64_t body_offset, const char **error_r);
};
void deliver_set_outbox(const struct deliver_outbox *outbox);

#endif
