/* DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030): reading the message into
 * the transaction's file, with the size limit enforced as bytes arrive
 * (the excess is read and dropped, never stored). */
#include "smtp/smtp-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

uint64_t smtp_max_size(struct smtp_session *sess)
{
	const struct config_listener *l = conn_listener(sess->conn);
	if (l != NULL && l->max_message_size != 0)
		return l->max_message_size;
	return conn_config(sess->conn)->smtp.max_message_size;
}

static void smtp_body_input_mode(struct smtp_session *sess, enum smtp_input mode)
{
	const struct yubin_config *config = conn_config(sess->conn);
	sess->input = mode;
	conn_set_idle_timeout(sess->conn, mode == SMTP_INPUT_COMMAND ?
				config->smtp.command_timeout : config->smtp.data_timeout);
	if (sess->chunk_in == NULL) {
		sess->chunk_in = xmalloc(SMTP_BODY_CHUNK);
		sess->chunk_out = xmalloc(SMTP_BODY_CHUNK + 1);
	}
}

/* NULL when the transaction may carry a message now, else the reply. */
static const char *smtp_tx_problem(struct smtp_session *sess)
{
	if (!sess->in_mail)
		return "503 5.5.1 Need MAIL command";
	if (sess->rcpt_count == 0)
		return "554 5.5.1 No valid recipients";
	return NULL;
}

static int smtp_body_begin(struct smtp_session *sess, const char **error_r)
{
	if (sess->body_open)
		return 0;
	if (smtp_message_begin(sess, error_r) < 0)
		return -1;
	sess->body_open = true;
	smtp_data_init(&sess->data, smtp_max_size(sess));
	return 0;
}

void smtp_cmd_data(struct smtp_session *sess, char *arg)
{
	if (arg[0] != '\0') {
		smtp_reply_error(sess, "501 5.5.4 Syntax: DATA");
		return;
	}
	const char *problem = smtp_tx_problem(sess), *error;
	if (problem != NULL) {
		smtp_reply_error(sess, "%s", problem);
		return;
	}
	if (sess->mail.body == SMTP_BODY_BINARYMIME || sess->body_open) {
		/* RFC 3030 3: BINARYMIME and a started BDAT need BDAT. */
		smtp_reply_error(sess, "503 5.5.1 Use BDAT for this message");
		return;
	}
	if (smtp_body_begin(sess, &error) < 0) {
		smtp_reply_internal_error(sess, "message_begin", error);
		return;
	}
	smtp_body_input_mode(sess, SMTP_INPUT_DATA);
	smtp_reply(sess, "354 End data with <CR><LF>.<CR><LF>");
}

static void smtp_data_read(struct smtp_session *sess)
{
	size_t n = conn_read(sess->conn, sess->chunk_in, SMTP_BODY_CHUNK);
	size_t out_len;
	if (n == 0)
		return;
	size_t used = smtp_data_feed(&sess->data, sess->chunk_in, n, sess->chunk_out, &out_len);
	smtp_message_write(sess, sess->chunk_out, out_len);
	if (used < n)
		conn_unread(sess->conn, sess->chunk_in + used, n - used);
	if (!smtp_data_done(&sess->data))
		return;
	smtp_body_input_mode(sess, SMTP_INPUT_COMMAND);
	smtp_message_finish(sess);
}

/* BDAT bytes: a bare CR or LF is checked as for DATA unless the body is
 * BINARYMIME, so that nothing relayed on can be read two ways. */
static void smtp_bdat_check(struct smtp_session *sess, const char *p, size_t n)
{
	struct smtp_msgfile *b = &sess->body;
	if (sess->mail.body == SMTP_BODY_BINARYMIME)
		return;
	for (size_t i = 0; i < n; i++) {
		if ((b->bdat_prev_cr && p[i] != '\n') || (!b->bdat_prev_cr && p[i] == '\n'))
			b->bdat_bare = true;
		b->bdat_prev_cr = p[i] == '\r';
	}
}

static void smtp_bdat_chunk_done(struct smtp_session *sess)
{
	smtp_body_input_mode(sess, SMTP_INPUT_COMMAND);
	if (sess->bdat_reply != NULL) {
		smtp_reply_error(sess, "%s", sess->bdat_reply);
		sess->bdat_reply = NULL;
		return;
	}
	if (sess->bdat_last) {
		smtp_message_finish(sess);
		return;
	}
	if (sess->data.too_big) {
		sess->tx_failed = true;
		smtp_reply_error(sess, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	smtp_reply(sess, "250 2.0.0 %" PRIu64 " octets received", sess->bdat_size);
}

static void smtp_bdat_read(struct smtp_session *sess)
{
	size_t want = sess->bdat_left < SMTP_BODY_CHUNK ? (size_t)sess->bdat_left : SMTP_BODY_CHUNK;
	size_t n = want > 0 ? conn_read(sess->conn, sess->chunk_in, want) : 0;
	sess->bdat_left -= n;
	if (sess->bdat_reply == NULL && n > 0) {
		uint64_t max = smtp_max_size(sess);
		sess->data.size += n;
		if (max != 0 && sess->data.size > max)
			sess->data.too_big = true;
		smtp_bdat_check(sess, sess->chunk_in, n);
		if (!sess->data.too_big && !sess->body.bdat_bare)
			smtp_message_write(sess, sess->chunk_in, n);
	}
	if (sess->bdat_left == 0)
		smtp_bdat_chunk_done(sess);
}

void smtp_data_input(struct smtp_session *sess)
{
	if (sess->input == SMTP_INPUT_DATA)
		smtp_data_read(sess);
	else
		smtp_bdat_read(sess);
}

static int smtp_bdat_parse(char *arg, uint64_t *size_r, bool *last_r)
{
	char *space = strchr(arg, ' ');
	*last_r = false;
	if (space != NULL) {
		*space++ = '\0';
		if (strcasecmp(space, "LAST") != 0)
			return -1;
		*last_r = true;
	}
	return str_to_uint64(arg, size_r);
}

void smtp_cmd_bdat(struct smtp_session *sess, char *arg)
{
	uint64_t size;
	bool last;
	if (smtp_bdat_parse(arg, &size, &last) < 0) {
		/* The chunk's length is unknown: the stream cannot be followed. */
		smtp_reply(sess, "501 5.5.4 Syntax: BDAT size [LAST]; closing");
		smtp_session_close(sess);
		return;
	}
	sess->bdat_left = size;
	sess->bdat_last = last;
	/* The chunk is read whatever happens next; a failure is answered
	 * after it (RFC 3030 2). */
	const char *error;
	sess->bdat_reply = smtp_tx_problem(sess);
	if (sess->bdat_reply == NULL && sess->tx_failed)
		sess->bdat_reply = "503 5.5.1 Transaction failed, send RSET";
	if (sess->bdat_reply == NULL && smtp_body_begin(sess, &error) < 0) {
		log_error("smtp session=%s event=error what=message_begin error=\"%s\"",
			  conn_id(sess->conn), error);
		sess->bdat_reply = "451 4.3.0 Local error, try again later";
		sess->tx_failed = true;
	}
	if (sess->bdat_reply == NULL)
		sess->bdat_size += size;
	smtp_body_input_mode(sess, SMTP_INPUT_BDAT);
	if (size == 0)
		smtp_bdat_chunk_done(sess);
}
