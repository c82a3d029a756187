/* COPY and MOVE (RFC 9051 6.4.7, 6.4.8) with UID variants and COPYUID
 * (RFC 4315). The store does either atomically, for any count. MOVE
 * reports the moved messages as EXPUNGE, or VANISHED after ENABLE QRESYNC. */
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* "1:3,7" of nums (ascending order of the source UIDs, as COPYUID pairs). */
static void imap_copy_set(struct buf *out, const uint32_t *nums, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && nums[j + 1] == nums[j] + 1)
			j++;
		if (i > 0)
			buf_append_char(out, ',');
		if (j == i)
			buf_printf(out, "%" PRIu32, nums[i]);
		else
			buf_printf(out, "%" PRIu32 ":%" PRIu32, nums[i], nums[j]);
		i = j + 1;
	}
}

/* "[COPYUID v src dst]" for the messages that were copied. */
static char *imap_copyuid(struct imap_session *sess, const char *dst, const uint32_t *src_uids,
                          const uint32_t *dst_uids, size_t n)
{
	struct store_status st;
	enum store_error err;
	const char *error;
	if (store_mailbox_status(sess->store, dst, &st, &err, &error) < 0)
		return xstrdup("");
	uint32_t *src = xcalloc(n + 1, sizeof(uint32_t)), *dstu = xcalloc(n + 1, sizeof(uint32_t));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (dst_uids[i] == 0)
			continue;
		src[m] = src_uids[i];
		dstu[m++] = dst_uids[i];
	}
	struct buf out = BUF_INIT(0);
	if (m > 0) {
		buf_printf(&out, "[COPYUID %" PRIu32 " ", st.uidvalidity);
		imap_copy_set(&out, src, m);
		buf_append_char(&out, ' ');
		imap_copy_set(&out, dstu, m);
		buf_append_str(&out, "] ");
	}
	free(src);
	free(dstu);
	char *s = buf_steal(&out);
	return s != NULL ? s : xstrdup("");
}

/* After a MOVE the messages leave the view (EXPUNGE or VANISHED). */
static void imap_move_expunged(struct imap_session *sess, const size_t *idx, size_t n)
{
	imap_mailbox_expunged(sess, idx, n);
	sess->expunge_count += n;
}

/* With QRESYNC the tagged OK gives the new HIGHESTMODSEQ, as for EXPUNGE
 * (RFC 7162 3.2.7, RFC 6851 4.3). */
static void imap_move_done(struct imap_session *sess)
{
	uint64_t highest = sess->qresync ? imap_condstore_highest(sess) : 0;
	if (highest > 0)
		imap_done(sess, "OK [HIGHESTMODSEQ %" PRIu64 "] Move completed", highest);
	else
		imap_done(sess, "OK Move completed");
}

static void imap_copy_run(struct imap_session *sess, const char *dst, const size_t *idx, size_t n,
                          bool move)
{
	enum store_error err = STORE_OK;
	const char *error;
	uint32_t *uids = xcalloc(n + 1, sizeof(uint32_t)), *dst_uids = NULL;
	for (size_t i = 0; i < n; i++)
		uids[i] = sess->mbox->msgs[idx[i]].uid;
	int ret = n == 0 ? 0
	          : move ? store_move(sess->store, sess->mbox->name, uids, n, dst, &dst_uids, &err,
	                              &error)
	                 : store_copy(sess->store, sess->mbox->name, uids, n, dst, &dst_uids, &err,
	                              &error);
	if (ret < 0) {
		free(uids);
		if (err == STORE_ERR_NOT_FOUND)
			imap_done(sess, "NO [TRYCREATE] Mailbox does not exist");
		else
			imap_store_error(sess, err, move ? "store_move" : "store_copy", error);
		return;
	}
	char *code = n == 0 ? xstrdup("") : imap_copyuid(sess, dst, uids, dst_uids, n);
	if (move) {
		/* RFC 6851 3.3: COPYUID comes untagged, before the EXPUNGEs */
		if (code[0] != '\0')
			imap_untagged(sess, "OK %sMoved", code);
		imap_move_expunged(sess, idx, n);
		imap_move_done(sess);
	} else {
		imap_done(sess, "OK %sCopy completed", code);
	}
	free(code);
	free(uids);
	free(dst_uids);
}

static void imap_copy(struct imap_session *sess, const struct imap_arg *args, unsigned int count,
                      bool move)
{
	const char *client, *error;
	size_t *idx = NULL, n = 0;
	if (count != 2 || !imap_arg_get_astring(&args[1], &client)) {
		imap_bad(sess, "Needs a sequence set and a mailbox name");
		return;
	}
	if (move && sess->mbox->readonly) {
		imap_done(sess, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	char *dst = imap_mailbox_from_client(sess, client, &error);
	if (dst == NULL) {
		imap_done(sess, "NO [CANNOT] %s", error);
		return;
	}
	if (imap_mailbox_seqset(sess, &args[0], &idx, &n) == 0)
		imap_copy_run(sess, dst, idx, n, move);
	free(idx);
	free(dst);
}

IMAP_HANDLER(imap_cmd_copy)
{
	imap_copy(sess, args, count, false);
}

IMAP_HANDLER(imap_cmd_move)
{
	imap_copy(sess, args, count, true);
}
