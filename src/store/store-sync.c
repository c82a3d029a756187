/* Bringing the index in step with a folder whose cur/ or new/ changed
 * behind its back: files delivered by other tools or left by a crash
 * between rename and commit are adopted, renamed files are followed,
 * vanished files are dropped. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* A directory mtime this close to now may still change within the same
 * timestamp tick: do not trust it to mean "nothing new" later. File systems
 * with nanosecond timestamps tick with the kernel's coarse clock (a few
 * milliseconds); one that keeps whole seconds (tv_nsec always 0) gets the
 * long wait. Trusting a fresh mtime sooner matters: every flag change
 * renames a file, and each sync within the window reads the whole folder. */
#define STORE_MTIME_SETTLE_NS 100000000LL
#define STORE_MTIME_SETTLE_COARSE_NS 2000000000LL

struct store_sync_row {
	uint32_t uid;
	char *base;
	char *filename;
	unsigned int flags;
};

struct store_sync {
	struct store *store;
	struct store_mailbox *mbox;
	struct store_sync_row *rows;
	size_t row_count;
	char **skip; /* sorted bases a journal names: never adopted */
	size_t skip_count;
	bool changed;
};

static int store_sync_mtimes(const struct store_mailbox *mbox, int64_t *new_r, int64_t *cur_r)
{
	if (store_dir_mtime_ns(mbox->dir, "new", new_r) < 0 ||
	    store_dir_mtime_ns(mbox->dir, "cur", cur_r) < 0)
		return -1;
	return 0;
}

static bool store_mtime_is_settled(int64_t mtime_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	int64_t settle = mtime_ns % 1000000000 == 0 ? STORE_MTIME_SETTLE_COARSE_NS
	                                            : STORE_MTIME_SETTLE_NS;
	return now - mtime_ns >= settle;
}

/* What the index records for a folder mtime: the mtime once settled, its
 * negation while it is fresh (a change in the same tick could still
 * hide behind it), 0 for "unknown". */
static int64_t store_mtime_record(int64_t mtime_ns)
{
	return store_mtime_is_settled(mtime_ns) ? mtime_ns : -mtime_ns;
}

/* A folder needs a listing when its mtime moved, and once more when a
 * fresh recorded mtime has settled (to see a change that hid in its tick). */
static bool store_mtime_stale(int64_t recorded, int64_t current)
{
	if (recorded > 0)
		return recorded != current;
	return recorded == 0 || -recorded != current || store_mtime_is_settled(current);
}

static bool store_sync_needed(const struct store_mailbox *mbox, int64_t new_ns, int64_t cur_ns)
{
	return store_mtime_stale(mbox->new_mtime_ns, new_ns) ||
	       store_mtime_stale(mbox->cur_mtime_ns, cur_ns);
}

static bool store_mtime_same(int64_t recorded, int64_t current)
{
	return recorded != 0 && (recorded > 0 ? recorded : -recorded) == current;
}

void store_mailbox_check_in_step(struct store_mailbox *mbox)
{
	int64_t new_ns, cur_ns;
	mbox->in_step = store_sync_mtimes(mbox, &new_ns, &cur_ns) == 0 &&
	                store_mtime_same(mbox->new_mtime_ns, new_ns) &&
	                store_mtime_same(mbox->cur_mtime_ns, cur_ns);
}

/* The folders' mtimes after our own change are recorded as settled: every
 * yubin process changes a folder only under the write lock and records
 * what it did, so only another program's change in the same timestamp
 * tick could hide behind them, and that is found at the folder's next
 * change (docs/store.md). Listing the folder again after each own change
 * cost more than every other part of a flag change. */
int store_mailbox_own_change(struct store *store, const struct store_mailbox *mbox,
                             const char **error_r)
{
	int64_t new_ns, cur_ns;
	if (!mbox->in_step || store_sync_mtimes(mbox, &new_ns, &cur_ns) < 0)
		return 0;
	return store_mailbox_set_mtimes(store->db, mbox->id, new_ns, cur_ns, error_r);
}

static int store_sync_row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_sync_row *)a)->base,
	              ((const struct store_sync_row *)b)->base);
}

static int store_sync_file_cmp(const void *a, const void *b)
{
	const struct store_file *fa = a, *fb = b;
	int ret = strcmp(fa->fn.base, fb->fn.base);
	/* "cur/" sorts before "new/": a base in both is taken from cur/ */
	return ret != 0 ? ret : strcmp(fa->rel, fb->rel);
}

static int store_sync_load_rows(struct store_sync *sync, const char **error_r)
{
	sqlite3 *db = sync->store->db;
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "SELECT uid, base, filename, flags FROM messages WHERE mailbox_id = ?",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, sync->mbox->id);
	size_t cap = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (sync->row_count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			sync->rows = xreallocarray(sync->rows, cap, sizeof(*sync->rows));
		}
		struct store_sync_row *row = &sync->rows[sync->row_count++];
		row->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		row->base = xstrdup((const char *)sqlite3_column_text(stmt, 1));
		row->filename = xstrdup((const char *)sqlite3_column_text(stmt, 2));
		row->flags = (unsigned int)sqlite3_column_int(stmt, 3);
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(db, "read");
		return -1;
	}
	if (sync->row_count > 1)
		qsort(sync->rows, sync->row_count, sizeof(*sync->rows), store_sync_row_cmp);
	return 0;
}

