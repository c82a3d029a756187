/* An SMTP session: the connection callbacks, the input loop, the command
 * table, replies and the error limit, and the session's lifetime. */
#include "smtp/smtp-private.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define HELO SMTP_CMD_NEED_HELO
#define AUTH SMTP_CMD_NEED_AUTH

static const struct smtp_cmd_def smtp_commands[] = {
	{ "EHLO", smtp_cmd_ehlo, 0 },
	{ "HELO", smtp_cmd_helo, 0 },
	{ "STARTTLS", smtp_cmd_starttls, HELO },
	{ "AUTH", smtp_cmd_auth, HELO },
	{ "MAIL", smtp_cmd_mail, HELO | AUTH },
	{ "RCPT", smtp_cmd_rcpt, HELO | AUTH },
	{ "DATA", smtp_cmd_data, HELO | AUTH },
	{ "BDAT", smtp_cmd_bdat, HELO | AUTH },
	{ "RSET", smtp_cmd_rset, 0 },
	{ "NOOP", smtp_cmd_noop, 0 },
	{ "QUIT", smtp_cmd_quit, 0 },
	{ "VRFY", smtp_cmd_vrfy, 0 },
	{ "HELP", smtp_cmd_help, 0 },
};

/* One directory handle per worker, opened on first use and kept. */
static struct dir *smtp_dir;
static char *smtp_dir_path;

struct dir *smtp_session_dir(struct smtp_session *sess, const char **error_r)
{
	char *path = config_data_path(conn_config(sess->conn), "yubin.db");
	if (smtp_dir != NULL && strcmp(path, smtp_dir_path) == 0) {
		free(path);
		return smtp_dir;
	}
	dir_close(&smtp_dir);
	xfree(smtp_dir_path);
	if (dir_open(path, &smtp_dir, error_r) < 0) {
		smtp_dir = NULL;
		free(path);
		return NULL;
	}
	smtp_dir_path = path;
	return smtp_dir;
}

const char *smtp_session_hostname(const struct smtp_session *sess)
{
	return conn_config(sess->conn)->server.hostname;
}

static void smtp_vreply(struct smtp_session *sess, const char *fmt, va_list ap)
{
	if (sess->closed)
		return;
	char *text = xvasprintf(fmt, ap);
	conn_write_str(sess->conn, text);
	conn_write(sess->conn, "\r\n", 2);
	free(text);
}

void smtp_reply(struct smtp_session *sess, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	smtp_vreply(sess, fmt, ap);
	va_end(ap);
}

void smtp_reply_error(struct smtp_session *sess, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	smtp_vreply(sess, fmt, ap);
	va_end(ap);
	uint32_t max = conn_config(sess->conn)->smtp.max_errors;
	if (++sess->errors < max || sess->closing)
		return;
	log_info("smtp session=%s ip=%s event=too_many_errors count=%u", conn_id(sess->conn),
		 conn_remote_ip(sess->conn), sess->errors);
	smtp_reply(sess, "421 4.7.0 %s Too many errors, closing connection",
		   smtp_session_hostname(sess));
	smtp_session_close(sess);
}

void smtp_reply_internal_error(struct smtp_session *sess, const char *what, const char *error)
{
	log_error("smtp session=%s user=%s event=error what=%s error=\"%s\"",
		  conn_id(sess->conn), sess->auth_user != NULL ? sess->auth_user : "-", what,
		  error != NULL ? error : "-");
	smtp_reply_error(sess, "451 4.3.0 Local error, try again later (session %s)",
			 conn_id(sess->conn));
}

void smtp_session_close(struct smtp_session *sess)
{
	if (sess->closing || sess->closed)
		return;
	sess->closing = true;
	conn_close(sess->conn);
}

void smtp_session_pause(struct smtp_session *sess)
{
	if (sess->input_paused || sess->closed)
		return;
	sess->input_paused = true;
	conn_pause_input(sess->conn);
}

void smtp_session_resume(struct smtp_session *sess)
{
	if (!sess->input_paused || sess->closing || sess->closed)
		return;
	sess->input_paused = false;
	conn_resume_input(sess->conn);
}

