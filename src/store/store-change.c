/* CONDSTORE/QRESYNC support: flag and keyword changes (with UNCHANGEDSINCE),
 * the cheap UID/flags/MODSEQ listing, VANISHED from the expunge log, and
 * the per-message cache blob. */
#include "store/store-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

bool store_keyword_valid(const char *kw)
{
	size_t len = strlen(kw);
	if (len == 0 || len > STORE_KEYWORD_MAX_LEN)
		return false;
	for (const unsigned char *p = (const unsigned char *)kw; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return false;
	}
	return true;
}

/* The mailbox's keyword list, kept in memory during one change. */
struct store_kwlist {
	char **names;
	size_t count;
};

static void store_kwlist_free(struct store_kwlist *kw)
{
	store_names_free(&kw->names, kw->count);
}

static int store_kwlist_load(struct store *store, int64_t mailbox_id, struct store_kwlist *kw,
                             const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT name FROM mailbox_keywords WHERE mailbox_id = ? ORDER BY idx",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	kw->names = xcalloc(1, sizeof(*kw->names));
	kw->count = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		kw->names = xreallocarray(kw->names, kw->count + 2, sizeof(*kw->names));
		kw->names[kw->count++] = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		kw->names[kw->count] = NULL;
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		store_kwlist_free(kw);
		return -1;
	}
	return 0;
}

static const char *store_kwlist_find(const struct store_kwlist *kw, const char *name, size_t len)
{
	for (size_t i = 0; i < kw->count; i++) {
		if (strlen(kw->names[i]) == len && strncasecmp(kw->names[i], name, len) == 0)
			return kw->names[i];
	}
	return NULL;
}

/* The mailbox's spelling of name, registering it when new (refused past
 * STORE_KEYWORDS_MAX when limited). */
static const char *store_kwlist_add(struct store *store, int64_t mailbox_id,
                                    struct store_kwlist *kw, const char *name, size_t len,
                                    bool limited, enum store_error *err_r, const char **error_r)
{
	const char *found = store_kwlist_find(kw, name, len);
	if (found != NULL)
		return found;
	if (limited && kw->count >= STORE_KEYWORDS_MAX) {
		*err_r = STORE_ERR_LIMIT;
		*error_r = "too many keywords in this mailbox";
		return NULL;
	}
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "INSERT INTO mailbox_keywords (mailbox_id, idx, name) VALUES (?, ?, ?)",
	        error_r);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)kw->count);
	sqlite3_bind_text(stmt, 3, name, (int)len, SQLITE_STATIC);
	int ret = store_db_run(store->db, stmt, error_r);
	store_db_finish(stmt);
	if (ret < 0)
		return NULL;
	kw->names = xreallocarray(kw->names, kw->count + 2, sizeof(*kw->names));
	kw->names[kw->count++] = xstrndup(name, len);
	kw->names[kw->count] = NULL;
	return kw->names[kw->count - 1];
}

int store_keywords_register_text(struct store *store, int64_t mailbox_id, const char *text,
                                 const char **error_r)
{
	struct store_kwlist kw;
	enum store_error err;
	if (store_kwlist_load(store, mailbox_id, &kw, error_r) < 0)
		return -1;
	int ret = 0;
	for (const char *p = text; *p != '\0' && ret == 0;) {
		size_t len = strcspn(p, " ");
		if (len > 0 &&
		    store_kwlist_add(store, mailbox_id, &kw, p, len, false, &err, error_r) == NULL)
			ret = -1;
		p += len;
		p += strspn(p, " ");
	}
	store_kwlist_free(&kw);
	return ret;
}

/* The change's keywords in the mailbox's spelling (NULL entries for
 * removals of unknown keywords, which change nothing). */
static int store_change_resolve(struct store *store, int64_t mailbox_id,
                                const struct store_change *change, const char ***resolved_r,
                                struct store_kwlist *kw, enum store_error *err_r,
                                const char **error_r)
{
	const char **resolved = xcalloc(change->keyword_count + 1, sizeof(*resolved));
	*resolved_r = resolved;
	for (size_t i = 0; i < change->keyword_count; i++) {
		const char *name = change->keywords[i];
		if (!store_keyword_valid(name)) {
			*err_r = STORE_ERR_INVALID;
			*error_r = "invalid keyword";
			return -1;
		}
		if (change->mode < 0) {
			resolved[i] = store_kwlist_find(kw, name, strlen(name));
			continue;
		}
		resolved[i] = store_kwlist_add(store, mailbox_id, kw, name, strlen(name), true,
		                               err_r, error_r);
		if (resolved[i] == NULL)
			return -1;
	}
	return 0;
}

