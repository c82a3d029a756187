/* EXPUNGE and UID EXPUNGE (RFC 9051 6.4.3, RFC 4315 UIDPLUS): the view is
 * brought up to date first, so the \Deleted flags other sessions set count
 * and the EXPUNGE numbers match what the client has. After ENABLE
 * QRESYNC the client gets VANISHED instead (RFC 7162 3.2.10). */
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>

#include "lib/xmalloc.h"

/* VANISHED carries no MODSEQ: a QRESYNC client learns the mailbox's new
 * HIGHESTMODSEQ from the tagged OK (RFC 7162 3.2.7). It is read before
 * the sync in imap_done, so it never runs ahead of what the client has
 * been told. */
static void imap_expunge_done(struct imap_session *sess)
{
	uint64_t highest = sess->qresync ? imap_condstore_highest(sess) : 0;
	if (highest > 0)
		imap_done(sess, "OK [HIGHESTMODSEQ %" PRIu64 "] Expunge completed", highest);
	else
		imap_done(sess, "OK Expunge completed");
}

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
		imap_mailbox_expunged(sess, del, count);
		sess->expunge_count += count;
	}
	free(uids);
	free(del);
	if (ret < 0)
		imap_internal_error(sess, "store_expunge", error);
	else
		imap_expunge_done(sess);
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
