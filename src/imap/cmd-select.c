/* SELECT, EXAMINE (RFC 9051 6.3.2, 6.3.3), CLOSE and UNSELECT (RFC 3691). */
#include "imap/imap-private.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

void imap_select_close(struct imap_session *sess)
{
	imap_mailbox_free(&sess->mbox);
	if (sess->state == IMAP_STATE_SELECTED)
		sess->state = IMAP_STATE_AUTH;
}

static int imap_select_open(struct imap_session *sess, const char *name, bool readonly,
                            enum store_error *err_r, const char **error_r)
{
	struct store_status st;
	struct imap_mailbox *mbox = xcalloc(1, sizeof(*mbox));
	mbox->name = xstrdup(name);
	mbox->readonly = readonly;
	if (store_mailbox_status(sess->store, name, &st, err_r, error_r) < 0 ||
	    store_msg_list(sess->store, name, &mbox->msgs, &mbox->count, err_r, error_r) < 0 ||
	    store_mailbox_keywords(sess->store, name, &mbox->keywords, &mbox->keyword_count, err_r,
	                           error_r) < 0) {
		imap_mailbox_free(&mbox);
		return -1;
	}
	mbox->uidvalidity = st.uidvalidity;
	/* the list may be newer than the status */
	mbox->uidnext = st.uidnext;
	if (mbox->count > 0 && mbox->msgs[mbox->count - 1].uid >= mbox->uidnext)
		mbox->uidnext = mbox->msgs[mbox->count - 1].uid + 1;
	sess->mbox = mbox;
	sess->state = IMAP_STATE_SELECTED;
	return 0;
}

/* RFC 8474 4.1; a failure here only loses the id, the mailbox is open. */
static void imap_select_mailboxid(struct imap_session *sess)
{
	struct store_mailbox_info info;
	enum store_error err;
	const char *error;
	if (store_mailbox_info(sess->store, sess->mbox->name, &info, &err, &error) < 0) {
		log_warn("imap session=%s user=%s event=mailboxid_failed error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), error);
		return;
	}
	imap_untagged(sess, "OK [MAILBOXID (%s)] Ok", info.mailboxid);
}

static void imap_select_untagged(struct imap_session *sess)
{
	const struct imap_mailbox *mbox = sess->mbox;
	imap_untagged(sess, "%zu EXISTS", mbox->count);
	if (!sess->rev2) {
		imap_untagged(sess, "0 RECENT");
		for (size_t i = 0; i < mbox->count; i++) {
			if ((mbox->msgs[i].flags & STORE_FLAG_SEEN) == 0) {
				imap_untagged(sess, "OK [UNSEEN %zu] First unseen message", i + 1);
				break;
			}
		}
	}
	imap_mailbox_flags_send(sess);
	imap_untagged(sess, "OK [UIDVALIDITY %" PRIu32 "] UIDs valid", mbox->uidvalidity);
	imap_untagged(sess, "OK [UIDNEXT %" PRIu32 "] Predicted next UID", mbox->uidnext);
	imap_select_mailboxid(sess);
	if (sess->rev2) {
		struct buf line = BUF_INIT(0);
		char *client = imap_mailbox_to_client(sess, mbox->name);
		buf_append_str(&line, "LIST () \"/\" ");
		imap_append_astring(sess, &line, client);
		imap_untagged(sess, "%s", buf_str(&line));
		buf_free(&line);
		free(client);
	}
}

static void imap_select(struct imap_session *sess, const struct imap_arg *args, unsigned int count,
                        bool readonly)
{
	const char *client, *error;
	if (count != 1 || !imap_arg_get_astring(&args[0], &client)) {
		imap_bad(sess, "Needs exactly one mailbox name");
		return;
	}
	/* RFC 9051 6.3.2: the old mailbox is closed first, even if this fails. */
	if (sess->mbox != NULL) {
		imap_select_close(sess);
		imap_untagged(sess, "OK [CLOSED] Previous mailbox closed");
	}
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL) {
		imap_done(sess, "NO [CANNOT] %s", error);
		return;
	}
	enum store_error err = STORE_OK;
	if (imap_select_open(sess, name, readonly, &err, &error) < 0) {
		imap_store_error(sess, err, "select", error);
	} else {
		imap_select_untagged(sess);
		imap_done(sess, "OK [%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		          readonly ? "Examine" : "Select");
	}
	free(name);
}

IMAP_HANDLER(imap_cmd_select)
{
	imap_select(sess, args, count, false);
}

IMAP_HANDLER(imap_cmd_examine)
{
	imap_select(sess, args, count, true);
}

/* CLOSE removes \Deleted messages silently (RFC 9051 6.4.1), also those
 * that other sessions flagged since this one last looked. */
static int imap_close_expunge(struct imap_session *sess, const char **error_r)
{
	struct store_msg *msgs = NULL;
	size_t count = 0;
	enum store_error err;
	if (store_msg_list(sess->store, sess->mbox->name, &msgs, &count, &err, error_r) < 0)
		return -1;
	uint32_t *uids = xcalloc(count + 1, sizeof(uint32_t));
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if ((msgs[i].flags & STORE_FLAG_DELETED) != 0)
			uids[n++] = msgs[i].uid;
	}
	store_msg_list_free(&msgs, count);
	int ret = n == 0 ? 0 : store_expunge(sess->store, sess->mbox->name, uids, n, error_r);
	if (ret == 0)
		sess->expunge_count += n;
	free(uids);
	return ret;
}

IMAP_HANDLER(imap_cmd_close)
{
	const char *error;
	if (count != 0) {
		imap_bad(sess, "CLOSE takes no arguments");
		return;
	}
	int ret = sess->mbox->readonly ? 0 : imap_close_expunge(sess, &error);
	imap_select_close(sess);
	if (ret < 0)
		imap_internal_error(sess, "store_expunge", error);
	else
		imap_done(sess, "OK Close completed");
}

IMAP_HANDLER(imap_cmd_unselect)
{
	if (count != 0) {
		imap_bad(sess, "UNSELECT takes no arguments");
		return;
	}
	imap_select_close(sess);
	imap_done(sess, "OK Unselect completed");
}
