/* Mailbox names on the wire, the selected mailbox as the session sees it
 * (message sequence numbers, changes by other sessions), flags, and the
 * per-session cache of parsed MIME trees. */
#include "imap/imap-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imap/imap-condstore.h"
#include "imap/imap-utf7.h"
#include "lib/conn.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"

#define IMAP_NAME_MAX 1024

static const struct {
	const char *name;
	unsigned int flag;
} imap_system_flags[] = {
        {"\\Answered", STORE_FLAG_ANSWERED}, {"\\Flagged", STORE_FLAG_FLAGGED},
        {"\\Deleted", STORE_FLAG_DELETED},   {"\\Seen", STORE_FLAG_SEEN},
        {"\\Draft", STORE_FLAG_DRAFT},
};

unsigned int imap_flag_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
		if (strcasecmp(imap_system_flags[i].name, name) == 0)
			return imap_system_flags[i].flag;
	}
	return 0;
}

void imap_flags_write(struct buf *out, unsigned int flags, const char *keywords)
{
	bool first = true;
	buf_append_char(out, '(');
	for (size_t i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
		if ((flags & imap_system_flags[i].flag) == 0)
			continue;
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, imap_system_flags[i].name);
		first = false;
	}
	if (keywords != NULL && keywords[0] != '\0') {
		if (!first)
			buf_append_char(out, ' ');
		buf_append_str(out, keywords);
	}
	buf_append_char(out, ')');
}

bool imap_keyword_valid(const char *name)
{
	size_t len = strlen(name);
	/* atom-specials other than those the parser already refuses */
	return len > 0 && len <= STORE_KEYWORD_MAX_LEN && strpbrk(name, "\\]%*\"(){ ") == NULL;
}

