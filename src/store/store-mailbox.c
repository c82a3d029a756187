/* Mailbox DELETE and RENAME (journaled: once started, finished by the next
 * store_open after a crash), subscriptions and per-mailbox information. */
#include "store/store-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* Where a deleted folder waits to be removed: no leading '.', so neither a
 * rebuild nor a mailbox name can ever see it. */
static char *store_trash_path(const char *root, int64_t journal_id)
{
	return xasprintf("%s/yubin-deleted-%lld", root, (long long)journal_id);
}

static bool store_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Runs sql with ?1 = id and ?2 = text in the caller's transaction. */
static int store_exec_id_text(struct store *store, const char *sql, int64_t id, const char *text,
                              const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db, sql, error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, text, -1, SQLITE_STATIC);
	int ret = store_db_run(store->db, stmt, error_r);
	store_db_finish(stmt);
	return ret;
}

static int store_delete_rows(struct store *store, int64_t mailbox_id, const char **error_r)
{
	/* the mailbox id may be handed out again: nothing may stay behind */
	static const char *const sqls[] = {
	        "DELETE FROM messages WHERE mailbox_id = ?1",
	        "DELETE FROM expunged WHERE mailbox_id = ?1",
	        "DELETE FROM msg_cache WHERE mailbox_id = ?1",
	        "DELETE FROM mailbox_keywords WHERE mailbox_id = ?1",
	        "DELETE FROM mailboxes WHERE id = ?1",
	};
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		if (store_exec_id_text(store, sqls[i], mailbox_id, NULL, error_r) < 0) {
			store_db_rollback(store->db);
			return -1;
		}
	}
	return store_db_commit(store->db, error_r);
}

/* Idempotent: folder out of sight, rows, folder tree, journal. */
int store_mailbox_finish_delete(struct store *store, int64_t journal_id, int64_t mailbox_id,
                                const char *canon, const char **error_r)
{
	char *dir = store_folder_path(store->root, canon);
	char *trash = store_trash_path(store->root, journal_id);
	int ret = 0;
	if (store_path_exists(dir) && rename(dir, trash) < 0) {
		*error_r = store_errorf("rename(%s) failed: %s", dir, strerror(errno));
		ret = -1;
	}
	if (ret == 0)
		ret = store_fsync_dir(store->root, error_r);
	if (ret == 0)
		ret = store_delete_rows(store, mailbox_id, error_r);
	if (ret == 0 && store_path_exists(trash))
		ret = store_remove_tree(trash, error_r);
	if (ret == 0)
		ret = store_journal_remove(store, journal_id, error_r);
	free(dir);
	free(trash);
	return ret;
}

/* 1 when some mailbox is named canon/..., 0 when none. */
static int store_has_children(struct store *store, const char *canon, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT EXISTS (SELECT 1 FROM mailboxes WHERE name > "
	                                      "?1 || '/' AND name < ?1 || '0')",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, canon, -1, SQLITE_STATIC);
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW)
		ret = sqlite3_column_int(stmt, 0) != 0;
	else {
		*error_r = store_db_error(store->db, "read");
		ret = -1;
	}
	store_db_finish(stmt);
	return ret;
}

/* Under the write lock: checks, then the journal row. */
static int store_delete_plan(struct store *store, const char *canon, int64_t *journal_id_r,
                             int64_t *mailbox_id_r, enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	int found = store_mailbox_get(store, canon, &mbox, error_r);
	*mailbox_id_r = mbox.id;
	store_mailbox_clear(&mbox);
	if (found <= 0) {
		if (found == 0) {
			*err_r = STORE_ERR_NOT_FOUND;
			*error_r = "no such mailbox";
		}
		return -1;
	}
	int children = store_has_children(store, canon, error_r);
	if (children != 0) {
		if (children > 0) {
			*err_r = STORE_ERR_HAS_CHILDREN;
			*error_r = "mailbox has children: delete them first";
		}
		return -1;
	}
	return store_journal_add(store, STORE_JOURNAL_DELETE, *mailbox_id_r, 0, canon, NULL,
	                         journal_id_r, error_r);
}

