/* An IMAP session: the connection callbacks, the input loop that feeds the
 * command parser, the command table and dispatch, and the session's
 * lifetime. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#define ANY (IMAP_STATE_NOAUTH | IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define NOAUTH IMAP_STATE_NOAUTH
#define AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define SEL IMAP_STATE_SELECTED
#define MSGCMD (IMAP_CMD_UID | IMAP_CMD_SYNC | IMAP_CMD_NO_EXPUNGE)

static const struct imap_cmd_def imap_commands[] = {
        {"CAPABILITY", imap_cmd_capability, ANY, 0},
        {"NOOP", imap_cmd_noop, ANY, IMAP_CMD_SYNC},
        {"LOGOUT", imap_cmd_logout, ANY, 0},
        {"ID", imap_cmd_id, ANY, 0},
        {"STARTTLS", imap_cmd_starttls, NOAUTH, 0},
        {"LOGIN", imap_cmd_login, NOAUTH, 0},
        {"AUTHENTICATE", imap_cmd_authenticate, NOAUTH, 0},
        {"ENABLE", imap_cmd_enable, AUTHED, 0},
        {"NAMESPACE", imap_cmd_namespace, AUTHED, IMAP_CMD_SYNC},
        {"LIST", imap_cmd_list, AUTHED, IMAP_CMD_SYNC},
        {"CREATE", imap_cmd_create, AUTHED, IMAP_CMD_SYNC},
        {"STATUS", imap_cmd_status, AUTHED, IMAP_CMD_SYNC},
        {"DELETE", imap_cmd_delete, AUTHED, IMAP_CMD_SYNC},
        {"RENAME", imap_cmd_rename, AUTHED, IMAP_CMD_SYNC},
        {"SUBSCRIBE", imap_cmd_subscribe, AUTHED, IMAP_CMD_SYNC},
        {"UNSUBSCRIBE", imap_cmd_unsubscribe, AUTHED, IMAP_CMD_SYNC},
        {"LSUB", imap_cmd_lsub, AUTHED, IMAP_CMD_SYNC},
        {"SELECT", imap_cmd_select, AUTHED, 0},
        {"EXAMINE", imap_cmd_examine, AUTHED, 0},
        {"APPEND", imap_cmd_append, AUTHED, IMAP_CMD_SYNC},
        {"GETQUOTAROOT", imap_cmd_getquotaroot, AUTHED, 0},
        {"GETQUOTA", imap_cmd_getquota, AUTHED, 0},
        {"SETQUOTA", imap_cmd_setquota, AUTHED, 0},
        {"CHECK", imap_cmd_noop, SEL, IMAP_CMD_SYNC},
        {"CLOSE", imap_cmd_close, SEL, 0},
        {"UNSELECT", imap_cmd_unselect, SEL, 0},
        {"EXPUNGE", imap_cmd_expunge, SEL, IMAP_CMD_UID | IMAP_CMD_SYNC},
        {"FETCH", imap_cmd_fetch, SEL, MSGCMD},
        {"STORE", imap_cmd_store, SEL, MSGCMD},
        {"SEARCH", imap_cmd_search, SEL, MSGCMD},
        {"SORT", imap_cmd_sort, SEL, MSGCMD},
        {"THREAD", imap_cmd_thread, SEL, MSGCMD},
        {"COPY", imap_cmd_copy, SEL, IMAP_CMD_UID | IMAP_CMD_SYNC},
        {"MOVE", imap_cmd_move, SEL, IMAP_CMD_UID | IMAP_CMD_SYNC},
        {"IDLE", imap_cmd_idle, AUTHED, IMAP_CMD_SYNC},
        {"COMPRESS", imap_cmd_compress, AUTHED, 0},
};

/* One directory handle per worker, opened on first use and kept. */
static struct dir *imap_dir;
static char *imap_dir_path;