static void store_sync_rows_free(struct store_sync *sync)
{
	for (size_t i = 0; i < sync->row_count; i++) {
		free(sync->rows[i].base);
		free(sync->rows[i].filename);
	}
	free(sync->rows);
}

/* Gives the file the name it would have had if yubin had saved it, so a
 * later rebuild finds its UID in it; keeps the old name if that fails. */
static char *store_sync_rename(const char *dir, const struct store_file *file,
                               const struct store_fname *fn)
{
	char *rel = store_fname_build(fn->base, fn->in_cur, fn->size, fn->vsize, fn->uid,
	                              fn->modseq, fn->flags);
	if (strcmp(rel, file->rel) == 0)
		return rel;
	char *from = xasprintf("%s/%s", dir, file->rel);
	char *to = xasprintf("%s/%s", dir, rel);
	if (rename(from, to) < 0) {
		free(rel);
		rel = xstrdup(file->rel);
	}
	free(from);
	free(to);
	return rel;
}

/* A file the index does not know. It keeps the UID in its name only when
 * that UID was never handed out in this mailbox (>= uidnext): a lower one
 * may belong to an expunged message, and a UID is never reused. */
static int store_sync_adopt(struct store_sync *sync, struct store_file *file, const char **error_r)
{
	struct store_mailbox *mbox = sync->mbox;
	if (store_file_complete(mbox->dir, file) < 0)
		return 0; /* vanished or not a message: nothing to adopt */
	struct store_fname fn = file->fn;
	if (mbox->uidnext == UINT32_MAX) {
		*error_r = "mailbox UID space exhausted";
		return -1;
	}
	if (!fn.has_uid || fn.uid < mbox->uidnext || fn.uid == UINT32_MAX)
		fn.uid = mbox->uidnext;
	mbox->uidnext = fn.uid + 1;
	fn.modseq = ++mbox->highestmodseq;
	if (!fn.in_cur)
		fn.flags = 0;
	char *rel = store_sync_rename(mbox->dir, file, &fn);
	int ret = store_message_insert(sync->store->db, mbox->id, fn.uid, &fn, rel, file->mtime,
	                               time(NULL), error_r);
	if (ret == 0) {
		char esc[160];
		log_info("store sync adopted mailbox=%s uid=%u file=%s", mbox->name, fn.uid,
		         log_escape(rel, strlen(rel), esc, sizeof(esc)));
	}
	free(rel);
	sync->changed = true;
	return ret;
}

/* The file of a known message has a new name (moved new/ -> cur/, flags
 * changed by another tool). */
static int store_sync_follow(struct store_sync *sync, const struct store_sync_row *row,
                             const struct store_file *file, const char **error_r)
{
	if (strcmp(row->filename, file->rel) == 0)
		return 0;
	unsigned int flags = file->fn.has_info ? file->fn.flags : 0;
	sqlite3_stmt *stmt = store_db_prepare(sync->store->db,
	                                      "UPDATE messages SET filename = ?, flags = ?,"
	                                      " modseq = CASE WHEN flags = ? THEN modseq ELSE ? END"
	                                      " WHERE mailbox_id = ? AND uid = ?",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	uint64_t modseq = sync->mbox->highestmodseq + 1;
	sqlite3_bind_text(stmt, 1, file->rel, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, (int)flags);
	sqlite3_bind_int(stmt, 3, (int)flags);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 5, sync->mbox->id);
	sqlite3_bind_int64(stmt, 6, row->uid);
	int ret = sqlite3_step(stmt);
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(sync->store->db, "write");
		return -1;
	}
	if (flags != row->flags)
		sync->mbox->highestmodseq = modseq;
	sync->changed = true;
	return 0;
}

static int store_sync_drop(struct store_sync *sync, const struct store_sync_row *row,
                           const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        sync->store->db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, sync->mbox->id);
	sqlite3_bind_int64(stmt, 2, row->uid);
	int ret = sqlite3_step(stmt);
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(sync->store->db, "write");
		return -1;
	}
	log_info("store sync removed vanished mailbox=%s uid=%u", sync->mbox->name, row->uid);
	sync->mbox->highestmodseq++;
	sync->changed = true;
	return 0;
}

static int store_sync_skip_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A file a copy or move journal names is that operation's business: a
 * link not yet committed, or a moved message's source not yet unlinked. */
static bool store_sync_skipped(const struct store_sync *sync, const char *base)
{
	return sync->skip_count > 0 && bsearch(&base, sync->skip, sync->skip_count,
	                                       sizeof(*sync->skip), store_sync_skip_cmp) != NULL;
}

