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

#endif