static int store_delete_locked(struct store *store, const char *canon, enum store_error *err_r,
                               const char **error_r)
{
	int64_t journal_id, mailbox_id;
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	if (store_delete_plan(store, canon, &journal_id, &mailbox_id, err_r, error_r) < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	if (store_db_commit(store->db, error_r) < 0)
		return -1;
	*err_r = STORE_ERR_TEMP;
	return store_mailbox_finish_delete(store, journal_id, mailbox_id, canon, error_r);
}

int store_mailbox_delete(struct store *store, const char *name, enum store_error *err_r,
                         const char **error_r)
{
	char *canon;
	if (store_name_normalize(name, &canon, error_r) < 0) {
		*err_r = STORE_ERR_INVALID;
		return -1;
	}
	if (strcmp(canon, "INBOX") == 0) {
		free(canon);
		*err_r = STORE_ERR_CANNOT;
		*error_r = "INBOX cannot be deleted";
		return -1;
	}
	*err_r = STORE_ERR_TEMP;
	int fd = store_journal_lock(store, true, error_r);
	int ret = fd < 0 ? -1 : store_journal_recover(store, error_r);
	store_db_full_sync(store->db, true);
	if (ret == 0)
		ret = store_delete_locked(store, canon, err_r, error_r);
	store_db_full_sync(store->db, false);
	store_journal_unlock(fd);
	if (ret == 0) {
		*err_r = STORE_OK;
		log_info("store mailbox deleted root=%s mailbox=%s", store->root, canon);
	}
	free(canon);
	return ret;
}

/* ---- rename ---- */

/* The mailbox and its children: old names, and new names under to. */
static int store_rename_names(struct store *store, const char *from, const char *to, char ***old_r,
                              char ***new_r, size_t *count_r, const char **error_r)
{
	struct store_mailbox *mboxes;
	size_t count, n = 0, flen = strlen(from);
	if (store_mailbox_get_all(store, &mboxes, &count, error_r) < 0)
		return -1;
	char **olds = xcalloc(count + 1, sizeof(*olds));
	char **news = xcalloc(count + 1, sizeof(*news));
	for (size_t i = 0; i < count; i++) {
		const char *name = mboxes[i].name;
		if (strncmp(name, from, flen) != 0 || (name[flen] != '\0' && name[flen] != '/'))
			continue;
		olds[n] = xstrdup(name);
		news[n++] = xasprintf("%s%s", to, name + flen);
	}
	store_mailboxes_free(mboxes, count);
	*old_r = olds;
	*new_r = news;
	*count_r = n;
	return 0;
}

static void store_rename_names_free(char **olds, char **news, size_t count)
{
	store_names_free(&olds, count);
	store_names_free(&news, count);
}

/* Moves each folder whose old path still exists and whose new one does
 * not (so a second run after a crash redoes only what is left). */
static int store_rename_folders(struct store *store, char **olds, char **news, size_t count,
                                const char **error_r)
{
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		char *from = store_folder_path(store->root, olds[i]);
		char *to = store_folder_path(store->root, news[i]);
		if (store_path_exists(from) && !store_path_exists(to) && rename(from, to) < 0) {
			*error_r = store_errorf("rename(%s) failed: %s", from, strerror(errno));
			ret = -1;
		}
		free(from);
		free(to);
	}
	return ret == 0 ? store_fsync_dir(store->root, error_r) : -1;
}

static int store_rename_rows(struct store *store, int64_t journal_id, char **olds, char **news,
                             size_t count, const char **error_r)
{
	static const char *const sqls[] = {
	        "UPDATE mailboxes SET name = ?2 WHERE name = ?1",
	        "INSERT OR IGNORE INTO subscriptions (name) SELECT ?2 FROM subscriptions WHERE name = ?1",
	        "DELETE FROM subscriptions WHERE name = ?1",
	};
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		for (size_t k = 0; k < sizeof(sqls) / sizeof(sqls[0]) && ret == 0; k++) {
			sqlite3_stmt *stmt = store_db_prepare(store->db, sqls[k], error_r);
			if (stmt == NULL) {
				ret = -1;
				break;
			}
			sqlite3_bind_text(stmt, 1, olds[i], -1, SQLITE_STATIC);
			sqlite3_bind_text(stmt, 2, news[i], -1, SQLITE_STATIC);
			ret = store_db_run(store->db, stmt, error_r);
			store_db_finish(stmt);
		}
	}
	char *sql = xasprintf("DELETE FROM journal WHERE id = %lld", (long long)journal_id);
	if (ret == 0)
		ret = store_db_exec(store->db, sql, error_r);
	free(sql);
	if (ret < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	return store_db_commit(store->db, error_r);
}

