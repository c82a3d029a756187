/* Journaled operations: COPY and MOVE of any number of messages, and the
 * recovery of any journaled operation (also mailbox DELETE and RENAME)
 * after a crash. See "Copy and move" in docs/store.md for the phases and
 * why every crash point leaves each message in exactly one place. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

#define STORE_LINK_RETRIES 5

struct store_xfer_msg {
	uint32_t src_uid;
	unsigned int flags;
	bool in_cur;
	uint64_t size, vsize;
	char *src_filename;
	char *dst_base;
	char *dst_filename; /* set once renamed out of tmp/ (phase 3) */
};

struct store_xfer {
	struct store *store;
	bool move;
	struct store_mailbox src, dst;
	struct store_xfer_msg *msgs;
	size_t count;
	int64_t journal_id;
	bool src_cached; /* the source has cache blobs to copy */
	uint32_t first_uid;
	uint64_t dst_modseq;
};

int store_journal_lock(struct store *store, bool wait, const char **error_r)
{
	char *path = xasprintf("%s/%s", store->root, STORE_REBUILD_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = store_errorf("open(%s) failed: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return -2;
		*error_r = store_errorf("flock failed: %s", strerror(saved));
		return -1;
	}
	return fd;
}

void store_journal_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int store_journal_add(struct store *store, int kind, int64_t src_id, int64_t dst_id,
                      const char *from, const char *to, int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db,
	        "INSERT INTO journal (kind, state, src_id, dst_id, from_name, to_name, created)"
	        " VALUES (?, 0, ?, ?, ?, ?, ?)",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int(stmt, 1, kind);
	sqlite3_bind_int64(stmt, 2, src_id);
	sqlite3_bind_int64(stmt, 3, dst_id);
	sqlite3_bind_text(stmt, 4, from != NULL ? from : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, to != NULL ? to : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)time(NULL));
	int ret = store_db_run(store->db, stmt, error_r);
	store_db_finish(stmt);
	if (ret == 0)
		*id_r = sqlite3_last_insert_rowid(store->db);
	return ret;
}

/* Inside the caller's transaction. */
static int store_journal_delete_rows(struct store *store, int64_t id, const char **error_r)
{
	char *sql = xasprintf("DELETE FROM journal_msgs WHERE journal_id = %lld;"
	                      "DELETE FROM journal WHERE id = %lld",
	                      (long long)id, (long long)id);
	int ret = store_db_exec(store->db, sql, error_r);
	free(sql);
	return ret;
}

int store_journal_remove(struct store *store, int64_t id, const char **error_r)
{
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	if (store_journal_delete_rows(store, id, error_r) < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	return store_db_commit(store->db, error_r);
}

static int store_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Rows of one column of a query with one int64 parameter, as strings. */
static int store_journal_strings(struct store *store, const char *sql, int64_t param,
                                 char ***strs_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db, sql, error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, param);
	char **strs = NULL;
	size_t count = 0, cap = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			strs = xreallocarray(strs, cap, sizeof(*strs));
		}
		strs[count++] = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		for (size_t i = 0; i < count; i++)
			free(strs[i]);
		free(strs);
		return -1;
	}
	*strs_r = strs;
	*count_r = count;
	return 0;
}

int store_journal_bases(struct store *store, int64_t mailbox_id, char ***bases_r, size_t *count_r,
                        const char **error_r)
{
	/* destination files before the commit, source files of a committed
	 * move until they are unlinked */
	static const char sql[] =
	        "SELECT m.dst_base FROM journal_msgs m JOIN journal j ON j.id = m.journal_id"
	        " WHERE j.dst_id = ?1 UNION ALL"
	        " SELECT m.src_base FROM journal_msgs m JOIN journal j ON j.id = m.journal_id"
	        " WHERE j.src_id = ?1 AND j.state = 1";
	if (store_journal_strings(store, sql, mailbox_id, bases_r, count_r, error_r) < 0)
		return -1;
	if (*count_r > 1)
		qsort(*bases_r, *count_r, sizeof(**bases_r), store_cmp_str);
	return 0;
}

