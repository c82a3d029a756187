/* Delivery status notifications (RFC 3464) in a multipart/report (RFC
 * 6522): a human-readable part, the message/delivery-status part, and the
 * original message (RET=FULL, the default for failures) or its header
 * (RET=HDRS, delays and successes). They go to the envelope sender through
 * the queue with the null sender, so a bounce never bounces. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "smtp/queue-private.h"

/* The whole original goes back only below this size; above, its header. */
#define DSN_FULL_MAX (10 * 1024 * 1024)
#define DSN_HEADER_MAX (1024 * 1024)
/* A diagnostic from a peer is cut here (one line). */
#define DSN_TEXT_MAX 400

static const char *const action_names[] = {
	[DSN_ACTION_FAILED] = "failed",
	[DSN_ACTION_DELAYED] = "delayed",
	[DSN_ACTION_DELIVERED] = "delivered",
	[DSN_ACTION_RELAYED] = "relayed",
};

static const struct {
	const char *subject;
	const char *intro;
} action_text[] = {
	[DSN_ACTION_FAILED] = { "Undelivered Mail Returned to Sender",
				"Your message could not be delivered to the recipients below.\r\n"
				"This is a permanent error; no further attempts will be made." },
	[DSN_ACTION_DELAYED] = { "Delayed Mail (still being retried)",
				 "Your message has not been delivered yet to the recipients below.\r\n"
				 "It stays in the queue and will be retried; you do not need to send\r\n"
				 "it again." },
	[DSN_ACTION_DELIVERED] = { "Successful Mail Delivery Report",
				   "Your message was delivered to the recipients below." },
	[DSN_ACTION_RELAYED] = { "Successful Mail Delivery Report",
				 "Your message was delivered to the recipients below." },
};

static void put_date(struct buf *out, time_t t)
{
	struct tm tm;
	char text[64];
	gmtime_r(&t, &tm);
	strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_append_str(out, text);
}

/* Peer text in a header field: printable ASCII, one line, bounded. */
static void put_clean(struct buf *out, const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++) {
		if (n == DSN_TEXT_MAX) {
			buf_append_str(out, "...");
			return;
		}
		buf_append_char(out, *p >= 0x20 && *p < 0x7f ? (char)*p : '?');
	}
}

/* The report's worst action names the whole: failed > delayed > success. */
static enum dsn_action report_action(const struct dsn_report *r)
{
	enum dsn_action best = DSN_ACTION_DELIVERED;
	for (size_t i = 0; i < r->count; i++) {
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			return DSN_ACTION_FAILED;
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			best = DSN_ACTION_DELAYED;
	}
	return best;
}

static void put_headers(struct buf *out, const struct dsn_report *r, const char *boundary)
{
	const struct queue_entry *e = r->entry;
	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->reporting_mta);
	buf_printf(out, "To: <%s>\r\n", e->env.sender);
	buf_printf(out, "Subject: %s\r\n", action_text[report_action(r)].subject);
	buf_append_str(out, "Date: ");
	put_date(out, r->now);
	buf_printf(out, "\r\nMessage-ID: <%s.%lld.dsn@%s>\r\n", e->id, (long long)r->now,
		   r->reporting_mta);
	buf_append_str(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	buf_printf(out,
		   "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n",
		   boundary);
}

static void put_human(struct buf *out, const struct dsn_report *r, const char *boundary)
{
	buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n\r\n",
		   boundary);
	buf_printf(out, "This is the mail system at %s.\r\n\r\n%s\r\n\r\n", r->reporting_mta,
		   action_text[report_action(r)].intro);
	for (size_t i = 0; i < r->count; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];
		buf_printf(out, "<%s>: %s", rc->address, action_names[rc->action]);
		if (rc->diagnostic != NULL) {
			buf_append_str(out, "\r\n    ");
			if (rc->remote_mta != NULL)
				buf_printf(out, "%s said: ", rc->remote_mta);
			put_clean(out, rc->diagnostic);
		}
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "\r\n");
}

/* "550 5.1.1 ..." or "550-...": a reply code of RFC 5321 4.2. */
static bool dsn_is_smtp_reply(const char *text)
{
	return text[0] >= '2' && text[0] <= '5' && text[1] >= '0' && text[1] <= '9' &&
	       text[2] >= '0' && text[2] <= '9' &&
	       (text[3] == ' ' || text[3] == '-' || text[3] == '\0');
}

static void put_recipient_fields(struct buf *out, const struct dsn_report *r,
				 const struct dsn_rcpt *rc)
{
	buf_printf(out, "\r\nFinal-Recipient: rfc822; %s\r\n", rc->address);
	if (rc->orcpt != NULL) {
		/* ORCPT is "addr-type;xtext" (RFC 3461 4.2); keep it as received. */
		buf_append_str(out, "Original-Recipient: ");
		put_clean(out, rc->orcpt);
		buf_append_str(out, "\r\n");
	}
	buf_printf(out, "Action: %s\r\nStatus: %s\r\n", action_names[rc->action], rc->status);
	if (rc->remote_mta != NULL) {
		buf_append_str(out, "Remote-MTA: dns; ");
		put_clean(out, rc->remote_mta);
		buf_append_str(out, "\r\n");
	}
	if (rc->diagnostic != NULL) {
		/* RFC 3464 2.3.6: "smtp" says the text is an SMTP server's reply;
		 * DNS, connection and local delivery reasons are our own. */
		buf_append_str(out, dsn_is_smtp_reply(rc->diagnostic) ? "Diagnostic-Code: smtp; "
		                                                      : "Diagnostic-Code: X-Yubin; ");
		put_clean(out, rc->diagnostic);
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "Last-Attempt-Date: ");
	put_date(out, r->now);
	buf_append_str(out, "\r\n");
	if (rc->action == DSN_ACTION_DELAYED) {
		buf_append_str(out, "Will-Retry-Until: ");
		put_date(out, r->retry_until);
		buf_append_str(out, "\r\n");
	}
}