int store_mailbox_finish_rename(struct store *store, int64_t journal_id, const char *from,
                                const char *to, const char **error_r)
{
	char **olds, **news;
	size_t count;
	if (store_rename_names(store, from, to, &olds, &news, &count, error_r) < 0)
		return -1;
	int ret = store_rename_folders(store, olds, news, count, error_r);
	if (ret == 0)
		ret = store_rename_rows(store, journal_id, olds, news, count, error_r);
	store_rename_names_free(olds, news, count);
	return ret;
}

/* Every target must be a valid, unused name with no folder on disk. */
static int store_rename_check(struct store *store, char **news, size_t count,
                              enum store_error *err_r, const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		struct store_mailbox mbox;
		char *canon;
		if (store_name_normalize(news[i], &canon, error_r) < 0) {
			*err_r = STORE_ERR_INVALID;
			return -1;
		}
		char *dir = store_folder_path(store->root, canon);
		bool on_disk = store_path_exists(dir);
		free(dir);
		free(canon);
		int found = store_mailbox_get(store, news[i], &mbox, error_r);
		store_mailbox_clear(&mbox);
		if (found < 0)
			return -1;
		if (found > 0 || on_disk) {
			*err_r = STORE_ERR_EXISTS;
			*error_r = found > 0 ? "target mailbox already exists"
			                     : "a folder of the target name exists on disk";
			return -1;
		}
	}
	return 0;
}

static int store_rename_plan(struct store *store, const char *from, const char *to,
                             int64_t *journal_id_r, enum store_error *err_r, const char **error_r)
{
	char **olds, **news;
	size_t count;
	if (store_rename_names(store, from, to, &olds, &news, &count, error_r) < 0)
		return -1;
	int ret = 0;
	if (count == 0) {
		*err_r = STORE_ERR_NOT_FOUND;
		*error_r = "no such mailbox";
		ret = -1;
	}
	if (ret == 0)
		ret = store_rename_check(store, news, count, err_r, error_r);
	if (ret == 0)
		ret = store_journal_add(store, STORE_JOURNAL_RENAME, 0, 0, from, to, journal_id_r,
		                        error_r);
	store_rename_names_free(olds, news, count);
	return ret;
}

static int store_rename_locked(struct store *store, const char *from, const char *to,
                               enum store_error *err_r, const char **error_r)
{
	int64_t journal_id;
	if (store_db_begin(store->db, error_r) < 0)
		return -1;
	if (store_rename_plan(store, from, to, &journal_id, err_r, error_r) < 0) {
		store_db_rollback(store->db);
		return -1;
	}
	if (store_db_commit(store->db, error_r) < 0)
		return -1;
	*err_r = STORE_ERR_TEMP;
	return store_mailbox_finish_rename(store, journal_id, from, to, error_r);
}

/* RFC 9051 6.3.6: INBOX's messages move into a new mailbox, INBOX stays
 * (empty) with its children. */
static int store_rename_inbox(struct store *store, const char *to, enum store_error *err_r,
                              const char **error_r)
{
	struct store_msg_flags *msgs;
	size_t count;
	if (store_mailbox_create_canon(store, to, err_r, error_r) < 0)
		return -1;
	if (store_msg_flags_list(store, "INBOX", 0, &msgs, &count, err_r, error_r) < 0)
		return -1;
	uint32_t *uids = xcalloc(count + 1, sizeof(*uids));
	for (size_t i = 0; i < count; i++)
		uids[i] = msgs[i].uid;
	store_msg_flags_free(&msgs, count);
	uint32_t *map = NULL;
	int ret = store_xfer_locked(store, true, "INBOX", uids, count, to, &map, err_r, error_r);
	free(uids);
	free(map);
	return ret;
}

static int store_rename_canon(struct store *store, const char *from, const char *to,
                              enum store_error *err_r, const char **error_r)
{
	size_t flen = strlen(from);
	if (strcmp(from, to) == 0) {
		*err_r = STORE_ERR_EXISTS;
		*error_r = "target mailbox already exists";
		return -1;
	}
	if (strcmp(from, "INBOX") != 0 && strncmp(to, from, flen) == 0 && to[flen] == '/') {
		*err_r = STORE_ERR_INVALID;
		*error_r = "cannot rename a mailbox into itself";
		return -1;
	}
	*err_r = STORE_ERR_TEMP;
	int fd = store_journal_lock(store, true, error_r);
	int ret = fd < 0 ? -1 : store_journal_recover(store, error_r);
	store_db_full_sync(store->db, true);
	if (ret == 0 && strcmp(from, "INBOX") == 0)
		ret = store_rename_inbox(store, to, err_r, error_r);
	else if (ret == 0)
		ret = store_rename_locked(store, from, to, err_r, error_r);
	store_db_full_sync(store->db, false);
	store_journal_unlock(fd);
	return ret;
}

