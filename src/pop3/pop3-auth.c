/* AUTHORIZATION state: CAPA, STLS, USER/PASS, AUTH (RFC 5034), the failure
 * delay, and the login that takes the mailbox snapshot. */
#include "pop3/pop3-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

static uint64_t pop3_login_delay_secs(const struct yubin_config *config)
{
	return (config->pop3.login_delay + 999) / 1000;
}

static bool pop3_auth_offered(struct pop3_session *sess)
{
	return sess->state == POP3_STATE_AUTHORIZATION &&
	       auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn));
}

void pop3_cmd_capa(struct pop3_session *sess, struct pop3_command *cmd)
{
	const struct yubin_config *config = conn_config(sess->conn);
	pop3_reply(sess, "+OK Capability list follows");
	pop3_reply(sess, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING");
	if (pop3_auth_offered(sess))
		pop3_reply(sess, "USER\r\nSASL %s", sasl_mechanisms());
	if (sess->state == POP3_STATE_AUTHORIZATION && conn_starttls_available(sess->conn))
		pop3_reply(sess, "STLS");
	if (config->pop3.login_delay > 0)
		pop3_reply(sess, "LOGIN-DELAY %" PRIu64, pop3_login_delay_secs(config));
	pop3_reply(sess, "EXPIRE NEVER\r\nIMPLEMENTATION yubin\r\n.");
}

void pop3_cmd_stls(struct pop3_session *sess, struct pop3_command *cmd)
{
	if (conn_is_tls(sess->conn)) {
		pop3_reply(sess, "-ERR TLS already active");
		return;
	}
	if (!conn_starttls_available(sess->conn)) {
		pop3_reply(sess, "-ERR TLS not available");
		return;
	}
	pop3_reply(sess, "+OK Begin TLS negotiation");
	/* RFC 2595: what was said in plaintext is forgotten. */
	xfree(sess->user);
	if (conn_starttls(sess->conn) < 0) {
		pop3_session_close(sess);
		return;
	}
	sess->tls_starting = true;
}

/* USER, PASS and AUTH need TLS unless the config allows plaintext. */
static bool pop3_auth_permitted(struct pop3_session *sess)
{
	if (auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn)))
		return true;
	pop3_reply(sess, "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
			 "connections: use STLS first");
	return false;
}

void pop3_cmd_user(struct pop3_session *sess, struct pop3_command *cmd)
{
	if (!pop3_auth_permitted(sess))
		return;
	xfree(sess->user);
	sess->user = xstrdup(cmd->argv[0]);
	pop3_reply(sess, "+OK");
}

static void pop3_auth_delay_done(struct conn *conn, void *ctx)
{
	struct pop3_session *sess = ctx;
	pop3_session_enter(sess);
	pop3_reply(sess, "%s", sess->delayed_reply);
	sess->delayed_reply = NULL;
	pop3_session_bad_command(sess);
	pop3_session_resume(sess);
	pop3_session_leave(sess);
}

/* Every failure waits auth.failure_delay; input waits too, so that a
 * client cannot pipeline guesses around the delay. */
static void pop3_auth_fail_delayed(struct pop3_session *sess)
{
	sess->delayed_reply = "-ERR [AUTH] Authentication failed";
	pop3_session_pause(sess);
	conn_set_timer(sess->conn, conn_config(sess->conn)->auth.failure_delay,
		       pop3_auth_delay_done);
}

/* RFC 2449 LOGIN-DELAY: refuses a login sooner than the delay after the
 * last one. Returns -1 after replying. */
