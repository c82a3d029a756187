/* The per-account SQLite index (index.db): schema and row helpers. */
#include "store/store-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/xmalloc.h"
#include "notify/notify.h"

#define STORE_BUSY_TIMEOUT_MS 10000

static const char store_schema[] = "CREATE TABLE mailboxes ("
                                   " id INTEGER PRIMARY KEY,"
                                   " name TEXT NOT NULL UNIQUE,"
                                   " uidvalidity INTEGER NOT NULL,"
                                   " uidnext INTEGER NOT NULL,"
                                   " highestmodseq INTEGER NOT NULL,"
                                   " subscribed INTEGER NOT NULL DEFAULT 1,"
                                   " new_mtime_ns INTEGER NOT NULL DEFAULT 0,"
                                   " cur_mtime_ns INTEGER NOT NULL DEFAULT 0);"
                                   "CREATE TABLE messages ("
                                   " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
                                   " uid INTEGER NOT NULL,"
                                   " base TEXT NOT NULL,"
                                   " filename TEXT NOT NULL,"
                                   " size INTEGER NOT NULL,"
                                   " vsize INTEGER NOT NULL,"
                                   " internal_date INTEGER NOT NULL,"
                                   " save_date INTEGER NOT NULL,"
                                   " flags INTEGER NOT NULL DEFAULT 0,"
                                   " keywords TEXT NOT NULL DEFAULT '',"
                                   " modseq INTEGER NOT NULL,"
                                   " eol_missing INTEGER NOT NULL DEFAULT 0,"
                                   " PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
                                   "CREATE INDEX messages_base ON messages(mailbox_id, base);"
                                   "PRAGMA user_version = 2;";

/* Version 1 -> 2: whether a message ends without a newline (POP3 adds a
 * CRLF and counts it). Rows of version 1 say 0; `yubin index rebuild`
 * recomputes them. */
static const char store_schema_v2[] =
        "ALTER TABLE messages ADD COLUMN eol_missing INTEGER NOT NULL DEFAULT 0;"
        "PRAGMA user_version = 2;";

/* Version 2 -> 3 (IMAP): object ids, the expunge log (its MODSEQ is the
 * mailbox's HIGHESTMODSEQ + 1 at the time: every path bumps it by the
 * deletion), keywords, subscriptions, the cache blob and the copy/move
 * journal. Expunges from before the migration are not logged:
 * vanished_min_modseq says so. The old mailboxes.subscribed column is
 * left unused. */
static const char store_schema_v3[] =
        "ALTER TABLE mailboxes ADD COLUMN mailboxid TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE mailboxes ADD COLUMN vanished_min_modseq INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE messages ADD COLUMN emailid TEXT NOT NULL DEFAULT '';"
        "UPDATE mailboxes SET mailboxid = 'M' || lower(hex(randomblob(12))),"
        " vanished_min_modseq = highestmodseq;"
        "UPDATE messages SET emailid = 'E' || lower(hex(randomblob(12)));"
        "CREATE TABLE subscriptions (name TEXT PRIMARY KEY) WITHOUT ROWID;"
        "INSERT INTO subscriptions SELECT name FROM mailboxes WHERE subscribed <> 0;"
        "CREATE TABLE expunged ("
        " mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
        " PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
        "CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);"
        "CREATE TABLE mailbox_keywords ("
        " mailbox_id INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,"
        " PRIMARY KEY (mailbox_id, idx));"
        "CREATE UNIQUE INDEX mailbox_keywords_name ON"
        " mailbox_keywords(mailbox_id, name COLLATE NOCASE);"
        "CREATE TABLE msg_cache ("
        " mailbox_id INTEGER NOT NULL, uid INTEGER NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (mailbox_id, uid));"
        "CREATE TABLE journal ("
        " id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, state INTEGER NOT NULL,"
        " src_id INTEGER NOT NULL DEFAULT 0, dst_id INTEGER NOT NULL DEFAULT 0,"
        " from_name TEXT NOT NULL DEFAULT '', to_name TEXT NOT NULL DEFAULT '',"
        " created INTEGER NOT NULL);"
        "CREATE TABLE journal_msgs ("
        " journal_id INTEGER NOT NULL, seq INTEGER NOT NULL, src_uid INTEGER NOT NULL,"
        " src_base TEXT NOT NULL, src_filename TEXT NOT NULL, dst_base TEXT NOT NULL,"
        " flags INTEGER NOT NULL, PRIMARY KEY (journal_id, seq)) WITHOUT ROWID;"
        "CREATE TRIGGER messages_expunged AFTER DELETE ON messages BEGIN"
        " INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (old.mailbox_id,"
        "  old.uid, (SELECT highestmodseq + 1 FROM mailboxes WHERE id = old.mailbox_id));"
        " DELETE FROM msg_cache WHERE mailbox_id = old.mailbox_id AND uid = old.uid;"
        " END;"
        "PRAGMA user_version = 3;";

