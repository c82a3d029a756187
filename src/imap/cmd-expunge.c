/* EXPUNGE and UID EXPUNGE (RFC 9051 6.4.3, RFC 4315 UIDPLUS): the view is
 * brought up to date first, so the \Deleted flags other sessions set count
 * and the EXPUNGE numbers match what the client has. */
#include "imap/imap-private.h"

#include <stdlib.h>

#include "lib/xmalloc.h"

static void imap_expunge_run(struct imap_session *sess, const size_t *idx, size_t n)
{
	struct imap_mailbox *mbox = sess->mbox;
	const char *error;
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t));
	size_t *del = xcalloc(n + 1, sizeof(size_t));
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		if ((mbox->msgs[idx[i]].flags & STORE_FLAG_DELETED) == 0)
			continue;
		uids[count] = mbox->msgs[idx[i]].uid;
		del[count++] = idx[i];
	}
	int ret = count == 0 ? 0 : store_expunge(sess->store, mbox->name, uids, count, &error);
	if (ret == 0) {
		/* from the highest number down: each EXPUNGE shifts those above */
		for (size_t i = count; i-- > 0;) {
			imap_untagged(sess, "%zu EXPUNGE", del[i] + 1);
			imap_mailbox_remove(mbox, del[i]);
		}
		sess->expunge_count += count;
	}
	free(uids);
	free(del);
	if (ret < 0)
		imap_internal_error(sess, "store_expunge", error);
	else
		imap_done(sess, "OK Expunge completed");
}

IMAP_HANDLER(imap_cmd_expunge)
{
	size_t *idx = NULL, n = 0;
	if (count != (sess->uid ? 1u : 0u)) {
		imap_bad(sess,
		         sess->uid ? "UID EXPUNGE needs a UID set" : "EXPUNGE takes no arguments");
		return;
	}
	if (sess->mbox->readonly) {
		imap_done(sess, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	imap_mailbox_sync(sess, true);
	if (sess->uid) {
		if (imap_mailbox_seqset(sess, &args[0], &idx, &n) < 0)
			return;
	} else {
		idx = xcalloc(sess->mbox->count + 1, sizeof(size_t));
		for (n = 0; n < sess->mbox->count; n++)
			idx[n] = n;
	}
	imap_expunge_run(sess, idx, n);
	free(idx);
}