const struct imap_cmd_def *imap_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_commands) / sizeof(imap_commands[0]); i++) {
		if (strcasecmp(imap_commands[i].name, name) == 0)
			return &imap_commands[i];
	}
	return NULL;
}

struct dir *imap_session_dir(struct imap_session *sess, const char **error_r)
{
	char *path = config_data_path(conn_config(sess->conn), "yubin.db");
	/* A reload may have moved the data folder. */
	if (imap_dir != NULL && strcmp(path, imap_dir_path) == 0) {
		free(path);
		return imap_dir;
	}
	dir_close(&imap_dir);
	xfree(imap_dir_path);
	if (dir_open(path, &imap_dir, error_r) < 0) {
		imap_dir = NULL;
		free(path);
		return NULL;
	}
	imap_dir_path = path;
	return imap_dir;
}

void imap_session_close(struct imap_session *sess)
{
	if (sess->closing || sess->closed)
		return;
	sess->closing = true;
	conn_close(sess->conn);
}

void imap_session_bad_command(struct imap_session *sess)
{
	uint32_t max = conn_config(sess->conn)->imap.max_bad_commands;
	sess->bad_commands++;
	if (max == 0 || sess->bad_commands < max)
		return;
	log_info("imap session=%s ip=%s event=too_many_bad_commands count=%u", conn_id(sess->conn),
	         conn_remote_ip(sess->conn), sess->bad_commands);
	imap_untagged(sess, "BYE Too many invalid commands");
	imap_session_close(sess);
}

void imap_session_set_limits(struct imap_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct imap_parser_limits limits = {
	        .max_line_length = IMAP_PRELOGIN_LINE,
	        .max_literal_size = IMAP_PRELOGIN_LITERAL,
	        .max_list_depth = IMAP_PRELOGIN_DEPTH,
	        .max_args = IMAP_PRELOGIN_ARGS,
	};
	if (sess->state != IMAP_STATE_NOAUTH) {
		limits.max_line_length = (size_t)config->imap.max_line_length;
		/* APPEND streams and checks the message size itself (NO [TOOBIG]);
		 * other literals must fit in the line. */
		limits.max_literal_size = INT64_MAX;
		limits.max_list_depth = IMAP_MAX_DEPTH;
		limits.max_args = IMAP_MAX_ARGS;
	}
	imap_parser_set_limits(sess->parser, &limits);
	imap_parser_set_flags(sess->parser, sess->utf8 ? IMAP_PARSER_FLAG_UTF8 : 0);
}

void imap_session_pause(struct imap_session *sess)
{
	if (sess->input_paused || sess->closed)
		return;
	sess->input_paused = true;
	conn_pause_input(sess->conn);
}

static void imap_session_input(struct imap_session *sess);

void imap_session_resume(struct imap_session *sess)
{
	if (!sess->input_paused || sess->closing || sess->closed)
		return;
	sess->input_paused = false;
	conn_resume_input(sess->conn);
	/* Pipelined bytes may wait in our own buffer, which the connection
	 * layer does not know about. */
	if (sess->in_pos < sess->in_len)
		imap_session_input(sess);
}

void imap_session_run_job(struct imap_session *sess)
{
	if (sess->job == NULL || sess->closing || sess->closed)
		return;
	if (!sess->job(sess)) {
		imap_session_pause(sess);
		return;
	}
	sess->job = NULL;
	imap_session_resume(sess);
}

static void imap_session_dispatch(struct imap_session *sess, const struct imap_arg *args,
                                  unsigned int count, const char *name)
{
	sess->uid = false;
	if (strcasecmp(name, "UID") == 0) {
		if (count == 0 || !imap_arg_get_atom(&args[0], &name)) {
			imap_bad(sess, "Missing command after UID");
			return;
		}
		sess->uid = true;
		args++;
		count--;
	}
	const struct imap_cmd_def *def = imap_cmd_find(name);
	if (def == NULL || (sess->uid && (def->flags & IMAP_CMD_UID) == 0)) {
		imap_bad(sess, "Unknown command");
		return;
	}
	if ((def->states & sess->state) == 0) {
		imap_bad(sess, sess->state == IMAP_STATE_NOAUTH ? "Log in first"
		               : sess->state == IMAP_STATE_AUTH
		                       ? "No mailbox selected"
		                       : "Command not valid in this state");
		return;
	}
	sess->cmd = def;
	def->handler(sess, args, count);
}

