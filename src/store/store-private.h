/* Internals of the mail store, shared by the files of src/store/ only.
 * See docs/store.md for the on-disk format these functions implement. */
#ifndef YUBIN_STORE_PRIVATE_H
#define YUBIN_STORE_PRIVATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

#define STORE_INDEX_FILE "index.db"
#define STORE_STATE_FILE "yubin-state"
#define STORE_UIDVALIDITY_FILE "yubin-uidvalidity"
#define STORE_POP3_LOCK_FILE ".yubin-pop3.lock"
#define STORE_REBUILD_LOCK_FILE ".yubin-rebuild.lock"
#define STORE_NOTIFY_FILE ".yubin-notify" /* NOTIFY_FILE_NAME of src/notify */
#define STORE_SCHEMA_VERSION 5
#define STORE_BASE_MAX 70
#define STORE_HOST_MAX 32
#define STORE_TMP_MAX_AGE (36 * 3600)

struct store {
	char *root;
	sqlite3 *db;
	uint64_t quota_bytes; /* 0 = unlimited */
	uint64_t quota_messages;
};

/* One row of the mailboxes table. */
struct store_mailbox {
	int64_t id;
	char *name;
	char *dir; /* absolute folder path (root or root/.Name) */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	/* recorded folder mtimes: > 0 settled, < 0 fresh (negated), 0 unknown */
	int64_t new_mtime_ns;
	int64_t cur_mtime_ns;
	/* under the write lock: nothing changed the folders since the index
	 * last listed them (store_mailbox_check_in_step) */
	bool in_step;
};

/* The contents of a folder's yubin-state file. */
struct store_state {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
};

/* What a Maildir file name says: base, then ",S=..,W=..,U=..,M=.." fields
 * (each optional), then ":2,FLAGS" in cur/. */
struct store_fname {
	char *base;
	uint64_t size, vsize, modseq;
	uint32_t uid;
	bool has_size, has_vsize, has_uid, has_modseq;
	bool in_cur;   /* lives in cur/ */
	bool eol_missing; /* the last byte is not LF (not in the name: read from the file) */
	bool has_info; /* had ":2," */
	unsigned int flags;
};

/* One message file found on disk (rel = "new/NAME" or "cur/NAME"). */
struct store_file {
	char *rel;
	struct store_fname fn;
	time_t mtime;
};

/* Error text: formatted into a per-process buffer, valid until the next
 * store call that fails (workers are single-threaded). */
const char *store_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* store-name.c */
int store_name_normalize(const char *name, char **canon_r, const char **error_r);
char *store_name_to_folder(const char *canon);
int store_folder_to_name(const char *folder, char **name_r);
char *store_folder_path(const char *root, const char *canon);
char *store_new_base(void);
int store_fname_parse(const char *rel, struct store_fname *fn_r);
void store_fname_free(struct store_fname *fn);
char *store_fname_build(const char *base, bool in_cur, uint64_t size, uint64_t vsize, uint32_t uid,
                        uint64_t modseq, unsigned int flags);
char *store_uidl(const char *base);

/* store-maildir.c */
int store_mkdir_folder(const char *dir, const char **error_r);
int store_fsync_dir(const char *dir, const char **error_r);
int store_write_file_atomic(const char *dir, const char *name, const char *data,
                            const char **error_r);
int store_state_read(const char *dir, struct store_state *state_r);
int store_state_write(const char *dir, const struct store_state *state, const char **error_r);
uint32_t store_uidvalidity_last(const char *root);
int store_uidvalidity_save(const char *root, uint32_t value, const char **error_r);
int store_dir_mtime_ns(const char *dir, const char *sub, int64_t *mtime_r);
int store_list_files(const char *dir, struct store_file **files_r, size_t *count_r,
                     const char **error_r);
void store_files_free(struct store_file *files, size_t count);
void store_tmp_cleanup(const char *dir, time_t now);
int store_file_complete(const char *dir, struct store_file *file);
int store_file_vsize(const char *path, uint64_t *size_r, uint64_t *vsize_r, bool *eol_missing_r);
void store_vsize_count(const unsigned char *p, size_t len, bool *last_cr, uint64_t *bare_lf);
int store_remove_tree(const char *path, const char **error_r);

/* store-index.c */
int store_index_open(const char *root, bool create, sqlite3 **db_r, const char **error_r);
int store_db_exec(sqlite3 *db, const char *sql, const char **error_r);
int store_db_begin(sqlite3 *db, const char **error_r);
int store_db_commit(sqlite3 *db, const char **error_r);
void store_db_rollback(sqlite3 *db);
/* A prepared statement, from the per-index cache when it holds that SQL
 * and it is not in use. Give it back with store_db_finish (never
 * sqlite3_finalize); close the index with store_db_close. */
sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql, const char **error_r);
void store_db_finish(sqlite3_stmt *stmt);
void store_db_close(sqlite3 *db);
/* Steps a query of at most one row: 1 with the row current, 0 when there
 * is none, -1 on error. The caller finalizes. */
int store_db_step_row(sqlite3 *db, sqlite3_stmt *stmt, const char **error_r);
const char *store_db_error(sqlite3 *db, const char *what);
int store_mailbox_get(struct store *store, const char *canon, struct store_mailbox *mbox_r,
                      const char **error_r);
int store_mailbox_get_all(struct store *store, struct store_mailbox **mboxes_r, size_t *count_r,
                          const char **error_r);
