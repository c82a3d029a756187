/* Messages: listing, opening, flag changes and expunge. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/xmalloc.h"

#define STORE_OPEN_RETRIES 5

static void store_msg_from_row(sqlite3_stmt *stmt, struct store_msg *msg)
{
	msg->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
	msg->size = (uint64_t)sqlite3_column_int64(stmt, 1);
	msg->vsize = (uint64_t)sqlite3_column_int64(stmt, 2);
	msg->internal_date = (time_t)sqlite3_column_int64(stmt, 3);
	msg->save_date = (time_t)sqlite3_column_int64(stmt, 4);
	msg->flags = (unsigned int)sqlite3_column_int(stmt, 5);
	msg->modseq = (uint64_t)sqlite3_column_int64(stmt, 6);
	msg->keywords = xstrdup((const char *)sqlite3_column_text(stmt, 7));
	msg->uidl = store_uidl((const char *)sqlite3_column_text(stmt, 8));
	msg->eol_missing = sqlite3_column_int(stmt, 9) != 0;
	snprintf(msg->emailid, sizeof(msg->emailid), "%s",
	         (const char *)sqlite3_column_text(stmt, 10));
}

#define STORE_MSG_COLUMNS                                                            \
	"uid, size, vsize, internal_date, save_date, flags, modseq, keywords, base," \
	" eol_missing, emailid"

int store_msg_select(struct store *store, int64_t mailbox_id, uint64_t changedsince,
                     struct store_msg **msgs_r, size_t *count_r, const char **error_r)
{
	/* two statements: the whole list walks the primary key in UID order;
	 * the changes since a MODSEQ a session saw are few, so the MODSEQ
	 * index is named (the planner would walk the whole mailbox by UID) */
	sqlite3_stmt *stmt =
	        changedsince == 0
	                ? store_db_prepare(store->db,
	                                   "SELECT " STORE_MSG_COLUMNS
	                                   " FROM messages WHERE mailbox_id = ? ORDER BY uid",
	                                   error_r)
	                : store_db_prepare(store->db,
	                                   "SELECT " STORE_MSG_COLUMNS
	                                   " FROM messages INDEXED BY messages_modseq"
	                                   " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
	                                   error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	if (changedsince != 0)
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)changedsince);
	struct store_msg *msgs = NULL;
	size_t count = 0, cap = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		store_msg_from_row(stmt, &msgs[count++]);
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		store_msg_list_free(&msgs, count);
		return -1;
	}
	*msgs_r = msgs;
	*count_r = count;
	return 0;
}

int store_msg_list(struct store *store, const char *mailbox, struct store_msg **msgs_r,
                   size_t *count_r, enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, true, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = store_msg_select(store, mbox.id, 0, msgs_r, count_r, error_r);
	store_mailbox_clear(&mbox);
	if (ret < 0)
		*err_r = STORE_ERR_TEMP;
	return ret;
}

static int store_msg_select_one(struct store *store, int64_t mailbox_id, uint32_t uid,
                                struct store_msg *msg_r, enum store_error *err_r,
                                const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT " STORE_MSG_COLUMNS
	                                      " FROM messages WHERE mailbox_id = ? AND uid = ?",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW) {
		store_msg_from_row(stmt, msg_r);
		*err_r = STORE_OK;
		ret = 0;
	} else {
		*err_r = ret == SQLITE_DONE ? STORE_ERR_NOT_FOUND : STORE_ERR_TEMP;
		*error_r =
		        ret == SQLITE_DONE ? "no such message" : store_db_error(store->db, "read");
		ret = -1;
	}
	store_db_finish(stmt);
	return ret;
}

int store_msg_get(struct store *store, const char *mailbox, uint32_t uid, struct store_msg *msg_r,
                  enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	memset(msg_r, 0, sizeof(*msg_r));
	if (store_mailbox_lookup(store, mailbox, false, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = store_msg_select_one(store, mbox.id, uid, msg_r, err_r, error_r);
	store_mailbox_clear(&mbox);
	return ret;
}

void store_msg_clear(struct store_msg *msg)
{
	xfree(msg->keywords);
	xfree(msg->uidl);
}

void store_msg_list_free(struct store_msg **msgs, size_t count)
{
	if (*msgs == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*msgs)[i].keywords);
		free((*msgs)[i].uidl);
	}
	xfree(*msgs);
}