static void store_strings_free(char **strs, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(strs[i]);
	free(strs);
}

static int store_fsync_cur_new(const char *dir, const char **error_r)
{
	char *cur = xasprintf("%s/cur", dir);
	char *new = xasprintf("%s/new", dir);
	int ret = store_fsync_dir(cur, error_r) < 0 || store_fsync_dir(new, error_r) < 0 ? -1 : 0;
	free(cur);
	free(new);
	return ret;
}

/* Removes every trace of the destination side of a transfer that did not
 * commit: links still in tmp/, and files already renamed into cur/ or
 * new/ (found by base; their names are not recorded). */
static int store_journal_unlink_dst(const char *dir, char **bases, size_t count,
                                    const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		char *path = xasprintf("%s/tmp/%s", dir, bases[i]);
		unlink(path);
		free(path);
	}
	struct store_file *files;
	size_t nfiles;
	if (store_list_files(dir, &files, &nfiles, error_r) < 0)
		return -1;
	for (size_t i = 0; i < nfiles; i++) {
		const char *base = files[i].fn.base;
		if (bsearch(&base, bases, count, sizeof(*bases), store_cmp_str) != NULL) {
			char *path = xasprintf("%s/%s", dir, files[i].rel);
			unlink(path);
			free(path);
		}
	}
	store_files_free(files, nfiles);
	return store_fsync_cur_new(dir, error_r);
}

static int store_journal_rollback_xfer(struct store *store, int64_t id, int64_t dst_id,
                                       const char **error_r)
{
	struct store_mailbox dst;
	char **bases;
	size_t count;
	int found = store_mailbox_get_id(store, dst_id, &dst, error_r);
	if (found < 0)
		return -1;
	int ret = 0;
	if (found > 0) {
		ret = store_journal_strings(
		        store, "SELECT dst_base FROM journal_msgs WHERE journal_id = ?", id, &bases,
		        &count, error_r);
		if (ret == 0) {
			if (count > 1)
				qsort(bases, count, sizeof(*bases), store_cmp_str);
			ret = store_journal_unlink_dst(dst.dir, bases, count, error_r);
			store_strings_free(bases, count);
		}
	}
	store_mailbox_clear(&dst);
	return ret == 0 ? store_journal_remove(store, id, error_r) : -1;
}

/* A committed move: the destination rows exist, the source rows are gone;
 * only the source files may be left. */
static int store_journal_finish_move(struct store *store, int64_t id, int64_t src_id,
                                     const char **error_r)
{
	struct store_mailbox src;
	char **names;
	size_t count;
	int found = store_mailbox_get_id(store, src_id, &src, error_r);
	if (found < 0)
		return -1;
	int ret = 0;
	if (found > 0) {
		ret = store_journal_strings(
		        store, "SELECT src_filename FROM journal_msgs WHERE journal_id = ?", id,
		        &names, &count, error_r);
		for (size_t i = 0; ret == 0 && i < count; i++) {
			char *path = xasprintf("%s/%s", src.dir, names[i]);
			unlink(path);
			free(path);
		}
		if (ret == 0) {
			store_strings_free(names, count);
			ret = store_fsync_cur_new(src.dir, error_r);
		}
	}
	store_mailbox_clear(&src);
	return ret == 0 ? store_journal_remove(store, id, error_r) : -1;
}

struct store_journal_row {
	int64_t id, src_id, dst_id;
	int kind, state;
	char *from, *to;
};

static int store_journal_recover_one(struct store *store, const struct store_journal_row *j,
                                     const char **error_r)
{
	log_warn("store journal recovery root=%s id=%lld kind=%d state=%d", store->root,
	         (long long)j->id, j->kind, j->state);
	switch (j->kind) {
	case STORE_JOURNAL_COPY:
	case STORE_JOURNAL_MOVE:
		if (j->state == STORE_JOURNAL_PENDING)
			return store_journal_rollback_xfer(store, j->id, j->dst_id, error_r);
		return store_journal_finish_move(store, j->id, j->src_id, error_r);
	case STORE_JOURNAL_DELETE:
		return store_mailbox_finish_delete(store, j->id, j->src_id, j->from, error_r);
	case STORE_JOURNAL_RENAME:
		return store_mailbox_finish_rename(store, j->id, j->from, j->to, error_r);
	default:
		return store_journal_remove(store, j->id, error_r);
	}
}

