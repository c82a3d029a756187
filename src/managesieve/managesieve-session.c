/* A ManageSieve session: the connection callbacks, the input loop, the
 * command table and dispatch, replies, capabilities and the session's
 * lifetime. */
#include "managesieve/managesieve-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"

#define MS_NONAUTH MANAGESIEVE_STATE_NONAUTH
#define MS_AUTH MANAGESIEVE_STATE_AUTH
#define MS_ANY (MS_NONAUTH | MS_AUTH)

/* Bad commands before the session is closed. */
#define MANAGESIEVE_MAX_BAD_COMMANDS 20
/* RFC 5804 1.3: at least 30 minutes once logged in; less before. */
#define MANAGESIEVE_IDLE_TIMEOUT (30 * 60 * 1000)
#define MANAGESIEVE_IDLE_TIMEOUT_PRELOGIN (3 * 60 * 1000)
/* Bytes taken from the connection per parser feed. */
#define MANAGESIEVE_READ_CHUNK 16384

static const struct managesieve_cmd_def managesieve_commands[] = {
	{ "AUTHENTICATE", managesieve_cmd_authenticate, MS_NONAUTH, 1, 2 },
	{ "STARTTLS", managesieve_cmd_starttls, MS_NONAUTH, 0, 0 },
	{ "LOGOUT", managesieve_cmd_logout, MS_ANY, 0, 0 },
	{ "CAPABILITY", managesieve_cmd_capability, MS_ANY, 0, 0 },
	{ "NOOP", managesieve_cmd_noop, MS_ANY, 0, 1 },
	{ "HAVESPACE", managesieve_cmd_havespace, MS_AUTH, 2, 2 },
	{ "PUTSCRIPT", managesieve_cmd_putscript, MS_AUTH, 2, 2 },
	{ "CHECKSCRIPT", managesieve_cmd_checkscript, MS_AUTH, 1, 1 },
	{ "LISTSCRIPTS", managesieve_cmd_listscripts, MS_AUTH, 0, 0 },
	{ "SETACTIVE", managesieve_cmd_setactive, MS_AUTH, 1, 1 },
	{ "GETSCRIPT", managesieve_cmd_getscript, MS_AUTH, 1, 1 },
	{ "DELETESCRIPT", managesieve_cmd_deletescript, MS_AUTH, 1, 1 },
	{ "RENAMESCRIPT", managesieve_cmd_renamescript, MS_AUTH, 2, 2 },
	{ "UNAUTHENTICATE", managesieve_cmd_unauthenticate, MS_AUTH, 0, 0 },
};

/* One directory handle per worker, opened on first use and kept. */
static struct dir *managesieve_dir;
static char *managesieve_dir_path;

const struct managesieve_cmd_def *managesieve_cmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(managesieve_commands) / sizeof(managesieve_commands[0]); i++) {
		if (strcasecmp(managesieve_commands[i].name, name) == 0)
			return &managesieve_commands[i];
	}
	return NULL;
}

struct dir *managesieve_session_dir(struct managesieve_session *sess, const char **error_r)
{
	char *path = config_data_path(conn_config(sess->conn), "yubin.db");
	/* A reload may have moved the data folder. */
	if (managesieve_dir != NULL && strcmp(path, managesieve_dir_path) == 0) {
		free(path);
		return managesieve_dir;
	}
	dir_close(&managesieve_dir);
	xfree(managesieve_dir_path);
	if (dir_open(path, &managesieve_dir, error_r) < 0) {
		managesieve_dir = NULL;
		free(path);
		return NULL;
	}
	managesieve_dir_path = path;
	return managesieve_dir;
}

void managesieve_send(struct managesieve_session *sess, const void *data, size_t len)
{
	if (sess->closed)
		return;
	conn_write(sess->conn, data, len);
}