void store_mailbox_clear(struct store_mailbox *mbox);
void store_mailboxes_free(struct store_mailbox *mboxes, size_t count);
int store_mailbox_insert(sqlite3 *db, const char *canon, const struct store_state *state,
                         int64_t *id_r, const char **error_r);
int store_mailbox_set_counters(sqlite3 *db, int64_t id, uint32_t uidnext, uint64_t highestmodseq,
                               const char **error_r);
int store_mailbox_set_mtimes(sqlite3 *db, int64_t id, int64_t new_ns, int64_t cur_ns,
                             const char **error_r);
int store_message_insert(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
                         const struct store_fname *fn, const char *rel, time_t internal_date,
                         time_t save_date, const char **error_r);
int store_message_filename(sqlite3 *db, int64_t mailbox_id, uint32_t uid, char **rel_r,
                           const char **error_r);
int store_mailbox_get_id(struct store *store, int64_t id, struct store_mailbox *mbox_r,
                         const char **error_r);
void store_db_full_sync(sqlite3 *db, bool full);
int store_db_run(sqlite3 *db, sqlite3_stmt *stmt, const char **error_r);

/* store.c */
uint32_t store_uidvalidity_next(const char *root, uint32_t also_above, const char **error_r);
int store_mailbox_create_canon(struct store *store, const char *canon, enum store_error *err_r,
                               const char **error_r);
int store_mailbox_lookup(struct store *store, const char *name, bool sync,
                         struct store_mailbox *mbox_r, enum store_error *err_r,
                         const char **error_r);

/* store-msg.c */
/* Under the write lock, before changing a folder: notes whether the index
 * is in step with it. After the change (same lock), records the folders'
 * new mtimes when it was, so the change is not taken for someone else's
 * and the folder is not listed again at every sync (store-sync.c). */
void store_mailbox_check_in_step(struct store_mailbox *mbox);
/* The messages of a mailbox (changedsince 0) or those with MODSEQ above
 * changedsince, ascending UID (store-msg.c). */
int store_msg_select(struct store *store, int64_t mailbox_id, uint64_t changedsince,
                     struct store_msg **msgs_r, size_t *count_r, const char **error_r);
int store_mailbox_own_change(struct store *store, const struct store_mailbox *mbox,
                             const char **error_r);
int store_mailbox_begin(struct store *store, const char *name, struct store_mailbox *mbox_r,
                        const char **error_r);
int store_mailbox_end(struct store *store, struct store_mailbox *mbox, int ret,
                      const char **error_r);

/* store-journal.c: journaled operations (docs/store.md, "Copy and move") */
enum store_journal_kind {
	STORE_JOURNAL_COPY = 1,
	STORE_JOURNAL_MOVE = 2,
	STORE_JOURNAL_DELETE = 3,
	STORE_JOURNAL_RENAME = 4,
};
#define STORE_JOURNAL_PENDING 0
#define STORE_JOURNAL_COMMITTED 1
/* Exclusive lock for journaled operations and their recovery: the fd, -1
 * on error, or -2 when !wait and another process holds it. */
int store_journal_lock(struct store *store, bool wait, const char **error_r);
void store_journal_unlock(int fd);
/* With the lock held: finishes or rolls back every journal left by a
 * process that died. */
int store_journal_recover(struct store *store, const char **error_r);
/* Recovers when no live process holds the lock (store_open). */
int store_journal_try_recover(struct store *store, const char **error_r);
/* Sorted bases of files a journal names in this mailbox: sync must not
 * adopt them. */
int store_journal_bases(struct store *store, int64_t mailbox_id, char ***bases_r,
                        size_t *count_r, const char **error_r);
int store_journal_add(struct store *store, int kind, int64_t src_id, int64_t dst_id,
                      const char *from, const char *to, int64_t *id_r, const char **error_r);
int store_journal_remove(struct store *store, int64_t id, const char **error_r);
/* With the lock held: the transfer itself (canonical names). */
int store_xfer_locked(struct store *store, bool move, const char *src, const uint32_t *uids,
                      size_t count, const char *dst, uint32_t **dst_uids_r,
                      enum store_error *err_r, const char **error_r);

/* store-mailbox.c: roll-forward of a started delete or rename */
int store_mailbox_finish_delete(struct store *store, int64_t journal_id, int64_t mailbox_id,
                                const char *canon, const char **error_r);
int store_mailbox_finish_rename(struct store *store, int64_t journal_id, const char *from,
                                const char *to, const char **error_r);

/* store-change.c */
/* Registers each keyword of a space-separated list in the mailbox (no
 * limit: used for copies). Inside the caller's transaction. */
int store_keywords_register_text(struct store *store, int64_t mailbox_id, const char *text,
                                 const char **error_r);

/* store-change.c: a keyword the store keeps (RFC 9051 atom-specials, plus
 * '\': system flags are not keywords; not empty, not too long). */
bool store_keyword_valid(const char *kw);

/* store-quota.c */
int store_quota_check(struct store *store, uint64_t size, const char **error_r);

/* store-rebuild.c */
int store_rebuild_missing(const char *root, struct store_rebuild_report *report_r,
                          const char **error_r);

/* store-sync.c */
int store_sync_mailbox(struct store *store, const char *canon, const char **error_r);
int store_sync_all(struct store *store, const char **error_r);

#endif