/* The oldest journal: 1, 0 when there is none. */
static int store_journal_first(struct store *store, struct store_journal_row *j,
                               const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT id, kind, state, src_id, dst_id, from_name,"
	                                      " to_name FROM journal ORDER BY id LIMIT 1",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	int ret = store_db_step_row(store->db, stmt, error_r);
	if (ret == 1) {
		j->id = sqlite3_column_int64(stmt, 0);
		j->kind = sqlite3_column_int(stmt, 1);
		j->state = sqlite3_column_int(stmt, 2);
		j->src_id = sqlite3_column_int64(stmt, 3);
		j->dst_id = sqlite3_column_int64(stmt, 4);
		j->from = xstrdup((const char *)sqlite3_column_text(stmt, 5));
		j->to = xstrdup((const char *)sqlite3_column_text(stmt, 6));
	}
	store_db_finish(stmt);
	return ret;
}

int store_journal_recover(struct store *store, const char **error_r)
{
	struct store_journal_row j = { 0 };
	int ret;
	while ((ret = store_journal_first(store, &j, error_r)) > 0) {
		ret = store_journal_recover_one(store, &j, error_r);
		free(j.from);
		free(j.to);
		if (ret < 0)
			return -1;
	}
	return ret;
}

int store_journal_try_recover(struct store *store, const char **error_r)
{
	int fd = store_journal_lock(store, false, error_r);
	if (fd == -2)
		return 0; /* a live process is running one: it recovered first */
	if (fd < 0)
		return -1;
	int ret = store_journal_recover(store, error_r);
	store_journal_unlock(fd);
	return ret;
}

/* ---- the transfer ---- */

static void store_xfer_free(struct store_xfer *x)
{
	for (size_t i = 0; i < x->count; i++) {
		free(x->msgs[i].src_filename);
		free(x->msgs[i].dst_base);
		free(x->msgs[i].dst_filename);
	}
	free(x->msgs);
	store_mailbox_clear(&x->src);
	store_mailbox_clear(&x->dst);
}

static int store_uid_cmp(const void *a, const void *b)
{
	uint32_t ua = *(const uint32_t *)a, ub = *(const uint32_t *)b;
	return ua < ub ? -1 : ua > ub;
}

/* Ascending, without duplicates. */
static uint32_t *store_uids_sorted(const uint32_t *uids, size_t count, size_t *count_r)
{
	uint32_t *sorted = xreallocarray(NULL, count > 0 ? count : 1, sizeof(*sorted));
	if (count > 0)
		memcpy(sorted, uids, count * sizeof(*sorted));
	qsort(sorted, count, sizeof(*sorted), store_uid_cmp);
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if (n == 0 || sorted[n - 1] != sorted[i])
			sorted[n++] = sorted[i];
	}
	*count_r = n;
	return sorted;
}

