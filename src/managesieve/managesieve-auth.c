/* Before login: AUTHENTICATE (RFC 5804 2.1) with PLAIN and LOGIN through
 * auth, STARTTLS (2.2), and the commands valid in every state (LOGOUT,
 * CAPABILITY, NOOP). A failed login is answered after auth.failure_delay
 * with input paused, as POP3 and IMAP do. */
#include "managesieve/managesieve-private.h"

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "store/store.h"

void managesieve_cmd_capability(struct managesieve_session *sess,
				const struct managesieve_arg *args, unsigned int count)
{
	managesieve_send_capabilities(sess);
}

void managesieve_cmd_logout(struct managesieve_session *sess,
			    const struct managesieve_arg *args, unsigned int count)
{
	managesieve_reply(sess, "OK", NULL, "Logout completed");
	managesieve_session_close(sess);
}

/* RFC 5804 2.13: the tag comes back in a TAG response code. */
void managesieve_cmd_noop(struct managesieve_session *sess, const struct managesieve_arg *args,
			  unsigned int count)
{
	if (count == 0) {
		managesieve_reply(sess, "OK", NULL, "NOOP completed");
		return;
	}
	if (args[0].type == MANAGESIEVE_ARG_ATOM) {
		managesieve_reply(sess, "NO", NULL, "The tag must be a string");
		return;
	}
	struct buf code = BUF_INIT(0);
	buf_append_str(&code, "TAG ");
	managesieve_write_string(&code, args[0].str, args[0].len);
	managesieve_reply(sess, "OK", buf_str(&code), "Done");
	buf_free(&code);
}

void managesieve_cmd_starttls(struct managesieve_session *sess,
			      const struct managesieve_arg *args, unsigned int count)
{
	if (!conn_starttls_available(sess->conn)) {
		managesieve_reply(sess, "NO", NULL, conn_is_tls(sess->conn) ? "TLS already active" :
									   "TLS not available");
		return;
	}
	managesieve_reply(sess, "OK", NULL, "Begin TLS negotiation now");
	if (conn_starttls(sess->conn) < 0) {
		managesieve_session_close(sess);
		return;
	}
	managesieve_parser_reset(sess->parser);
	sess->tls_starting = true;
}

void managesieve_auth_abort(struct managesieve_session *sess)
{
	sasl_free(&sess->sasl);
	xfree(sess->sasl_mech);
}

static void managesieve_auth_delay_done(struct conn *conn, void *ctx)
{
	struct managesieve_session *sess = ctx;
	managesieve_session_enter(sess);
	managesieve_reply(sess, "NO", NULL, sess->delayed_reply);
	sess->delayed_reply = NULL;
	managesieve_session_bad_command(sess);
	managesieve_session_resume(sess);
	managesieve_session_leave(sess);
}

static void managesieve_auth_fail_delayed(struct managesieve_session *sess)
{
	sess->delayed_reply = "Authentication failed";
	managesieve_session_pause(sess);
	conn_set_timer(sess->conn, conn_config(sess->conn)->auth.failure_delay,
		       managesieve_auth_delay_done);
}

/* The credentials are right: open the account's script storage. Takes
 * address. */
static void managesieve_login(struct managesieve_session *sess, char *address)
{
	const struct yubin_config *config = conn_config(sess->conn);
	struct sieve_storage_limits limits = { config->sieve.max_scripts,
					       config->sieve.max_storage };
	const char *error;
	char *root = store_account_root(config->server.data_dir, address);
	int ret = sieve_storage_open(root, &limits, &sess->storage, &error);
	free(root);
	if (ret < 0) {
		sess->storage = NULL;
		free(address);
		managesieve_reply_internal_error(sess, "sieve_storage_open", error);
		return;
	}
	sess->address = address;
	managesieve_session_set_limits(sess);
	log_info("managesieve session=%s user=%s event=login", conn_id(sess->conn), address);
	managesieve_reply(sess, "OK", NULL, "Logged in");
}

void managesieve_logout_state(struct managesieve_session *sess)
{
	sieve_storage_close(&sess->storage);
	xfree(sess->address);
}

