/* DELETE, RENAME (RFC 9051 6.3.5, 6.3.6), SUBSCRIBE, UNSUBSCRIBE and LSUB
 * (RFC 9051 6.3.7, 6.3.8; RFC 3501 6.3.9). */
#include "imap/imap-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* One mailbox name argument in the store's form; NULL after answering. */
static char *imap_manage_name(struct imap_session *sess, const struct imap_arg *arg)
{
	const char *client, *error;
	if (!imap_arg_get_astring(arg, &client)) {
		imap_bad(sess, "Invalid mailbox name");
		return NULL;
	}
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL)
		imap_done(sess, "NO [CANNOT] %s", error);
	return name;
}

static void imap_manage_error(struct imap_session *sess, enum store_error err, const char *what,
                              const char *error)
{
	if (err == STORE_ERR_CANNOT)
		imap_done(sess, "NO [CANNOT] Not allowed on this mailbox");
	else if (err == STORE_ERR_HAS_CHILDREN)
		imap_done(sess, "NO [HASCHILDREN] Mailbox has children: delete them first");
	else
		imap_store_error(sess, err, what, error);
}

IMAP_HANDLER(imap_cmd_delete)
{
	enum store_error err = STORE_OK;
	const char *error;
	if (count != 1) {
		imap_bad(sess, "DELETE needs a mailbox name");
		return;
	}
	char *name = imap_manage_name(sess, &args[0]);
	if (name == NULL)
		return;
	if (sess->mbox != NULL && strcmp(sess->mbox->name, name) == 0)
		imap_select_close(sess);
	if (store_mailbox_delete(sess->store, name, &err, &error) < 0)
		imap_manage_error(sess, err, "store_mailbox_delete", error);
	else
		imap_done(sess, "OK Delete completed");
	free(name);
}

IMAP_HANDLER(imap_cmd_rename)
{
	enum store_error err = STORE_OK;
	const char *error;
	char *from, *to = NULL;
	if (count != 2) {
		imap_bad(sess, "RENAME needs two mailbox names");
		return;
	}
	from = imap_manage_name(sess, &args[0]);
	if (from == NULL || (to = imap_manage_name(sess, &args[1])) == NULL) {
		free(from);
		return;
	}
	if (store_mailbox_rename(sess->store, from, to, &err, &error) < 0)
		imap_manage_error(sess, err, "store_mailbox_rename", error);
	else
		imap_done(sess, "OK Rename completed");
	free(from);
	free(to);
}

static void imap_subscribe(struct imap_session *sess, const struct imap_arg *args,
                           unsigned int count, bool subscribe)
{
	enum store_error err = STORE_OK;
	const char *error;
	if (count != 1) {
		imap_bad(sess, "Needs a mailbox name");
		return;
	}
	char *name = imap_manage_name(sess, &args[0]);
	if (name == NULL)
		return;
	if (store_mailbox_subscribe(sess->store, name, subscribe, &err, &error) < 0)
		imap_manage_error(sess, err, "store_mailbox_subscribe", error);
	else
		imap_done(sess, "OK %s completed", subscribe ? "Subscribe" : "Unsubscribe");
	free(name);
}

IMAP_HANDLER(imap_cmd_subscribe)
{
	imap_subscribe(sess, args, count, true);
}

IMAP_HANDLER(imap_cmd_unsubscribe)
{
	imap_subscribe(sess, args, count, false);
}

IMAP_HANDLER(imap_cmd_lsub)
{
	const char *ref, *pattern, *error;
	char **names = NULL;
	size_t n = 0;
	if (count != 2 || !imap_arg_get_astring(&args[0], &ref) ||
	    !imap_arg_get_list_mailbox(&args[1], &pattern)) {
		imap_bad(sess, "LSUB needs a reference and a pattern");
		return;
	}
	char *joined = xasprintf("%s%s", ref, pattern);
	char *utf8 = imap_mailbox_from_client(sess, joined, &error);
	free(joined);
	if (utf8 == NULL) {
		imap_done(sess, "OK Lsub completed");
		return;
	}
	if (store_mailbox_list_subscribed(sess->store, &names, &n, &error) < 0) {
		free(utf8);
		imap_internal_error(sess, "store_mailbox_list_subscribed", error);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!imap_list_match(utf8, names[i]))
			continue;
		struct buf line = BUF_INIT(0);
		char *client = imap_mailbox_to_client(sess, names[i]);
		buf_append_str(&line, "LSUB () \"/\" ");
		imap_append_astring(sess, &line, client);
		imap_untagged(sess, "%s", buf_str(&line));
		free(client);
		buf_free(&line);
	}
	store_names_free(&names, n);
	free(utf8);
	imap_done(sess, "OK Lsub completed");
}