/* Version 3 -> 4: the full-text index (store-fts.c, docs/store.md "Full-text
 * index"). Text is kept per message content, keyed by EMAILID, which COPY
 * and MOVE keep: a copy or a moved message needs no new indexing, and the
 * rows go when the last message with that EMAILID does. The trigram
 * tokenizer is case-sensitive because the caller stores and searches
 * text it has folded itself: a phrase match is then an exact substring. */
static const char store_schema_v4[] =
        "CREATE INDEX messages_emailid ON messages(emailid);"
        "CREATE TABLE fts_msgs (emailid TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "CREATE TABLE fts_docs (id INTEGER PRIMARY KEY, emailid TEXT NOT NULL,"
        " header INTEGER NOT NULL);"
        "CREATE INDEX fts_docs_emailid ON fts_docs(emailid);"
        "CREATE VIRTUAL TABLE fts_text USING fts5(text, tokenize = 'trigram case_sensitive 1');"
        "CREATE TRIGGER messages_fts_gone AFTER DELETE ON messages WHEN NOT EXISTS"
        " (SELECT 1 FROM messages WHERE emailid = old.emailid) BEGIN"
        " DELETE FROM fts_text WHERE rowid IN"
        "  (SELECT id FROM fts_docs WHERE emailid = old.emailid);"
        " DELETE FROM fts_docs WHERE emailid = old.emailid;"
        " DELETE FROM fts_msgs WHERE emailid = old.emailid;"
        " END;"
        "PRAGMA user_version = 4;";

/* Version 4 -> 5: an IMAP session catches up with what changed since the
 * MODSEQ it saw (store_msg_list_since) without reading every row. */
static const char store_schema_v5[] =
        "CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);"
        "PRAGMA user_version = 5;";

/* Step i takes the schema from version i to the next one. */
static const char *const store_schema_steps[STORE_SCHEMA_VERSION] = {
        store_schema,
        store_schema_v2,
        store_schema_v3,
        store_schema_v4,
        store_schema_v5,
};

const char *store_db_error(sqlite3 *db, const char *what)
{
	return store_errorf("index %s failed: %s", what, sqlite3_errmsg(db));
}

int store_db_exec(sqlite3 *db, const char *sql, const char **error_r)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_db_error(db, "query");
		return -1;
	}
	return 0;
}

/* Every write transaction is IMMEDIATE: it takes the write lock at once
 * (waiting up to busy_timeout), so concurrent processes serialise instead
 * of failing on a read-to-write upgrade. */
int store_db_begin(sqlite3 *db, const char **error_r)
{
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_db_error(db, "lock");
		return -1;
	}
	return 0;
}

int store_db_commit(sqlite3 *db, const char **error_r)
{
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_db_error(db, "commit");
		store_db_rollback(db);
		return -1;
	}
	return 0;
}

void store_db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int store_db_step_row(sqlite3 *db, sqlite3_stmt *stmt, const char **error_r)
{
	int ret = sqlite3_step(stmt);
	if (ret == SQLITE_ROW)
		return 1;
	if (ret == SQLITE_DONE)
		return 0;
	*error_r = store_db_error(db, "read");
	return -1;
}

/* Prepared statements are kept per open index and reused: preparing costs
 * more than running most of the store's queries (an IMAP command makes a
 * dozen). A statement in use is not handed out twice; a caller that needs
 * the same SQL while iterating gets a fresh one. */
#define STORE_STMT_CACHE 64

struct store_stmt_slot {
	sqlite3 *db;
	sqlite3_stmt *stmt;
	uint64_t hash;
	uint64_t used; /* LRU clock */
	bool busy;
};

static struct store_stmt_slot store_stmts[STORE_STMT_CACHE];
static uint64_t store_stmt_clock;

