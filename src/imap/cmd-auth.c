/* Not-authenticated state: STARTTLS (RFC 9051 6.2.1), LOGIN, AUTHENTICATE
 * with SASL-IR (RFC 4959), the failure delay, and the login that opens the
 * account's store. */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"

IMAP_HANDLER(imap_cmd_starttls)
{
	if (count != 0) {
		imap_bad(sess, "STARTTLS takes no arguments");
		return;
	}
	if (conn_is_tls(sess->conn) || !conn_starttls_available(sess->conn)) {
		imap_bad(sess, conn_is_tls(sess->conn) ? "TLS is already active"
		                                       : "TLS is not available here");
		return;
	}
	imap_done(sess, "OK Begin TLS negotiation now");
	/* RFC 9051 11.1: whatever the client pipelined in plaintext is dropped. */
	sess->in_pos = sess->in_len = 0;
	imap_parser_reset(sess->parser);
	if (conn_starttls(sess->conn) < 0) {
		imap_session_close(sess);
		return;
	}
	sess->tls_starting = true;
}

static bool imap_auth_permitted(struct imap_session *sess)
{
	if (auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn)))
		return true;
	imap_done(sess, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
	                "non-secure connections: use STARTTLS first");
	return false;
}

static void imap_auth_delay_done(struct conn *conn, void *ctx)
{
	struct imap_session *sess = ctx;
	imap_session_enter(sess);
	imap_done(sess, "NO [AUTHENTICATIONFAILED] Authentication failed");
	imap_session_bad_command(sess);
	imap_session_resume(sess);
	imap_session_leave(sess);
}

/* Every failure waits auth.failure_delay; input waits too, so that a
 * client cannot pipeline guesses around the delay. */
static void imap_auth_fail_delayed(struct imap_session *sess)
{
	imap_session_pause(sess);
	conn_set_timer(sess->conn, conn_config(sess->conn)->auth.failure_delay,
	               imap_auth_delay_done);
}

static int imap_login_open(struct imap_session *sess)
{
	const struct yubin_config *config = conn_config(sess->conn);
	const char *error;
	char *root = store_account_root(config->server.data_dir, sess->address);
	if (root == NULL) {
		imap_internal_error(sess, "store_account_root", "address names no folder");
		return -1;
	}
	int ret = store_open(root, &sess->store, &error);
	free(root);
	if (ret < 0) {
		sess->store = NULL;
		imap_internal_error(sess, "store_open", error);
		return -1;
	}
	imap_quota_load(sess);
	return 0;
}

/* The credentials are right. Takes address. */
static void imap_login(struct imap_session *sess, char *address, const char *mech)
{
	sess->address = address;
	if (imap_login_open(sess) < 0) {
		xfree(sess->address);
		return;
	}
	sess->state = IMAP_STATE_AUTH;
	imap_session_set_limits(sess);
	log_info("imap session=%s user=%s event=login mech=%s tls=%s", conn_id(sess->conn),
	         sess->address, mech, conn_is_tls(sess->conn) ? "yes" : "no");
	struct buf caps = BUF_INIT(0);
	imap_capability_string(sess, &caps);
	imap_done(sess, "OK [CAPABILITY %s] Logged in", buf_str(&caps));
	buf_free(&caps);
}

static void imap_check_password(struct imap_session *sess, const char *mech, const char *user,
                                const char *password)
{
	const char *error;
	struct dir *dir = imap_session_dir(sess, &error);
	if (dir == NULL) {
		imap_internal_error(sess, "dir_open", error);
		return;
	}
	struct auth_request req = {
	        .protocol = "imap",
	        .session_id = conn_id(sess->conn),
	        .remote_ip = conn_remote_ip(sess->conn),
	        .secured = conn_is_tls(sess->conn),
	        .mechanism = mech,
	};
	char *address = NULL;
	enum auth_result res = auth_password(dir, &req, user, password, &address);
	if (res == AUTH_OK)
		imap_login(sess, address, mech);
	else if (res == AUTH_TEMPFAIL)
		imap_done(sess, "NO [UNAVAILABLE] Temporary failure, try again later");
	else
		imap_auth_fail_delayed(sess);
}

IMAP_HANDLER(imap_cmd_login)
{
	const char *user, *password;
	if (count != 2 || !imap_arg_get_astring(&args[0], &user) ||
	    !imap_arg_get_astring(&args[1], &password)) {
		imap_bad(sess, "LOGIN needs a user name and a password");
		return;
	}
	if (!imap_auth_permitted(sess))
		return;
	imap_check_password(sess, "LOGIN", user, password);
	explicit_bzero(args[1].str, args[1].len);
}

void imap_auth_abort(struct imap_session *sess)
{
	sasl_free(&sess->sasl);
	xfree(sess->sasl_mech);
}

static void imap_auth_done(struct imap_session *sess)
{
	struct sasl *sasl = sess->sasl;
	char *mech = sess->sasl_mech;
	sess->sasl = NULL;
	sess->sasl_mech = NULL;
	imap_check_password(sess, mech, sasl_username(sasl), sasl_password(sasl));
	sasl_free(&sasl);
	free(mech);
}

static void imap_auth_step(struct imap_session *sess, const char *response)
{
	const char *challenge = NULL, *error = NULL;
	enum sasl_status status = sasl_step(sess->sasl, response, &challenge, &error);

	if (status == SASL_CONTINUE) {
		char *line = xasprintf("+ %s\r\n", challenge != NULL ? challenge : "");
		imap_send(sess, line, strlen(line));
		free(line);
		imap_parser_read_line(sess->parser);
	} else if (status == SASL_DONE) {
		imap_auth_done(sess);
	} else if (status == SASL_CANCELLED) {
		imap_auth_abort(sess);
		imap_done(sess, "BAD Authentication cancelled");
	} else {
		log_info("imap session=%s ip=%s event=auth_invalid mech=%s error=\"%s\"",
		         conn_id(sess->conn), conn_remote_ip(sess->conn), sess->sasl_mech,
		         error != NULL ? error : "-");
		imap_auth_abort(sess);
		imap_auth_fail_delayed(sess);
	}
}

IMAP_HANDLER(imap_cmd_authenticate)
{
	const char *mech, *initial = NULL;
	if (count < 1 || count > 2 || !imap_arg_get_atom(&args[0], &mech) ||
	    (count == 2 && !imap_arg_get_atom(&args[1], &initial))) {
		imap_bad(sess, "AUTHENTICATE needs a mechanism name");
		return;
	}
	if (!imap_auth_permitted(sess))
		return;
	sess->sasl = sasl_begin(mech);
	if (sess->sasl == NULL) {
		imap_done(sess, "NO [CANNOT] Unsupported authentication mechanism");
		return;
	}
	sess->sasl_mech = xstrdup(mech);
	for (char *p = sess->sasl_mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	imap_auth_step(sess, initial);
}

void imap_auth_continue(struct imap_session *sess, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		imap_auth_abort(sess);
		imap_done(sess, "BAD Authentication cancelled");
		return;
	}
	imap_auth_step(sess, line);
	explicit_bzero((char *)line, len);
}
