/* A POP3 session: the connection callbacks, the input loop, the command
 * table and dispatch, replies, and the session's lifetime. */
#include "pop3/pop3-private.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define POP3_AUTH POP3_STATE_AUTHORIZATION
#define POP3_TRANS POP3_STATE_TRANSACTION

static const struct pop3_cmd_def pop3_commands[] = {
	{ "CAPA", pop3_cmd_capa, POP3_AUTH | POP3_TRANS, 0, 0 },
	{ "STLS", pop3_cmd_stls, POP3_AUTH, 0, 0 },
	{ "USER", pop3_cmd_user, POP3_AUTH, 1, 1 },
	{ "PASS", pop3_cmd_pass, POP3_AUTH, 0, 1 },
	{ "AUTH", pop3_cmd_auth, POP3_AUTH, 0, 2 },
	{ "QUIT", pop3_cmd_quit, POP3_AUTH | POP3_TRANS, 0, 0 },
	{ "STAT", pop3_cmd_stat, POP3_TRANS, 0, 0 },
	{ "LIST", pop3_cmd_list, POP3_TRANS, 0, 1 },
	{ "RETR", pop3_cmd_retr, POP3_TRANS, 1, 1 },
	{ "TOP", pop3_cmd_top, POP3_TRANS, 2, 2 },
	{ "UIDL", pop3_cmd_uidl, POP3_TRANS, 0, 1 },
	{ "DELE", pop3_cmd_dele, POP3_TRANS, 1, 1 },
	{ "RSET", pop3_cmd_rset, POP3_TRANS, 0, 0 },
	{ "NOOP", pop3_cmd_noop, POP3_TRANS, 0, 0 },
};

/* One directory handle per worker, opened on first use and kept. */
static struct dir *pop3_dir;
static char *pop3_dir_path;

const struct pop3_cmd_def *pop3_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++) {
		if (strcmp(pop3_commands[i].name, name) == 0)
			return &pop3_commands[i];
	}
	return NULL;
}

struct dir *pop3_session_dir(struct pop3_session *sess, const char **error_r)
{
	char *path = config_data_path(conn_config(sess->conn), "yubin.db");
	/* A reload may have moved the data folder. */
	if (pop3_dir != NULL && strcmp(path, pop3_dir_path) == 0) {
		free(path);
		return pop3_dir;
	}
	dir_close(&pop3_dir);
	xfree(pop3_dir_path);
	if (dir_open(path, &pop3_dir, error_r) < 0) {
		pop3_dir = NULL;
		free(path);
		return NULL;
	}
	pop3_dir_path = path;
	return pop3_dir;
}

void pop3_send(struct pop3_session *sess, const void *data, size_t len)
{
	if (sess->closed)
		return;
	conn_write(sess->conn, data, len);
	sess->bytes_out += len;
}

void pop3_reply(struct pop3_session *sess, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	pop3_send(sess, text, strlen(text));
	pop3_send(sess, "\r\n", 2);
	free(text);
}

void pop3_reply_internal_error(struct pop3_session *sess, const char *what,
			       const char *error)
{
	log_error("pop3 session=%s user=%s event=error what=%s error=\"%s\"",
		  conn_id(sess->conn), sess->address != NULL ? sess->address : "-", what,
		  error != NULL ? error : "-");
	pop3_reply(sess, "-ERR [SYS/TEMP] Internal error, try again later (session %s)",
		   conn_id(sess->conn));
}

void pop3_session_close(struct pop3_session *sess)
{
	if (sess->closing || sess->closed)
		return;
	sess->closing = true;
	conn_close(sess->conn);
}

void pop3_session_bad_command(struct pop3_session *sess)
{
	uint32_t max = conn_config(sess->conn)->pop3.max_bad_commands;
	sess->bad_commands++;
	if (max == 0 || sess->bad_commands < max)
		return;
	log_info("pop3 session=%s ip=%s event=too_many_bad_commands count=%u",
		 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->bad_commands);
	pop3_reply(sess, "-ERR Too many bad commands, closing");
	pop3_session_close(sess);
}

static void pop3_bad(struct pop3_session *sess, const char *text)
{
	pop3_reply(sess, "-ERR %s", text);
	pop3_session_bad_command(sess);
}

void pop3_session_pause(struct pop3_session *sess)
{
	if (sess->input_paused || sess->closed)
		return;
	sess->input_paused = true;
	conn_pause_input(sess->conn);
}

void pop3_session_resume(struct pop3_session *sess)
{
	if (!sess->input_paused || sess->closing || sess->closed)
		return;
	sess->input_paused = false;
	conn_resume_input(sess->conn);
}

void pop3_session_run_job(struct pop3_session *sess)
{
	if (sess->job == NULL || sess->closing || sess->closed)
		return;
	if (!sess->job(sess)) {
		pop3_session_pause(sess);
		return;
	}
	sess->job = NULL;
	pop3_retr_free(sess);
	pop3_session_resume(sess);
}

static void pop3_http_request(struct pop3_session *sess, const char *line, size_t len)
{
	char esc[128];
	log_info("pop3 session=%s ip=%s event=http_request line=\"%s\"", conn_id(sess->conn),
		 conn_remote_ip(sess->conn), log_escape(line, len, esc, sizeof(esc)));
	pop3_session_close(sess);
}

