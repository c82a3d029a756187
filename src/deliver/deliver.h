/* The delivery pipeline: resolves each recipient through the directory
 * (aliases expanded) and saves one copy per account through the store.
 * Later issues add Sieve, forwarding, vacation and virus scanning here, so
 * that every way mail arrives (MX, submission, `yubin deliver`, lists) takes
 * the same path. */
#ifndef YUBIN_DELIVER_H
#define YUBIN_DELIVER_H

#include <stdbool.h>
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

/* What a caller knows of the message's envelope (Sieve's envelope test,
 * redirects, vacation need the sender). deliver_message is this with
 * env NULL: the sender is then taken from a Return-Path header field, if
 * the message has one, else it is unknown (no vacation reply; redirects
 * go with the null sender). Fields may be added. */
struct deliver_envelope {
	const char *from;       /* reverse path without <>; "" = null sender; NULL = unknown */
	bool scanned;           /* fd is what deliver_scan passed (SMTP scans itself) */
};
enum deliver_status deliver_message_env(const struct yubin_config *config, struct dir *dir,
					int fd, const struct deliver_envelope *env,
					const char *const *recipients, size_t count,
					struct deliver_result *results);
/* sysexits(3) code for a status: 0, 67, 75, 77. */
int deliver_exit_code(enum deliver_status status);
/* A reason may start with an RFC 3463 enhanced status code ("5.7.1 text":
 * a Sieve reject, "5.4.6 ..." a forwarding loop): then the code is copied
 * to code (room for 12 bytes), *text_r points after it, and it returns
 * true. The SMTP reply or the bounce carries that code. */
bool deliver_reason_code(const char *reason, char *code, const char **text_r);

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

/* ---- forwarding (deliver-srs.c, docs/forwarding.md) ----
 * For the MX: 1 with the original sender (malloc'd) when address is an
 * SRS address this server made (hash and age checked), else 0. The same
 * declaration as in deliver-private.h. */
int deliver_srs_reverse(const struct yubin_config *config, const char *address,
			char **original_r);

/* ---- virus scanning (deliver-virus.c, docs/virus.md) ----
 * deliver_message scans the message once before anything is stored. The
 * SMTP end of data scans itself (deliver_scan), so that the copy that goes
 * into the queue is scanned too, then hands the result to
 * deliver_message_scanned: a message that goes both ways is scanned once. */
enum deliver_scan_status {
	DELIVER_SCAN_CLEAN,    /* nothing found (or clamd failed with on_failure = accept) */
	DELIVER_SCAN_CLEANED,  /* viruses removed: *cleaned_fd_r holds the new message */
	DELIVER_SCAN_TEMPFAIL, /* the scanner failed (on_failure = tempfail): try later */
};
/* Scans the message in fd (seekable; read with pread). On CLEANED,
 * *cleaned_fd_r is a new file (memfd, the caller closes it) with each
 * infected part replaced by a notice; otherwise it is -1. On TEMPFAIL,
 * *error_r (static) says why. */
enum deliver_scan_status deliver_scan(const struct yubin_config *config, int fd,
                                      int *cleaned_fd_r, const char **error_r);
/* deliver_message without the scan: for a message deliver_scan passed. */
enum deliver_status deliver_message_scanned(const struct yubin_config *config,
                                            struct dir *dir, int fd,
                                            const char *const *recipients, size_t count,
                                            struct deliver_result *results);

#endif