static int store_msg_open_mbox(struct store *store, const struct store_mailbox *mbox, uint32_t uid,
                               enum store_error *err_r, const char **error_r)
{
	/* another session may rename the file (flags) between our read of its
	 * name and the open: read the name again and retry */
	for (int i = 0; i < STORE_OPEN_RETRIES; i++) {
		char *rel;
		int found = store_message_filename(store->db, mbox->id, uid, &rel, error_r);
		if (found <= 0) {
			*err_r = found == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_TEMP;
			if (found == 0)
				*error_r = "no such message";
			return -1;
		}
		char *path = xasprintf("%s/%s", mbox->dir, rel);
		free(rel);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		int saved = errno;
		if (fd >= 0 || saved != ENOENT) {
			if (fd < 0) {
				*err_r = STORE_ERR_TEMP;
				*error_r =
				        store_errorf("open(%s) failed: %s", path, strerror(saved));
			}
			free(path);
			return fd;
		}
		free(path);
	}
	*err_r = STORE_ERR_NOT_FOUND;
	*error_r = "message file vanished";
	return -1;
}

int store_msg_open(struct store *store, const char *mailbox, uint32_t uid, enum store_error *err_r,
                   const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, mailbox, false, &mbox, err_r, error_r) < 0)
		return -1;
	int fd = store_msg_open_mbox(store, &mbox, uid, err_r, error_r);
	store_mailbox_clear(&mbox);
	if (fd >= 0)
		*err_r = STORE_OK;
	return fd;
}

/* One message's row as flag changes and expunge need it. */
struct store_msg_row {
	char *base;
	char *filename;
	uint64_t size, vsize;
	unsigned int flags;
};

static int store_msg_row_get(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
                             struct store_msg_row *row_r, const char **error_r)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(db,
	                         "SELECT base, filename, size, vsize, flags FROM messages"
	                         " WHERE mailbox_id = ? AND uid = ?",
	                         error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	int ret = store_db_step_row(db, stmt, error_r);
	if (ret == 1) {
		row_r->base = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		row_r->filename = xstrdup((const char *)sqlite3_column_text(stmt, 1));
		row_r->size = (uint64_t)sqlite3_column_int64(stmt, 2);
		row_r->vsize = (uint64_t)sqlite3_column_int64(stmt, 3);
		row_r->flags = (unsigned int)sqlite3_column_int(stmt, 4);
	}
	store_db_finish(stmt);
	return ret;
}

static void store_msg_row_free(struct store_msg_row *row)
{
	xfree(row->base);
	xfree(row->filename);
}

static int store_msg_set_flags_row(sqlite3 *db, int64_t mailbox_id, uint32_t uid, const char *rel,
                                   unsigned int flags, uint64_t modseq, const char **error_r)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(db,
	                         "UPDATE messages SET filename = ?, flags = ?, modseq = ?"
	                         " WHERE mailbox_id = ? AND uid = ?",
	                         error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, (int)flags);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int64(stmt, 4, mailbox_id);
	sqlite3_bind_int64(stmt, 5, uid);
	int ret = sqlite3_step(stmt);
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(db, "write");
		return -1;
	}
	return 0;
}

static unsigned int store_flags_apply(unsigned int old, int mode, unsigned int flags)
{
	if (mode > 0)
		return old | flags;
	if (mode < 0)
		return old & ~flags;
	return flags;
}

/* Renames the file so its name carries the new flags and M=, then
 * updates the row. 0 unchanged or done, -1 error. */
static int store_flags_update_one(struct store *store, struct store_mailbox *mbox, uint32_t uid,
                                  int mode, unsigned int flags, const char **error_r)
{
	struct store_msg_row row;
	int found = store_msg_row_get(store->db, mbox->id, uid, &row, error_r);
	if (found <= 0)
		return found;
	unsigned int new_flags = store_flags_apply(row.flags, mode, flags);
	int ret = 0;
	if (new_flags != row.flags) {
		uint64_t modseq = mbox->highestmodseq + 1;
		char *rel = store_fname_build(row.base, true, row.size, row.vsize, uid, modseq,
		                              new_flags);
		char *from = xasprintf("%s/%s", mbox->dir, row.filename);
		char *to = xasprintf("%s/%s", mbox->dir, rel);
		if (rename(from, to) < 0) {
			*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
			ret = -1;
		} else {
			ret = store_msg_set_flags_row(store->db, mbox->id, uid, rel, new_flags,
			                              modseq, error_r);
			mbox->highestmodseq = modseq;
		}
		free(from);
		free(to);
		free(rel);
	}
	store_msg_row_free(&row);
	return ret;
}

/* Validates the name and brings the mailbox in step, then takes the write
 * lock and reads the row again under it. On success the transaction is
 * open and the caller commits or rolls back. */
int store_mailbox_begin(struct store *store, const char *name, struct store_mailbox *mbox_r,
                        const char **error_r)
{
	enum store_error err;
	if (store_mailbox_lookup(store, name, true, mbox_r, &err, error_r) < 0)
		return -1;
	char *canon = mbox_r->name;
	mbox_r->name = NULL;
	store_mailbox_clear(mbox_r);
	int ret = store_db_begin(store->db, error_r);
	if (ret == 0) {
		ret = store_mailbox_get(store, canon, mbox_r, error_r);
		if (ret == 0)
			*error_r = "no such mailbox";
		if (ret <= 0) {
			store_db_rollback(store->db);
			store_mailbox_clear(mbox_r);
			ret = -1;
		} else {
			store_mailbox_check_in_step(mbox_r);
			ret = 0;
		}
	}
	free(canon);
	return ret;
}