/* Reads the source rows of the (sorted) UIDs that exist. */
static int store_xfer_read(struct store_xfer *x, const uint32_t *uids, size_t count,
                           const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(x->store->db,
	                                      "SELECT filename, flags, size, vsize FROM messages"
	                                      " WHERE mailbox_id = ? AND uid = ?",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	x->msgs = xcalloc(count > 0 ? count : 1, sizeof(*x->msgs));
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		sqlite3_bind_int64(stmt, 1, x->src.id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		int step = sqlite3_step(stmt);
		if (step == SQLITE_ROW) {
			struct store_xfer_msg *m = &x->msgs[x->count++];
			const char *filename = (const char *)sqlite3_column_text(stmt, 0);
			m->src_uid = uids[i];
			m->src_filename = xstrdup(filename);
			m->flags = (unsigned int)sqlite3_column_int(stmt, 1);
			m->size = (uint64_t)sqlite3_column_int64(stmt, 2);
			m->vsize = (uint64_t)sqlite3_column_int64(stmt, 3);
			m->in_cur = strncmp(filename, "cur/", 4) == 0 || m->flags != 0;
			m->dst_base = store_new_base();
		} else if (step != SQLITE_DONE) {
			*error_r = store_db_error(x->store->db, "read");
			ret = -1;
		}
		sqlite3_reset(stmt);
	}
	store_db_finish(stmt);
	return ret;
}

static int store_xfer_journal_msgs(struct store_xfer *x, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        x->store->db,
	        "INSERT INTO journal_msgs (journal_id, seq, src_uid, src_base, src_filename,"
	        " dst_base, flags) VALUES (?, ?, ?, ?, ?, ?, ?)",
	        error_r);
	if (stmt == NULL)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < x->count && ret == 0; i++) {
		struct store_xfer_msg *m = &x->msgs[i];
		struct store_fname fn;
		if (store_fname_parse(m->src_filename, &fn) < 0)
			fn.base = xstrdup(m->src_filename);
		sqlite3_bind_int64(stmt, 1, x->journal_id);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)i);
		sqlite3_bind_int64(stmt, 3, m->src_uid);
		sqlite3_bind_text(stmt, 4, fn.base, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 5, m->src_filename, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 6, m->dst_base, -1, SQLITE_STATIC);
		sqlite3_bind_int(stmt, 7, (int)m->flags);
		ret = store_db_run(x->store->db, stmt, error_r);
		store_fname_free(&fn);
	}
	store_db_finish(stmt);
	return ret;
}

/* Both mailboxes by name, under the caller's transaction. */
static int store_xfer_mailboxes(struct store_xfer *x, const char *src, const char *dst,
                                enum store_error *err_r, const char **error_r)
{
	store_mailbox_clear(&x->src);
	store_mailbox_clear(&x->dst);
	int found = store_mailbox_get(x->store, src, &x->src, error_r);
	if (found > 0)
		found = store_mailbox_get(x->store, dst, &x->dst, error_r);
	if (found == 0) {
		*err_r = STORE_ERR_NOT_FOUND;
		*error_r = "no such mailbox";
	}
	return found > 0 ? 0 : -1;
}

/* Phase 1: the plan, durable before any file is touched. */
static int store_xfer_prepare(struct store_xfer *x, const char *src, const char *dst,
                              const uint32_t *uids, size_t count, enum store_error *err_r,
                              const char **error_r)
{
	sqlite3 *db = x->store->db;
	if (store_db_begin(db, error_r) < 0)
		return -1;
	int ret = store_xfer_mailboxes(x, src, dst, err_r, error_r);
	if (ret == 0)
		ret = store_xfer_read(x, uids, count, error_r);
	if (ret == 0 && x->count > 0)
		ret = store_journal_add(x->store, x->move ? STORE_JOURNAL_MOVE : STORE_JOURNAL_COPY,
		                        x->src.id, x->dst.id, NULL, NULL, &x->journal_id, error_r);
	if (ret == 0 && x->count > 0)
		ret = store_xfer_journal_msgs(x, error_r);
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, error_r);
}

/* Phase 2: a hard link of each source file in the destination's tmp/,
 * where sync never looks. A source renamed meanwhile (flags changed by
 * another session) is found again through its row; one expunged
 * meanwhile fails the whole transfer. */
static int store_xfer_link_one(struct store_xfer *x, struct store_xfer_msg *m, const char **error_r)
{
	char *to = xasprintf("%s/tmp/%s", x->dst.dir, m->dst_base);
	int ret = -1;
	for (int i = 0; i < STORE_LINK_RETRIES && ret < 0; i++) {
		char *from = xasprintf("%s/%s", x->src.dir, m->src_filename);
		ret = link(from, to);
		int saved = errno;
		free(from);
		if (ret == 0)
			break;
		if (saved != ENOENT) {
			*error_r = store_errorf("link(%s) failed: %s", to, strerror(saved));
			break;
		}
		char *rel;
		int found =
		        store_message_filename(x->store->db, x->src.id, m->src_uid, &rel, error_r);
		if (found <= 0) {
			if (found == 0)
				*error_r = "a message was expunged during the copy";
			break;
		}
		free(m->src_filename);
		m->src_filename = rel;
	}
	if (ret < 0 && *error_r == NULL)
		*error_r = "a message file kept vanishing during the copy";
	free(to);
	return ret;
}

