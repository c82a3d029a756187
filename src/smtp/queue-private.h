/* Inside the queue: the envelope file format, the retry schedule and the
 * delivery status notifications (RFC 3464). Seen by queue*.c, dsn.c and the
 * unit test only. */
#ifndef YUBIN_SMTP_QUEUE_PRIVATE_H
#define YUBIN_SMTP_QUEUE_PRIVATE_H

#include "lib/buf.h"
#include "smtp/queue.h"

#define QUEUE_ENV_SUFFIX ".env"
#define QUEUE_MSG_SUFFIX ".msg"
#define QUEUE_TMP_SUFFIX ".tmp"
#define QUEUE_LOCK_NAME ".lock"
/* The envelope file is small; anything larger is not ours. */
#define QUEUE_ENV_MAX (16 * 1024 * 1024)

/* The envelope file's text (docs/queue.md). */
void queue_entry_format(const struct queue_entry *entry, struct buf *out);
/* Parses it; NULL with *error_r (static) when it is malformed or torn. */
struct queue_entry *queue_entry_parse(const char *id, const char *text, size_t len,
                                      const char **error_r);
/* Copies env into a new entry: every recipient pending, arrival now. */
struct queue_entry *queue_entry_new(const char *id, const struct queue_envelope *env, time_t now);
void queue_envelope_clear(struct queue_envelope *env);
/* Removes crash leftovers older than max_age seconds (a message file
 * without its envelope: never acknowledged; an envelope temp file).
 * Returns how many. */
size_t queue_cleanup(const char *dir, time_t now, time_t max_age);
/* fsync of a folder (after a rename or a new file in it). */
int queue_fsync_dir(const char *dir);

/* The wait after `attempts` failed attempts (1, 2, ...), in seconds:
 * retry_first doubled per further failure, at most retry_max. */
uint64_t queue_retry_delay(const struct yubin_config *config, uint32_t attempts);
/* Whether the sender asked for (or by default gets) this kind of notice. */
bool queue_notify_wants(unsigned int notify, unsigned int kind);

/* ---- Delivery status notifications (dsn.c) ---- */

enum dsn_action { DSN_ACTION_FAILED, DSN_ACTION_DELAYED, DSN_ACTION_DELIVERED,
		  DSN_ACTION_RELAYED };

struct dsn_rcpt {
	const char *address;    /* Final-Recipient */
	const char *orcpt;      /* "rfc822;user@host" as received, or NULL */
	enum dsn_action action;
	const char *status;     /* RFC 3463 "5.1.1" */
	const char *remote_mta; /* host name, or NULL */
	const char *diagnostic; /* "550 5.1.1 text", or NULL */
};

struct dsn_report {
	const char *reporting_mta;  /* our host name */
	const struct queue_entry *entry; /* the original message's envelope */
	time_t now;
	time_t retry_until;         /* delayed: when we give up */
	const struct dsn_rcpt *rcpts;
	size_t count;
};

/* Writes the multipart/report (RFC 6522) message with its
 * message/delivery-status part (RFC 3464) into out; msg_fd is the original
 * message (returned whole or by its header, per RET). */
int dsn_build(const struct dsn_report *report, int msg_fd, struct buf *out,
              const char **error_r);
/* Builds the report and queues it for the original sender (null sender,
 * origin "bounce"). Nothing for a null sender. */
int dsn_queue(const struct yubin_config *config, const struct dsn_report *report, int msg_fd,
              const char **error_r);

#endif