static int pop3_login_delay_check(struct pop3_session *sess, struct dir *dir, time_t now)
{
	const struct yubin_config *config = conn_config(sess->conn);
	const char *error;
	time_t last;

	if (config->pop3.login_delay == 0)
		return 0;
	if (dir_login_last(dir, sess->address, "pop3", &last, &error) < 0) {
		pop3_reply_internal_error(sess, "dir_login_last", error);
		return -1;
	}
	uint64_t delay = pop3_login_delay_secs(config);
	uint64_t elapsed = now > last ? (uint64_t)(now - last) : 0;
	if (last == 0 || elapsed >= delay)
		return 0;
	log_info("pop3 session=%s user=%s event=login_delay wait=%" PRIu64,
		 conn_id(sess->conn), sess->address, delay - elapsed);
	pop3_reply(sess, "-ERR [LOGIN-DELAY] Login delay: wait %" PRIu64 " more seconds",
		   delay - elapsed);
	return -1;
}

/* Opens the store, takes the POP3 lock and the INBOX snapshot. Returns -1
 * after replying (and releasing what was taken). */
static int pop3_login_open(struct pop3_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	enum store_error err;
	const char *error;

	char *root = store_account_root(config->server.data_dir, sess->address);
	int ret = store_open(root, &sess->store, &error);
	free(root);
	if (ret < 0) {
		sess->store = NULL;
		pop3_reply_internal_error(sess, "store_open", error);
		return -1;
	}
	ret = store_pop3_lock(sess->store, &sess->lock_fd, &error);
	if (ret <= 0) {
		sess->lock_fd = -1;
		if (ret < 0) {
			pop3_reply_internal_error(sess, "store_pop3_lock", error);
		} else {
			log_info("pop3 session=%s user=%s event=in_use", conn_id(sess->conn),
				 sess->address);
			pop3_reply(sess, "-ERR [IN-USE] Mailbox is in use by another POP3 session");
		}
		pop3_transaction_free(sess);
		return -1;
	}
	if (store_msg_list(sess->store, "INBOX", &sess->msgs, &sess->count, &err, &error) < 0) {
		sess->msgs = NULL;
		sess->count = 0;
		pop3_reply_internal_error(sess, "store_msg_list", error);
		pop3_transaction_free(sess);
		return -1;
	}
	sess->deleted = xcalloc(sess->count, sizeof(bool));
	sess->retrieved = xcalloc(sess->count, sizeof(bool));
	return 0;
}

static void pop3_login_done(struct pop3_session *sess, struct dir *dir, time_t now)
{
	const char *error;
	uint64_t octets = 0;

	if (dir_login_record(dir, sess->address, "pop3", now, &error) < 0)
		log_warn("pop3 session=%s user=%s event=error what=dir_login_record error=\"%s\"",
			 conn_id(sess->conn), sess->address, error);
	for (size_t i = 0; i < sess->count; i++)
		octets += pop3_msg_octets(&sess->msgs[i]);
	sess->state = POP3_STATE_TRANSACTION;
	xfree(sess->user);
	log_info("pop3 session=%s user=%s event=login messages=%zu", conn_id(sess->conn),
		 sess->address, sess->count);
	pop3_reply(sess, "+OK Logged in, %zu messages (%" PRIu64 " octets)", sess->count, octets);
}

/* The credentials are right: the steps of RFC 1939 4 that lead to the
 * TRANSACTION state. Takes address. */
static void pop3_login(struct pop3_session *sess, struct dir *dir, char *address)
{
	time_t now = time(NULL);
	sess->address = address;
	if (pop3_login_delay_check(sess, dir, now) < 0 || pop3_login_open(sess) < 0) {
		xfree(sess->address);
		return;
	}
	pop3_login_done(sess, dir, now);
}

static void pop3_check_password(struct pop3_session *sess, const char *mechanism,
				const char *user, const char *password)
{
	const char *error;
	struct dir *dir = pop3_session_dir(sess, &error);
	if (dir == NULL) {
		pop3_reply_internal_error(sess, "dir_open", error);
		return;
	}
	struct auth_request req = {
		.protocol = "pop3",
		.session_id = conn_id(sess->conn),
		.remote_ip = conn_remote_ip(sess->conn),
		.secured = conn_is_tls(sess->conn),
		.mechanism = mechanism,
	};
	char *address = NULL;
	enum auth_result res = auth_password(dir, &req, user, password, &address);
	if (res == AUTH_OK)
		pop3_login(sess, dir, address);
	else if (res == AUTH_TEMPFAIL)
		pop3_reply(sess, "-ERR [SYS/TEMP] Temporary failure, try again later");
	else
		pop3_auth_fail_delayed(sess);
}