static uint64_t store_sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static struct store_stmt_slot *store_stmt_find(sqlite3 *db, const char *sql, uint64_t hash,
                                               bool *in_use_r)
{
	*in_use_r = false;
	for (size_t i = 0; i < STORE_STMT_CACHE; i++) {
		struct store_stmt_slot *s = &store_stmts[i];
		if (s->db != db || s->hash != hash || strcmp(sqlite3_sql(s->stmt), sql) != 0)
			continue;
		if (!s->busy)
			return s;
		*in_use_r = true;
	}
	return NULL;
}

/* A free slot, or the least recently used idle one (its statement goes). */
static struct store_stmt_slot *store_stmt_victim(void)
{
	struct store_stmt_slot *victim = NULL;
	for (size_t i = 0; i < STORE_STMT_CACHE; i++) {
		struct store_stmt_slot *s = &store_stmts[i];
		if (s->db == NULL)
			return s;
		if (!s->busy && (victim == NULL || s->used < victim->used))
			victim = s;
	}
	if (victim != NULL) {
		sqlite3_finalize(victim->stmt);
		memset(victim, 0, sizeof(*victim));
	}
	return victim;
}

sqlite3_stmt *store_db_prepare(sqlite3 *db, const char *sql, const char **error_r)
{
	uint64_t hash = store_sql_hash(sql);
	bool in_use;
	struct store_stmt_slot *slot = store_stmt_find(db, sql, hash, &in_use);
	if (slot != NULL) {
		slot->busy = true;
		slot->used = ++store_stmt_clock;
		return slot->stmt;
	}
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, in_use ? 0 : SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
	    SQLITE_OK) {
		*error_r = store_db_error(db, "prepare");
		sqlite3_finalize(stmt);
		return NULL;
	}
	slot = in_use ? NULL : store_stmt_victim();
	if (slot != NULL)
		*slot = (struct store_stmt_slot){db, stmt, hash, ++store_stmt_clock, true};
	return stmt;
}

void store_db_finish(sqlite3_stmt *stmt)
{
	if (stmt == NULL)
		return;
	for (size_t i = 0; i < STORE_STMT_CACHE; i++) {
		struct store_stmt_slot *s = &store_stmts[i];
		if (s->stmt == stmt) {
			sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);
			s->busy = false;
			return;
		}
	}
	sqlite3_finalize(stmt);
}

void store_db_close(sqlite3 *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < STORE_STMT_CACHE; i++) {
		struct store_stmt_slot *s = &store_stmts[i];
		if (s->db == db) {
			sqlite3_finalize(s->stmt);
			memset(s, 0, sizeof(*s));
		}
	}
	sqlite3_close(db);
}

static int store_db_version(sqlite3 *db, int *version_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(db, "PRAGMA user_version", error_r);
	if (stmt == NULL)
		return -1;
	int ret = sqlite3_step(stmt);
	if (ret != SQLITE_ROW) {
		*error_r = store_db_error(db, "read");
		store_db_finish(stmt);
		return -1;
	}
	*version_r = sqlite3_column_int(stmt, 0);
	store_db_finish(stmt);
	return 0;
}

/* Creates the schema when the file is new; refuses a newer schema. */
static int store_db_migrate(sqlite3 *db, const char **error_r)
{
	int version;
	if (store_db_version(db, &version, error_r) < 0)
		return -1;
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (store_db_begin(db, error_r) < 0)
		return -1;
	/* re-read under the lock: another process may have just created it */
	if (store_db_version(db, &version, error_r) < 0) {
		store_db_rollback(db);
		return -1;
	}
	/* version 0 creates the version 2 schema (step 0) */
	for (int v = version; v >= 0 && v < STORE_SCHEMA_VERSION; v = v == 0 ? 2 : v + 1) {
		if (store_db_exec(db, store_schema_steps[v], error_r) < 0) {
			store_db_rollback(db);
			return -1;
		}
	}
	if (version > STORE_SCHEMA_VERSION) {
		store_db_rollback(db);
		*error_r = store_errorf("index schema %d is newer than this yubin (%d)", version,
		                        STORE_SCHEMA_VERSION);
		return -1;
	}
	return store_db_commit(db, error_r);
}