static int store_xfer_link(struct store_xfer *x, const char **error_r)
{
	for (size_t i = 0; i < x->count; i++) {
		*error_r = NULL;
		if (store_xfer_link_one(x, &x->msgs[i], error_r) < 0)
			return -1;
	}
	return 0;
}

/* COPY adds to the account's usage; MOVE does not. */
static int store_xfer_quota(struct store_xfer *x, enum store_error *err_r, const char **error_r)
{
	struct store *store = x->store;
	uint64_t bytes, messages, add = 0;
	if (x->move || (store->quota_bytes == 0 && store->quota_messages == 0))
		return 0;
	if (store_quota_usage(store, &bytes, &messages, error_r) < 0)
		return -1;
	for (size_t i = 0; i < x->count; i++)
		add += x->msgs[i].size;
	if ((store->quota_bytes != 0 && bytes + add > store->quota_bytes) ||
	    (store->quota_messages != 0 && messages + x->count > store->quota_messages)) {
		*err_r = STORE_ERR_QUOTA;
		*error_r = "mailbox full: quota exceeded";
		return -1;
	}
	return 0;
}

struct store_xfer_stmts {
	sqlite3_stmt *insert, *cache, *src_name, *delete, *journal_name;
};

static int store_xfer_stmts_prepare(struct store_xfer *x, struct store_xfer_stmts *s,
                                    const char **error_r)
{
	sqlite3 *db = x->store->db;
	s->insert = store_db_prepare(
	        db,
	        "INSERT INTO messages (mailbox_id, uid, base, filename, size, vsize, internal_date,"
	        " save_date, flags, keywords, modseq, eol_missing, emailid)"
	        " SELECT ?1, ?2, ?3, ?4, size, vsize, internal_date, ?5, ?6, keywords, ?7,"
	        " eol_missing, emailid FROM messages WHERE mailbox_id = ?8 AND uid = ?9",
	        error_r);
	s->cache = store_db_prepare(db,
	                            "INSERT OR REPLACE INTO msg_cache (mailbox_id, uid, data)"
	                            " SELECT ?1, ?2, data FROM msg_cache"
	                            " WHERE mailbox_id = ?3 AND uid = ?4",
	                            error_r);
	s->src_name = store_db_prepare(
	        db, "SELECT filename FROM messages WHERE mailbox_id = ? AND uid = ?", error_r);
	s->delete = store_db_prepare(db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?",
	                             error_r);
	s->journal_name = store_db_prepare(
	        db, "UPDATE journal_msgs SET src_filename = ? WHERE journal_id = ? AND seq = ?",
	        error_r);
	return s->insert && s->cache && s->src_name && s->delete &&s->journal_name ? 0 : -1;
}

static void store_xfer_stmts_free(struct store_xfer_stmts *s)
{
	store_db_finish(s->insert);
	store_db_finish(s->cache);
	store_db_finish(s->src_name);
	store_db_finish(s->delete);
	store_db_finish(s->journal_name);
}

/* The source row still exists; its current file name is recorded so
 * that phase 4 (or recovery) unlinks the right file. */
static int store_xfer_check_source(struct store_xfer *x, struct store_xfer_stmts *s, size_t i,
                                   const char **error_r)
{
	struct store_xfer_msg *m = &x->msgs[i];
	sqlite3_bind_int64(s->src_name, 1, x->src.id);
	sqlite3_bind_int64(s->src_name, 2, m->src_uid);
	int step = sqlite3_step(s->src_name);
	int ret = 0;
	if (step == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s->src_name, 0);
		if (x->move && strcmp(name, m->src_filename) != 0) {
			free(m->src_filename);
			m->src_filename = xstrdup(name);
			sqlite3_bind_text(s->journal_name, 1, m->src_filename, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s->journal_name, 2, x->journal_id);
			sqlite3_bind_int64(s->journal_name, 3, (sqlite3_int64)i);
			ret = store_db_run(x->store->db, s->journal_name, error_r);
		}
	} else {
		*error_r = step == SQLITE_DONE ? "a message was expunged during the copy"
		                               : store_db_error(x->store->db, "read");
		ret = -1;
	}
	sqlite3_reset(s->src_name);
	return ret;
}