static void smtp_rcpts_free(struct smtp_session *sess)
{
	for (size_t i = 0; i < sess->rcpt_count; i++) {
		free(sess->rcpts[i].address);
		free(sess->rcpts[i].orcpt);
	}
	xfree(sess->rcpts);
	sess->rcpt_count = 0;
}

void smtp_session_reset(struct smtp_session *sess)
{
	sess->in_mail = false;
	sess->tx_failed = false;
	sess->bdat_size = 0;
	sess->bdat_reply = NULL;
	xfree(sess->sender);
	memset(&sess->mail, 0, sizeof(sess->mail));
	smtp_rcpts_free(sess);
	smtp_body_free(sess);
	sess->input = SMTP_INPUT_COMMAND;
}

static const struct smtp_cmd_def *smtp_cmd_find(const char *verb)
{
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++) {
		if (strcmp(smtp_commands[i].verb, verb) == 0)
			return &smtp_commands[i];
	}
	return NULL;
}

/* An HTTP request sent to the SMTP port: logged and dropped. */
static bool smtp_is_http(const struct smtp_command *cmd)
{
	static const char *const verbs[] = { "GET", "POST", "HEAD", "PUT", "CONNECT" };
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(cmd->verb, verbs[i]) == 0 && strstr(cmd->arg, "HTTP/") != NULL)
			return true;
	}
	return false;
}

static bool smtp_cmd_permitted(struct smtp_session *sess, const struct smtp_cmd_def *def)
{
	if ((def->flags & SMTP_CMD_NEED_HELO) != 0 && sess->helo == NULL) {
		smtp_reply_error(sess, "503 5.5.1 Send EHLO or HELO first");
		return false;
	}
	if ((def->flags & SMTP_CMD_NEED_AUTH) != 0 && sess->submission &&
	    sess->auth_user == NULL) {
		smtp_reply_error(sess, "530 5.7.0 Authentication required");
		return false;
	}
	return true;
}

static void smtp_session_command(struct smtp_session *sess, char *line, size_t len)
{
	struct smtp_command cmd;
	const char *reply;
	char esc[64];

	if (smtp_parse_command(line, len, &cmd, &reply) < 0) {
		smtp_reply_error(sess, "%s", reply);
		return;
	}
	if (smtp_is_http(&cmd)) {
		log_info("smtp session=%s ip=%s event=http_request line=\"%s\"",
			 conn_id(sess->conn), conn_remote_ip(sess->conn),
			 log_escape(line, len, esc, sizeof(esc)));
		smtp_session_close(sess);
		return;
	}
	const struct smtp_cmd_def *def = smtp_cmd_find(cmd.verb);
	if (def == NULL) {
		smtp_reply_error(sess, "500 5.5.2 Unknown command");
		return;
	}
	if (smtp_cmd_permitted(sess, def))
		def->handler(sess, cmd.arg);
}

static bool smtp_session_blocked(const struct smtp_session *sess)
{
	return sess->closing || sess->closed || sess->input_paused || sess->tls_starting;
}

static void smtp_session_line(struct smtp_session *sess)
{
	char *line;
	size_t len;
	int ret = conn_read_line(sess->conn, &line, &len);
	if (ret == 0)
		return;
	if (ret < 0) {
		if (sess->sasl != NULL)
			smtp_auth_abort(sess);
		smtp_reply_error(sess, "500 5.5.2 Line too long");
	} else if (sess->sasl != NULL) {
		smtp_auth_continue(sess, line, len);
	} else {
		smtp_session_command(sess, line, len);
	}
}

/* A client that pipelines without reading its replies would make the
 * output grow without end: reading stops until the output drains. */
static bool smtp_session_output_full(struct smtp_session *sess)
{
	if (conn_output_size(sess->conn) < CONN_OUTPUT_HIGH_WATER)
		return false;
	sess->output_full = true;
	smtp_session_pause(sess);
	return true;
}

