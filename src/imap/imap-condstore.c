/* CONDSTORE and QRESYNC (RFC 7162): enabling, the FETCH line of a flag
 * change, VANISHED instead of EXPUNGE, and the resynchronisation that
 * SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE n VANISHED) do. */
#include "imap/imap-condstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conn.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

/* Ranges per VANISHED line: at most ~22 bytes each, so a line stays
 * below the 8 KB RFC 7162 (section 4) asks clients to accept. */
#define IMAP_VANISHED_RANGES 300

bool imap_modseq_parse(const struct imap_arg *arg, bool allow_zero, uint64_t *modseq_r)
{
	const char *s;
	if (!imap_arg_get_atom(arg, &s) || s[0] < '0' || s[0] > '9' ||
	    str_to_uint64(s, modseq_r) < 0)
		return false;
	return *modseq_r <= IMAP_MODSEQ_MAX && (allow_zero || *modseq_r > 0);
}

uint64_t imap_condstore_highest(struct imap_session *sess)
{
	struct store_status st;
	enum store_error err;
	const char *error;
	if (store_mailbox_status(sess->store, sess->mbox->name, &st, &err, &error) < 0) {
		log_warn("imap session=%s user=%s event=highestmodseq_failed mailbox=\"%s\" "
		         "error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), sess->mbox->name, error);
		return 0;
	}
	return st.highestmodseq;
}

void imap_condstore_enable(struct imap_session *sess)
{
	if (sess->condstore)
		return;
	sess->condstore = true;
	if (sess->mbox == NULL)
		return;
	uint64_t highest = imap_condstore_highest(sess);
	if (highest > 0)
		imap_untagged(sess, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest", highest);
}

void imap_flags_fetch_send(struct imap_session *sess, size_t idx, bool with_flags)
{
	const struct store_msg *msg = &sess->mbox->msgs[idx];
	struct buf line = BUF_INIT(0);
	const char *sep = "";
	buf_printf(&line, "%zu FETCH (", idx + 1);
	if (sess->uid || sess->condstore) {
		buf_printf(&line, "UID %" PRIu32, msg->uid);
		sep = " ";
	}
	if (with_flags) {
		buf_printf(&line, "%sFLAGS ", sep);
		imap_flags_write(&line, msg->flags, msg->keywords);
		sep = " ";
	}
	if (sess->condstore)
		buf_printf(&line, "%sMODSEQ (%" PRIu64 ")", sep, msg->modseq);
	buf_append_char(&line, ')');
	imap_untagged(sess, "%s", buf_str(&line));
	buf_free(&line);
}

void imap_condstore_set_push(struct imap_seqset *set, uint32_t first, uint32_t last)
{
	if (set->count > 0 && (uint64_t)set->ranges[set->count - 1].last + 1 >= first) {
		if (last > set->ranges[set->count - 1].last)
			set->ranges[set->count - 1].last = last;
		return;
	}
	if (set->count == set->alloc) {
		set->alloc = set->alloc == 0 ? 16 : set->alloc * 2;
		set->ranges = xreallocarray(set->ranges, set->alloc, sizeof(*set->ranges));
	}
	set->ranges[set->count].first = first;
	set->ranges[set->count].last = last;
	set->count++;
}

void imap_vanished_send(struct imap_session *sess, bool earlier, const struct imap_seqset *set)
{
	for (unsigned int i = 0; i < set->count; i += IMAP_VANISHED_RANGES) {
		struct imap_seqset part = {
		        .ranges = set->ranges + i,
		        .count = set->count - i < IMAP_VANISHED_RANGES ? set->count - i
		                                                       : IMAP_VANISHED_RANGES,
		};
		struct buf line = BUF_INIT(0);
		buf_append_str(&line, earlier ? "VANISHED (EARLIER) " : "VANISHED ");
		imap_seqset_format(&part, &line);
		imap_untagged(sess, "%s", buf_str(&line));
		buf_free(&line);
	}
}

/* Drops the view messages idx[] (ascending) in one pass. */
static void imap_view_compact(struct imap_mailbox *mbox, const size_t *idx, size_t n)
{
	size_t out = idx[0], k = 0;
	for (size_t i = idx[0]; i < mbox->count; i++) {
		if (k < n && idx[k] == i) {
			free(mbox->msgs[i].keywords);
			free(mbox->msgs[i].uidl);
			k++;
			continue;
		}
		mbox->msgs[out++] = mbox->msgs[i];
	}
	mbox->count = out;
}

void imap_mailbox_expunged(struct imap_session *sess, const size_t *idx, size_t n)
{
	struct imap_mailbox *mbox = sess->mbox;
	if (n == 0)
		return;
	if (sess->qresync) {
		struct imap_seqset set;
		imap_seqset_init(&set);
		for (size_t i = 0; i < n; i++)
			imap_condstore_set_push(&set, mbox->msgs[idx[i]].uid,
			                        mbox->msgs[idx[i]].uid);
		imap_vanished_send(sess, false, &set);
		imap_seqset_free(&set);
	} else {
		/* from the highest number down: each EXPUNGE shifts those above */
		for (size_t i = n; i-- > 0;)
			imap_untagged(sess, "%zu EXPUNGE", idx[i] + 1);
	}
	imap_view_compact(mbox, idx, n);
}

/* Adds lo:hi minus the UIDs the view holds. */
static void imap_vanished_piece(const struct imap_mailbox *mbox, struct imap_seqset *out,
                                uint32_t lo, uint32_t hi)
{
	uint64_t cur = lo;
	for (size_t i = imap_mailbox_lower_bound(mbox, lo); i < mbox->count && mbox->msgs[i].uid <= hi;
	     i++) {
		uint32_t uid = mbox->msgs[i].uid;
		if (uid > cur)
			imap_condstore_set_push(out, (uint32_t)cur, uid - 1);
		cur = (uint64_t)uid + 1;
	}
	if (cur <= hi)
		imap_condstore_set_push(out, (uint32_t)cur, hi);
}

/* lo:hi intersected with known (ascending; *k is where to start). */
static void imap_vanished_known(const struct imap_mailbox *mbox, const struct imap_seqset *known,
                                unsigned int *k, uint32_t lo, uint32_t hi, struct imap_seqset *out)
{
	while (*k < known->count && known->ranges[*k].last < lo)
		(*k)++;
	for (unsigned int j = *k; j < known->count && known->ranges[j].first <= hi; j++) {
		uint32_t a = known->ranges[j].first > lo ? known->ranges[j].first : lo;
		uint32_t b = known->ranges[j].last < hi ? known->ranges[j].last : hi;
		imap_vanished_piece(mbox, out, a, b);
	}
}

int imap_vanished_since(struct imap_session *sess, uint64_t modseq, const struct imap_seqset *known,
                        uint32_t floor, struct imap_seqset *out)
{
	const struct imap_mailbox *mbox = sess->mbox;
	struct store_uid_range *ranges = NULL;
	size_t count = 0;
	bool exact;
	enum store_error err;
	const char *error;
	imap_seqset_init(out);
	if (store_vanished_since(sess->store, mbox->name, modseq, &ranges, &count, &exact, &err,
	                         &error) < 0) {
		log_warn(
		        "imap session=%s user=%s event=vanished_failed mailbox=\"%s\" error=\"%s\"",
		        conn_id(sess->conn), imap_user(sess), mbox->name, error);
		return -1;
	}
	uint32_t top = mbox->uidnext > 0 ? mbox->uidnext - 1 : 0;
	unsigned int k = 0;
	for (size_t i = 0; i < count && floor < UINT32_MAX; i++) {
		uint32_t lo = ranges[i].first > floor ? ranges[i].first : floor + 1;
		uint32_t hi = ranges[i].last < top ? ranges[i].last : top;
		if (lo > hi)
			continue;
		if (known != NULL)
			imap_vanished_known(mbox, known, &k, lo, hi, out);
		else
			imap_vanished_piece(mbox, out, lo, hi);
	}
	free(ranges);
	return 0;
}

/* ---- SELECT (QRESYNC ...) ---- */

static int imap_qresync_set(const struct imap_arg *arg, struct imap_seqset *set)
{
	const char *error;
	if (imap_arg_get_seqset(arg, set, &error) < 0 || set->has_star || set->saved)
		return -1;
	imap_seqset_normalize(set);
	return 0;
}

/* (known-sequence-set known-uid-set): pairs that do not add up are
 * ignored, which only makes the VANISHED answer larger. */
static int imap_qresync_match(const struct imap_arg *arg, struct imap_qresync *q)
{
	const struct imap_arg *list;
	unsigned int n;
	if (!imap_arg_get_list(arg, &list, &n) || n != 2 ||
	    imap_qresync_set(&list[0], &q->match_seqs) < 0 ||
	    imap_qresync_set(&list[1], &q->match_uids) < 0)
		return -1;
	q->has_match = imap_seqset_count(&q->match_seqs) == imap_seqset_count(&q->match_uids);
	return 0;
}

int imap_qresync_parse(const struct imap_arg *arg, struct imap_qresync *q, const char **error_r)
{
	const struct imap_arg *list;
	unsigned int n;
	const char *s;
	memset(q, 0, sizeof(*q));
	*error_r = "Invalid QRESYNC parameters";
	if (!imap_arg_get_list(arg, &list, &n) || n < 2 || n > 4 ||
	    !imap_arg_get_atom(&list[0], &s) || str_to_uint32(s, &q->uidvalidity) < 0 ||
	    q->uidvalidity == 0 || !imap_modseq_parse(&list[1], false, &q->modseq))
		return -1;
	if (n >= 3) {
		if (imap_qresync_set(&list[2], &q->known) < 0)
			return -1;
		q->has_known = true;
	}
	if (n == 4 && imap_qresync_match(&list[3], q) < 0)
		return -1;
	return 0;
}

void imap_qresync_free(struct imap_qresync *q)
{
	imap_seqset_free(&q->known);
	imap_seqset_free(&q->match_seqs);
	imap_seqset_free(&q->match_uids);
}

/* RFC 7162 3.2.5.2: while the client's message numbers still name the
 * same UIDs, nothing at or below that UID has been expunged since its
 * view (UIDs are never added below it), so VANISHED need not go there. */
static uint32_t imap_qresync_floor(const struct imap_mailbox *mbox, const struct imap_qresync *q)
{
	struct imap_seqset_iter si, ui;
	uint32_t seq, uid, floor = 0;
	imap_seqset_iter_init(&si);
	imap_seqset_iter_init(&ui);
	while (imap_seqset_iter_next(&q->match_seqs, &si, &seq) &&
	       imap_seqset_iter_next(&q->match_uids, &ui, &uid)) {
		if (seq > mbox->count || mbox->msgs[seq - 1].uid != uid)
			break;
		floor = uid;
	}
	return floor;
}

void imap_qresync_report(struct imap_session *sess, const struct imap_qresync *q)
{
	const struct imap_mailbox *mbox = sess->mbox;
	if (q->uidvalidity != mbox->uidvalidity)
		return;
	uint32_t floor = q->has_match ? imap_qresync_floor(mbox, q) : 0;
	struct imap_seqset gone;
	if (imap_vanished_since(sess, q->modseq, q->has_known ? &q->known : NULL, floor, &gone) ==
	    0)
		imap_vanished_send(sess, true, &gone);
	imap_seqset_free(&gone);
	for (size_t i = 0; i < mbox->count; i++) {
		const struct store_msg *msg = &mbox->msgs[i];
		if (msg->modseq > q->modseq &&
		    (!q->has_known || imap_seqset_contains(&q->known, msg->uid)))
			imap_flags_fetch_send(sess, i, true);
	}
}
