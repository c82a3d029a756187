/* The outbound queue (DESIGN.md: <data>/queue/, owned by the queue runner
 * process): one durable file per message plus its envelope and the state of
 * each recipient. A message is in the queue once queue_commit() returned 0:
 * its bytes and envelope are fsync'd (file and folder), so the SMTP server
 * may answer 250 and `yubin send` may exit 0. The runner delivers each
 * recipient through smtpc (smtpc.h), retries on a schedule, warns of delay
 * and bounces (RFC 3464) on permanent failure or expiry. See docs/queue.md. */
#ifndef YUBIN_SMTP_QUEUE_H
#define YUBIN_SMTP_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct yubin_config;

/* RFC 3461 NOTIFY bits; 0 = not given (the default: FAILURE, DELAY). */
#define QUEUE_NOTIFY_NEVER   0x1u
#define QUEUE_NOTIFY_SUCCESS 0x2u
#define QUEUE_NOTIFY_FAILURE 0x4u
#define QUEUE_NOTIFY_DELAY   0x8u

enum queue_ret { QUEUE_RET_DEFAULT, QUEUE_RET_FULL, QUEUE_RET_HDRS };

enum queue_body { QUEUE_BODY_7BIT, QUEUE_BODY_8BITMIME, QUEUE_BODY_BINARYMIME };

struct queue_rcpt {
	char *address;   /* the forward-path, without <> */
	char *orcpt;     /* RFC 3461 ORCPT as received ("rfc822;user@host"), or NULL */
	unsigned int notify; /* QUEUE_NOTIFY_* */
};

struct queue_envelope {
	char *sender;    /* reverse-path without <>; "" = the null sender */
	enum queue_ret ret;
	char *envid;     /* RFC 3461 ENVID (xtext decoded), or NULL */
	enum queue_body body;
	bool smtputf8;   /* the message needs SMTPUTF8 (RFC 6531) */
	struct queue_rcpt *rcpts;
	size_t rcpt_count;
	/* Who handed it in, for logs and Received: "smtp", "submission
	 * user@example.org", "send uid=1000", "bounce". */
	char *origin;
};

/* A message being written into the queue. */
struct queue_msg;

/* Starts a message in <data>/queue (created on first use). NULL with
 * *error_r (static) when the queue folder is not usable. The envelope is
 * copied. */
struct queue_msg *queue_create(const struct yubin_config *config, const struct queue_envelope *env,
                               const char **error_r);
/* Appends message bytes (as received, CRLF line ends, dot-unstuffed). -1
 * on a write error (then abort). */
int queue_write(struct queue_msg *msg, const void *data, size_t len, const char **error_r);
/* fsyncs the file, its envelope and the folder, and makes it visible to the
 * runner (which is woken). *id_r (malloc'd) names it for logs and `yubin
 * queue`. Frees msg, also on failure (then nothing is queued). */
int queue_commit(struct queue_msg **msg, char **id_r, const char **error_r);
void queue_abort(struct queue_msg **msg);

/* Wakes the queue runner now (a new message, `yubin queue flush`). */
void queue_wake(const struct yubin_config *config);

/* Makes the queue deliver's outbox (deliver_set_outbox): the mail that
 * delivery creates (redirects, vacation replies) is queued from then on.
 * config must outlive every delivery. (queue-outbox.c) */
void queue_register_outbox(const struct yubin_config *config);

/* ---- The queue's files, for the runner and `yubin queue` (docs/queue.md) ---- */

struct event_base;

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING,   /* to be tried at next_attempt */
	QUEUE_RCPT_DELIVERED, /* done (and the success DSN, if asked, queued) */
	QUEUE_RCPT_FAILED,    /* given up (and the bounce queued) */
	QUEUE_RCPT_HELD,      /* not tried until `yubin queue release` */
};

struct queue_rcpt_status {
	enum queue_rcpt_state state;
	uint32_t attempts;    /* failed attempts so far */
	time_t next_attempt;  /* pending: not before this (0 = now) */
	char *last_reply;     /* one line, the last failure; or NULL */
};

/* One queued message as its envelope file describes it. */
struct queue_entry {
	char *id;
	time_t arrival;
	bool warned;          /* the delay notice went out */
	uint64_t size;        /* bytes of the message file */
	struct queue_envelope env;
	struct queue_rcpt_status *status; /* env.rcpt_count entries */
};

/* "pending", "delivered", "failed", "held", indexed by the state. */
extern const char *const queue_rcpt_state_names[];

/* <data>/queue (malloc'd). */
char *queue_dir_path(const struct yubin_config *config);
/* An ID as queue_commit() makes them (hex digits and '-', bounded). */
bool queue_id_valid(const char *id);
/* The IDs of committed messages, oldest first. -1 with *error_r (static)
 * when the folder cannot be read; a missing folder is an empty queue. */
int queue_list(const char *dir, char ***ids_r, size_t *count_r, const char **error_r);
void queue_list_free(char **ids, size_t count);
/* 1 with *entry_r, 0 when there is no such message, -1 with *error_r
 * (static) when the envelope file is unreadable or malformed. */
int queue_entry_read(const char *dir, const char *id, struct queue_entry **entry_r,
                     const char **error_r);
/* Replaces the envelope file atomically (temp file, fsync, rename, fsync
 * of the folder). */
int queue_entry_write(const char *dir, const struct queue_entry *entry, const char **error_r);
/* Removes a message: its envelope first, then its bytes. */
int queue_entry_remove(const char *dir, const char *id, const char **error_r);
void queue_entry_free(struct queue_entry **entry);
/* true when no recipient is pending or held. */
bool queue_entry_finished(const struct queue_entry *entry);
/* The message bytes, read-only; -1 with errno set. */
int queue_message_open(const char *dir, const char *id);
/* Every read-modify-write of an envelope (runner, CLI) holds this lock.
 * Returns the lock's fd, or -1 with *error_r (static). */
int queue_lock(const char *dir, const char **error_r);
void queue_unlock(int *lock_fd);

/* The queue runner service (lib/server.h): resumes every unfinished
 * delivery, then runs until its loop is stopped. Returns an exit code. */
int queue_runner_run(struct event_base *base, const struct yubin_config *config);

#endif
