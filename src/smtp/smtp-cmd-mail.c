/* MAIL and RCPT (RFC 5321 4.1.1.2-3) with their ESMTP parameters: SIZE
 * (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), DSN (RFC
 * 3461), AUTH (RFC 4954). The routing decision is smtp-policy.c's. */
#include "smtp/smtp-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* "FROM:" / "TO:" then the path (blanks after the colon tolerated, as
 * most servers do), then the parameters after one space. Returns the
 * parameter text, or NULL after replying. */
static char *smtp_parse_path_arg(struct smtp_session *sess, char *arg, const char *keyword,
				 bool allow_null, struct smtp_path *path)
{
	const char *reply;
	size_t klen = strlen(keyword);
	if (strncasecmp(arg, keyword, klen) != 0) {
		smtp_reply_error(sess, "501 5.5.4 Syntax: %s<address>", keyword);
		return NULL;
	}
	const char *p = arg + klen;
	while (*p == ' ')
		p++;
	if (!allow_null && strncasecmp(p, "<postmaster>", 12) == 0) {
		smtp_policy_postmaster(sess, path);
		p += 12;
	} else if (smtp_parse_path(&p, allow_null, path, &reply) < 0) {
		smtp_reply_error(sess, "%s", reply);
		return NULL;
	}
	if (*p != '\0' && *p != ' ') {
		smtp_reply_error(sess, "501 5.1.3 Bad address syntax");
		return NULL;
	}
	if (*p != '\0' && !sess->esmtp) {
		smtp_reply_error(sess, "555 5.5.4 Parameters need EHLO");
		return NULL;
	}
	return arg + (p - arg);
}

static int smtp_mail_check_params(struct smtp_session *sess, const struct smtp_path *path,
				  const struct smtp_mail_params *mp)
{
	uint64_t max = smtp_max_size(sess);
	if (mp->size_given && max != 0 && mp->size > max) {
		smtp_reply_error(sess, "552 5.3.4 Message size exceeds fixed limit of %" PRIu64
				 " bytes", max);
		return -1;
	}
	if (path->utf8 && !mp->smtputf8) {
		smtp_reply_error(sess, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return -1;
	}
	return 0;
}

/* RFC 5321 4.5.3.1.8 style limit on transactions per connection. */
static bool smtp_mail_limit(struct smtp_session *sess)
{
	uint32_t max = conn_config(sess->conn)->smtp.max_messages;
	if (sess->messages < max)
		return true;
	log_info("smtp session=%s ip=%s event=too_many_messages count=%u",
		 conn_id(sess->conn), conn_remote_ip(sess->conn), sess->messages);
	smtp_reply(sess, "421 4.7.0 %s Too many messages in one connection, closing",
		   smtp_session_hostname(sess));
	smtp_session_close(sess);
	return false;
}

void smtp_cmd_mail(struct smtp_session *sess, char *arg)
{
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *reply;

	if (sess->in_mail) {
		smtp_reply_error(sess, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (!smtp_mail_limit(sess))
		return;
	char *params = smtp_parse_path_arg(sess, arg, "FROM:", true, &path);
	if (params == NULL)
		return;
	if (smtp_parse_mail_params(params, &mp, &reply) < 0) {
		smtp_reply_error(sess, "%s", reply);
		return;
	}
	if (smtp_mail_check_params(sess, &path, &mp) < 0)
		return;
	if (sess->submission && smtp_policy_sender(sess, &path, &reply) < 0) {
		smtp_reply_error(sess, "%s", reply);
		return;
	}
	sess->in_mail = true;
	sess->mail = mp;
	sess->sender = xstrdup(path.address);
	smtp_reply(sess, "250 2.1.0 Ok");
}

static void smtp_rcpt_add(struct smtp_session *sess, char *address,
			  const struct smtp_rcpt_params *rp, bool local)
{
	sess->rcpts = xreallocarray(sess->rcpts, sess->rcpt_count + 1, sizeof(*sess->rcpts));
	struct smtp_rcpt *r = &sess->rcpts[sess->rcpt_count++];
	r->address = address;
	r->orcpt = rp->orcpt[0] != '\0' ? xstrdup(rp->orcpt) : NULL;
	r->notify = rp->notify;
	r->local = local;
	r->requeue = false;
}

static bool smtp_rcpt_check_state(struct smtp_session *sess)
{
	if (!sess->in_mail) {
		smtp_reply_error(sess, "503 5.5.1 Need MAIL before RCPT");
		return false;
	}
	if (sess->rcpt_count >= conn_config(sess->conn)->smtp.max_recipients) {
		smtp_reply_error(sess, "452 4.5.3 Too many recipients");
		return false;
	}
	return true;
}

void smtp_cmd_rcpt(struct smtp_session *sess, char *arg)
{
	struct smtp_path path;
	struct smtp_rcpt_params rp;
	const char *reply;
	char *address = NULL;
	char esc[300];

	if (!smtp_rcpt_check_state(sess))
		return;
	char *params = smtp_parse_path_arg(sess, arg, "TO:", false, &path);
	if (params == NULL)
		return;
	if (smtp_parse_rcpt_params(params, &rp, &reply) < 0) {
		smtp_reply_error(sess, "%s", reply);
		return;
	}
	if (path.utf8 && !sess->mail.smtputf8) {
		smtp_reply_error(sess, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	enum smtp_rcpt_verdict v = smtp_policy_rcpt(sess, &path, &address, &reply);
	if (v == SMTP_RCPT_REFUSED) {
		log_info("smtp session=%s ip=%s event=rcpt_refused rcpt=\"%s\" reply=\"%.3s\"",
			 conn_id(sess->conn), conn_remote_ip(sess->conn),
			 log_escape(path.address, strlen(path.address), esc, sizeof(esc)), reply);
		smtp_reply_error(sess, "%s", reply);
		return;
	}
	smtp_rcpt_add(sess, address, &rp, v == SMTP_RCPT_LOCAL);
	smtp_reply(sess, "250 2.1.5 Ok");
}