/* Renames the tmp/ link to its final name and inserts the row (and the
 * cache blob). */
static int store_xfer_place(struct store_xfer *x, struct store_xfer_stmts *s, size_t i, time_t now,
                            const char **error_r)
{
	struct store_xfer_msg *m = &x->msgs[i];
	uint32_t uid = x->first_uid + (uint32_t)i;
	char *rel = store_fname_build(m->dst_base, m->in_cur, m->size, m->vsize, uid, x->dst_modseq,
	                              m->flags);
	char *from = xasprintf("%s/tmp/%s", x->dst.dir, m->dst_base);
	char *to = xasprintf("%s/%s", x->dst.dir, rel);
	int ret = rename(from, to);
	if (ret < 0)
		*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
	else
		m->dst_filename = rel;
	free(from);
	free(to);
	if (ret < 0) {
		free(rel);
		return -1;
	}
	sqlite3_stmt *ins = s->insert;
	sqlite3_bind_int64(ins, 1, x->dst.id);
	sqlite3_bind_int64(ins, 2, uid);
	sqlite3_bind_text(ins, 3, m->dst_base, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 5, (sqlite3_int64)now);
	sqlite3_bind_int(ins, 6, (int)m->flags);
	sqlite3_bind_int64(ins, 7, (sqlite3_int64)x->dst_modseq);
	sqlite3_bind_int64(ins, 8, x->src.id);
	sqlite3_bind_int64(ins, 9, m->src_uid);
	if (store_db_run(x->store->db, ins, error_r) < 0)
		return -1;
	if (!x->src_cached)
		return 0;
	sqlite3_bind_int64(s->cache, 1, x->dst.id);
	sqlite3_bind_int64(s->cache, 2, uid);
	sqlite3_bind_int64(s->cache, 3, x->src.id);
	sqlite3_bind_int64(s->cache, 4, m->src_uid);
	return store_db_run(x->store->db, s->cache, error_r);
}

static int store_xfer_delete_sources(struct store_xfer *x, struct store_xfer_stmts *s,
                                     const char **error_r)
{
	for (size_t i = 0; i < x->count; i++) {
		sqlite3_bind_int64(s->delete, 1, x->src.id);
		sqlite3_bind_int64(s->delete, 2, x->msgs[i].src_uid);
		if (store_db_run(x->store->db, s->delete, error_r) < 0)
			return -1;
	}
	return 0;
}

/* The destination learns the keywords its new messages carry. */
static int store_xfer_keywords(struct store_xfer *x, const char **error_r)
{
	char **texts;
	size_t count;
	char *sql = xasprintf("SELECT DISTINCT keywords FROM messages WHERE mailbox_id = ?"
	                      " AND uid >= %u AND keywords <> ''",
	                      x->first_uid);
	int ret = store_journal_strings(x->store, sql, x->dst.id, &texts, &count, error_r);
	free(sql);
	for (size_t i = 0; ret == 0 && i < count; i++)
		ret = store_keywords_register_text(x->store, x->dst.id, texts[i], error_r);
	if (ret == 0)
		store_strings_free(texts, count);
	return ret;
}

static int store_xfer_has_cache(struct store_xfer *x, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        x->store->db, "SELECT EXISTS (SELECT 1 FROM msg_cache WHERE mailbox_id = ?)",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, x->src.id);
	int ret = sqlite3_step(stmt) == SQLITE_ROW ? 0 : -1;
	if (ret == 0)
		x->src_cached = sqlite3_column_int(stmt, 0) != 0;
	else
		*error_r = store_db_error(x->store->db, "read");
	store_db_finish(stmt);
	return ret;
}