static void imap_session_command(struct imap_session *sess, const struct imap_command *cmd)
{
	if (sess->sasl != NULL) {
		imap_auth_continue(sess, cmd->line, cmd->line_len);
		return;
	}
	if (sess->idling) {
		imap_idle_line(sess, cmd->line, cmd->line_len);
		return;
	}
	xfree(sess->tag);
	sess->tag = xstrdup(cmd->tag);
	sess->cmd = NULL;
	if (sess->append != NULL && strcasecmp(cmd->name, "APPEND") != 0)
		imap_append_free(sess);
	imap_session_dispatch(sess, cmd->args.args, cmd->args.count, cmd->name);
}

static void imap_session_parse_error(struct imap_session *sess)
{
	const struct imap_parser_error *err = imap_parser_error(sess->parser);
	const struct imap_command *cmd = imap_parser_command(sess->parser);

	if (sess->sasl != NULL) {
		imap_auth_abort(sess);
		imap_bad(sess, err->text);
		return;
	}
	if (sess->idling) {
		imap_idle_stop(sess);
		imap_bad(sess, err->text);
		return;
	}
	imap_append_free(sess);
	xfree(sess->tag);
	sess->tag = xstrdup(cmd != NULL && cmd->tag != NULL ? cmd->tag : "*");
	sess->cmd = NULL;
	if (err->code != NULL) {
		char *text = xasprintf("[%s] %s", err->code, err->text);
		imap_bad(sess, text);
		free(text);
	} else {
		imap_bad(sess, err->text);
	}
}

/* A literal header was read: APPEND streams its message, everything else
 * keeps the literal in memory (within the line limit). */
static void imap_session_literal(struct imap_session *sess)
{
	const struct imap_command *cmd = imap_parser_command(sess->parser);
	const struct imap_literal_info *lit = imap_parser_literal(sess->parser);

	if (cmd->name != NULL && strcasecmp(cmd->name, "APPEND") == 0 && sess->sasl == NULL) {
		imap_append_literal(sess, cmd, lit);
		return;
	}
	if (imap_parser_literal_inline(sess->parser) < 0) {
		imap_session_parse_error(sess);
		return;
	}
	if (!lit->nonsync)
		imap_send(sess, "+ OK\r\n", 6);
}

static bool imap_session_blocked(const struct imap_session *sess)
{
	return sess->closing || sess->closed || sess->input_paused || sess->tls_starting ||
	       sess->state == IMAP_STATE_LOGOUT;
}

static void imap_session_result(struct imap_session *sess, enum imap_parse_result res,
                                const char *data, size_t used)
{
	switch (res) {
	case IMAP_PARSE_NEED_MORE:
		break;
	case IMAP_PARSE_DONE:
		imap_session_command(sess, imap_parser_command(sess->parser));
		break;
	case IMAP_PARSE_LITERAL:
		imap_session_literal(sess);
		break;
	case IMAP_PARSE_LITERAL_DATA:
		imap_append_data(sess, data, used);
		break;
	case IMAP_PARSE_ERROR:
		imap_session_parse_error(sess);
		break;
	}
}

static void imap_session_input(struct imap_session *sess)
{
	if (sess->in_input)
		return;
	sess->in_input = true;
	while (!imap_session_blocked(sess)) {
		if (sess->in_pos == sess->in_len) {
			sess->in_pos = 0;
			sess->in_len = conn_read(sess->conn, sess->inbuf, sizeof(sess->inbuf));
			if (sess->in_len == 0)
				break;
		}
		size_t used = 0;
		const char *data = sess->inbuf + sess->in_pos;
		enum imap_parse_result res =
		        imap_parser_feed(sess->parser, data, sess->in_len - sess->in_pos, &used);
		sess->in_pos += used;
		imap_session_result(sess, res, data, used);
	}
	sess->in_input = false;
}