static bool store_kw_in(const char *text, const char *kw)
{
	size_t len = strlen(kw);
	for (const char *p = text; *p != '\0';) {
		size_t n = strcspn(p, " ");
		if (n == len && strncasecmp(p, kw, len) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

static void store_kw_append(struct buf *b, const char *kw, size_t len)
{
	if (b->len > 0)
		buf_append_char(b, ' ');
	buf_append(b, kw, len);
}

/* The message's new keyword text under the change. */
static char *store_kw_apply(const char *old, int mode, const char **kws, size_t count)
{
	struct buf b = BUF_INIT(0);
	if (mode != 0) {
		for (const char *p = old; *p != '\0';) {
			size_t n = strcspn(p, " ");
			bool drop = false;
			for (size_t i = 0; mode < 0 && i < count && !drop; i++)
				drop = kws[i] != NULL && strlen(kws[i]) == n &&
				       strncasecmp(kws[i], p, n) == 0;
			if (n > 0 && !drop)
				store_kw_append(&b, p, n);
			p += n;
			p += strspn(p, " ");
		}
	}
	for (size_t i = 0; mode >= 0 && i < count; i++) {
		if (kws[i] != NULL && !store_kw_in(buf_str(&b), kws[i]))
			store_kw_append(&b, kws[i], strlen(kws[i]));
	}
	return buf_steal(&b);
}

static unsigned int store_flags_mode(unsigned int old, int mode, unsigned int flags)
{
	if (mode > 0)
		return old | flags;
	if (mode < 0)
		return old & ~flags;
	return flags;
}

struct store_change_run {
	struct store *store;
	struct store_mailbox *mbox;
	const struct store_change *change;
	const char **kws;
	sqlite3_stmt *get, *set;
	uint64_t modseq;
	bool changed;
	uint32_t *modified;
	size_t modified_count;
};

/* The file's name carries the flags and M=, so a rebuild never brings a
 * MODSEQ back below one a client saw. */
static int store_change_rename(struct store_change_run *run, uint32_t uid, sqlite3_stmt *get,
                               unsigned int flags, char **rel_r, const char **error_r)
{
	const char *base = (const char *)sqlite3_column_text(get, 0);
	const char *filename = (const char *)sqlite3_column_text(get, 1);
	uint64_t size = (uint64_t)sqlite3_column_int64(get, 2);
	uint64_t vsize = (uint64_t)sqlite3_column_int64(get, 3);
	char *rel = store_fname_build(base, true, size, vsize, uid, run->modseq, flags);
	char *from = xasprintf("%s/%s", run->mbox->dir, filename);
	char *to = xasprintf("%s/%s", run->mbox->dir, rel);
	int ret = rename(from, to);
	if (ret < 0) {
		*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
		free(rel);
	} else {
		*rel_r = rel;
	}
	free(from);
	free(to);
	return ret;
}

static int store_change_write(struct store_change_run *run, uint32_t uid, const char *rel,
                              unsigned int flags, const char *kwtext, const char **error_r)
{
	sqlite3_stmt *set = run->set;
	sqlite3_bind_text(set, 1, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int(set, 2, (int)flags);
	sqlite3_bind_text(set, 3, kwtext, -1, SQLITE_STATIC);
	sqlite3_bind_int64(set, 4, (sqlite3_int64)run->modseq);
	sqlite3_bind_int64(set, 5, run->mbox->id);
	sqlite3_bind_int64(set, 6, uid);
	if (store_db_run(run->store->db, set, error_r) < 0)
		return -1;
	run->changed = true;
	return 0;
}

/* get's row is current; decides and applies the change for one UID. */
static int store_change_row(struct store_change_run *run, uint32_t uid, const char **error_r)
{
	const struct store_change *c = run->change;
	sqlite3_stmt *get = run->get;
	unsigned int old_flags = (unsigned int)sqlite3_column_int(get, 4);
	const char *old_kw = (const char *)sqlite3_column_text(get, 5);
	uint64_t modseq = (uint64_t)sqlite3_column_int64(get, 6);
	if (c->conditional && modseq > c->unchangedsince) {
		run->modified = xreallocarray(run->modified, run->modified_count + 1,
		                              sizeof(*run->modified));
		run->modified[run->modified_count++] = uid;
		return 0;
	}
	unsigned int flags =
	        c->change_flags ? store_flags_mode(old_flags, c->mode, c->flags) : old_flags;
	char *kwtext = c->change_keywords
	                       ? store_kw_apply(old_kw, c->mode, run->kws, c->keyword_count)
	                       : xstrdup(old_kw);
	int ret = 0;
	if (flags != old_flags || strcmp(kwtext, old_kw) != 0) {
		char *rel = NULL;
		ret = store_change_rename(run, uid, get, flags, &rel, error_r);
		if (ret == 0)
			ret = store_change_write(run, uid, rel, flags, kwtext, error_r);
		free(rel);
	}
	free(kwtext);
	return ret;
}

static int store_change_one(struct store_change_run *run, uint32_t uid, const char **error_r)
{
	sqlite3_bind_int64(run->get, 1, run->mbox->id);
	sqlite3_bind_int64(run->get, 2, uid);
	int step = sqlite3_step(run->get);
	int ret = 0;
	if (step == SQLITE_ROW)
		ret = store_change_row(run, uid, error_r);
	else if (step != SQLITE_DONE) {
		*error_r = store_db_error(run->store->db, "read");
		ret = -1;
	}
	sqlite3_reset(run->get);
	return ret;
}

static int store_change_all(struct store_change_run *run, const uint32_t *uids, size_t count,
                            const char **error_r)
{
	sqlite3 *db = run->store->db;
	run->get = store_db_prepare(db,
	                            "SELECT base, filename, size, vsize, flags, keywords, modseq"
	                            " FROM messages WHERE mailbox_id = ? AND uid = ?",
	                            error_r);
	run->set = store_db_prepare(db,
	                            "UPDATE messages SET filename = ?, flags = ?, keywords = ?,"
	                            " modseq = ? WHERE mailbox_id = ? AND uid = ?",
	                            error_r);
	int ret = run->get != NULL && run->set != NULL ? 0 : -1;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_change_one(run, uids[i], error_r);
	store_db_finish(run->get);
	store_db_finish(run->set);
	return ret;
}

static int store_change_locked(struct store_change_run *run, const uint32_t *uids, size_t count,
                               enum store_error *err_r, const char **error_r)
{
	struct store_kwlist kw = {0};
	const char **kws = NULL;
	int ret = 0;
	if (run->change->change_keywords) {
		ret = store_kwlist_load(run->store, run->mbox->id, &kw, error_r);
		if (ret == 0)
			ret = store_change_resolve(run->store, run->mbox->id, run->change, &kws,
			                           &kw, err_r, error_r);
	}
	run->kws = kws;
	if (ret == 0) {
		*err_r = STORE_ERR_TEMP;
		ret = store_change_all(run, uids, count, error_r);
	}
	free(kws);
	if (run->change->change_keywords && kw.names != NULL)
		store_kwlist_free(&kw);
	return ret;
}

int store_msgs_change(struct store *store, const char *mailbox, const uint32_t *uids, size_t count,
                      const struct store_change *change, uint32_t **modified_r,
                      size_t *modified_count_r, enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	/* first without the lock, to tell a bad or unknown name apart */
	if (store_mailbox_lookup(store, mailbox, false, &mbox, err_r, error_r) < 0)
		return -1;
	store_mailbox_clear(&mbox);
	*err_r = STORE_ERR_TEMP;
	if (store_mailbox_begin(store, mailbox, &mbox, error_r) < 0)
		return -1;
	struct store_change_run run = {
	        .store = store, .mbox = &mbox, .change = change, .modseq = mbox.highestmodseq + 1};
	int ret = store_change_locked(&run, uids, count, err_r, error_r);
	if (ret < 0 && !run.changed) {
		store_db_rollback(store->db);
		store_mailbox_clear(&mbox);
		free(run.modified);
		return -1;
	}
	/* files already renamed keep their new rows even if a later one failed */
	if (run.changed)
		mbox.highestmodseq = run.modseq;
	ret = store_mailbox_end(store, &mbox, ret, error_r);
	if (ret == 0)
		*err_r = STORE_OK;
	if (modified_r != NULL && modified_count_r != NULL) {
		*modified_r = run.modified;
		*modified_count_r = run.modified_count;
	} else {
		free(run.modified);
	}
	return ret;
}

int store_keywords_update(struct store *store, const char *mailbox, const uint32_t *uids,
                          size_t count, int mode, const char *const *keywords, size_t keyword_count,
                          enum store_error *err_r, const char **error_r)
{
	struct store_change change = {
	        .mode = mode,
	        .change_keywords = true,
	        .keywords = keywords,
	        .keyword_count = keyword_count,
	};
	return store_msgs_change(store, mailbox, uids, count, &change, NULL, NULL, err_r, error_r);
}

int store_flags_update_unchanged_since(struct store *store, const char *mailbox,
                                       const uint32_t *uids, size_t count, int mode,
                                       unsigned int flags, uint64_t unchangedsince,
                                       uint32_t **failed_r, size_t *failed_count_r,
                                       const char **error_r)
{
	struct store_change change = {
	        .mode = mode,
	        .change_flags = true,
	        .flags = flags,
	        .conditional = true,
	        .unchangedsince = unchangedsince,
	};
	enum store_error err;
	*failed_r = NULL;
	*failed_count_r = 0;
	return store_msgs_change(store, mailbox, uids, count, &change, failed_r, failed_count_r,
	                         &err, error_r);
}

/* ---- listing changes ---- */

static const char store_no_keywords[] = "";

static int store_flags_select(struct store *store, int64_t mailbox_id, uint64_t changedsince,
                              struct store_msg_flags **msgs_r, size_t *count_r,
                              const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT uid, flags, modseq, keywords FROM messages"
	                                      " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)changedsince);
	struct store_msg_flags *msgs = NULL;
	size_t count = 0, cap = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		struct store_msg_flags *m = &msgs[count++];
		const char *kw = (const char *)sqlite3_column_text(stmt, 3);
		m->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		m->flags = (unsigned int)sqlite3_column_int(stmt, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
		/* most messages have none: no allocation for them */
		m->keywords = kw[0] == '\0' ? store_no_keywords : xstrdup(kw);
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		store_msg_flags_free(&msgs, count);
		return -1;
	}
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

void store_msg_flags_free(struct store_msg_flags **msgs, size_t count)
{
	if (*msgs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		if ((*msgs)[i].keywords != store_no_keywords)
			free((char *)(*msgs)[i].keywords);
	}
	xfree(*msgs);
}

int store_msg_flags_list(struct store *store, const char *mailbox, uint64_t changedsince,
                         struct store_msg_flags **msgs_r, size_t *count_r, enum store_error *err_r,
                         const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, true, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = store_flags_select(store, mbox.id, changedsince, msgs_r, count_r, error_r);
	store_mailbox_clear(&mbox);
	*err_r = ret == 0 ? STORE_OK : STORE_ERR_TEMP;
	return ret;
}

struct store_ranges {
	struct store_uid_range *r;
	size_t count, cap;
};

static void store_ranges_add(struct store_ranges *rs, uint32_t first, uint32_t last)
{
	if (rs->count > 0 && rs->r[rs->count - 1].last + 1 == first) {
		rs->r[rs->count - 1].last = last;
		return;
	}
	if (rs->count == rs->cap) {
		rs->cap = rs->cap == 0 ? 16 : rs->cap * 2;
		rs->r = xreallocarray(rs->r, rs->cap, sizeof(*rs->r));
	}
	rs->r[rs->count].first = first;
	rs->r[rs->count++].last = last;
}

/* exact: UIDs of the log after modseq; else the gaps below uidnext. */
static int store_vanished_select(struct store *store, const struct store_mailbox *mbox,
                                 uint64_t modseq, bool exact, struct store_ranges *rs,
                                 const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db,
	        exact ? "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"
	              : "SELECT uid FROM messages WHERE mailbox_id = ? AND ? >= 0 ORDER BY uid",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mbox->id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)modseq);
	uint32_t next = 1;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		if (exact)
			store_ranges_add(rs, uid, uid);
		else if (uid > next)
			store_ranges_add(rs, next, uid - 1);
		next = uid + 1;
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		return -1;
	}
	if (!exact && mbox->uidnext > next)
		store_ranges_add(rs, next, mbox->uidnext - 1);
	return 0;
}

static int store_vanished_min(struct store *store, int64_t id, uint64_t *min_r,
                              const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT vanished_min_modseq FROM mailboxes WHERE id = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int ret = sqlite3_step(stmt) == SQLITE_ROW ? 0 : -1;
	if (ret == 0)
		*min_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	else
		*error_r = store_db_error(store->db, "read");
	store_db_finish(stmt);
	return ret;
}

static int store_vanished_mbox(struct store *store, const struct store_mailbox *mbox,
                               uint64_t modseq, struct store_uid_range **ranges_r, size_t *count_r,
                               bool *exact_r, const char **error_r)
{
	struct store_ranges rs = {0};
	uint64_t min;
	if (store_vanished_min(store, mbox->id, &min, error_r) < 0)
		return -1;
	bool exact = modseq >= min;
	if (store_vanished_select(store, mbox, modseq, exact, &rs, error_r) < 0) {
		free(rs.r);
		return -1;
	}
	*ranges_r = rs.r;
	*count_r = rs.count;
	if (exact_r != NULL)
		*exact_r = exact;
	return 0;
}

int store_vanished_since(struct store *store, const char *mailbox, uint64_t modseq,
                         struct store_uid_range **ranges_r, size_t *count_r, bool *exact_r,
                         enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, true, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = store_vanished_mbox(store, &mbox, modseq, ranges_r, count_r, exact_r, error_r);
	store_mailbox_clear(&mbox);
	*err_r = ret == 0 ? STORE_OK : STORE_ERR_TEMP;
	return ret;
}

/* What changed since a MODSEQ, read in one transaction so that the
 * changed rows and the vanished UIDs describe the same moment. select
 * reads the changed rows (and frees them itself when it fails). */
struct store_since {
	uint64_t modseq;
	int (*select)(struct store *store, const struct store_mailbox *now,
		      struct store_since *since, const char **error_r);
	void (*free_rows)(struct store_since *since);
	struct store_uid_range **vanished_r;
	size_t *vanished_count_r;
	bool *exact_r;
	void *rows;
	size_t count;
	uint64_t highestmodseq;
};

static int store_since_read(struct store *store, const char *mailbox, struct store_since *since,
                            enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox, now;
	if (store_mailbox_lookup(store, mailbox, true, &mbox, err_r, error_r) < 0)
		return -1;
	*err_r = STORE_ERR_TEMP;
	int ret = store_db_exec(store->db, "BEGIN", error_r);
	if (ret == 0 && store_mailbox_get(store, mbox.name, &now, error_r) <= 0) {
		ret = -1;
		*err_r = STORE_ERR_NOT_FOUND;
		*error_r = "no such mailbox";
	} else if (ret == 0) {
		since->highestmodseq = now.highestmodseq;
		ret = since->select(store, &now, since, error_r);
		if (ret == 0 && store_vanished_mbox(store, &now, since->modseq, since->vanished_r,
		                                    since->vanished_count_r, since->exact_r,
		                                    error_r) < 0) {
			since->free_rows(since);
			ret = -1;
		}
	}
	store_mailbox_clear(&now);
	store_mailbox_clear(&mbox);
	store_db_rollback(store->db);
	if (ret == 0)
		*err_r = STORE_OK;
	return ret;
}

static int store_since_flags(struct store *store, const struct store_mailbox *now,
                             struct store_since *since, const char **error_r)
{
	struct store_msg_flags *rows = NULL;
	int ret = store_flags_select(store, now->id, since->modseq, &rows, &since->count, error_r);
	since->rows = rows;
	return ret;
}

static void store_since_flags_free(struct store_since *since)
{
	struct store_msg_flags *rows = since->rows;
	store_msg_flags_free(&rows, since->count);
	since->rows = NULL;
}

int store_changes_since(struct store *store, const char *mailbox, uint64_t modseq,
                        struct store_msg_flags **changed_r, size_t *changed_count_r,
                        struct store_uid_range **vanished_r, size_t *vanished_count_r,
                        enum store_error *err_r, const char **error_r)
{
	struct store_since since = {.modseq = modseq,
	                            .select = store_since_flags,
	                            .free_rows = store_since_flags_free,
	                            .vanished_r = vanished_r,
	                            .vanished_count_r = vanished_count_r};
	int ret = store_since_read(store, mailbox, &since, err_r, error_r);
	*changed_r = since.rows;
	*changed_count_r = since.count;
	return ret;
}

static int store_since_msgs(struct store *store, const struct store_mailbox *now,
                            struct store_since *since, const char **error_r)
{
	struct store_msg *rows = NULL;
	int ret = store_msg_select(store, now->id, since->modseq, &rows, &since->count, error_r);
	since->rows = rows;
	return ret;
}

static void store_since_msgs_free(struct store_since *since)
{
	struct store_msg *rows = since->rows;
	store_msg_list_free(&rows, since->count);
	since->rows = NULL;
}

int store_msg_list_since(struct store *store, const char *mailbox, uint64_t modseq,
                         struct store_msg **changed_r, size_t *changed_count_r,
                         struct store_uid_range **vanished_r, size_t *vanished_count_r,
                         bool *exact_r, uint64_t *highestmodseq_r, enum store_error *err_r,
                         const char **error_r)
{
	struct store_since since = {.modseq = modseq,
	                            .select = store_since_msgs,
	                            .free_rows = store_since_msgs_free,
	                            .vanished_r = vanished_r,
	                            .vanished_count_r = vanished_count_r,
	                            .exact_r = exact_r};
	int ret = store_since_read(store, mailbox, &since, err_r, error_r);
	*changed_r = since.rows;
	*changed_count_r = since.count;
	*highestmodseq_r = since.highestmodseq;
	return ret;
}

/* ---- cache blob ---- */

int store_msg_cache_get(struct store *store, const char *mailbox, uint32_t uid, void **data_r,
                        size_t *size_r, const char **error_r)
{
	struct store_mailbox mbox;
	enum store_error err;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, &err, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT data FROM msg_cache WHERE mailbox_id = ? AND uid = ?", error_r);
	int ret = -1;
	if (stmt != NULL) {
		sqlite3_bind_int64(stmt, 1, mbox.id);
		sqlite3_bind_int64(stmt, 2, uid);
		int step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			size_t size = (size_t)sqlite3_column_bytes(stmt, 0);
			void *data = xmalloc(size + 1);
			if (size > 0)
				memcpy(data, sqlite3_column_blob(stmt, 0), size);
			*data_r = data;
			*size_r = size;
			ret = 1;
		} else if (step == SQLITE_DONE) {
			ret = 0;
		} else {
			*error_r = store_db_error(store->db, "read");
		}
		store_db_finish(stmt);
	}
	store_mailbox_clear(&mbox);
	return ret;
}

int store_msg_cache_get_range(struct store *store, const char *mailbox, uint32_t first,
                              uint32_t last, store_msg_cache_cb *cb, void *context,
                              const char **error_r)
{
	struct store_mailbox mbox;
	enum store_error err;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, &err, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT uid, data FROM msg_cache WHERE mailbox_id = ?"
	                                      " AND uid BETWEEN ? AND ? ORDER BY uid",
	                                      error_r);
	int ret = -1;
	if (stmt != NULL) {
		sqlite3_bind_int64(stmt, 1, mbox.id);
		sqlite3_bind_int64(stmt, 2, first);
		sqlite3_bind_int64(stmt, 3, last);
		int step;
		while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
			cb(context, (uint32_t)sqlite3_column_int64(stmt, 0),
			   sqlite3_column_blob(stmt, 1), (size_t)sqlite3_column_bytes(stmt, 1));
		if (step == SQLITE_DONE)
			ret = 0;
		else
			*error_r = store_db_error(store->db, "read");
		store_db_finish(stmt);
	}
	store_mailbox_clear(&mbox);
	return ret;
}

int store_msg_cache_set(struct store *store, const char *mailbox, uint32_t uid, const void *data,
                        size_t size, const char **error_r)
{
	struct store_mailbox mbox;
	enum store_error err;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, &err, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db,
	        "INSERT OR REPLACE INTO msg_cache (mailbox_id, uid, data) SELECT ?1, ?2, ?3"
	        " WHERE EXISTS (SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2)",
	        error_r);
	int ret = -1;
	if (stmt != NULL) {
		sqlite3_bind_int64(stmt, 1, mbox.id);
		sqlite3_bind_int64(stmt, 2, uid);
		sqlite3_bind_blob64(stmt, 3, size > 0 ? data : "", size, SQLITE_STATIC);
		ret = store_db_run(store->db, stmt, error_r);
		store_db_finish(stmt);
	}
	store_mailbox_clear(&mbox);
	return ret;
}
