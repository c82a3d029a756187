/* Who may send what where. The MX takes mail only for hosted domains and
 * existing users; anything else is relaying and needs authentication.
 * The decision rests on the parsed mailbox alone (a source route is
 * ignored), and a local part that is not a plain account name ("%"-hacks,
 * "!" paths, quoted strings, a second "@") never matches an account, so
 * no trick routes mail outside. Submission: the sender and the From:
 * addresses must be the account's own address or an alias of it. */
#include "smtp/smtp-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/deliver.h"
#include "dir/dir.h"
#include "lib/address.h"
#include "lib/config.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"

#define REPLY_RELAY "554 5.7.1 Relay access denied"
#define REPLY_UNKNOWN "550 5.1.1 User unknown"
#define REPLY_TEMP "451 4.3.0 Temporary local problem, try again later"

/* 1 hosted, 0 not, -1 error. A literal or a non-LDH domain is never
 * hosted. */
static int smtp_domain_hosted(struct smtp_session *sess, struct dir *dir,
			      const struct smtp_path *path)
{
	const char *error;
	if (path->literal)
		return 0;
	char *domain = domain_normalize(path->domain, &error);
	if (domain == NULL)
		return 0;
	int ret = dir_domain_exists(dir, domain, &error);
	if (ret < 0)
		log_error("smtp session=%s event=error what=dir_domain_exists error=\"%s\"",
			  conn_id(sess->conn), error);
	free(domain);
	return ret;
}

/* 1 and *address_r when local@domain is an account or an alias. */
static int smtp_local_user(struct smtp_session *sess, struct dir *dir,
			   const struct smtp_path *path, char **address_r)
{
	const char *error;
	char **accounts, **external;
	size_t na, ne;
	if (path->quoted)
		return 0;
	char *raw = xasprintf("%s@%s", path->local, path->domain);
	char *address = address_normalize(raw, &error);
	free(raw);
	if (address == NULL)
		return 0;
	int ret = dir_resolve(dir, address, &accounts, &na, &external, &ne, &error);
	if (ret < 0)
		log_error("smtp session=%s event=error what=dir_resolve error=\"%s\"",
			  conn_id(sess->conn), error);
	if (ret > 0) {
		dir_strings_free(&accounts, na);
		dir_strings_free(&external, ne);
		*address_r = address;
		return 1;
	}
	free(address);
	return ret;
}

/* A closed account (docs/forwarding.md) is refused here, so a sender
 * learns it at once: 550 5.2.1 with the account's reason when it is
 * printable ASCII (a reply line cannot carry more). The reply is built in
 * a static buffer: the caller sends it before the next RCPT. */
static enum smtp_rcpt_verdict smtp_policy_closed(struct smtp_session *sess, struct dir *dir,
						 char **address_r, const char **reply_r)
{
	static char reply[300];
	struct dir_routing r;
	const char *error;
	if (dir_routing_get(dir, *address_r, &r, &error) < 0) {
		log_error("smtp session=%s event=error what=dir_routing_get error=\"%s\"",
			  conn_id(sess->conn), error);
		dir_routing_free(&r);
		xfree(*address_r);
		return SMTP_RCPT_REFUSED;
	}
	enum smtp_rcpt_verdict v = SMTP_RCPT_LOCAL;
	if (r.mode == DIR_ROUTING_CLOSED) {
		const char *why = r.close_reason;
		size_t len = strlen(why);
		bool plain = len > 0 && len <= 200;
		for (size_t i = 0; i < len && plain; i++)
			plain = why[i] >= 0x20 && why[i] < 0x7f;
		snprintf(reply, sizeof(reply), "550 5.2.1 %s",
			 plain ? why : "This account is closed and no longer receives mail");
		*reply_r = reply;
		xfree(*address_r);
		v = SMTP_RCPT_REFUSED;
	}
	dir_routing_free(&r);
	return v;
}

/* A bounce to forwarded mail (docs/forwarding.md): an SRS address of ours
 * is taken and the message goes on to the original sender through the
 * queue. Anything else is an unknown user. */
static enum smtp_rcpt_verdict smtp_policy_srs(struct smtp_session *sess,
					      const struct smtp_path *path, char **address_r,
					      const char **reply_r)
{
	char esc[300];
	*reply_r = REPLY_UNKNOWN;
	if (path->quoted || deliver_srs_reverse(conn_config(sess->conn), path->address,
						address_r) <= 0)
		return SMTP_RCPT_REFUSED;
	log_info("smtp session=%s ip=%s event=srs_reverse rcpt=\"%s\"", conn_id(sess->conn),
		 conn_remote_ip(sess->conn), log_escape(*address_r, strlen(*address_r), esc,
							sizeof(esc)));
	return SMTP_RCPT_REMOTE;
}

