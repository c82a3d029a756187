/* The message of a transaction: an anonymous file (memfd) that starts
 * with our Received header; on submission the header is held in memory
 * until its end so that From: can be checked and Message-ID and Date
 * added. At the end of data: remote recipients into the queue, local
 * ones through `deliver` (both fsync), then one reply. */
#include "smtp/smtp-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "smtp/queue.h"

static void smtp_body_raw(struct smtp_msgfile *b, const char *data, size_t len)
{
	while (len > 0 && !b->write_error) {
		ssize_t n = write(b->fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			b->write_error = true;
			break;
		}
		data += n;
		len -= (size_t)n;
	}
}

void smtp_body_free(struct smtp_session *sess)
{
	struct smtp_msgfile *b = &sess->body;
	if (b->fd >= 0)
		close(b->fd);
	buf_free(&b->header);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	sess->body_open = false;
	xfree(sess->chunk_in);
	xfree(sess->chunk_out);
}

int smtp_message_begin(struct smtp_session *sess, const char **error_r)
{
	struct smtp_msgfile *b = &sess->body;
	smtp_body_free(sess);
	b->fd = memfd_create("yubin-smtp", MFD_CLOEXEC);
	if (b->fd < 0) {
		*error_r = "memfd_create failed";
		return -1;
	}
	buf_init(&b->header, SMTP_MAX_HEADER);
	b->header_done = !sess->submission;
	char *received = smtp_received_header(sess);
	smtp_body_raw(b, received, strlen(received));
	free(received);
	return 0;
}

static bool smtp_header_has(const struct buf *hdr, size_t len, const char *name)
{
	char *value = mime_header_get(hdr->data != NULL ? hdr->data : "", len, name);
	free(value);
	return value != NULL;
}

/* Submission: the header is the first len bytes of the held buffer. */
static void smtp_header_complete(struct smtp_session *sess, size_t len)
{
	struct smtp_msgfile *b = &sess->body;
	const char *reply;
	const char *data = b->header.data != NULL ? b->header.data : "";
	b->header_done = true;
	if (smtp_policy_from_header(sess, data, len, &reply) < 0) {
		b->header_reply = reply;
		return;
	}
	smtp_body_raw(b, data, len);
	if (!smtp_header_has(&b->header, len, "Message-ID")) {
		char *mid = smtp_message_id_header(sess);
		smtp_body_raw(b, mid, strlen(mid));
		free(mid);
	}
	if (!smtp_header_has(&b->header, len, "Date")) {
		char *date = smtp_date_header();
		smtp_body_raw(b, date, strlen(date));
		free(date);
	}
	smtp_body_raw(b, data + len, b->header.len - len);
	buf_free(&b->header);
}

/* The header ends before the first empty line (CRLF CRLF, or LF LF in a
 * BINARYMIME body); searched from a little before the new bytes. */
static bool smtp_header_end(const struct buf *hdr, size_t from, size_t *len_r)
{
	const char *d = hdr->data;
	if (hdr->len >= 2 && d[0] == '\r' && d[1] == '\n') {
		*len_r = 0;
		return true;
	}
	for (size_t i = from; i + 1 < hdr->len; i++) {
		if (d[i] != '\n')
			continue;
		if (d[i + 1] == '\n' || (i + 2 < hdr->len && d[i + 1] == '\r' && d[i + 2] == '\n')) {
			*len_r = i + 1;
			return true;
		}
	}
	return false;
}

void smtp_message_write(struct smtp_session *sess, const char *data, size_t len)
{
	struct smtp_msgfile *b = &sess->body;
	size_t end;
	if (b->header_reply != NULL || len == 0)
		return;
	if (b->header_done) {
		smtp_body_raw(b, data, len);
		return;
	}
	size_t from = b->header.len > 3 ? b->header.len - 3 : 0;
	if (buf_append(&b->header, data, len) < 0) {
		b->header_reply = "552 5.3.4 Message header too long";
		return;
	}
	if (smtp_header_end(&b->header, from, &end))
		smtp_header_complete(sess, end);
}