static void put_status(struct buf *out, const struct dsn_report *r, const char *boundary)
{
	const struct queue_entry *e = r->entry;
	buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
			"Content-Type: message/delivery-status\r\n\r\n",
		   boundary);
	buf_printf(out, "Reporting-MTA: dns; %s\r\nX-Yubin-Queue-ID: %s\r\n", r->reporting_mta,
		   e->id);
	if (e->env.envid != NULL) {
		buf_append_str(out, "Original-Envelope-Id: ");
		put_clean(out, e->env.envid);
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "Arrival-Date: ");
	put_date(out, e->arrival);
	buf_append_str(out, "\r\n");
	for (size_t i = 0; i < r->count; i++)
		put_recipient_fields(out, r, &r->rcpts[i]);
	buf_append_str(out, "\r\n");
}

/* The original's header, up to and without its empty line. */
static int read_header(int fd, struct buf *out)
{
	char chunk[8192];
	uint64_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0 || buf_append(out, chunk, (size_t)n) < 0)
			break;
		off += (uint64_t)n;
		const char *end = strstr(buf_str(out), "\r\n\r\n");
		if (end != NULL) {
			out->len = (size_t)(end - buf_str(out)) + 2;
			out->data[out->len] = '\0';
			return 0;
		}
	}
	return 0;
}

static int append_chunk(void *context, const void *data, size_t len)
{
	(void)buf_append(context, data, len);
	return 0;
}

static int append_file(int fd, struct buf *out)
{
	return fd_read_all(fd, append_chunk, out);
}

static bool return_full(const struct dsn_report *r)
{
	const struct queue_entry *e = r->entry;
	if (report_action(r) != DSN_ACTION_FAILED || e->env.ret == QUEUE_RET_HDRS)
		return false;
	/* Binary content cannot travel inside message/rfc822 (RFC 3030). */
	return e->env.body != QUEUE_BODY_BINARYMIME && e->size <= DSN_FULL_MAX;
}

static int put_original(struct buf *out, const struct dsn_report *r, int fd,
			const char *boundary)
{
	bool full = return_full(r);
	bool eight = r->entry->env.body != QUEUE_BODY_7BIT || r->entry->env.smtputf8;
	const char *type = full ? (r->entry->env.smtputf8 ? "message/global" : "message/rfc822")
				: (r->entry->env.smtputf8 ? "message/global-headers"
							  : "text/rfc822-headers");
	buf_printf(out, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n", boundary,
		   full ? "Undelivered Message" : "Undelivered Message Headers", type);
	if (eight)
		buf_append_str(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_append_str(out, "\r\n");
	struct buf orig = BUF_INIT(full ? 0 : DSN_HEADER_MAX);
	int ret = full ? append_file(fd, &orig) : read_header(fd, &orig);
	if (ret == 0) {
		buf_append(out, buf_str(&orig), orig.len);
		if (orig.len < 2 || memcmp(buf_str(&orig) + orig.len - 2, "\r\n", 2) != 0)
			buf_append_str(out, "\r\n");
	}
	buf_free(&orig);
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	return ret;
}

int dsn_build(const struct dsn_report *report, int msg_fd, struct buf *out,
              const char **error_r)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)report->now;
	char boundary[64];
	snprintf(boundary, sizeof(boundary), "%08x/%s", r, report->reporting_mta);
	put_headers(out, report, boundary);
	put_human(out, report, boundary);
	put_status(out, report, boundary);
	if (put_original(out, report, msg_fd, boundary) < 0) {
		*error_r = "cannot read the original message";
		return -1;
	}
	return 0;
}

int dsn_queue(const struct yubin_config *config, const struct dsn_report *report, int msg_fd,
              const char **error_r)
{
	const struct queue_entry *e = report->entry;
	if (e->env.sender[0] == '\0' || report->count == 0)
		return 0;
	struct buf text = BUF_INIT(0);
	if (dsn_build(report, msg_fd, &text, error_r) < 0) {
		buf_free(&text);
		return -1;
	}
	struct queue_rcpt rcpt = { .address = e->env.sender, .notify = QUEUE_NOTIFY_NEVER };
	struct queue_envelope env = {
		.sender = "",
		.body = e->env.body == QUEUE_BODY_7BIT && !e->env.smtputf8 ? QUEUE_BODY_7BIT
									 : QUEUE_BODY_8BITMIME,
		.smtputf8 = e->env.smtputf8,
		.rcpts = &rcpt,
		.rcpt_count = 1,
		.origin = "bounce",
	};
	struct queue_msg *msg = queue_create(config, &env, error_r);
	char *id = NULL;
	int ret = -1;
	if (msg != NULL && queue_write(msg, buf_str(&text), text.len, error_r) == 0)
		ret = queue_commit(&msg, &id, error_r);
	queue_abort(&msg);
	if (ret == 0)
		log_info("queue id=%s event=dsn action=%s dsn_id=%s rcpts=%zu", e->id,
			 action_names[report_action(report)], id, report->count);
	free(id);
	buf_free(&text);
	return ret;
}