static void smtp_session_input(struct smtp_session *sess)
{
	while (!smtp_session_blocked(sess) && !smtp_session_output_full(sess)) {
		size_t before = conn_input_size(sess->conn);
		enum smtp_input mode = sess->input;
		if (mode == SMTP_INPUT_COMMAND)
			smtp_session_line(sess);
		else
			smtp_data_input(sess);
		/* Stop when a pass consumed nothing and changed nothing. */
		if (conn_input_size(sess->conn) == before && sess->input == mode)
			break;
	}
}

static void smtp_session_free(struct smtp_session *sess)
{
	free(sess);
}

/* Every callback runs between enter and leave, so that a close inside it
 * never frees the session under its feet. */
void smtp_session_enter(struct smtp_session *sess)
{
	sess->depth++;
}

void smtp_session_leave(struct smtp_session *sess)
{
	if (--sess->depth == 0 && sess->closed)
		smtp_session_free(sess);
}

static void smtp_on_input(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	(void)conn;
	smtp_session_enter(sess);
	sess->tls_starting = false;
	smtp_session_input(sess);
	smtp_session_leave(sess);
}

static void smtp_on_drain(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	(void)conn;
	if (!sess->output_full)
		return;
	smtp_session_enter(sess);
	sess->output_full = false;
	smtp_session_resume(sess);
	smtp_session_leave(sess);
}

static void smtp_on_timeout(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	smtp_session_enter(sess);
	log_info("smtp session=%s ip=%s event=idle_timeout", conn_id(conn), conn_remote_ip(conn));
	smtp_reply(sess, "421 4.4.2 %s Timeout, closing connection", smtp_session_hostname(sess));
	sess->closing = true;
	smtp_session_leave(sess);
}

static void smtp_on_close(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	log_debug("smtp session=%s ip=%s event=disconnect messages=%u errors=%u", conn_id(conn),
		  conn_remote_ip(conn), sess->messages, sess->errors);
	smtp_auth_abort(sess);
	smtp_session_reset(sess);
	xfree(sess->helo);
	xfree(sess->auth_user);
	sess->closed = true;
	if (sess->depth == 0)
		smtp_session_free(sess);
}

static const struct conn_callbacks smtp_callbacks = {
	.on_input = smtp_on_input,
	.on_drain = smtp_on_drain,
	.on_timeout = smtp_on_timeout,
	.on_close = smtp_on_close,
};

static void smtp_start_common(struct conn *conn, bool submission)
{
	const struct yubin_config *config = conn_config(conn);
	struct smtp_session *sess = xcalloc(1, sizeof(*sess));
	sess->conn = conn;
	sess->submission = submission;
	sess->body.fd = -1;
	conn_set_callbacks(conn, &smtp_callbacks, sess);
	conn_set_max_line(conn, SMTP_MAX_LINE);
	conn_set_idle_timeout(conn, config->smtp.command_timeout);
	log_debug("smtp session=%s ip=%s event=connect submission=%s tls=%s", conn_id(conn),
		  conn_remote_ip(conn), submission ? "yes" : "no",
		  conn_is_tls(conn) ? "yes" : "no");
	smtp_reply(sess, "220 %s ESMTP yubin", config->server.hostname);
}

static void smtp_start(struct conn *conn)
{
	smtp_start_common(conn, false);
}

static void submission_start(struct conn *conn)
{
	smtp_start_common(conn, true);
}

/* A session between transactions has nothing to lose; one receiving a
 * message finishes it. */
static void smtp_shutdown(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	(void)conn;
	if (sess == NULL || sess->input != SMTP_INPUT_COMMAND || sess->in_mail)
		return;
	smtp_session_enter(sess);
	smtp_auth_abort(sess);
	smtp_reply(sess, "421 4.3.2 %s Server shutting down", smtp_session_hostname(sess));
	smtp_session_close(sess);
	smtp_session_leave(sess);
}

const struct protocol smtp_protocol = {
	.name = "smtp",
	.start = smtp_start,
	.shutdown = smtp_shutdown,
	.too_many_reply = "421 4.7.0 Too many connections, try again later\r\n",
};

const struct protocol submission_protocol = {
	.name = "submission",
	.start = submission_start,
	.shutdown = smtp_shutdown,
	.too_many_reply = "421 4.7.0 Too many connections, try again later\r\n",
};