/* Runs after every commit on this handle, once the write lock is released
 * (WAL mode): the moment to tell sessions on other workers and processes
 * that the account changed. Registering it turns off SQLite's automatic
 * checkpoint, so it checkpoints as that would (at 1000 WAL pages). */
static int store_index_committed(void *ctx, sqlite3 *db, const char *schema, int wal_pages)
{
	(void)ctx;
	const char *path = sqlite3_db_filename(db, schema);
	const char *slash = path != NULL ? strrchr(path, '/') : NULL;
	if (slash != NULL) {
		char *root = xstrndup(path, (size_t)(slash - path));
		notify_account_changed(root);
		free(root);
	}
	if (wal_pages >= 1000)
		(void)sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

int store_index_open(const char *root, bool create, sqlite3 **db_r, const char **error_r)
{
	char *path = xasprintf("%s/%s", root, STORE_INDEX_FILE);
	if (!create && access(path, F_OK) < 0) {
		*error_r = store_errorf("%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		*error_r = store_errorf("opening %s failed: %s", path,
		                        db != NULL ? sqlite3_errmsg(db) : "out of memory");
		store_db_close(db);
		free(path);
		return -1;
	}
	if (create)
		chmod(path, 0600);
	free(path);
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	if (store_db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", error_r) < 0 ||
	    store_db_migrate(db, error_r) < 0) {
		store_db_close(db);
		return -1;
	}
	sqlite3_wal_hook(db, store_index_committed, NULL);
	*db_r = db;
	return 0;
}

#define STORE_MAILBOX_COLUMNS \
	"id, name, uidvalidity, uidnext, highestmodseq, new_mtime_ns, cur_mtime_ns"

static void store_mailbox_from_row(struct store *store, sqlite3_stmt *stmt,
                                   struct store_mailbox *mbox)
{
	mbox->id = sqlite3_column_int64(stmt, 0);
	mbox->name = xstrdup((const char *)sqlite3_column_text(stmt, 1));
	mbox->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 2);
	mbox->uidnext = (uint32_t)sqlite3_column_int64(stmt, 3);
	mbox->highestmodseq = (uint64_t)sqlite3_column_int64(stmt, 4);
	mbox->new_mtime_ns = sqlite3_column_int64(stmt, 5);
	mbox->cur_mtime_ns = sqlite3_column_int64(stmt, 6);
	mbox->dir = store_folder_path(store->root, mbox->name);
}

/* 1 found, 0 no such mailbox, -1 error. */
int store_mailbox_get(struct store *store, const char *canon, struct store_mailbox *mbox_r,
                      const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE name = ?",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, canon, -1, SQLITE_STATIC);
	int ret = store_db_step_row(store->db, stmt, error_r);
	memset(mbox_r, 0, sizeof(*mbox_r));
	if (ret == 1) {
		store_mailbox_from_row(store, stmt, mbox_r);
	}
	store_db_finish(stmt);
	return ret;
}

/* Every mailbox, "INBOX" first, then by name. */
int store_mailbox_get_all(struct store *store, struct store_mailbox **mboxes_r, size_t *count_r,
                          const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(store->db,
	                                      "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes"
	                                      " ORDER BY name <> 'INBOX', name",
	                                      error_r);
	if (stmt == NULL)
		return -1;
	struct store_mailbox *mboxes = NULL;
	size_t count = 0;
	int ret;
	while ((ret = sqlite3_step(stmt)) == SQLITE_ROW) {
		mboxes = xreallocarray(mboxes, count + 1, sizeof(*mboxes));
		store_mailbox_from_row(store, stmt, &mboxes[count++]);
	}
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(store->db, "read");
		store_mailboxes_free(mboxes, count);
		return -1;
	}
	*mboxes_r = mboxes;
	*count_r = count;
	return 0;
}

void store_mailbox_clear(struct store_mailbox *mbox)
{
	xfree(mbox->name);
	xfree(mbox->dir);
}

void store_mailboxes_free(struct store_mailbox *mboxes, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_mailbox_clear(&mboxes[i]);
	free(mboxes);
}

static int store_db_step_done(sqlite3 *db, sqlite3_stmt *stmt, const char **error_r)
{
	int ret = sqlite3_step(stmt);
	store_db_finish(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(db, "write");
		return -1;
	}
	return 0;
}