static void managesieve_check_password(struct managesieve_session *sess, const char *mechanism,
				       const char *user, const char *password)
{
	const char *error;
	struct dir *dir = managesieve_session_dir(sess, &error);
	if (dir == NULL) {
		managesieve_reply_internal_error(sess, "dir_open", error);
		return;
	}
	struct auth_request req = {
		.protocol = "managesieve",
		.session_id = conn_id(sess->conn),
		.remote_ip = conn_remote_ip(sess->conn),
		.secured = conn_is_tls(sess->conn),
		.mechanism = mechanism,
	};
	char *address = NULL;
	enum auth_result res = auth_password(dir, &req, user, password, &address);
	if (res == AUTH_OK)
		managesieve_login(sess, address);
	else if (res == AUTH_TEMPFAIL)
		managesieve_reply(sess, "NO", "TRYLATER", "Temporary failure, try again later");
	else
		managesieve_auth_fail_delayed(sess);
}

static void managesieve_auth_done(struct managesieve_session *sess)
{
	struct sasl *sasl = sess->sasl;
	char *mech = sess->sasl_mech;
	sess->sasl = NULL;
	sess->sasl_mech = NULL;
	managesieve_check_password(sess, mech, sasl_username(sasl), sasl_password(sasl));
	sasl_free(&sasl);
	free(mech);
}

/* A challenge goes out as a string on its own line (RFC 5804 2.1). */
static void managesieve_auth_challenge(struct managesieve_session *sess, const char *challenge)
{
	struct buf out = BUF_INIT(0);
	managesieve_write_string(&out, challenge, strlen(challenge));
	buf_append_str(&out, "\r\n");
	managesieve_send(sess, out.data, out.len);
	buf_free(&out);
}

static void managesieve_auth_step(struct managesieve_session *sess, const char *response)
{
	const char *challenge = NULL, *error = NULL;
	enum sasl_status status = sasl_step(sess->sasl, response, &challenge, &error);

	if (status == SASL_CONTINUE) {
		managesieve_auth_challenge(sess, challenge != NULL ? challenge : "");
	} else if (status == SASL_DONE) {
		managesieve_auth_done(sess);
	} else if (status == SASL_CANCELLED) {
		managesieve_auth_abort(sess);
		managesieve_reply(sess, "NO", NULL, "Authentication cancelled");
	} else {
		log_info("managesieve session=%s ip=%s event=auth_invalid mech=%s error=\"%s\"",
			 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->sasl_mech,
			 error != NULL ? error : "-");
		managesieve_auth_abort(sess);
		managesieve_auth_fail_delayed(sess);
	}
}

/* Logins need TLS unless the config allows plaintext. */
static bool managesieve_auth_permitted(struct managesieve_session *sess)
{
	if (auth_allowed(conn_config(sess->conn), conn_is_tls(sess->conn)))
		return true;
	managesieve_reply(sess, "NO", "ENCRYPT-NEEDED",
			  "Plaintext authentication disallowed on non-secure connections: "
			  "use STARTTLS first");
	return false;
}

/* An empty initial response is "=" to sasl_step. */
static const char *managesieve_sasl_text(const struct managesieve_arg *arg)
{
	return arg->len == 0 ? "=" : arg->str;
}

void managesieve_cmd_authenticate(struct managesieve_session *sess,
				  const struct managesieve_arg *args, unsigned int count)
{
	if (!managesieve_auth_permitted(sess))
		return;
	if (count > 1 && (args[1].type == MANAGESIEVE_ARG_ATOM || strlen(args[1].str) != args[1].len)) {
		managesieve_reply(sess, "NO", NULL, "The initial response must be a base64 string");
		managesieve_session_bad_command(sess);
		return;
	}
	sess->sasl = sasl_begin(args[0].str);
	if (sess->sasl == NULL) {
		managesieve_reply(sess, "NO", NULL, "Unsupported authentication mechanism");
		return;
	}
	sess->sasl_mech = xstrdup(args[0].str);
	for (char *p = sess->sasl_mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	managesieve_auth_step(sess, count > 1 ? managesieve_sasl_text(&args[1]) : NULL);
}

/* The response: a string (quoted or literal); a bare atom is taken too, as
 * some clients send one. "*" cancels. */
void managesieve_auth_continue(struct managesieve_session *sess, const struct managesieve_arg *arg)
{
	if (arg->len == 1 && arg->str[0] == '*') {
		managesieve_auth_abort(sess);
		managesieve_reply(sess, "NO", NULL, "Authentication cancelled");
		return;
	}
	if (strlen(arg->str) != arg->len) {
		managesieve_auth_abort(sess);
		managesieve_auth_fail_delayed(sess);
		return;
	}
	managesieve_auth_step(sess, managesieve_sasl_text(arg));
}
