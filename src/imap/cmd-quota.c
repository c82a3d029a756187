/* QUOTA (RFC 9208) with the resources STORAGE and MESSAGE: GETQUOTAROOT,
 * GETQUOTA and SETQUOTA. An account has one quota over all its mailboxes,
 * the quota root "". Its limits are the directory's (`yubin user quota`),
 * read at login and again at each APPEND and GETQUOTA(ROOT), and handed to
 * the store, which enforces them (NO [OVERQUOTA] from APPEND and COPY). */
#include "imap/imap-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

/* RFC 9208 5.1: STORAGE counts units of 1024 octets. Rounding up keeps
 * usage <= limit exactly when the bytes are within the byte limit. */
#define IMAP_QUOTA_UNIT 1024

struct imap_quota {
	uint64_t limit_bytes, limit_messages; /* 0 = unlimited */
	uint64_t bytes, messages;
};

int imap_quota_load(struct imap_session *sess)
{
	const char *error;
	struct dir_account *acct = NULL;
	struct dir *dir = imap_session_dir(sess, &error);
	int ret = dir == NULL ? -1 : dir_account_lookup(dir, sess->address, &acct, &error);
	if (ret <= 0) {
		log_error("imap session=%s user=%s event=quota_lookup_failed error=\"%s\"",
		          conn_id(sess->conn), imap_user(sess),
		          ret == 0 ? "account not found" : error);
		return -1;
	}
	store_set_quota(sess->store, acct->quota_bytes, acct->quota_messages);
	sess->quota_bytes = acct->quota_bytes;
	sess->quota_messages = acct->quota_messages;
	dir_account_free(&acct);
	return 0;
}

static uint64_t imap_quota_units(uint64_t bytes)
{
	return bytes / IMAP_QUOTA_UNIT + (bytes % IMAP_QUOTA_UNIT != 0);
}

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)": only the limited
 * resources are listed (RFC 9208 has no way to say "unlimited"), so an
 * account without limits gets no QUOTA line. */
static int imap_quota_send(struct imap_session *sess)
{
	uint64_t bytes, messages;
	const char *error;
	imap_quota_load(sess);
	if (sess->quota_bytes == 0 && sess->quota_messages == 0)
		return 0;
	if (store_quota_usage(sess->store, &bytes, &messages, &error) < 0) {
		imap_internal_error(sess, "store_quota_usage", error);
		return -1;
	}
	struct buf list = BUF_INIT(0);
	if (sess->quota_bytes != 0)
		buf_printf(&list, " STORAGE %" PRIu64 " %" PRIu64, imap_quota_units(bytes),
		           imap_quota_units(sess->quota_bytes));
	if (sess->quota_messages != 0)
		buf_printf(&list, " MESSAGE %" PRIu64 " %" PRIu64, messages, sess->quota_messages);
	imap_untagged(sess, "QUOTA \"\" (%s)", buf_str(&list) + 1);
	buf_free(&list);
	return 0;
}

IMAP_HANDLER(imap_cmd_getquotaroot)
{
	const char *client, *error;
	if (count != 1 || !imap_arg_get_astring(&args[0], &client)) {
		imap_bad(sess, "GETQUOTAROOT needs a mailbox name");
		return;
	}
	/* RFC 9208 4.1.2: the mailbox need not exist (the root a mailbox
	 * would have once created); the name must be one. */
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL) {
		imap_done(sess, "NO [CANNOT] %s", error);
		return;
	}
	struct buf line = BUF_INIT(0);
	char *shown = imap_mailbox_to_client(sess, name);
	buf_append_str(&line, "QUOTAROOT ");
	imap_append_astring(sess, &line, shown);
	imap_untagged(sess, "%s \"\"", buf_str(&line));
	if (imap_quota_send(sess) == 0)
		imap_done(sess, "OK Getquotaroot completed");
	buf_free(&line);
	free(shown);
	free(name);
}

IMAP_HANDLER(imap_cmd_getquota)
{
	const char *root;
	if (count != 1 || !imap_arg_get_astring(&args[0], &root)) {
		imap_bad(sess, "GETQUOTA needs a quota root");
		return;
	}
	if (root[0] != '\0') {
		imap_done(sess, "NO [NONEXISTENT] No such quota root");
		return;
	}
	if (imap_quota_send(sess) == 0)
		imap_done(sess, "OK Getquota completed");
}

/* RFC 9208 4.1.3: only an administrator sets quotas, so a user's
 * SETQUOTA is refused (and QUOTASET is not announced). */
IMAP_HANDLER(imap_cmd_setquota)
{
	const char *root;
	const struct imap_arg *list;
	unsigned int n;
	if (count != 2 || !imap_arg_get_astring(&args[0], &root) ||
	    !imap_arg_get_list(&args[1], &list, &n)) {
		imap_bad(sess, "SETQUOTA needs a quota root and a list of limits");
		return;
	}
	imap_done(sess, "NO [NOPERM] Quotas are set by the administrator");
}