int store_mailbox_insert(sqlite3 *db, const char *canon, const struct store_state *state,
                         int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt =
	        store_db_prepare(db,
	                         "INSERT INTO mailboxes (name, uidvalidity, uidnext, highestmodseq,"
	                         " mailboxid, vanished_min_modseq) VALUES (?, ?, ?, ?,"
	                         " 'M' || lower(hex(randomblob(12))), ?4)",
	                         error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, canon, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, state->uidvalidity);
	sqlite3_bind_int64(stmt, 3, state->uidnext);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)state->highestmodseq);
	if (store_db_step_done(db, stmt, error_r) < 0)
		return -1;
	*id_r = sqlite3_last_insert_rowid(db);
	/* a new mailbox starts subscribed, as every mailbox did before
	 * subscriptions had their own table */
	stmt = store_db_prepare(db, "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)",
	                        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, canon, -1, SQLITE_STATIC);
	return store_db_step_done(db, stmt, error_r);
}

int store_mailbox_set_counters(sqlite3 *db, int64_t id, uint32_t uidnext, uint64_t highestmodseq,
                               const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, uidnext);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)highestmodseq);
	sqlite3_bind_int64(stmt, 3, id);
	return store_db_step_done(db, stmt, error_r);
}

int store_mailbox_set_mtimes(sqlite3 *db, int64_t id, int64_t new_ns, int64_t cur_ns,
                             const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "UPDATE mailboxes SET new_mtime_ns = ?, cur_mtime_ns = ? WHERE id = ?",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, new_ns);
	sqlite3_bind_int64(stmt, 2, cur_ns);
	sqlite3_bind_int64(stmt, 3, id);
	return store_db_step_done(db, stmt, error_r);
}

int store_message_insert(sqlite3 *db, int64_t mailbox_id, uint32_t uid,
                         const struct store_fname *fn, const char *rel, time_t internal_date,
                         time_t save_date, const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db,
	        "INSERT INTO messages (mailbox_id, uid, base, filename, size, vsize,"
	        " internal_date, save_date, flags, modseq, eol_missing, emailid)"
	        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'E' || lower(hex(randomblob(12))))",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_text(stmt, 3, fn->base, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, rel, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)fn->size);
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)fn->vsize);
	sqlite3_bind_int64(stmt, 7, (sqlite3_int64)internal_date);
	sqlite3_bind_int64(stmt, 8, (sqlite3_int64)save_date);
	sqlite3_bind_int(stmt, 9, (int)fn->flags);
	sqlite3_bind_int64(stmt, 10, (sqlite3_int64)fn->modseq);
	sqlite3_bind_int(stmt, 11, fn->eol_missing ? 1 : 0);
	return store_db_step_done(db, stmt, error_r);
}

/* 1 with the current "new/.." or "cur/.." name, 0 when no such row. */
int store_message_filename(sqlite3 *db, int64_t mailbox_id, uint32_t uid, char **rel_r,
                           const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        db, "SELECT filename FROM messages WHERE mailbox_id = ? AND uid = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, mailbox_id);
	sqlite3_bind_int64(stmt, 2, uid);
	int ret = store_db_step_row(db, stmt, error_r);
	if (ret == 1) {
		*rel_r = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	}
	store_db_finish(stmt);
	return ret;
}

int store_mailbox_get_id(struct store *store, int64_t id, struct store_mailbox *mbox_r,
                         const char **error_r)
{
	sqlite3_stmt *stmt = store_db_prepare(
	        store->db, "SELECT " STORE_MAILBOX_COLUMNS " FROM mailboxes WHERE id = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	int ret = store_db_step_row(store->db, stmt, error_r);
	memset(mbox_r, 0, sizeof(*mbox_r));
	if (ret == 1) {
		store_mailbox_from_row(store, stmt, mbox_r);
	}
	store_db_finish(stmt);
	return ret;
}

/* Journal commits must survive a power failure, not only a crash: the
 * files they describe are fsync'd (WAL + synchronous=NORMAL alone would
 * not fsync the commit). */
void store_db_full_sync(sqlite3 *db, bool full)
{
	sqlite3_exec(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL,
	             NULL);
}

/* Steps a prepared write statement once and resets it for reuse. */
int store_db_run(sqlite3 *db, sqlite3_stmt *stmt, const char **error_r)
{
	int ret = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (ret != SQLITE_DONE) {
		*error_r = store_db_error(db, "write");
		return -1;
	}
	return 0;
}