int store_mailbox_rename(struct store *store, const char *from, const char *to,
                         enum store_error *err_r, const char **error_r)
{
	char *cfrom, *cto = NULL;
	*err_r = STORE_ERR_INVALID;
	if (store_name_normalize(from, &cfrom, error_r) < 0)
		return -1;
	if (store_name_normalize(to, &cto, error_r) < 0) {
		free(cfrom);
		return -1;
	}
	int ret = store_rename_canon(store, cfrom, cto, err_r, error_r);
	if (ret == 0) {
		*err_r = STORE_OK;
		log_info("store mailbox renamed root=%s from=%s to=%s", store->root, cfrom, cto);
	}
	free(cfrom);
	free(cto);
	return ret;
}

/* ---- subscriptions and information ---- */

int store_mailbox_subscribe(struct store *store, const char *name, bool subscribe,
                            enum store_error *err_r, const char **error_r)
{
	char *canon;
	if (store_name_normalize(name, &canon, error_r) < 0) {
		*err_r = STORE_ERR_INVALID;
		return -1;
	}
	int ret = store_exec_id_text(store,
	                             subscribe ? "INSERT OR IGNORE INTO subscriptions VALUES (?2)"
	                                       : "DELETE FROM subscriptions WHERE name = ?2",
	                             0, canon, error_r);
	free(canon);
	*err_r = ret == 0 ? STORE_OK : STORE_ERR_TEMP;
	return ret;
}

/* One text column of a query with an optional int64 parameter. */
static int store_names_query(struct store *store, const char *sql, int64_t param, char ***names_r,
                             size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db, sql, error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, param);
	char **names = xcalloc(1, sizeof(*names));
	size_t count = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		names = xreallocarray(names, count + 2, sizeof(*names));
		names[count++] = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		names[count] = NULL;
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		store_names_free(&names, count);
		return -1;
	}
	*names_r = names;
	*count_r = count;
	return 0;
}

int store_mailbox_list_subscribed(struct store *store, char ***names_r, size_t *count_r,
                                  const char **error_r)
{
	return store_names_query(store,
	                         "SELECT name FROM subscriptions ORDER BY name <> 'INBOX', name", 0,
	                         names_r, count_r, error_r);
}

int store_mailbox_keywords(struct store *store, const char *name, char ***keywords_r,
                           size_t *count_r, enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, name, false, &mbox, err_r, error_r) < 0)
		return -1;
	int ret = store_names_query(
	        store, "SELECT name FROM mailbox_keywords WHERE mailbox_id = ? ORDER BY idx",
	        mbox.id, keywords_r, count_r, error_r);
	store_mailbox_clear(&mbox);
	*err_r = ret == 0 ? STORE_OK : STORE_ERR_TEMP;
	return ret;
}

int store_mailbox_info(struct store *store, const char *name, struct store_mailbox_info *info_r,
                       enum store_error *err_r, const char **error_r)
{
	struct store_mailbox mbox;
	if (store_mailbox_lookup(store, name, false, &mbox, err_r, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT mailboxid, vanished_min_modseq,"
	                                      " EXISTS (SELECT 1 FROM subscriptions WHERE name = "
	                                      "?2) FROM mailboxes WHERE id = ?1",
	                                      error_r);
	int ret = stmt == NULL ? -1 : 0;
	memset(info_r, 0, sizeof(*info_r));
	if (stmt != NULL) {
		sqlite3_bind_int64(stmt, 1, mbox.id);
		sqlite3_bind_text(stmt, 2, mbox.name, -1, SQLITE_STATIC);
		if (sqlite3_step(stmt) == SQLITE_ROW) {
			snprintf(info_r->mailboxid, sizeof(info_r->mailboxid), "%s",
			         (const char *)sqlite3_column_text(stmt, 0));
			info_r->vanished_min_modseq = (uint64_t)sqlite3_column_int64(stmt, 1);
			info_r->subscribed = sqlite3_column_int(stmt, 2) != 0;
		} else {
			*error_r = store_db_error(store->db, "read");
			ret = -1;
		}
		store_db_finish(stmt);
	}
	store_mailbox_clear(&mbox);
	*err_r = ret == 0 ? STORE_OK : STORE_ERR_TEMP;
	return ret;
}