static void imap_session_free(struct imap_session *sess)
{
	free(sess);
}

void imap_session_enter(struct imap_session *sess)
{
	sess->depth++;
}

void imap_session_leave(struct imap_session *sess)
{
	if (--sess->depth == 0 && sess->closed)
		imap_session_free(sess);
}

static void imap_on_input(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	imap_session_enter(sess);
	sess->tls_starting = false;
	imap_session_input(sess);
	imap_session_leave(sess);
}

static void imap_on_drain(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	if (sess->job == NULL)
		return;
	imap_session_enter(sess);
	imap_session_run_job(sess);
	imap_session_leave(sess);
}

static void imap_on_timeout(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	imap_session_enter(sess);
	log_info("imap session=%s user=%s ip=%s event=idle_timeout", conn_id(conn), imap_user(sess),
	         conn_remote_ip(conn));
	imap_untagged(sess, "BYE Autologout; idle for too long");
	sess->closing = true;
	imap_session_leave(sess);
}

static void imap_on_close(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	if (sess->address != NULL)
		log_info("imap session=%s user=%s event=logout fetched=%llu appended=%llu "
		         "expunged=%llu",
		         conn_id(conn), sess->address, (unsigned long long)sess->fetch_count,
		         (unsigned long long)sess->append_count,
		         (unsigned long long)sess->expunge_count);
	sess->job = NULL;
	imap_idle_stop(sess);
	imap_fetch_free(sess);
	imap_append_free(sess);
	imap_auth_abort(sess);
	imap_mailbox_free(&sess->mbox);
	imap_part_cache_clear(sess);
	xfree(sess->searchres);
	sess->searchres_count = 0;
	store_close(&sess->store);
	imap_parser_destroy(&sess->parser);
	xfree(sess->tag);
	xfree(sess->delayed_reply);
	xfree(sess->address);
	sess->closed = true;
	if (sess->depth == 0)
		imap_session_free(sess);
}

static const struct conn_callbacks imap_callbacks = {
        .on_input = imap_on_input,
        .on_drain = imap_on_drain,
        .on_timeout = imap_on_timeout,
        .on_close = imap_on_close,
};

static void imap_start(struct conn *conn)
{
	const struct yubin_config *config = conn_config(conn);
	struct imap_session *sess = xcalloc(1, sizeof(*sess));
	struct imap_parser_limits limits = {0};
	sess->conn = conn;
	sess->state = IMAP_STATE_NOAUTH;
	sess->parser = imap_parser_create(&limits, 0);
	imap_session_set_limits(sess);
	conn_set_callbacks(conn, &imap_callbacks, sess);
	conn_set_idle_timeout(conn, config->imap.idle_timeout);
	log_debug("imap session=%s ip=%s event=connect tls=%s", conn_id(conn), conn_remote_ip(conn),
	          conn_is_tls(conn) ? "yes" : "no");
	struct buf caps = BUF_INIT(0);
	imap_capability_string(sess, &caps);
	imap_untagged(sess, "OK [CAPABILITY %s] yubin ready", buf_str(&caps));
	buf_free(&caps);
}

/* A session that has not logged in has nothing to lose; others finish
 * their commands and are told at the next one. */
static void imap_shutdown(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	if (sess == NULL || sess->job != NULL || sess->append != NULL)
		return;
	imap_session_enter(sess);
	imap_untagged(sess, "BYE Server shutting down");
	imap_session_close(sess);
	imap_session_leave(sess);
}

const struct protocol imap_protocol = {
        .name = "imap",
        .start = imap_start,
        .shutdown = imap_shutdown,
        .too_many_reply = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
};
