/* EHLO, HELO (RFC 5321 4.1.1.1), STARTTLS (RFC 3207), and the commands
 * that carry no transaction state: NOOP, RSET, QUIT, VRFY, HELP. */
#include "smtp/smtp-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* The EHLO/HELO argument ends up in the Received header: a domain or an
 * address literal, in the characters those use. */
static bool smtp_helo_valid(const char *arg)
{
	size_t len = strlen(arg);
	return len > 0 && len <= SMTP_MAX_DOMAIN &&
	       strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789.-_:[]") == len;
}

static int smtp_hello_common(struct smtp_session *sess, char *arg)
{
	if (!smtp_helo_valid(arg)) {
		smtp_reply_error(sess, "501 5.5.4 Syntax: EHLO domain or address literal");
		return -1;
	}
	smtp_session_reset(sess);
	free(sess->helo);
	sess->helo = xstrdup(arg);
	return 0;
}

static void smtp_ehlo_lines(struct smtp_session *sess, const char **lines, size_t count)
{
	for (size_t i = 0; i < count; i++)
		smtp_reply(sess, "250%c%s", i + 1 < count ? '-' : ' ', lines[i]);
}

void smtp_cmd_ehlo(struct smtp_session *sess, char *arg)
{
	const struct yubin_config *config = conn_config(sess->conn);
	const char *lines[16];
	size_t n = 0;
	if (smtp_hello_common(sess, arg) < 0)
		return;
	sess->esmtp = true;
	char *greet = xasprintf("%s Hello %s [%s]", config->server.hostname, sess->helo,
				conn_remote_ip(sess->conn));
	uint64_t max_size = smtp_max_size(sess);
	char *size = xasprintf("SIZE %" PRIu64, max_size);
	char *auth = xasprintf("AUTH %s", sasl_mechanisms());
	lines[n++] = greet;
	lines[n++] = "PIPELINING";
	lines[n++] = max_size != 0 ? size : "SIZE";
	lines[n++] = "8BITMIME";
	lines[n++] = "ENHANCEDSTATUSCODES";
	if (conn_starttls_available(sess->conn))
		lines[n++] = "STARTTLS";
	if (smtp_auth_offered(sess))
		lines[n++] = auth;
	lines[n++] = "SMTPUTF8";
	lines[n++] = "CHUNKING";
	lines[n++] = "BINARYMIME";
	lines[n++] = "DSN";
	lines[n++] = "HELP";
	smtp_ehlo_lines(sess, lines, n);
	free(greet);
	free(size);
	free(auth);
}

void smtp_cmd_helo(struct smtp_session *sess, char *arg)
{
	if (smtp_hello_common(sess, arg) < 0)
		return;
	sess->esmtp = false;
	smtp_reply(sess, "250 %s", smtp_session_hostname(sess));
}

void smtp_cmd_starttls(struct smtp_session *sess, char *arg)
{
	if (arg[0] != '\0') {
		smtp_reply_error(sess, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (conn_is_tls(sess->conn)) {
		smtp_reply_error(sess, "503 5.5.1 TLS already active");
		return;
	}
	if (!conn_starttls_available(sess->conn)) {
		smtp_reply_error(sess, "502 5.5.1 STARTTLS not available");
		return;
	}
	smtp_reply(sess, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 4.2: everything learnt in plaintext is forgotten. */
	smtp_session_reset(sess);
	smtp_auth_abort(sess);
	xfree(sess->helo);
	sess->esmtp = false;
	if (conn_starttls(sess->conn) < 0) {
		smtp_session_close(sess);
		return;
	}
	sess->tls_starting = true;
}

void smtp_cmd_noop(struct smtp_session *sess, char *arg)
{
	(void)arg;
	smtp_reply(sess, "250 2.0.0 Ok");
}

void smtp_cmd_rset(struct smtp_session *sess, char *arg)
{
	if (arg[0] != '\0') {
		smtp_reply_error(sess, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_session_reset(sess);
	smtp_reply(sess, "250 2.0.0 Ok");
}

void smtp_cmd_quit(struct smtp_session *sess, char *arg)
{
	(void)arg;
	smtp_reply(sess, "221 2.0.0 %s Bye", smtp_session_hostname(sess));
	smtp_session_close(sess);
}

/* RFC 5321 3.5.3: 252 rather than a user list for harvesters. */
void smtp_cmd_vrfy(struct smtp_session *sess, char *arg)
{
	if (arg[0] == '\0') {
		smtp_reply_error(sess, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	smtp_reply(sess, "252 2.5.0 Cannot VRFY user, but will take mail and attempt delivery");
}

void smtp_cmd_help(struct smtp_session *sess, char *arg)
{
	(void)arg;
	smtp_reply(sess, "214-2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT");
	smtp_reply(sess, "214 2.0.0 RSET NOOP QUIT VRFY HELP; see RFC 5321");
}