void managesieve_reply(struct managesieve_session *sess, const char *status, const char *code,
		       const char *text)
{
	struct buf out = BUF_INIT(0);
	buf_append_str(&out, status);
	if (code != NULL)
		buf_printf(&out, " (%s)", code);
	if (text != NULL) {
		buf_append_char(&out, ' ');
		managesieve_write_string(&out, text, strlen(text));
	}
	buf_append_str(&out, "\r\n");
	managesieve_send(sess, out.data, out.len);
	buf_free(&out);
}

void managesieve_reply_internal_error(struct managesieve_session *sess, const char *what,
				      const char *error)
{
	log_error("managesieve session=%s user=%s event=error what=%s error=\"%s\"",
		  conn_id(sess->conn), sess->address != NULL ? sess->address : "-", what,
		  error != NULL ? error : "-");
	char *text = xasprintf("Internal error, try again later (session %s)", conn_id(sess->conn));
	managesieve_reply(sess, "NO", "TRYLATER", text);
	free(text);
}

static void capability_line(struct buf *out, const char *name, const char *value)
{
	managesieve_write_string(out, name, strlen(name));
	if (value != NULL) {
		buf_append_char(out, ' ');
		managesieve_write_string(out, value, strlen(value));
	}
	buf_append_str(out, "\r\n");
}

/* RFC 5804 1.8. SASL lists the mechanisms only where a login may happen
 * (TLS, or plaintext allowed); STARTTLS goes once TLS is on or after login. */
void managesieve_send_capabilities(struct managesieve_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct buf out = BUF_INIT(0);
	char redirects[16];

	capability_line(&out, "IMPLEMENTATION", "yubin");
	if (sess->address == NULL) {
		bool allowed = auth_allowed(config, conn_is_tls(sess->conn));
		capability_line(&out, "SASL", allowed ? sasl_mechanisms() : "");
	}
	capability_line(&out, "SIEVE", sieve_extensions());
	if (sess->address == NULL && conn_starttls_available(sess->conn))
		capability_line(&out, "STARTTLS", NULL);
	snprintf(redirects, sizeof(redirects), "%" PRIu32, config->sieve.max_redirects);
	capability_line(&out, "MAXREDIRECTS", redirects);
	if (sess->address != NULL)
		capability_line(&out, "OWNER", sess->address);
	capability_line(&out, "UNAUTHENTICATE", NULL);
	capability_line(&out, "VERSION", "1.0");
	buf_append_str(&out, "OK\r\n");
	managesieve_send(sess, out.data, out.len);
	buf_free(&out);
}

void managesieve_session_close(struct managesieve_session *sess)
{
	if (sess->closing || sess->closed)
		return;
	sess->closing = true;
	conn_close(sess->conn);
}

void managesieve_session_bad_command(struct managesieve_session *sess)
{
	sess->bad_commands++;
	if (sess->bad_commands < MANAGESIEVE_MAX_BAD_COMMANDS)
		return;
	log_info("managesieve session=%s ip=%s event=too_many_bad_commands count=%u",
		 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->bad_commands);
	managesieve_reply(sess, "BYE", NULL, "Too many bad commands, closing");
	managesieve_session_close(sess);
}

static void managesieve_bad(struct managesieve_session *sess, const char *code,
			    const char *text)
{
	managesieve_reply(sess, "NO", code, text);
	managesieve_session_bad_command(sess);
}

void managesieve_session_pause(struct managesieve_session *sess)
{
	if (sess->input_paused || sess->closed)
		return;
	sess->input_paused = true;
	conn_pause_input(sess->conn);
}

void managesieve_session_resume(struct managesieve_session *sess)
{
	if (!sess->input_paused || sess->closing || sess->closed)
		return;
	sess->input_paused = false;
	conn_resume_input(sess->conn);
}

/* Literals after login may hold a whole script: up to the script size
 * limit, and never more than the account's whole storage. */