static void pop3_session_command(struct pop3_session *sess, char *line, size_t len)
{
	struct pop3_command cmd;
	const char *error;

	if (pop3_is_http_request(line, len)) {
		pop3_http_request(sess, line, len);
		return;
	}
	if (pop3_parse_command(line, len, &cmd, &error) < 0) {
		pop3_bad(sess, error);
		return;
	}
	const struct pop3_cmd_def *def = pop3_cmd_find(cmd.name);
	if (def == NULL) {
		pop3_bad(sess, "Unknown command");
		return;
	}
	if ((def->states & sess->state) == 0) {
		pop3_bad(sess, "Command not valid in this state");
		return;
	}
	if (cmd.argc < def->min_args || cmd.argc > def->max_args) {
		pop3_bad(sess, "Invalid arguments");
		return;
	}
	def->handler(sess, &cmd);
}

static bool pop3_session_blocked(const struct pop3_session *sess)
{
	return sess->closing || sess->closed || sess->input_paused || sess->tls_starting;
}

static void pop3_session_input(struct pop3_session *sess)
{
	while (!pop3_session_blocked(sess)) {
		char *line;
		size_t len;
		int ret = conn_read_line(sess->conn, &line, &len);
		if (ret == 0)
			break;
		if (ret < 0) {
			if (sess->sasl != NULL)
				pop3_auth_abort(sess);
			pop3_bad(sess, "Line too long");
		} else if (sess->sasl != NULL) {
			pop3_auth_continue(sess, line, len);
		} else {
			pop3_session_command(sess, line, len);
		}
	}
}

static void pop3_session_free(struct pop3_session *sess)
{
	free(sess);
}

/* Every callback runs between enter and leave, so that a close that happens
 * inside it never frees the session under its feet. */
void pop3_session_enter(struct pop3_session *sess)
{
	sess->depth++;
}

void pop3_session_leave(struct pop3_session *sess)
{
	if (--sess->depth == 0 && sess->closed)
		pop3_session_free(sess);
}

static void pop3_on_input(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	pop3_session_enter(sess);
	sess->tls_starting = false;
	pop3_session_input(sess);
	pop3_session_leave(sess);
}

static void pop3_on_drain(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	if (sess->job == NULL)
		return;
	pop3_session_enter(sess);
	pop3_session_run_job(sess);
	pop3_session_leave(sess);
}

static void pop3_on_timeout(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	pop3_session_enter(sess);
	log_info("pop3 session=%s ip=%s event=idle_timeout", conn_id(conn), conn_remote_ip(conn));
	pop3_reply(sess, "-ERR Disconnected for inactivity");
	sess->closing = true;
	pop3_session_leave(sess);
}

static void pop3_session_log_logout(struct pop3_session *sess)
{
	log_info("pop3 session=%s user=%s event=logout retr=%llu top=%llu deleted=%llu "
		 "bytes_out=%llu", conn_id(sess->conn), sess->address,
		 (unsigned long long)sess->retr_count, (unsigned long long)sess->top_count,
		 (unsigned long long)sess->deleted_count, (unsigned long long)sess->bytes_out);
}

static void pop3_on_close(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	if (sess->address != NULL)
		pop3_session_log_logout(sess);
	pop3_retr_free(sess);
	sess->job = NULL;
	pop3_auth_abort(sess);
	xfree(sess->user);
	pop3_transaction_free(sess);
	xfree(sess->address);
	sess->closed = true;
	if (sess->depth == 0)
		pop3_session_free(sess);
}

static const struct conn_callbacks pop3_callbacks = {
	.on_input = pop3_on_input,
	.on_drain = pop3_on_drain,
	.on_timeout = pop3_on_timeout,
	.on_close = pop3_on_close,
};

static void pop3_start(struct conn *conn)
{
	const struct yubin_config *config = conn_config(conn);
	struct pop3_session *sess = xcalloc(1, sizeof(*sess));
	sess->conn = conn;
	sess->state = POP3_STATE_AUTHORIZATION;
	sess->lock_fd = -1;
	sess->retr_fd = -1;
	conn_set_callbacks(conn, &pop3_callbacks, sess);
	conn_set_max_line(conn, POP3_MAX_LINE);
	conn_set_idle_timeout(conn, config->pop3.idle_timeout);
	log_debug("pop3 session=%s ip=%s event=connect tls=%s", conn_id(conn),
		  conn_remote_ip(conn), conn_is_tls(conn) ? "yes" : "no");
	pop3_reply(sess, "+OK yubin POP3 ready");
}

/* A session that has not logged in yet has nothing to lose; one in
 * TRANSACTION finishes (its QUIT deletes what the user asked). */
static void pop3_shutdown(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	if (sess == NULL || sess->state != POP3_STATE_AUTHORIZATION)
		return;
	pop3_session_enter(sess);
	pop3_auth_abort(sess);
	pop3_reply(sess, "-ERR [SYS/TEMP] Server shutting down");
	pop3_session_close(sess);
	pop3_session_leave(sess);
}

const struct protocol pop3_protocol = {
	.name = "pop3",
	.start = pop3_start,
	.shutdown = pop3_shutdown,
	.too_many_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
};