void pop3_cmd_pass(struct pop3_session *sess, struct pop3_command *cmd)
{
	if (!pop3_auth_permitted(sess))
		return;
	if (sess->user == NULL) {
		pop3_reply(sess, "-ERR No user name given: send USER first");
		pop3_session_bad_command(sess);
		return;
	}
	if (cmd->argc == 0) {
		pop3_reply(sess, "-ERR Missing password");
		pop3_session_bad_command(sess);
		return;
	}
	char *user = sess->user;
	sess->user = NULL;
	pop3_check_password(sess, "USER", user, cmd->rest);
	explicit_bzero(cmd->rest, strlen(cmd->rest));
	free(user);
}

void pop3_auth_abort(struct pop3_session *sess)
{
	sasl_free(&sess->sasl);
	xfree(sess->sasl_mech);
}

/* The exchange is over: check what it produced, then forget it. */
static void pop3_auth_done(struct pop3_session *sess)
{
	struct sasl *sasl = sess->sasl;
	char *mech = sess->sasl_mech;
	sess->sasl = NULL;
	sess->sasl_mech = NULL;
	pop3_check_password(sess, mech, sasl_username(sasl), sasl_password(sasl));
	sasl_free(&sasl);
	free(mech);
}

static void pop3_auth_step(struct pop3_session *sess, const char *response)
{
	const char *challenge = NULL, *error = NULL;
	enum sasl_status status = sasl_step(sess->sasl, response, &challenge, &error);

	if (status == SASL_CONTINUE) {
		pop3_reply(sess, "+ %s", challenge != NULL ? challenge : "");
	} else if (status == SASL_DONE) {
		pop3_auth_done(sess);
	} else if (status == SASL_CANCELLED) {
		pop3_auth_abort(sess);
		pop3_reply(sess, "-ERR Authentication cancelled");
	} else {
		log_info("pop3 session=%s ip=%s event=auth_invalid mech=%s error=\"%s\"",
			 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->sasl_mech,
			 error != NULL ? error : "-");
		pop3_auth_abort(sess);
		pop3_auth_fail_delayed(sess);
	}
}

static void pop3_auth_list(struct pop3_session *sess)
{
	char *mechs = xstrdup(sasl_mechanisms());
	pop3_reply(sess, "+OK");
	for (char *p = mechs; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n > 0)
			pop3_reply(sess, "%.*s", (int)n, p);
		p += n;
		p += strspn(p, " ");
	}
	pop3_reply(sess, ".");
	free(mechs);
}

void pop3_cmd_auth(struct pop3_session *sess, struct pop3_command *cmd)
{
	if (!pop3_auth_permitted(sess))
		return;
	if (cmd->argc == 0) {
		pop3_auth_list(sess);
		return;
	}
	sess->sasl = sasl_begin(cmd->argv[0]);
	if (sess->sasl == NULL) {
		pop3_reply(sess, "-ERR [AUTH] Unsupported authentication mechanism");
		return;
	}
	sess->sasl_mech = xstrdup(cmd->argv[0]);
	for (char *p = sess->sasl_mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	pop3_auth_step(sess, cmd->argc > 1 ? cmd->argv[1] : NULL);
}

void pop3_auth_continue(struct pop3_session *sess, char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		pop3_auth_abort(sess);
		pop3_reply(sess, "-ERR Authentication cancelled");
		return;
	}
	if (strlen(line) != len) {
		/* A NUL would cut the response short: not base64, so a failure. */
		pop3_auth_abort(sess);
		pop3_auth_fail_delayed(sess);
		return;
	}
	pop3_auth_step(sess, line);
	explicit_bzero(line, len);
}