/* Walks the rows and files, both sorted by base. */
static int store_sync_merge(struct store_sync *sync, struct store_file *files, size_t count,
                            const char **error_r)
{
	size_t r = 0, f = 0;
	int ret = 0;
	while (ret == 0 && (r < sync->row_count || f < count)) {
		if (f > 0 && f < count && strcmp(files[f].fn.base, files[f - 1].fn.base) == 0) {
			f++; /* same message in two places: the first one counts */
			continue;
		}
		int cmp = r == sync->row_count ? 1
		          : f == count         ? -1
		                               : strcmp(sync->rows[r].base, files[f].fn.base);
		if (cmp < 0)
			ret = store_sync_drop(sync, &sync->rows[r++], error_r);
		else if (cmp > 0 && store_sync_skipped(sync, files[f].fn.base))
			f++;
		else if (cmp > 0)
			ret = store_sync_adopt(sync, &files[f++], error_r);
		else
			ret = store_sync_follow(sync, &sync->rows[r++], &files[f++], error_r);
	}
	return ret;
}

/* The state file is fsync'd before every expunge, the index only at WAL
 * checkpoints: after a power loss the index may remember a lower UIDNEXT
 * than clients saw. Never go below the state file. */
static void store_sync_state_floor(struct store_sync *sync)
{
	struct store_mailbox *mbox = sync->mbox;
	struct store_state state;
	if (store_state_read(mbox->dir, &state) < 0 || state.uidvalidity != mbox->uidvalidity)
		return;
	if (state.uidnext > mbox->uidnext) {
		mbox->uidnext = state.uidnext;
		sync->changed = true;
	}
	if (state.highestmodseq > mbox->highestmodseq) {
		mbox->highestmodseq = state.highestmodseq;
		sync->changed = true;
	}
}

/* Under the write lock: list, merge, save counters, state and mtimes. */
static int store_sync_locked(struct store *store, struct store_mailbox *mbox, int64_t new_ns,
                             int64_t cur_ns, const char **error_r)
{
	struct store_sync sync = {.store = store, .mbox = mbox};
	struct store_file *files;
	size_t count;
	store_sync_state_floor(&sync);
	if (store_list_files(mbox->dir, &files, &count, error_r) < 0)
		return -1;
	if (count > 1)
		qsort(files, count, sizeof(*files), store_sync_file_cmp);
	int ret = store_sync_load_rows(&sync, error_r);
	if (ret == 0)
		ret = store_journal_bases(store, mbox->id, &sync.skip, &sync.skip_count, error_r);
	if (ret == 0)
		ret = store_sync_merge(&sync, files, count, error_r);
	store_files_free(files, count);
	store_sync_rows_free(&sync);
	for (size_t i = 0; i < sync.skip_count; i++)
		free(sync.skip[i]);
	free(sync.skip);
	if (ret == 0 && sync.changed) {
		/* a rebuild must not go below these counters */
		struct store_state state = {mbox->uidvalidity, mbox->uidnext, mbox->highestmodseq};
		ret = store_state_write(mbox->dir, &state, error_r);
		if (ret == 0)
			ret = store_mailbox_set_counters(store->db, mbox->id, mbox->uidnext,
			                                 mbox->highestmodseq, error_r);
	}
	if (ret == 0)
		ret = store_mailbox_set_mtimes(store->db, mbox->id, store_mtime_record(new_ns),
		                               store_mtime_record(cur_ns), error_r);
	return ret;
}

static int store_sync_one(struct store *store, const char *canon, const char **error_r)
{
	struct store_mailbox mbox;
	int64_t new_ns, cur_ns;
	int ret = store_mailbox_get(store, canon, &mbox, error_r);
	if (ret <= 0)
		return ret;
	if (store_sync_mtimes(&mbox, &new_ns, &cur_ns) < 0) {
		log_warn("store folder missing mailbox=%s dir=%s", mbox.name, mbox.dir);
		store_mailbox_clear(&mbox);
		return 0;
	}
	bool needed = store_sync_needed(&mbox, new_ns, cur_ns);
	store_mailbox_clear(&mbox);
	if (!needed || store_db_begin(store->db, error_r) < 0)
		return needed ? -1 : 0;
	/* again under the lock: another process may have synced meanwhile */
	ret = store_mailbox_get(store, canon, &mbox, error_r);
	if (ret > 0 && store_sync_mtimes(&mbox, &new_ns, &cur_ns) == 0 &&
	    store_sync_needed(&mbox, new_ns, cur_ns))
		ret = store_sync_locked(store, &mbox, new_ns, cur_ns, error_r);
	store_mailbox_clear(&mbox);
	if (ret < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	return store_db_commit(store->db, error_r);
}

int store_sync_mailbox(struct store *store, const char *canon, const char **error_r)
{
	return store_sync_one(store, canon, error_r) < 0 ? -1 : 0;
}

int store_sync_all(struct store *store, const char **error_r)
{
	char **names;
	size_t count;
	if (store_mailbox_list(store, &names, &count, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_sync_mailbox(store, names[i], error_r);
	store_names_free(&names, count);
	return ret;
}