bool imap_keywords_contain(const char *list, const char *keyword)
{
	size_t len = strlen(keyword);
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n == len && strncasecmp(p, keyword, len) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

/* "\Answered ... $Junk foo" */
static void imap_mailbox_flag_list(const struct imap_mailbox *mbox, struct buf *out)
{
	buf_append_str(out, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < mbox->keyword_count; i++)
		buf_printf(out, " %s", mbox->keywords[i]);
}

void imap_mailbox_flags_send(struct imap_session *sess)
{
	const struct imap_mailbox *mbox = sess->mbox;
	struct buf list = BUF_INIT(0);
	imap_mailbox_flag_list(mbox, &list);
	imap_untagged(sess, "FLAGS (%s)", buf_str(&list));
	if (mbox->readonly)
		imap_untagged(sess, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(sess, "OK [PERMANENTFLAGS (%s \\*)] Flags permitted", buf_str(&list));
	buf_free(&list);
}

void imap_mailbox_keywords_sync(struct imap_session *sess)
{
	struct imap_mailbox *mbox = sess->mbox;
	char **keywords = NULL;
	size_t count = 0;
	enum store_error err;
	const char *error;
	if (store_mailbox_keywords(sess->store, mbox->name, &keywords, &count, &err, &error) < 0) {
		log_warn("imap session=%s user=%s event=keywords_failed mailbox=\"%s\" error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), mbox->name, error);
		return;
	}
	/* a mailbox's keyword list only grows */
	if (count == mbox->keyword_count) {
		store_names_free(&keywords, count);
		return;
	}
	store_names_free(&mbox->keywords, mbox->keyword_count);
	mbox->keywords = keywords;
	mbox->keyword_count = count;
	imap_mailbox_flags_send(sess);
}

/* ---- names ---- */

char *imap_mailbox_from_client(struct imap_session *sess, const char *name, const char **error_r)
{
	struct buf out = BUF_INIT(IMAP_NAME_MAX);
	if (sess->utf8) {
		if (!imap_utf8_is_valid(name, strlen(name)) || buf_append_str(&out, name) < 0) {
			buf_free(&out);
			*error_r = "Mailbox name is not valid UTF-8";
			return NULL;
		}
	} else if (imap_utf7_to_utf8(name, &out) < 0) {
		buf_free(&out);
		*error_r = "Mailbox name is not valid modified UTF-7";
		return NULL;
	}
	char *utf8 = buf_steal(&out);
	if (utf8 == NULL)
		utf8 = xstrdup("");
	if (strcasecmp(utf8, "INBOX") == 0)
		memcpy(utf8, "INBOX", 5);
	else if (strncasecmp(utf8, "INBOX/", 6) == 0)
		memcpy(utf8, "INBOX", 5);
	return utf8;
}

char *imap_mailbox_to_client(struct imap_session *sess, const char *name)
{
	struct buf out = BUF_INIT(0);
	if (sess->utf8 || imap_utf8_to_utf7(name, &out) < 0) {
		buf_reset(&out);
		buf_append_str(&out, name);
	}
	char *s = buf_steal(&out);
	return s != NULL ? s : xstrdup("");
}

/* ---- the selected view ---- */

void imap_mailbox_free(struct imap_mailbox **mboxp)
{
	struct imap_mailbox *mbox = *mboxp;
	if (mbox == NULL)
		return;
	store_msg_list_free(&mbox->msgs, mbox->count);
	store_names_free(&mbox->keywords, mbox->keyword_count);
	free(mbox->name);
	free(mbox);
	*mboxp = NULL;
}

size_t imap_mailbox_lower_bound(const struct imap_mailbox *mbox, uint32_t uid)
{
	size_t lo = 0, hi = mbox->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mbox->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

ssize_t imap_mailbox_find_uid(const struct imap_mailbox *mbox, uint32_t uid)
{
	size_t i = imap_mailbox_lower_bound(mbox, uid);
	return i < mbox->count && mbox->msgs[i].uid == uid ? (ssize_t)i : -1;
}

/* A changed message gets one FETCH; with CONDSTORE a new MODSEQ alone
 * counts as a change (the client keeps it, RFC 7162 3.1). */
static void imap_sync_flags(struct imap_session *sess, struct store_msg *old, struct store_msg *cur,
                            size_t idx)
{
	if (old->flags == cur->flags && strcmp(old->keywords, cur->keywords) == 0 &&
	    (!sess->condstore || old->modseq == cur->modseq))
		return;
	old->flags = cur->flags;
	old->modseq = cur->modseq;
	char *tmp = old->keywords;
	old->keywords = cur->keywords;
	cur->keywords = tmp;
	imap_flags_fetch_send(sess, idx, true);
}

/* Walks the old view from the end, reporting flag changes with the
 * numbers the client has now; the messages that are gone leave the view
 * afterwards (EXPUNGE or VANISHED), or stay in it when expunges may not
 * be reported yet. */
static size_t imap_sync_expunges(struct imap_session *sess, struct store_msg *cur,
                                 size_t cur_count, bool allow_expunge)
{
	struct imap_mailbox *mbox = sess->mbox;
	size_t *gone = xcalloc(mbox->count + 1, sizeof(size_t));
	size_t n = 0, j = cur_count, deferred = 0;
	for (size_t i = mbox->count; i-- > 0;) {
		while (j > 0 && cur[j - 1].uid > mbox->msgs[i].uid)
			j--;
		if (j > 0 && cur[j - 1].uid == mbox->msgs[i].uid)
			imap_sync_flags(sess, &mbox->msgs[i], &cur[j - 1], i);
		else if (allow_expunge)
			gone[n++] = i;
		else
			deferred++;
	}
	/* gone[] is descending; imap_mailbox_expunged wants it ascending */
	for (size_t a = 0, b = n; a + 1 < b; a++, b--) {
		size_t tmp = gone[a];
		gone[a] = gone[b - 1];
		gone[b - 1] = tmp;
	}
	imap_mailbox_expunged(sess, gone, n);
	free(gone);
	return deferred;
}

/* Appends the messages with UIDs above the view's last one. */
static void imap_sync_new(struct imap_session *sess, struct store_msg *cur, size_t cur_count)
{
	struct imap_mailbox *mbox = sess->mbox;
	uint32_t last = mbox->count > 0 ? mbox->msgs[mbox->count - 1].uid : 0;
	size_t first = cur_count;
	while (first > 0 && cur[first - 1].uid > last)
		first--;
	if (first == cur_count)
		return;
	size_t add = cur_count - first;
	mbox->msgs = xreallocarray(mbox->msgs, mbox->count + add, sizeof(mbox->msgs[0]));
	for (size_t k = 0; k < add; k++) {
		mbox->msgs[mbox->count + k] = cur[first + k];
		cur[first + k].keywords = NULL;
		cur[first + k].uidl = NULL;
	}
	mbox->count += add;
	imap_untagged(sess, "%zu EXISTS", mbox->count);
}

/* The view's messages among the vanished UID ranges: gone (reported now,
 * ascending indexes) or, when expunges may not be reported yet, counted. */
static size_t imap_sync_vanished(struct imap_session *sess, const struct store_uid_range *ranges,
                                 size_t range_count, bool allow_expunge)
{
	struct imap_mailbox *mbox = sess->mbox;
	size_t *gone = NULL, n = 0, deferred = 0;
	for (size_t r = 0; r < range_count; r++) {
		for (size_t i = imap_mailbox_lower_bound(mbox, ranges[r].first);
		     i < mbox->count && mbox->msgs[i].uid <= ranges[r].last; i++) {
			if (!allow_expunge) {
				deferred++;
				continue;
			}
			gone = xreallocarray(gone, n + 1, sizeof(*gone));
			gone[n++] = i;
		}
	}
	imap_mailbox_expunged(sess, gone, n);
	free(gone);
	return deferred;
}

/* Catching up from synced_modseq: only the rows that changed since, and
 * the UIDs expunged since. 1 done, 0 when the store cannot say exactly
 * what vanished (the caller lists the whole mailbox), -1 on error. */
static int imap_mailbox_sync_since(struct imap_session *sess, bool allow_expunge,
                                   uint64_t *highestmodseq_r, size_t *deferred_r,
                                   const char **error_r)
{
	struct imap_mailbox *mbox = sess->mbox;
	struct store_msg *changed = NULL;
	struct store_uid_range *vanished = NULL;
	size_t changed_count = 0, vanished_count = 0;
	bool exact = false;
	enum store_error err;
	if (store_msg_list_since(sess->store, mbox->name, mbox->synced_modseq, &changed,
	                         &changed_count, &vanished, &vanished_count, &exact,
	                         highestmodseq_r, &err, error_r) < 0)
		return -1;
	if (!exact) {
		store_msg_list_free(&changed, changed_count);
		free(vanished);
		return 0;
	}
	bool keywords = false;
	for (size_t j = 0; j < changed_count && !keywords; j++)
		keywords = changed[j].keywords[0] != '\0';
	/* FLAGS first: the FETCH replies below may name new keywords */
	if (keywords)
		imap_mailbox_keywords_sync(sess);
	for (size_t j = changed_count; j-- > 0;) {
		ssize_t i = imap_mailbox_find_uid(mbox, changed[j].uid);
		if (i >= 0)
			imap_sync_flags(sess, &mbox->msgs[i], &changed[j], (size_t)i);
	}
	*deferred_r = imap_sync_vanished(sess, vanished, vanished_count, allow_expunge);
	imap_sync_new(sess, changed, changed_count);
	store_msg_list_free(&changed, changed_count);
	free(vanished);
	return 1;
}

void imap_mailbox_sync(struct imap_session *sess, bool allow_expunge)
{
	struct store_msg *cur = NULL;
	size_t cur_count = 0;
	struct store_status st;
	enum store_error err;
	const char *error;
	/* Most commands find nothing new: one row read instead of a list of
	 * the whole mailbox. The state is read before the list, so a change
	 * between the two is seen again next time, never missed. */
	if (store_mailbox_state(sess->store, sess->mbox->name, &st, &err, &error) < 0)
		st.highestmodseq = 0;
	if (st.highestmodseq != 0 && st.highestmodseq == sess->mbox->synced_modseq)
		return;
	if (st.highestmodseq != 0 && sess->mbox->synced_modseq != 0) {
		uint64_t highest = 0;
		size_t deferred = 0;
		int ret = imap_mailbox_sync_since(sess, allow_expunge, &highest, &deferred, &error);
		if (ret > 0) {
			sess->mbox->synced_modseq = deferred > 0 ? 0 : highest;
			return;
		}
		if (ret < 0) {
			log_warn("imap session=%s user=%s event=sync_failed mailbox=\"%s\" "
			         "error=\"%s\"",
			         conn_id(sess->conn), imap_user(sess), sess->mbox->name, error);
			return;
		}
	}
	if (store_msg_list(sess->store, sess->mbox->name, &cur, &cur_count, &err, &error) < 0) {
		log_warn("imap session=%s user=%s event=sync_failed mailbox=\"%s\" error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), sess->mbox->name, error);
		return;
	}
	/* FLAGS first: the FETCH replies below may name new keywords */
	imap_mailbox_keywords_sync(sess);
	size_t deferred = imap_sync_expunges(sess, cur, cur_count, allow_expunge);
	imap_sync_new(sess, cur, cur_count);
	store_msg_list_free(&cur, cur_count);
	/* expunges not reported yet keep the next sync a full one */
	sess->mbox->synced_modseq = deferred > 0 ? 0 : st.highestmodseq;
}

/* ---- sequence sets ---- */

/* Walks the set's ranges, not the whole view: FETCH 5 costs the same in a
 * mailbox of 100,000 messages as in one of ten. The set is resolved and
 * normalized (ascending, disjoint), so the indexes come out ascending. */
static void imap_seqset_collect(struct imap_session *sess, const struct imap_seqset *set,
                                size_t **idx_r, size_t *count_r)
{
	struct imap_mailbox *mbox = sess->mbox;
	uint64_t want = imap_seqset_count(set);
	size_t *idx = xcalloc((want < mbox->count ? want : mbox->count) + 1, sizeof(size_t));
	size_t n = 0;
	for (unsigned int r = 0; r < set->count; r++) {
		const struct imap_seq_range *range = &set->ranges[r];
		size_t i = sess->uid ? imap_mailbox_lower_bound(mbox, range->first)
		                     : (size_t)range->first - 1;
		for (; i < mbox->count; i++) {
			uint32_t num = sess->uid ? mbox->msgs[i].uid : (uint32_t)(i + 1);
			if (num > range->last)
				break;
			idx[n++] = i;
		}
	}
	*idx_r = idx;
	*count_r = n;
}

int imap_mailbox_seqset(struct imap_session *sess, const struct imap_arg *arg, size_t **idx_r,
                        size_t *count_r)
{
	struct imap_mailbox *mbox = sess->mbox;
	struct imap_seqset set;
	const char *error;
	if (imap_arg_get_seqset(arg, &set, &error) < 0) {
		imap_seqset_free(&set);
		imap_bad(sess, error);
		return -1;
	}
	/* RFC 5182: "$" is the saved SEARCH result, all within the view */
	if (set.saved)
		imap_searchres_add(sess, &set, sess->uid);
	uint32_t max = 0;
	if (mbox->count > 0)
		max = sess->uid ? mbox->msgs[mbox->count - 1].uid : (uint32_t)mbox->count;
	/* RFC 9051 6.4.8: a message number beyond the view is an error. */
	if (!sess->uid && set.count > 0 && !set.has_star) {
		for (unsigned int i = 0; i < set.count; i++) {
			if (set.ranges[i].last > max || set.ranges[i].first > max) {
				imap_seqset_free(&set);
				imap_bad(sess, "Invalid message sequence number");
				return -1;
			}
		}
	}
	imap_seqset_resolve(&set, max);
	imap_seqset_collect(sess, &set, idx_r, count_r);
	imap_seqset_free(&set);
	return 0;
}

/* ---- parsed MIME trees ---- */

static void imap_cache_entry_free(struct imap_part_cache_entry *e)
{
	mime_part_free(&e->root);
	xfree(e->mailbox);
	e->uid = 0;
}

static void imap_blob_batch_clear(struct imap_blob_batch *b)
{
	for (size_t i = 0; i < b->count; i++)
		free(b->data[i]);
	xfree(b->uids);
	xfree(b->data);
	xfree(b->size);
	xfree(b->mailbox);
	b->count = b->alloc = 0;
	b->first = b->last = 0;
}

void imap_part_cache_clear(struct imap_session *sess)
{
	for (size_t i = 0; i < IMAP_PART_CACHE; i++)
		imap_cache_entry_free(&sess->cache[i]);
	imap_blob_batch_clear(&sess->blobs);
}

struct imap_prefetch {
	struct imap_blob_batch *batch;
	const struct imap_mailbox *mbox;
	const size_t *idx;
	size_t count, pos;
};

static void imap_prefetch_row(void *context, uint32_t uid, const void *data, size_t size)
{
	struct imap_prefetch *p = context;
	while (p->pos < p->count && p->mbox->msgs[p->idx[p->pos]].uid < uid)
		p->pos++;
	if (p->pos == p->count || p->mbox->msgs[p->idx[p->pos]].uid != uid)
		return; /* in the range, not asked for */
	struct imap_blob_batch *b = p->batch;
	if (b->count == b->alloc) {
		b->alloc = b->alloc == 0 ? 64 : b->alloc * 2;
		b->uids = xreallocarray(b->uids, b->alloc, sizeof(*b->uids));
		b->data = xreallocarray(b->data, b->alloc, sizeof(*b->data));
		b->size = xreallocarray(b->size, b->alloc, sizeof(*b->size));
	}
	b->uids[b->count] = uid;
	b->data[b->count] = xmalloc(size + 1);
	memcpy(b->data[b->count], data, size);
	b->size[b->count++] = size;
}

void imap_parts_prefetch(struct imap_session *sess, const size_t *idx, size_t count)
{
	struct imap_blob_batch *b = &sess->blobs;
	imap_blob_batch_clear(b);
	if (count < 2)
		return;
	const struct imap_mailbox *mbox = sess->mbox;
	struct imap_prefetch p = {b, mbox, idx, count, 0};
	const char *error;
	b->first = mbox->msgs[idx[0]].uid;
	b->last = mbox->msgs[idx[count - 1]].uid;
	if (store_msg_cache_get_range(sess->store, mbox->name, b->first, b->last, imap_prefetch_row,
	                              &p, &error) < 0) {
		log_warn("imap session=%s user=%s event=cache_prefetch_failed error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), error);
		imap_blob_batch_clear(b);
		return;
	}
	b->mailbox = xstrdup(mbox->name);
	b->uidvalidity = mbox->uidvalidity;
}

/* The batch's slot for uid: 1 with its index, 0 when the batch covers uid
 * and has no blob for it, -1 when the batch does not know. */
static int imap_blob_batch_find(struct imap_session *sess, uint32_t uid, size_t *slot_r)
{
	struct imap_blob_batch *b = &sess->blobs;
	if (b->mailbox == NULL || b->uidvalidity != sess->mbox->uidvalidity ||
	    strcmp(b->mailbox, sess->mbox->name) != 0 || uid < b->first || uid > b->last)
		return -1;
	size_t lo = 0, hi = b->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == b->count || b->uids[lo] != uid || b->data[lo] == NULL)
		return 0;
	*slot_r = lo;
	return 1;
}

/* 1 and the blob (moved out of the batch) when the batch has uid, 0 when
 * the batch covers uid and it has no blob, -1 when the batch does not know. */
static int imap_blob_batch_take(struct imap_session *sess, uint32_t uid, void **data_r,
                                size_t *size_r)
{
	size_t slot;
	int ret = imap_blob_batch_find(sess, uid, &slot);
	if (ret <= 0)
		return ret;
	*data_r = sess->blobs.data[slot];
	*size_r = sess->blobs.size[slot];
	sess->blobs.data[slot] = NULL;
	return 1;
}

static struct mime_part *imap_parse_fd(int fd, const char **error_r)
{
	struct mime_parser *parser = mime_parser_create(NULL);
	char *chunk = xmalloc(IMAP_READ_CHUNK);
	ssize_t n;
	while ((n = read(fd, chunk, IMAP_READ_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = strerror(errno);
			free(chunk);
			mime_parser_destroy(&parser);
			return NULL;
		}
		mime_parser_feed(parser, chunk, (size_t)n);
	}
	free(chunk);
	return mime_parser_finish(&parser);
}

/* The tree the index keeps since delivery, APPEND or the search indexing
 * (fts_index_message); NULL when there is none or it does not validate,
 * and the file is parsed. A FETCH does not write it: one index commit per
 * message would cost more than the parse it saves. */
static struct mime_part *imap_parts_from_index(struct imap_session *sess, uint32_t uid)
{
	void *data;
	size_t size;
	const char *error;
	int got = imap_blob_batch_take(sess, uid, &data, &size);
	if (got == 0 ||
	    (got < 0 && store_msg_cache_get(sess->store, sess->mbox->name, uid, &data, &size,
	                                    &error) <= 0))
		return NULL;
	struct mime_part *root = mime_part_deserialize(data, size, &error);
	free(data);
	if (root == NULL)
		log_warn("imap session=%s user=%s event=cache_invalid uid=%u error=\"%s\"",
		         conn_id(sess->conn), imap_user(sess), uid, error);
	return root;
}

static struct imap_part_cache_entry *imap_cache_find(struct imap_session *sess, uint32_t uid)
{
	for (size_t i = 0; i < IMAP_PART_CACHE; i++) {
		struct imap_part_cache_entry *e = &sess->cache[i];
		if (e->root != NULL && e->uid == uid && e->uidvalidity == sess->mbox->uidvalidity &&
		    strcmp(e->mailbox, sess->mbox->name) == 0)
			return e;
	}
	return NULL;
}

int imap_message_cached_header(struct imap_session *sess, const struct store_msg *msg,
                               struct buf *out)
{
	const struct imap_part_cache_entry *e = imap_cache_find(sess, msg->uid);
	if (e != NULL) {
		if (e->root->cached_header == NULL)
			return 0;
		buf_append(out, e->root->cached_header, e->root->cached_header_len);
		return 1;
	}
	size_t slot;
	const char *header;
	size_t len;
	if (imap_blob_batch_find(sess, msg->uid, &slot) <= 0 ||
	    mime_blob_cached_header(sess->blobs.data[slot], sess->blobs.size[slot], &header,
	                            &len) < 0)
		return 0;
	buf_append(out, header, len);
	return 1;
}

static struct imap_part_cache_entry *imap_cache_lookup(struct imap_session *sess, uint32_t uid)
{
	struct imap_part_cache_entry *oldest = &sess->cache[0];
	for (size_t i = 0; i < IMAP_PART_CACHE; i++) {
		struct imap_part_cache_entry *e = &sess->cache[i];
		if (e->root != NULL && e->uid == uid && e->uidvalidity == sess->mbox->uidvalidity &&
		    strcmp(e->mailbox, sess->mbox->name) == 0) {
			e->used = ++sess->cache_clock;
			return e;
		}
		if (e->used < oldest->used)
			oldest = e;
	}
	imap_cache_entry_free(oldest);
	return oldest;
}

const struct mime_part *imap_message_parts(struct imap_session *sess, const struct store_msg *msg,
                                           enum store_error *err_r, const char **error_r)
{
	struct imap_part_cache_entry *e = imap_cache_lookup(sess, msg->uid);
	if (e->root != NULL)
		return e->root;
	struct mime_part *root = imap_parts_from_index(sess, msg->uid);
	if (root == NULL) {
		int fd = store_msg_open(sess->store, sess->mbox->name, msg->uid, err_r, error_r);
		if (fd < 0)
			return NULL;
		root = imap_parse_fd(fd, error_r);
		close(fd);
		if (root == NULL) {
			*err_r = STORE_ERR_TEMP;
			return NULL;
		}
	}
	e->root = root;
	e->uid = msg->uid;
	e->uidvalidity = sess->mbox->uidvalidity;
	e->mailbox = xstrdup(sess->mbox->name);
	e->used = ++sess->cache_clock;
	return root;
}

int imap_flag_classify(const char *name, unsigned int *flags, const char **keywords,
		       size_t *count)
{
	if (name[0] != '\\') {
		if (!imap_keyword_valid(name))
			return -1;
		keywords[(*count)++] = name;
		return 0;
	}
	if (strcasecmp(name, "\\Recent") == 0)
		return 0;
	unsigned int flag = imap_flag_parse(name);
	if (flag == 0)
		return -1;
	*flags |= flag;
	return 1;
}