void managesieve_session_set_limits(struct managesieve_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct managesieve_parser_limits limits = {
		.max_line = MANAGESIEVE_MAX_LINE_PRELOGIN,
		.max_literal = MANAGESIEVE_MAX_LITERAL_PRELOGIN,
	};
	if (sess->address != NULL) {
		limits.max_line = MANAGESIEVE_MAX_LINE;
		limits.max_literal = config->sieve.max_script_size;
		if (config->sieve.max_storage != 0 && config->sieve.max_storage < limits.max_literal)
			limits.max_literal = config->sieve.max_storage;
	}
	managesieve_parser_set_limits(sess->parser, &limits);
	conn_set_idle_timeout(sess->conn, sess->address != NULL ? MANAGESIEVE_IDLE_TIMEOUT :
								  MANAGESIEVE_IDLE_TIMEOUT_PRELOGIN);
}

static void managesieve_http_request(struct managesieve_session *sess,
				     const struct managesieve_arg *args, unsigned int count)
{
	static const char *const methods[] = { "GET", "POST", "HEAD", "PUT", "OPTIONS" };
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (args[0].type == MANAGESIEVE_ARG_ATOM && strcmp(args[0].str, methods[i]) == 0 &&
		    count > 1 && strncmp(args[count - 1].str, "HTTP/", 5) == 0) {
			log_info("managesieve session=%s ip=%s event=http_request",
				 conn_id(sess->conn), conn_remote_ip(sess->conn));
			managesieve_session_close(sess);
			return;
		}
	}
}

static void managesieve_session_command(struct managesieve_session *sess,
					const struct managesieve_arg *args, unsigned int count)
{
	managesieve_http_request(sess, args, count);
	if (sess->closing)
		return;
	if (args[0].type != MANAGESIEVE_ARG_ATOM) {
		managesieve_bad(sess, NULL, "Expected a command name");
		return;
	}
	const struct managesieve_cmd_def *def = managesieve_cmd_find(args[0].str);
	unsigned int state = sess->address != NULL ? MS_AUTH : MS_NONAUTH;
	if (def == NULL) {
		managesieve_bad(sess, NULL, "Unknown command");
	} else if ((def->states & state) == 0) {
		managesieve_bad(sess, NULL, state == MS_AUTH ? "Already authenticated" :
								"Authenticate first");
	} else if (count - 1 < def->min_args || count - 1 > def->max_args) {
		managesieve_bad(sess, NULL, "Wrong number of arguments");
	} else {
		def->handler(sess, args + 1, count - 1);
	}
}

static void managesieve_session_parse_error(struct managesieve_session *sess)
{
	const struct managesieve_parser_error *err = managesieve_parser_error(sess->parser);
	if (sess->sasl != NULL) {
		managesieve_auth_abort(sess);
		managesieve_reply(sess, "NO", NULL, "Authentication failed: invalid response");
		return;
	}
	if (err->literal_too_large && sess->address != NULL)
		managesieve_bad(sess, "QUOTA/MAXSIZE", "Script too large");
	else
		managesieve_bad(sess, NULL, err->text);
}

static void managesieve_session_done(struct managesieve_session *sess)
{
	unsigned int count;
	const struct managesieve_arg *args = managesieve_parser_args(sess->parser, &count);
	if (sess->sasl != NULL) {
		if (count == 1)
			managesieve_auth_continue(sess, &args[0]);
		else
			managesieve_session_parse_error(sess);
		return;
	}
	managesieve_session_command(sess, args, count);
}

static bool managesieve_session_blocked(const struct managesieve_session *sess)
{
	return sess->closing || sess->closed || sess->input_paused || sess->tls_starting;
}

/* Feeds the parser what is buffered; bytes read past a complete command
 * go back to the connection, so that a pause or STARTTLS sees them there. */
