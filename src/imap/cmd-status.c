/* CREATE and STATUS (RFC 9051 6.3.4, 6.3.11, RFC 8438 STATUS=SIZE), and
 * the STATUS lines LIST-STATUS (RFC 5819) returns. */
#include "imap/imap-private.h"
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

enum imap_status_item {
	IMAP_STATUS_MESSAGES = 1 << 0,
	IMAP_STATUS_UIDNEXT = 1 << 1,
	IMAP_STATUS_UIDVALIDITY = 1 << 2,
	IMAP_STATUS_UNSEEN = 1 << 3,
	IMAP_STATUS_SIZE = 1 << 4,
	IMAP_STATUS_RECENT = 1 << 5,
	IMAP_STATUS_DELETED = 1 << 6,
	IMAP_STATUS_MAILBOXID = 1 << 7,
	IMAP_STATUS_DELETED_STORAGE = 1 << 14, /* RFC 9208 */
	IMAP_STATUS_HIGHESTMODSEQ = 1 << 8, /* RFC 7162 3.1.8 */
};

static const struct {
	const char *name;
	unsigned int item;
} imap_status_items[] = {
        {"MESSAGES", IMAP_STATUS_MESSAGES},
        {"UIDNEXT", IMAP_STATUS_UIDNEXT},
        {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
        {"UNSEEN", IMAP_STATUS_UNSEEN},
        {"SIZE", IMAP_STATUS_SIZE},
        {"RECENT", IMAP_STATUS_RECENT},
        {"DELETED", IMAP_STATUS_DELETED},
        {"MAILBOXID", IMAP_STATUS_MAILBOXID},
        {"DELETED-STORAGE", IMAP_STATUS_DELETED_STORAGE},
        {"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
};

int imap_status_parse_items(const struct imap_arg *arg, unsigned int *items_r)
{
	const struct imap_arg *list;
	unsigned int n;
	*items_r = 0;
	if (!imap_arg_get_list(arg, &list, &n) || n == 0)
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		const char *name;
		unsigned int item = 0;
		if (!imap_arg_get_atom(&list[i], &name))
			return -1;
		for (size_t k = 0; k < sizeof(imap_status_items) / sizeof(imap_status_items[0]);
		     k++) {
			if (strcasecmp(name, imap_status_items[k].name) == 0)
				item = imap_status_items[k].item;
		}
		if (item == 0)
			return -1;
		*items_r |= item;
	}
	return 0;
}

/* \Deleted messages: the status has no count of them. *bytes_r is what an
 * EXPUNGE would free (RFC 9208 DELETED-STORAGE, in octets: the sizes as
 * stored, which the quota counts). */
static int imap_status_deleted(struct imap_session *sess, const char *name, uint32_t *count_r,
                               uint64_t *bytes_r, enum store_error *err_r, const char **error_r)
{
	struct store_msg *msgs = NULL;
	size_t count = 0;
	if (store_msg_list(sess->store, name, &msgs, &count, err_r, error_r) < 0)
		return -1;
	*count_r = 0;
	*bytes_r = 0;
	for (size_t i = 0; i < count; i++) {
		if ((msgs[i].flags & STORE_FLAG_DELETED) != 0) {
			(*count_r)++;
			*bytes_r += msgs[i].size;
		}
	}
	store_msg_list_free(&msgs, count);
	return 0;
}

static void imap_status_format(struct buf *out, unsigned int items, const struct store_status *st,
                               uint32_t deleted, const struct store_mailbox_info *info,
                               uint64_t deleted_bytes)
{
	if ((items & IMAP_STATUS_MESSAGES) != 0)
		buf_printf(out, " MESSAGES %" PRIu32, st->messages);
	if ((items & IMAP_STATUS_RECENT) != 0)
		buf_append_str(out, " RECENT 0");
	if ((items & IMAP_STATUS_UIDNEXT) != 0)
		buf_printf(out, " UIDNEXT %" PRIu32, st->uidnext);
	if ((items & IMAP_STATUS_UIDVALIDITY) != 0)
		buf_printf(out, " UIDVALIDITY %" PRIu32, st->uidvalidity);
	if ((items & IMAP_STATUS_UNSEEN) != 0)
		buf_printf(out, " UNSEEN %" PRIu32, st->unseen);
	if ((items & IMAP_STATUS_DELETED) != 0)
		buf_printf(out, " DELETED %" PRIu32, deleted);
	if ((items & IMAP_STATUS_SIZE) != 0)
		buf_printf(out, " SIZE %" PRIu64, st->size);
	if ((items & IMAP_STATUS_MAILBOXID) != 0)
		buf_printf(out, " MAILBOXID (%s)", info->mailboxid);
	if ((items & IMAP_STATUS_DELETED_STORAGE) != 0)
		buf_printf(out, " DELETED-STORAGE %" PRIu64, deleted_bytes);
	if ((items & IMAP_STATUS_HIGHESTMODSEQ) != 0)
		buf_printf(out, " HIGHESTMODSEQ %" PRIu64, st->highestmodseq);
}

int imap_status_send(struct imap_session *sess, const char *name, unsigned int items,
                     enum store_error *err_r, const char **error_r)
{
	struct store_status st;
	struct store_mailbox_info info = {0};
	uint32_t deleted = 0;
	uint64_t deleted_bytes = 0;
	/* a CONDSTORE enabling command (RFC 7162 3.1) */
	if ((items & IMAP_STATUS_HIGHESTMODSEQ) != 0)
		imap_condstore_enable(sess);
	if (store_mailbox_status(sess->store, name, &st, err_r, error_r) < 0)
		return -1;
	if ((items & IMAP_STATUS_MAILBOXID) != 0 &&
	    store_mailbox_info(sess->store, name, &info, err_r, error_r) < 0)
		return -1;
	if ((items & (IMAP_STATUS_DELETED | IMAP_STATUS_DELETED_STORAGE)) != 0 &&
	    imap_status_deleted(sess, name, &deleted, &deleted_bytes, err_r, error_r) < 0)
		return -1;
	struct buf list = BUF_INIT(0), line = BUF_INIT(0);
	char *client = imap_mailbox_to_client(sess, name);
	imap_status_format(&list, items, &st, deleted, &info, deleted_bytes);
	buf_append_str(&line, "STATUS ");
	imap_append_astring(sess, &line, client);
	/* every item was written with a leading space */
	buf_printf(&line, " (%s)", buf_str(&list) + (list.len > 0 ? 1 : 0));
	imap_untagged(sess, "%s", buf_str(&line));
	free(client);
	buf_free(&list);
	buf_free(&line);
	return 0;
}

IMAP_HANDLER(imap_cmd_status)
{
	const char *client, *error;
	unsigned int items;
	if (count != 2 || !imap_arg_get_astring(&args[0], &client) ||
	    imap_status_parse_items(&args[1], &items) < 0) {
		imap_bad(sess, "STATUS needs a mailbox and a list of status items");
		return;
	}
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL) {
		imap_done(sess, "NO [CANNOT] %s", error);
		return;
	}
	enum store_error err = STORE_OK;
	if (imap_status_send(sess, name, items, &err, &error) < 0)
		imap_store_error(sess, err, "store_mailbox_status", error);
	else
		imap_done(sess, "OK Status completed");
	free(name);
}

