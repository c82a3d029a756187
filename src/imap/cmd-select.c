/* SELECT, EXAMINE (RFC 9051 6.3.2, 6.3.3) with the CONDSTORE and QRESYNC
 * parameters (RFC 7162), CLOSE and UNSELECT (RFC 3691). */
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

void imap_select_close(struct imap_session *sess)
{
	imap_mailbox_free(&sess->mbox);
	/* RFC 5182 2.1: the saved SEARCH result belongs to the mailbox */
	sess->searchres_count = 0;
	if (sess->state == IMAP_STATE_SELECTED)
		sess->state = IMAP_STATE_AUTH;
}

/* The status is read before the list, so the HIGHESTMODSEQ reported
 * never runs ahead of the view (RFC 7162 3.1.2.1). */
static int imap_select_open(struct imap_session *sess, const char *name, bool readonly,
                            uint64_t *highest_r, enum store_error *err_r, const char **error_r)
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
	mbox->synced_modseq = st.highestmodseq;
	*highest_r = st.highestmodseq;
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

static void imap_select_untagged(struct imap_session *sess, uint64_t highest)
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
	/* every mailbox has mod-sequences: never NOMODSEQ */
	imap_untagged(sess, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest", highest);
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

/* Select parameters (RFC 4466 2.1): CONDSTORE and QRESYNC (RFC 7162). */
struct imap_select_params {
	bool condstore;
	bool has_qresync;
	struct imap_qresync qresync;
};

static int imap_select_param(struct imap_session *sess, const struct imap_arg *list, unsigned int n,
                             unsigned int *i, struct imap_select_params *p, const char **error_r)
{
	if (imap_arg_atom_equals(&list[*i], "CONDSTORE") && !p->condstore) {
		p->condstore = true;
		return 0;
	}
	if (!imap_arg_atom_equals(&list[*i], "QRESYNC") || p->has_qresync || *i + 1 >= n) {
		*error_r = "Unknown or repeated SELECT parameter";
		return -1;
	}
	if (!sess->qresync) {
		*error_r = "QRESYNC is not enabled";
		return -1;
	}
	p->has_qresync = true;
	return imap_qresync_parse(&list[++*i], &p->qresync, error_r);
}

static int imap_select_params(struct imap_session *sess, const struct imap_arg *args,
                              unsigned int count, struct imap_select_params *p,
                              const char **error_r)
{
	const struct imap_arg *list;
	unsigned int n;
	memset(p, 0, sizeof(*p));
	*error_r = "Needs a mailbox name and optional parameters";
	if (count == 1)
		return 0;
	if (count != 2 || !imap_arg_get_list(&args[1], &list, &n))
		return -1;
	for (unsigned int i = 0; i < n; i++) {
		if (imap_select_param(sess, list, n, &i, p, error_r) < 0)
			return -1;
	}
	return 0;
}

static void imap_select_run(struct imap_session *sess, const char *name, bool readonly,
                            const struct imap_select_params *p)
{
	enum store_error err = STORE_OK;
	const char *error;
	uint64_t highest = 0;
	if (p->condstore || p->has_qresync)
		imap_condstore_enable(sess);
	if (imap_select_open(sess, name, readonly, &highest, &err, &error) < 0) {
		imap_store_error(sess, err, "select", error);
		return;
	}
	imap_select_untagged(sess, highest);
	if (p->has_qresync)
		imap_qresync_report(sess, &p->qresync);
	imap_done(sess, "OK [%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
	          readonly ? "Examine" : "Select");
}

static void imap_select(struct imap_session *sess, const struct imap_arg *args, unsigned int count,
                        bool readonly)
{
	const char *client, *error = "Needs a mailbox name";
	struct imap_select_params params = {0};
	if (count < 1 || !imap_arg_get_astring(&args[0], &client) ||
	    imap_select_params(sess, args, count, &params, &error) < 0) {
		imap_qresync_free(&params.qresync);
		imap_bad(sess, error);
		return;
	}
	/* RFC 9051 6.3.2: the old mailbox is closed first, even if this fails;
	 * RFC 7162 3.2.11 wants the CLOSED code too. */
	if (sess->mbox != NULL) {
		imap_select_close(sess);
		imap_untagged(sess, "OK [CLOSED] Previous mailbox closed");
	}
	char *name = imap_mailbox_from_client(sess, client, &error);
	if (name == NULL)
		imap_done(sess, "NO [CANNOT] %s", error);
	else
		imap_select_run(sess, name, readonly, &params);
	imap_qresync_free(&params.qresync);
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