enum smtp_rcpt_verdict smtp_policy_rcpt(struct smtp_session *sess,
					const struct smtp_path *path, char **address_r,
					const char **reply_r)
{
	const char *error;
	struct dir *dir = smtp_session_dir(sess, &error);
	*reply_r = REPLY_TEMP;
	if (dir == NULL)
		return SMTP_RCPT_REFUSED;
	int hosted = smtp_domain_hosted(sess, dir, path);
	if (hosted < 0)
		return SMTP_RCPT_REFUSED;
	if (hosted > 0) {
		int ret = smtp_local_user(sess, dir, path, address_r);
		if (ret > 0)
			return smtp_policy_closed(sess, dir, address_r, reply_r);
		if (ret == 0)
			return smtp_policy_srs(sess, path, address_r, reply_r);
		return SMTP_RCPT_REFUSED;
	}
	if (sess->auth_user == NULL) {
		*reply_r = REPLY_RELAY;
		return SMTP_RCPT_REFUSED;
	}
	*address_r = xstrdup(path->address);
	return SMTP_RCPT_REMOTE;
}

/* RFC 5321 4.5.1: "<Postmaster>" names the postmaster of this server's
 * domain: [server] hostname or its parent, the first that is hosted. */
void smtp_policy_postmaster(struct smtp_session *sess, struct smtp_path *path_r)
{
	const char *host = smtp_session_hostname(sess);
	const char *parent = strchr(host, '.');
	const char *candidates[] = { host, parent != NULL ? parent + 1 : NULL };
	const char *error;
	struct dir *dir = smtp_session_dir(sess, &error);
	memset(path_r, 0, sizeof(*path_r));
	for (size_t i = 0; i < 2 && candidates[i] != NULL; i++) {
		if (strlen(candidates[i]) > SMTP_MAX_DOMAIN - 16)
			break;
		snprintf(path_r->domain, sizeof(path_r->domain), "%s", candidates[i]);
		if (dir != NULL && smtp_domain_hosted(sess, dir, path_r) > 0)
			break;
	}
	/* The domain is at most SMTP_MAX_DOMAIN - 16 bytes: it fits. */
	memcpy(path_r->local, "postmaster", sizeof("postmaster"));
	memcpy(path_r->address, "postmaster@", 11);
	memcpy(path_r->address + 11, path_r->domain, strlen(path_r->domain) + 1);
}

/* 1 when address (any case) is the account or an alias that reaches it. */
static int smtp_owned(struct smtp_session *sess, const char *raw)
{
	const char *error;
	char **accounts, **external;
	size_t na, ne;
	char *address = address_normalize(raw, &error);
	if (address == NULL)
		return 0;
	if (strcmp(address, sess->auth_user) == 0) {
		free(address);
		return 1;
	}
	struct dir *dir = smtp_session_dir(sess, &error);
	int ret = dir == NULL ? -1 : dir_resolve(dir, address, &accounts, &na, &external, &ne,
						 &error);
	free(address);
	if (ret <= 0)
		return ret;
	int owned = 0;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(accounts[i], sess->auth_user) == 0)
			owned = 1;
	}
	dir_strings_free(&accounts, na);
	dir_strings_free(&external, ne);
	return owned;
}

/* [smtp] any_sender_accounts: accounts the operator lets send as anyone
 * (a help desk, a web form, a list server). */
static bool smtp_any_sender(struct smtp_session *sess)
{
	const char *p = conn_config(sess->conn)->smtp.any_sender_accounts;
	size_t want = strlen(sess->auth_user);
	while (p != NULL && *p != '\0') {
		p += strspn(p, ", \t");
		size_t len = strcspn(p, ", \t");
		if (len == want && strncasecmp(p, sess->auth_user, len) == 0)
			return true;
		p += len;
	}
	return false;
}

int smtp_policy_sender(struct smtp_session *sess, const struct smtp_path *path,
		       const char **reply_r)
{
	if (smtp_any_sender(sess))
		return 0;
	int ret = path->address[0] == '\0' || path->quoted ? 0 : smtp_owned(sess, path->address);
	if (ret > 0)
		return 0;
	*reply_r = ret < 0 ? REPLY_TEMP : "553 5.7.1 Sender address not owned by the authenticated user";
	return -1;
}

int smtp_policy_from_header(struct smtp_session *sess, const char *header, size_t len,
			    const char **reply_r)
{
	if (smtp_any_sender(sess))
		return 0;
	char *value = mime_header_get(header, len, "From");
	*reply_r = "550 5.7.1 From: header missing or not owned by the authenticated user";
	if (value == NULL)
		return -1;
	struct mime_address *list = mime_address_parse(value, strlen(value), 100);
	int owned = 0;
	for (struct mime_address *a = list; a != NULL && owned >= 0; a = a->next) {
		if (a->host == NULL)
			continue;
		char *addr = xasprintf("%s@%s", a->mailbox, a->host);
		int ret = a->invalid ? 0 : smtp_owned(sess, addr);
		free(addr);
		owned = ret > 0 ? 1 : (ret < 0 ? -1 : -2);
	}
	mime_address_free(&list);
	free(value);
	if (owned == -1)
		*reply_r = REPLY_TEMP;
	return owned == 1 ? 0 : -1;
}