/* NULL when the message may be delivered, else the reply refusing it. */
static const char *smtp_message_problem(struct smtp_session *sess)
{
	struct smtp_msgfile *b = &sess->body;
	if (sess->data.bare_cr || sess->data.bare_lf || b->bdat_bare)
		return "554 5.6.0 Message refused: bare CR or LF in data (CRLF line ends only)";
	if (sess->data.too_big)
		return "552 5.3.4 Message size exceeds fixed limit";
	if (!b->header_done && b->header_reply == NULL)
		smtp_header_complete(sess, b->header.len);
	return b->header_reply;
}

struct smtp_outcome {
	size_t ok, temp, perm, unknown;
	const char *perm_reason;
	char perm_text[300];
};

/* A refusal that comes with its enhanced code ("5.7.1 reason" from a
 * Sieve reject: RFC 5429 2.1.1 asks for 550 5.7.1 with the script's text;
 * "5.4.6 ..." a forwarding loop). One line of printable ASCII. NULL for
 * other reasons. */
static const char *smtp_refusal_reply(struct smtp_outcome *out, const char *reason)
{
	char code[12];
	const char *text;
	if (!deliver_reason_code(reason, code, &text) || code[0] != '5')
		return NULL;
	int n = snprintf(out->perm_text, sizeof(out->perm_text), "550 %s ", code);
	size_t len = n > 0 ? (size_t)n : 0;
	for (const char *p = text; *p != '\0' && len + 1 < sizeof(out->perm_text); p++)
		out->perm_text[len++] = *p >= 0x20 && *p < 0x7f ? *p : ' ';
	out->perm_text[len] = '\0';
	return out->perm_text;
}

static int smtp_deliver_local(struct smtp_session *sess, struct smtp_outcome *out)
{
	const char *error;
	struct dir *dir = smtp_session_dir(sess, &error);
	if (dir == NULL) {
		log_error("smtp session=%s event=error what=dir_open error=\"%s\"",
			  conn_id(sess->conn), error);
		return -1;
	}
	const char **list = xcalloc(sess->rcpt_count, sizeof(*list));
	struct smtp_rcpt **rcpts = xcalloc(sess->rcpt_count, sizeof(*rcpts));
	size_t n = 0;
	for (size_t i = 0; i < sess->rcpt_count; i++) {
		if (sess->rcpts[i].local) {
			rcpts[n] = &sess->rcpts[i];
			list[n++] = sess->rcpts[i].address;
		}
	}
	struct deliver_result *results = xcalloc(n, sizeof(*results));
	struct deliver_envelope env = {.from = sess->sender, .scanned = true};
	/* redirects and vacation replies go to the queue of this config */
	queue_register_outbox(conn_config(sess->conn));
	deliver_message_env(conn_config(sess->conn), dir, sess->body.fd, &env, list, n, results);
	for (size_t i = 0; i < n; i++) {
		rcpts[i]->requeue = results[i].status != DELIVER_OK;
		if (results[i].status == DELIVER_OK) {
			out->ok++;
		} else if (results[i].status == DELIVER_TEMPFAIL) {
			out->temp++;
		} else {
			out->perm++;
			out->unknown += results[i].status == DELIVER_UNKNOWN_USER;
			if (out->perm_reason == NULL)
				out->perm_reason = smtp_refusal_reply(out, results[i].reason);
			if (out->perm_reason == NULL)
				out->perm_reason = results[i].status == DELIVER_UNKNOWN_USER ?
					"550 5.1.1 User unknown" : "554 5.2.0 Delivery failed";
		}
	}
	deliver_results_free(results, n);
	free(results);
	free(rcpts);
	free(list);
	return 0;
}

static size_t smtp_count_local(const struct smtp_session *sess)
{
	size_t n = 0;
	for (size_t i = 0; i < sess->rcpt_count; i++)
		n += sess->rcpts[i].local;
	return n;
}

