/* Saving a message: tmp/ file, fsync, then under the index's write lock
 * the UID, the rename into new/ or cur/, the directory fsync and the row.
 * Only after the commit does the caller hear success. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

struct store_save {
	struct store *store;
	char *mailbox; /* canonical name */
	char *dir;     /* folder path */
	char *base;
	char *tmp_path;
	int fd;
	uint64_t size;
	uint64_t bare_lf;
	bool last_cr;
	bool eol_missing;
	int write_errno; /* first write error, reported by finish */
	unsigned int flags;
	char **keywords; /* as the caller spelled them; NULL-terminated */
	size_t keyword_count;
	time_t internal_date;
	time_t save_date;
	char *final_path; /* after the rename into new/ or cur/, until the commit */
};

static void store_save_free(struct store_save *save)
{
	if (save->fd >= 0)
		close(save->fd);
	free(save->mailbox);
	free(save->dir);
	free(save->base);
	free(save->tmp_path);
	free(save->final_path);
	store_names_free(&save->keywords, save->keyword_count);
	free(save);
}

struct store_save *store_save_begin(struct store *store, const char *mailbox,
                                    enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, err_r, error_r) < 0)
		return NULL;
	struct store_save *save = xcalloc(1, sizeof(*save));
	save->store = store;
	save->mailbox = mbox.name;
	save->dir = mbox.dir;
	save->base = store_new_base();
	save->tmp_path = xasprintf("%s/tmp/%s", save->dir, save->base);
	save->save_date = time(NULL);
	save->internal_date = save->save_date;
	save->fd = open(save->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (save->fd < 0) {
		*err_r = STORE_ERR_TEMP;
		*error_r = store_errorf("open(%s) failed: %s", save->tmp_path, strerror(errno));
		store_save_free(save);
		return NULL;
	}
	*err_r = STORE_OK;
	return save;
}

int store_save_write(struct store_save *save, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (save->write_errno != 0)
		return -1;
	store_vsize_count(p, len, &save->last_cr, &save->bare_lf);
	if (len > 0)
		save->eol_missing = p[len - 1] != '\n';
	while (len > 0) {
		ssize_t n = write(save->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			save->write_errno = n < 0 ? errno : EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		save->size += (uint64_t)n;
	}
	return 0;
}

void store_save_set_flags(struct store_save *save, unsigned int flags)
{
	save->flags = flags;
}

void store_save_set_internal_date(struct store_save *save, time_t when)
{
	save->internal_date = when;
}


int store_save_set_keywords(struct store_save *save, const char *const *keywords, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (!store_keyword_valid(keywords[i]))
			return -1;
	}
	store_names_free(&save->keywords, save->keyword_count);
	save->keywords = xcalloc(count + 1, sizeof(char *));
	for (size_t i = 0; i < count; i++)
		save->keywords[i] = xstrdup(keywords[i]);
	save->keyword_count = count;
	return 0;
}

void store_save_abort(struct store_save **savep)
{
	struct store_save *save = *savep;
	if (save == NULL)
		return;
	unlink(save->tmp_path);
	store_save_free(save);
	*savep = NULL;
}

/* The file's bytes and its mtime (= internal date, which is how a rebuild
 * recovers it) on disk. */
static int store_save_flush(struct store_save *save, const char **error_r)
{
	if (save->write_errno != 0) {
		*error_r = store_errorf("writing %s failed: %s", save->tmp_path,
		                        strerror(save->write_errno));
		return -1;
	}
	struct timespec times[2] = {
	        {.tv_sec = save->internal_date, .tv_nsec = 0},
	        {.tv_sec = save->internal_date, .tv_nsec = 0},
	};
	if (futimens(save->fd, times) < 0 || fsync(save->fd) < 0 || close(save->fd) < 0) {
		save->fd = -1;
		*error_r = store_errorf("writing %s failed: %s", save->tmp_path, strerror(errno));
		return -1;
	}
	save->fd = -1;
	return 0;
}