/* Phase 3 body, under the write lock. */
static int store_xfer_commit_locked(struct store_xfer *x, enum store_error *err_r,
                                    const char **error_r)
{
	struct store_xfer_stmts s = {0};
	time_t now = time(NULL);
	if ((uint64_t)x->dst.uidnext + x->count >= UINT32_MAX) {
		*error_r = "mailbox UID space exhausted";
		return -1;
	}
	x->first_uid = x->dst.uidnext;
	x->dst_modseq = x->dst.highestmodseq + 1;
	int ret = store_xfer_quota(x, err_r, error_r);
	if (ret == 0)
		ret = store_xfer_stmts_prepare(x, &s, error_r);
	if (ret == 0)
		ret = store_xfer_has_cache(x, error_r);
	for (size_t i = 0; ret == 0 && i < x->count; i++) {
		ret = store_xfer_check_source(x, &s, i, error_r);
		if (ret == 0)
			ret = store_xfer_place(x, &s, i, now, error_r);
	}
	if (ret == 0)
		ret = store_fsync_cur_new(x->dst.dir, error_r);
	if (ret == 0)
		ret = store_xfer_keywords(x, error_r);
	bool other = x->src.id != x->dst.id;
	struct store_state state = {x->src.uidvalidity, x->src.uidnext, x->src.highestmodseq + 1};
	/* as for expunge: the state file first, so a rebuild never hands these
	 * UIDs out again; the rows go while the counters are old, so the
	 * expunge log gets HIGHESTMODSEQ + 1 */
	if (ret == 0 && x->move && other)
		ret = store_state_write(x->src.dir, &state, error_r);
	if (ret == 0 && x->move)
		ret = store_xfer_delete_sources(x, &s, error_r);
	if (ret == 0 && x->move && other)
		ret = store_mailbox_set_counters(x->store->db, x->src.id, x->src.uidnext,
		                                 x->src.highestmodseq + 1, error_r);
	store_xfer_stmts_free(&s);
	if (ret == 0)
		ret = store_mailbox_set_counters(x->store->db, x->dst.id,
		                                 x->first_uid + (uint32_t)x->count, x->dst_modseq,
		                                 error_r);
	return ret;
}

/* Phase 3: one transaction makes the destination rows (and, for MOVE,
 * the removal of the source rows) visible and marks the journal. */
static int store_xfer_commit(struct store_xfer *x, const char *src, const char *dst,
                             enum store_error *err_r, const char **error_r)
{
	sqlite3 *db = x->store->db;
	if (store_db_begin(db, error_r) < 0)
		return -1;
	/* fresh counters: other sessions may have saved meanwhile, and the
	 * new UIDs must be above theirs */
	int ret = store_xfer_mailboxes(x, src, dst, err_r, error_r);
	if (ret == 0)
		ret = store_xfer_commit_locked(x, err_r, error_r);
	if (ret == 0) {
		char *sql = x->move ? xasprintf("UPDATE journal SET state = 1 WHERE id = %lld",
		                                (long long)x->journal_id)
		                    : NULL;
		ret = x->move ? store_db_exec(db, sql, error_r)
		              : store_journal_delete_rows(x->store, x->journal_id, error_r);
		free(sql);
	}
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, error_r);
}

/* Phase 4 (MOVE): the source files go, then the journal. */
static int store_xfer_cleanup(struct store_xfer *x, const char **error_r)
{
	for (size_t i = 0; i < x->count; i++) {
		char *path = xasprintf("%s/%s", x->src.dir, x->msgs[i].src_filename);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("store move unlink path=%s error=%s", path, strerror(errno));
		free(path);
	}
	if (store_fsync_cur_new(x->src.dir, error_r) < 0)
		return -1;
	return store_journal_remove(x->store, x->journal_id, error_r);
}

/* A failed transfer: nothing of it may stay. */
static void store_xfer_abort(struct store_xfer *x)
{
	const char *error;
	if (store_journal_rollback_xfer(x->store, x->journal_id, x->dst.id, &error) < 0)
		log_error("store copy rollback root=%s journal=%lld error=%s", x->store->root,
		          (long long)x->journal_id, error);
}