/* RFC 9051 6.3.4: the superior names a CREATE needs are created too. */
static int imap_create_parents(struct imap_session *sess, char *name, enum store_error *err_r,
                               const char **error_r)
{
	for (char *slash = strchr(name, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		int ret = strcmp(name, "INBOX") == 0
		                  ? 0
		                  : store_mailbox_create(sess->store, name, err_r, error_r);
		*slash = '/';
		if (ret < 0 && *err_r != STORE_ERR_EXISTS)
			return -1;
	}
	return 0;
}

/* RFC 8474 4.1: the new mailbox's id in the tagged OK. */
static void imap_create_done(struct imap_session *sess, const char *name)
{
	struct store_mailbox_info info;
	enum store_error err;
	const char *error;
	if (store_mailbox_info(sess->store, name, &info, &err, &error) < 0)
		imap_done(sess, "OK Create completed");
	else
		imap_done(sess, "OK [MAILBOXID (%s)] Create completed", info.mailboxid);
}

IMAP_HANDLER(imap_cmd_create)
{
	const char *client, *error;
	if (count < 1 || count > 2 || !imap_arg_get_astring(&args[0], &client)) {
		imap_bad(sess, "CREATE needs a mailbox name");
		return;
	}
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL) {
		imap_done(sess, "NO [CANNOT] %s", error);
		return;
	}
	/* RFC 9051 6.3.4: a trailing separator only says a parent is meant. */
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '/')
		name[len - 1] = '\0';
	char *use = NULL; /* RFC 6154 CREATE-SPECIAL-USE */
	if (count == 2 && imap_create_params(sess, &args[1], &use) < 0) {
		free(name);
		return;
	}
	enum store_error err = STORE_OK;
	if (strcmp(name, "INBOX") == 0)
		imap_done(sess, "NO [ALREADYEXISTS] INBOX always exists");
	else if (imap_create_parents(sess, name, &err, &error) < 0 ||
	         store_mailbox_create(sess->store, name, &err, &error) < 0)
		imap_store_error(sess, err, "store_mailbox_create", error);
	else if (imap_create_use(sess, name, use) == 0)
		imap_create_done(sess, name);
	free(use);
	free(name);
}