static void smtp_log_message(struct smtp_session *sess, const char *status, const char *id,
			     const struct smtp_outcome *out)
{
	char esc[300];
	log_info("smtp session=%s ip=%s user=%s event=message from=<%s> rcpts=%zu size=%" PRIu64
		 " local_ok=%zu local_temp=%zu local_perm=%zu queue_id=%s status=%s",
		 conn_id(sess->conn), conn_remote_ip(sess->conn),
		 sess->auth_user != NULL ? sess->auth_user : "-",
		 log_escape(sess->sender, strlen(sess->sender), esc, sizeof(esc)),
		 sess->rcpt_count, sess->data.size, out->ok, out->temp, out->perm,
		 id != NULL ? id : "-", status);
}

/* Scanned once here, for the local copies and the queue alike (docs/
 * virus.md): a cleaned copy replaces the message file. A scanner failure
 * (on_failure = tempfail) is 451 and nothing is stored. */
static int smtp_message_scan(struct smtp_session *sess)
{
	struct smtp_outcome none = { 0 };
	const char *error;
	int cleaned;
	if (deliver_scan(conn_config(sess->conn), sess->body.fd, &cleaned, &error) ==
	    DELIVER_SCAN_TEMPFAIL) {
		smtp_log_message(sess, "scan_failed", NULL, &none);
		smtp_reply_error(sess, "451 4.7.1 Virus scan failed, try again later");
		return -1;
	}
	if (cleaned >= 0) {
		close(sess->body.fd);
		sess->body.fd = cleaned;
	}
	return 0;
}

/* One reply covers every recipient (RFC 5321 4.2.5). Local copies are
 * made first; a local copy that failed goes into the queue with the remote
 * recipients, whose runner retries it (temporary) or bounces it
 * (permanent), so one failed recipient never makes the client send the
 * message again to all. Only when every recipient failed for good is the
 * message refused, and only when the queue cannot take it is it 451. */
static void smtp_message_deliver(struct smtp_session *sess)
{
	struct smtp_outcome out = { 0 };
	char *queue_id = NULL;
	const char *error;
	size_t nlocal = smtp_count_local(sess);
	size_t nremote = sess->rcpt_count - nlocal;

	if (smtp_message_scan(sess) < 0)
		return;
	if (nlocal > 0 && smtp_deliver_local(sess, &out) < 0) {
		out.temp = nlocal;
		for (size_t i = 0; i < sess->rcpt_count; i++)
			sess->rcpts[i].requeue = sess->rcpts[i].local;
	}
	if (nremote == 0 && nlocal > 0 && out.perm == nlocal) {
		smtp_log_message(sess, "failed", NULL, &out);
		smtp_reply_error(sess, "%s", out.perm_reason);
		return;
	}
	if ((nremote > 0 || out.temp + out.perm > 0) &&
	    smtp_relay_queue(sess, sess->body.fd, &queue_id, &error) < 0) {
		smtp_log_message(sess, "queue_failed", NULL, &out);
		smtp_reply_internal_error(sess, "queue", error);
		return;
	}
	smtp_log_message(sess, "ok", queue_id, &out);
	smtp_reply(sess, "250 2.0.0 Ok: %s %s.%u", queue_id != NULL ? "queued as" : "id",
		   queue_id != NULL ? queue_id : conn_id(sess->conn), sess->messages);
	free(queue_id);
}

void smtp_message_finish(struct smtp_session *sess)
{
	struct smtp_outcome none = { 0 };
	const char *problem = smtp_message_problem(sess);
	sess->messages++;
	if (problem != NULL) {
		smtp_log_message(sess, "refused", NULL, &none);
		smtp_reply_error(sess, "%s", problem);
	} else if (sess->body.write_error) {
		smtp_reply_internal_error(sess, "message_write", "write to memfd failed");
	} else {
		smtp_message_deliver(sess);
	}
	smtp_session_reset(sess);
}