/* Saves the counters and commits; a commit failure overrides success. */
int store_mailbox_end(struct store *store, struct store_mailbox *mbox, int ret,
                      const char **error_r)
{
	const char *error2;
	if (store_mailbox_set_counters(store->db, mbox->id, mbox->uidnext, mbox->highestmodseq,
	                               &error2) < 0 ||
	    store_mailbox_own_change(store, mbox, &error2) < 0 ||
	    store_db_commit(store->db, &error2) < 0) {
		store_db_rollback(store->db);
		if (ret == 0)
			*error_r = error2;
		ret = -1;
	}
	store_mailbox_clear(mbox);
	return ret;
}

int store_flags_update(struct store *store, const char *mailbox, const uint32_t *uids, size_t count,
                       int mode, unsigned int flags, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_begin(store, mailbox, &mbox, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = store_flags_update_one(store, &mbox, uids[i], mode, flags, error_r);
	/* files already renamed keep their new rows even if a later one failed */
	return store_mailbox_end(store, &mbox, ret, error_r);
}

/* The file of an expunged message was renamed behind the index (another
 * tool): find it by its base so it cannot come back. */
static void store_unlink_by_base(const char *dir, const char *base)
{
	struct store_file *files;
	size_t count;
	const char *error;
	if (store_list_files(dir, &files, &count, &error) < 0)
		return;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(files[i].fn.base, base) == 0) {
			char *path = xasprintf("%s/%s", dir, files[i].rel);
			unlink(path);
			free(path);
		}
	}
	store_files_free(files, count);
}

static int store_expunge_file(const struct store_mailbox *mbox, const struct store_msg_row *row,
                              const char **error_r)
{
	char *path = xasprintf("%s/%s", mbox->dir, row->filename);
	int ret = unlink(path);
	if (ret < 0 && errno == ENOENT) {
		store_unlink_by_base(mbox->dir, row->base);
		ret = 0;
	} else if (ret < 0) {
		*error_r = store_errorf("unlink(%s) failed: %s", path, strerror(errno));
	}
	free(path);
	return ret;
}

static int store_message_delete(sqlite3 *db, int64_t mailbox_id, uint32_t uid, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	int ret = sqlite3_step(stmt);
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(db, "write");
		return -1;
	}
	return 0;
}

/* Unlinks the files; returns how many of uids were handled before an
 * error (all of them on success) through *done_r. */
static int store_expunge_files(struct store *store, const struct store_mailbox *mbox,
                               const uint32_t *uids, size_t count, size_t *done_r,
                               const char **error_r)
{
	int ret = 0;
	size_t i;
	for (i = 0; i < count && ret == 0; i++) {
		struct store_msg_row row;
		int found = store_msg_row_get(store->db, mbox->id, uids[i], &row, error_r);
		if (found < 0)
			ret = -1;
		if (found <= 0)
			continue;
		ret = store_expunge_file(mbox, &row, error_r);
		store_msg_row_free(&row);
	}
	*done_r = ret == 0 ? i : i - 1;
	return ret;
}

static int store_expunge_sync_dirs(const struct store_mailbox *mbox, const char **error_r)
{
	char *cur = xasprintf("%s/cur", mbox->dir);
	char *new = xasprintf("%s/new", mbox->dir);
	int ret = store_fsync_dir(cur, error_r) < 0 || store_fsync_dir(new, error_r) < 0 ? -1 : 0;
	free(cur);
	free(new);
	return ret;
}

int store_expunge(struct store *store, const char *mailbox, const uint32_t *uids, size_t count,
                  const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_begin(store, mailbox, &mbox, error_r) < 0)
		return -1;
	/* the state file first: a rebuild after this never hands out these
	 * UIDs or MODSEQs again */
	struct store_state state = {mbox.uidvalidity, mbox.uidnext, mbox.highestmodseq + 1};
	if (store_state_write(mbox.dir, &state, error_r) < 0) {
		store_db_rollback(store->db);
		store_mailbox_clear(&mbox);
		return -1;
	}
	size_t done;
	int ret = store_expunge_files(store, &mbox, uids, count, &done, error_r);
	const char *error2;
	if (store_expunge_sync_dirs(&mbox, &error2) < 0 && ret == 0) {
		*error_r = error2;
		ret = -1;
	}
	for (size_t i = 0; i < done; i++) {
		if (store_message_delete(store->db, mbox.id, uids[i], &error2) < 0) {
			store_db_rollback(store->db);
			store_mailbox_clear(&mbox);
			*error_r = error2;
			return -1;
		}
	}
	mbox.highestmodseq++;
	return store_mailbox_end(store, &mbox, ret, error_r);
}
