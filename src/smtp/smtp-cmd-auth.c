/* AUTH (RFC 4954) through the auth module: PLAIN and LOGIN, with or
 * without an initial response, the failure delay, and no AUTH over
 * plaintext unless [auth] allow_plaintext. */
#include "smtp/smtp-private.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

bool smtp_auth_offered(struct smtp_session *sess)
{
	return sess->auth_user == NULL &&
	       auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn));
}

void smtp_auth_abort(struct smtp_session *sess)
{
	sasl_free(&sess->sasl);
	xfree(sess->sasl_mech);
}

static void smtp_auth_delay_done(struct conn *conn, void *ctx)
{
	struct smtp_session *sess = ctx;
	(void)conn;
	smtp_session_enter(sess);
	const char *reply = sess->delayed_reply;
	sess->delayed_reply = NULL;
	smtp_session_resume(sess);
	smtp_reply_error(sess, "%s", reply);
	smtp_session_leave(sess);
}

/* Every failure waits auth.failure_delay with input paused, so that
 * pipelined guesses wait too. */
static void smtp_auth_fail_delayed(struct smtp_session *sess)
{
	sess->delayed_reply = "535 5.7.8 Authentication credentials invalid";
	smtp_session_pause(sess);
	conn_set_timer(sess->conn, conn_config(sess->conn)->auth.failure_delay,
		       smtp_auth_delay_done);
}

static void smtp_check_password(struct smtp_session *sess, const char *mech,
				const char *user, const char *password)
{
	const char *error;
	struct dir *dir = smtp_session_dir(sess, &error);
	if (dir == NULL) {
		smtp_reply_internal_error(sess, "dir_open", error);
		return;
	}
	struct auth_request req = {
		.protocol = "smtp",
		.session_id = conn_id(sess->conn),
		.remote_ip = conn_remote_ip(sess->conn),
		.secured = conn_is_tls(sess->conn),
		.mechanism = mech,
	};
	char *address = NULL;
	enum auth_result res = auth_password(dir, &req, user, password, &address);
	if (res == AUTH_OK) {
		sess->auth_user = address;
		log_info("smtp session=%s user=%s event=login mech=%s", conn_id(sess->conn),
			 address, mech);
		smtp_reply(sess, "235 2.7.0 Authentication successful");
	} else if (res == AUTH_TEMPFAIL) {
		smtp_reply_error(sess, "454 4.7.0 Temporary authentication failure");
	} else {
		smtp_auth_fail_delayed(sess);
	}
}

static void smtp_auth_done(struct smtp_session *sess)
{
	struct sasl *sasl = sess->sasl;
	char *mech = sess->sasl_mech;
	sess->sasl = NULL;
	sess->sasl_mech = NULL;
	smtp_check_password(sess, mech, sasl_username(sasl), sasl_password(sasl));
	sasl_free(&sasl);
	free(mech);
}

static void smtp_auth_step(struct smtp_session *sess, const char *response)
{
	const char *challenge = NULL, *error = NULL;
	enum sasl_status status = sasl_step(sess->sasl, response, &challenge, &error);

	if (status == SASL_CONTINUE) {
		smtp_reply(sess, "334 %s", challenge != NULL ? challenge : "");
	} else if (status == SASL_DONE) {
		smtp_auth_done(sess);
	} else if (status == SASL_CANCELLED) {
		smtp_auth_abort(sess);
		smtp_reply_error(sess, "501 5.0.0 Authentication cancelled");
	} else {
		log_info("smtp session=%s ip=%s event=auth_invalid mech=%s error=\"%s\"",
			 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->sasl_mech,
			 error != NULL ? error : "-");
		smtp_auth_abort(sess);
		smtp_auth_fail_delayed(sess);
	}
}

static bool smtp_auth_check_state(struct smtp_session *sess)
{
	if (sess->auth_user != NULL) {
		smtp_reply_error(sess, "503 5.5.1 Already authenticated");
		return false;
	}
	if (sess->in_mail) {
		smtp_reply_error(sess, "503 5.5.1 AUTH not permitted during a mail transaction");
		return false;
	}
	if (!auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn))) {
		smtp_reply_error(sess, "538 5.7.11 Encryption required: use STARTTLS first");
		return false;
	}
	return true;
}

void smtp_cmd_auth(struct smtp_session *sess, char *arg)
{
	if (!smtp_auth_check_state(sess))
		return;
	char *space = strchr(arg, ' ');
	if (space != NULL)
		*space++ = '\0';
	if (arg[0] == '\0' || (space != NULL && (space[0] == '\0' || strchr(space, ' ')))) {
		smtp_reply_error(sess, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	sess->sasl = sasl_begin(arg);
	if (sess->sasl == NULL) {
		smtp_reply_error(sess, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	sess->sasl_mech = xstrdup(arg);
	for (char *p = sess->sasl_mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	smtp_auth_step(sess, space);
	if (space != NULL)
		explicit_bzero(space, strlen(space));
}

void smtp_auth_continue(struct smtp_session *sess, char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_auth_abort(sess);
		smtp_reply_error(sess, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (strlen(line) != len) {
		smtp_auth_abort(sess);
		smtp_auth_fail_delayed(sess);
		return;
	}
	smtp_auth_step(sess, line);
	explicit_bzero(line, len);
}