static void managesieve_session_input(struct managesieve_session *sess)
{
	char chunk[MANAGESIEVE_READ_CHUNK];
	while (!managesieve_session_blocked(sess)) {
		size_t n = conn_read(sess->conn, chunk, sizeof(chunk)), used = 0;
		if (n == 0)
			break;
		enum managesieve_parse_result res = MANAGESIEVE_PARSE_NEED_MORE;
		while (used < n && res == MANAGESIEVE_PARSE_NEED_MORE) {
			size_t consumed;
			res = managesieve_parser_feed(sess->parser, chunk + used, n - used, &consumed);
			used += consumed;
		}
		conn_unread(sess->conn, chunk + used, n - used);
		if (res == MANAGESIEVE_PARSE_DONE)
			managesieve_session_done(sess);
		else if (res == MANAGESIEVE_PARSE_ERROR)
			managesieve_session_parse_error(sess);
		explicit_bzero(chunk, n);
	}
}

static void managesieve_session_free(struct managesieve_session *sess)
{
	managesieve_parser_destroy(&sess->parser);
	free(sess);
}

void managesieve_session_enter(struct managesieve_session *sess)
{
	sess->depth++;
}

void managesieve_session_leave(struct managesieve_session *sess)
{
	if (--sess->depth == 0 && sess->closed)
		managesieve_session_free(sess);
}

static void managesieve_on_input(struct conn *conn, void *ctx)
{
	struct managesieve_session *sess = ctx;
	managesieve_session_enter(sess);
	if (sess->tls_starting) {
		/* RFC 5804 2.2: the capabilities again, now under TLS */
		sess->tls_starting = false;
		managesieve_send_capabilities(sess);
	}
	managesieve_session_input(sess);
	managesieve_session_leave(sess);
}

static void managesieve_on_timeout(struct conn *conn, void *ctx)
{
	struct managesieve_session *sess = ctx;
	managesieve_session_enter(sess);
	log_info("managesieve session=%s ip=%s event=idle_timeout", conn_id(conn),
		 conn_remote_ip(conn));
	managesieve_reply(sess, "BYE", NULL, "Disconnected for inactivity");
	sess->closing = true;
	managesieve_session_leave(sess);
}

static void managesieve_on_close(struct conn *conn, void *ctx)
{
	struct managesieve_session *sess = ctx;
	if (sess->address != NULL)
		log_info("managesieve session=%s user=%s event=logout puts=%" PRIu64
			 " gets=%" PRIu64, conn_id(conn), sess->address, sess->puts, sess->gets);
	managesieve_auth_abort(sess);
	managesieve_logout_state(sess);
	sess->closed = true;
	if (sess->depth == 0)
		managesieve_session_free(sess);
}

static const struct conn_callbacks managesieve_callbacks = {
	.on_input = managesieve_on_input,
	.on_timeout = managesieve_on_timeout,
	.on_close = managesieve_on_close,
};

static void managesieve_start(struct conn *conn)
{
	struct managesieve_session *sess = xcalloc(1, sizeof(*sess));
	struct managesieve_parser_limits limits = { MANAGESIEVE_MAX_LINE_PRELOGIN,
						    MANAGESIEVE_MAX_LITERAL_PRELOGIN };
	sess->conn = conn;
	sess->parser = managesieve_parser_create(&limits);
	conn_set_callbacks(conn, &managesieve_callbacks, sess);
	managesieve_session_set_limits(sess);
	log_debug("managesieve session=%s ip=%s event=connect tls=%s", conn_id(conn),
		  conn_remote_ip(conn), conn_is_tls(conn) ? "yes" : "no");
	managesieve_send_capabilities(sess);
}

/* Nothing is lost by closing a session between commands. */
static void managesieve_shutdown(struct conn *conn, void *ctx)
{
	struct managesieve_session *sess = ctx;
	if (sess == NULL)
		return;
	managesieve_session_enter(sess);
	managesieve_auth_abort(sess);
	managesieve_reply(sess, "BYE", "TRYLATER", "Server shutting down");
	managesieve_session_close(sess);
	managesieve_session_leave(sess);
}

const struct protocol managesieve_protocol = {
	.name = "managesieve",
	.start = managesieve_start,
	.shutdown = managesieve_shutdown,
	.too_many_reply = "BYE (TRYLATER) \"Too many connections, try again later\"\r\n",
};