static int store_save_rename(struct store_save *save, const struct store_fname *fn, const char *rel,
                             const char **error_r)
{
	char *path = xasprintf("%s/%s", save->dir, rel);
	char *sub = xasprintf("%s/%s", save->dir, fn->in_cur ? "cur" : "new");
	int ret = 0;
	if (rename(save->tmp_path, path) < 0) {
		*error_r = store_errorf("rename(%s) failed: %s", save->tmp_path, strerror(errno));
		ret = -1;
	} else if (store_fsync_dir(sub, error_r) < 0) {
		/* the caller will not acknowledge it: do not leave it to be
		 * adopted (the sender retries) */
		unlink(path);
		ret = -1;
	}
	free(path);
	free(sub);
	return ret;
}

/* The mailbox's spelling of keyword (ASCII case ignored, as
 * store_msgs_change matches), registered when new; the 101st distinct one
 * is STORE_ERR_LIMIT. Caller frees. */
static char *store_save_keyword_resolve(struct store *store, int64_t mailbox_id, const char *kw,
                                        enum store_error *err_r, const char **error_r)
{
	static const char *const sqls[] = {
	        ("SELECT name FROM mailbox_keywords WHERE mailbox_id = ?1 AND name = ?2 COLLATE "
	         "NOCASE"),
	        "SELECT COUNT(*) FROM mailbox_keywords WHERE mailbox_id = ?1",
	        "INSERT INTO mailbox_keywords (mailbox_id, idx, name) VALUES (?1, ?3, ?2)",
	};
	char *found = NULL;
	int64_t count = 0;
	for (size_t i = 0; i < 3 && found == NULL; i++) {
		sqlite3_stmt *stmt = store_db_prepare(store->db, sqls[i], error_r);
		if (stmt == NULL)
			return NULL;
		sqlite3_bind_int64(stmt, 1, mailbox_id);
		if (i != 1)
			sqlite3_bind_text(stmt, 2, kw, -1, SQLITE_STATIC);
		if (i == 2)
			sqlite3_bind_int64(stmt, 3, count);
		int ret = i == 2 ? store_db_run(store->db, stmt, error_r)
		                 : store_db_step_row(store->db, stmt, error_r);
		if (ret == 1 && i == 0)
			found = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		else if (ret == 1)
			count = sqlite3_column_int64(stmt, 0);
		else if (ret == 0 && i == 2)
			found = xstrdup(kw);
		store_db_finish(stmt);
		if (ret < 0)
			return NULL;
		if (i == 1 && count >= STORE_KEYWORDS_MAX) {
			*err_r = STORE_ERR_LIMIT;
			*error_r = "too many keywords in this mailbox";
			return NULL;
		}
	}
	return found;
}

/* The message row gets its keywords in the save's transaction. */
static int store_save_keywords(struct store_save *save, int64_t mailbox_id, uint32_t uid,
                               enum store_error *err_r, const char **error_r)
{
	struct store *store = save->store;
	struct buf text = BUF_INIT(0);
	int ret = 0;
	for (size_t i = 0; i < save->keyword_count && ret == 0; i++) {
		char *kw = store_save_keyword_resolve(store, mailbox_id, save->keywords[i], err_r,
		                                      error_r);
		if (kw == NULL) {
			ret = -1;
			break;
		}
		bool dup = false;
		for (const char *p = buf_str(&text); *p != '\0' && !dup;) {
			size_t n = strcspn(p, " ");
			dup = n == strlen(kw) && strncmp(p, kw, n) == 0;
			p += n + (p[n] == ' ');
		}
		if (!dup) {
			if (text.len > 0)
				buf_append_char(&text, ' ');
			buf_append_str(&text, kw);
		}
		free(kw);
	}
	sqlite3_stmt *stmt = ret < 0 ? NULL
	                             : store_db_prepare(store->db,
	                                                "UPDATE messages SET keywords = ? WHERE "
	                                                "mailbox_id = ? AND uid = ?",
	                                                error_r);
	if (stmt != NULL) {
		sqlite3_bind_text(stmt, 1, buf_str(&text), -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, mailbox_id);
		sqlite3_bind_int64(stmt, 3, uid);
		ret = store_db_run(store->db, stmt, error_r);
		store_db_finish(stmt);
	} else {
		ret = -1;
	}
	buf_free(&text);
	return ret;
}