static void store_xfer_result(const struct store_xfer *x, const uint32_t *uids, size_t count,
                              uint32_t **dst_uids_r)
{
	uint32_t *map = xcalloc(count > 0 ? count : 1, sizeof(*map));
	for (size_t i = 0; i < count; i++) {
		size_t lo = 0, hi = x->count;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (x->msgs[mid].src_uid < uids[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < x->count && x->msgs[lo].src_uid == uids[i])
			map[i] = x->first_uid + (uint32_t)lo;
	}
	*dst_uids_r = map;
}

static int store_xfer_run(struct store_xfer *x, const char *src, const char *dst,
                          const uint32_t *sorted, size_t sorted_count, enum store_error *err_r,
                          const char **error_r)
{
	if (store_xfer_prepare(x, src, dst, sorted, sorted_count, err_r, error_r) < 0)
		return -1;
	if (x->count == 0)
		return 0;
	*err_r = STORE_ERR_TEMP;
	if (store_xfer_link(x, error_r) < 0 || store_xfer_commit(x, src, dst, err_r, error_r) < 0) {
		store_xfer_abort(x);
		return -1;
	}
	const char *error;
	if (x->move && store_xfer_cleanup(x, &error) < 0)
		log_warn("store move cleanup root=%s error=%s (recovery finishes it)",
		         x->store->root, error);
	return 0;
}

int store_xfer_locked(struct store *store, bool move, const char *src, const uint32_t *uids,
                      size_t count, const char *dst, uint32_t **dst_uids_r, enum store_error *err_r,
                      const char **error_r)
{
	struct store_xfer x = {.store = store, .move = move};
	size_t sorted_count;
	uint32_t *sorted = store_uids_sorted(uids, count, &sorted_count);
	*err_r = STORE_ERR_TEMP;
	store_db_full_sync(store->db, true);
	int ret = store_xfer_run(&x, src, dst, sorted, sorted_count, err_r, error_r);
	store_db_full_sync(store->db, false);
	if (ret == 0) {
		store_xfer_result(&x, uids, count, dst_uids_r);
		*err_r = STORE_OK;
		log_info("store %s root=%s from=%s to=%s count=%zu", move ? "move" : "copy",
		         store->root, src, dst, x.count);
	}
	free(sorted);
	store_xfer_free(&x);
	return ret;
}

static int store_xfer_api(struct store *store, bool move, const char *src, const uint32_t *uids,
                          size_t count, const char *dst, uint32_t **dst_uids_r,
                          enum store_error *err_r, const char **error_r)
{
	struct store_mailbox s, d;
	if (store_mailbox_lookup(store, src, true, &s, err_r, error_r) < 0)
		return -1;
	if (store_mailbox_lookup(store, dst, false, &d, err_r, error_r) < 0) {
		store_mailbox_clear(&s);
		return -1;
	}
	*err_r = STORE_ERR_TEMP;
	int fd = store_journal_lock(store, true, error_r);
	int ret = fd < 0 ? -1 : store_journal_recover(store, error_r);
	if (ret == 0)
		ret = store_xfer_locked(store, move, s.name, uids, count, d.name, dst_uids_r, err_r,
		                        error_r);
	store_journal_unlock(fd);
	store_mailbox_clear(&s);
	store_mailbox_clear(&d);
	return ret;
}

int store_copy(struct store *store, const char *src, const uint32_t *uids, size_t count,
               const char *dst, uint32_t **dst_uids_r, enum store_error *err_r,
               const char **error_r)
{
	return store_xfer_api(store, false, src, uids, count, dst, dst_uids_r, err_r, error_r);
}

int store_move(struct store *store, const char *src, const uint32_t *uids, size_t count,
               const char *dst, uint32_t **dst_uids_r, enum store_error *err_r,
               const char **error_r)
{
	return store_xfer_api(store, true, src, uids, count, dst, dst_uids_r, err_r, error_r);
}
