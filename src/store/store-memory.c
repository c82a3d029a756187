/* A small per-account memory in index.db for what delivery must not do
 * twice within a period: vacation replies per sender, Sieve duplicate
 * keys, notices about a failing script. Each entry carries its own
 * expiry; expired entries are pruned whenever one is recorded. The table
 * is created on first use, so existing indexes need no migration. */
#include <string.h>

#include "store/store-private.h"

static const char memory_create_sql[] =
        "CREATE TABLE IF NOT EXISTS memory (kind TEXT NOT NULL, key TEXT NOT NULL,"
        " at INTEGER NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (kind, key))";

/* Prepares sql, creating the table when it is not there yet. */
static sqlite3_stmt *memory_prepare(struct store *store, const char *sql, const char **error_r)
{
	const char *error;
	sqlite3_stmt *stmt = store_db_prepare(store->db, sql, &error);
	if (stmt != NULL)
		return stmt;
	if (store_db_exec(store->db, memory_create_sql, error_r) < 0)
		return NULL;
	return store_db_prepare(store->db, sql, error_r);
}

static int64_t memory_clamp(uint64_t v)
{
	return v > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)v;
}

int store_memory_seen(struct store *store, const char *kind, const char *key, uint64_t seconds,
                      time_t now, const char **error_r)
{
	sqlite3_stmt *stmt = memory_prepare(
	        store, "SELECT at FROM memory WHERE kind = ? AND key = ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	int ret = store_db_step_row(store->db, stmt, error_r);
	if (ret == 1) {
		int64_t at = sqlite3_column_int64(stmt, 0);
		/* A clock that went back counts as "just now". */
		ret = at > (int64_t)now || (int64_t)now - at < memory_clamp(seconds);
	}
	store_db_finish(stmt);
	return ret;
}

static int memory_prune(struct store *store, time_t now, const char **error_r)
{
	sqlite3_stmt *stmt =
	        memory_prepare(store, "DELETE FROM memory WHERE expires < ?", error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_int64(stmt, 1, (int64_t)now);
	int ret = store_db_run(store->db, stmt, error_r);
	store_db_finish(stmt);
	return ret;
}

int store_memory_record(struct store *store, const char *kind, const char *key,
                        uint64_t seconds, time_t now, const char **error_r)
{
	if (memory_prune(store, now, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = memory_prepare(
	        store, "INSERT OR REPLACE INTO memory (kind, key, at, expires) VALUES (?, ?, ?, ?)",
	        error_r);
	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, (int64_t)now);
	sqlite3_bind_int64(stmt, 4, (int64_t)now + memory_clamp(seconds));
	int ret = store_db_run(store->db, stmt, error_r);
	store_db_finish(stmt);
	return ret;
}