/* The message row, its keywords and the mailbox's counters. */
static int store_save_rows(struct store_save *save, const struct store_mailbox *mbox,
                           const struct store_fname *fn, const char *rel, enum store_error *err_r,
                           const char **error_r)
{
	sqlite3 *db = save->store->db;
	if (store_message_insert(db, mbox->id, fn->uid, fn, rel, save->internal_date,
	                         save->save_date, error_r) < 0)
		return -1;
	if (save->keyword_count > 0 &&
	    store_save_keywords(save, mbox->id, fn->uid, err_r, error_r) < 0)
		return -1;
	return store_mailbox_set_counters(db, mbox->id, fn->uid + 1, fn->modseq, error_r);
}

/* Under the write lock, inside the caller's transaction: quota, UID and
 * MODSEQ, rename, rows. The quota check sees the rows of earlier saves of
 * the same transaction, so a batch is checked as a whole. */
static int store_save_locked(struct store_save *save, uint32_t *uid_r, enum store_error *err_r,
                             const char **error_r)
{
	struct store *store = save->store;
	struct store_mailbox mbox;
	int found = store_mailbox_get(store, save->mailbox, &mbox, error_r);
	if (found <= 0) {
		if (found == 0)
			*error_r = "mailbox vanished";
		return -1;
	}
	store_mailbox_check_in_step(&mbox);
	int over = store_quota_check(store, save->size, error_r);
	struct store_fname fn = {
	        .base = save->base,
	        .size = save->size,
	        .vsize = save->size + save->bare_lf,
	        .uid = mbox.uidnext,
	        .modseq = mbox.highestmodseq + 1,
	        .in_cur = save->flags != 0,
	        .eol_missing = save->eol_missing,
	        .flags = save->flags,
	};
	char *rel = store_fname_build(fn.base, fn.in_cur, fn.size, fn.vsize, fn.uid, fn.modseq,
	                              fn.flags);
	int ret = -1;
	if (over > 0)
		*err_r = STORE_ERR_QUOTA;
	else if (over == 0 && mbox.uidnext == UINT32_MAX)
		*error_r = "mailbox UID space exhausted";
	else if (over == 0 && store_save_rename(save, &fn, rel, error_r) == 0) {
		save->final_path = xasprintf("%s/%s", save->dir, rel);
		if (store_save_rows(save, &mbox, &fn, rel, err_r, error_r) == 0 &&
		    store_mailbox_own_change(store, &mbox, error_r) == 0) {
			*uid_r = fn.uid;
			ret = 0;
		}
	}
	free(rel);
	store_mailbox_clear(&mbox);
	return ret;
}

/* After a failed batch: nothing of it may stay (the files were renamed
 * but their rows are rolled back). */
static void store_save_abort_all(struct store_save **saves, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (saves[i] != NULL && saves[i]->final_path != NULL)
			unlink(saves[i]->final_path);
		store_save_abort(&saves[i]);
	}
}

int store_save_finish_all(struct store_save **saves, size_t count, uint32_t *uids_r,
                          enum store_error *err_r, const char **error_r)
{
	struct store *store = count > 0 ? saves[0]->store : NULL;
	*err_r = STORE_ERR_TEMP;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_save_flush(saves[i], error_r);
	if (ret == 0 && count > 0)
		ret = store_db_begin(store->db, error_r);
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_save_locked(saves[i], &uids_r[i], err_r, error_r);
	if (ret == 0 && count > 0)
		ret = store_db_commit(store->db, error_r);
	if (ret < 0) {
		if (store != NULL)
			store_db_rollback(store->db);
		store_save_abort_all(saves, count);
		return -1;
	}
	*err_r = STORE_OK;
	for (size_t i = 0; i < count; i++) {
		store_save_free(saves[i]);
		saves[i] = NULL;
	}
	return 0;
}

int store_save_finish(struct store_save **savep, uint32_t *uid_r, enum store_error *err_r,
                      const char **error_r)
{
	return store_save_finish_all(savep, 1, uid_r, err_r, error_r);
}
