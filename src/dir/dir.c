#include "dir/dir-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* Writers wait this long for one another (many `yubin deliver` processes
 * at once) before giving up with SQLITE_BUSY. */
#define DIR_BUSY_TIMEOUT_MS 10000
#define DIR_RETRY_SLEEP_MS 10

/* dir_open fails before a handle exists, so its error text lives here,
 * valid until the next dir_open. */
static char dir_open_error[512];

static int open_fail(const char **error_r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int open_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dir_open_error, sizeof(dir_open_error), fmt, ap);
	va_end(ap);
	*error_r = dir_open_error;
	return -1;
}

int dir_fail(struct dir *dir, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	free(dir->error);
	dir->error = text;
	*error_r = dir->error;
	return -1;
}

int dir_db_fail(struct dir *dir, const char *doing, const char **error_r)
{
	return dir_fail(dir, error_r, "directory database error while %s: %s", doing,
	                sqlite3_errmsg(dir->db));
}

sqlite3_stmt *dir_stmt(struct dir *dir, const char *sql, const char **error_r)
{
	for (size_t i = 0; i < dir->stmt_count; i++) {
		struct dir_stmt_slot *slot = &dir->stmts[i];
		if (slot->sql == sql || strcmp(slot->sql, sql) == 0) {
			sqlite3_reset(slot->stmt);
			sqlite3_clear_bindings(slot->stmt);
			return slot->stmt;
		}
	}
	if (dir->stmt_count == DIR_STMT_CACHE_MAX)
		panic("dir: statement cache full (raise DIR_STMT_CACHE_MAX)");
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v3(dir->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
	    SQLITE_OK) {
		dir_db_fail(dir, "preparing a query", error_r);
		return NULL;
	}
	dir->stmts[dir->stmt_count].sql = sql;
	dir->stmts[dir->stmt_count].stmt = stmt;
	dir->stmt_count++;
	return stmt;
}

int dir_bind_text(sqlite3_stmt *stmt, int idx, const char *text)
{
	return sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

int dir_bind_int(sqlite3_stmt *stmt, int idx, int64_t value)
{
	return sqlite3_bind_int64(stmt, idx, value) == SQLITE_OK ? 0 : -1;
}

int dir_exec_stmt(struct dir *dir, sqlite3_stmt *stmt, const char *doing, const char **error_r)
{
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	int ret = rc == SQLITE_DONE ? 0 : dir_db_fail(dir, doing, error_r);
	sqlite3_reset(stmt);
	return ret;
}

int dir_query_int(struct dir *dir, sqlite3_stmt *stmt, int64_t *value_r, const char **error_r)
{
	int rc = sqlite3_step(stmt);
	int ret = 0;
	if (rc == SQLITE_ROW)
		*value_r = sqlite3_column_int64(stmt, 0);
	else if (rc == SQLITE_DONE)
		*value_r = 0;
	else
		ret = dir_db_fail(dir, "reading the directory", error_r);
	sqlite3_reset(stmt);
	return ret;
}

static int dir_exec_sql(struct dir *dir, const char *sql, const char *doing, const char **error_r)
{
	if (sqlite3_exec(dir->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dir_db_fail(dir, doing, error_r);
	return 0;
}

int dir_begin(struct dir *dir, bool write, const char **error_r)
{
	return dir_exec_sql(dir, write ? "BEGIN IMMEDIATE" : "BEGIN", "starting a transaction",
	                    error_r);
}

int dir_commit(struct dir *dir, const char **error_r)
{
	if (dir_exec_sql(dir, "COMMIT", "committing a change", error_r) < 0) {
		dir_rollback(dir);
		return -1;
	}
	return 0;
}

void dir_rollback(struct dir *dir)
{
	if (!sqlite3_get_autocommit(dir->db))
		sqlite3_exec(dir->db, "ROLLBACK", NULL, NULL, NULL);
}

int dir_abort(struct dir *dir)
{
	dir_rollback(dir);
	return -1;
}

void dir_strings_push(char ***strings, size_t *count, const char *s)
{
	*strings = xreallocarray(*strings, *count + 1, sizeof(**strings));
	(*strings)[(*count)++] = xstrdup(s);
}

void dir_strings_free(char ***strings, size_t count)
{
	if (*strings == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*strings)[i]);
	xfree(*strings);
}

/* The database holds password hashes: create it readable by its owner
 * only (SQLite gives the -wal and -shm files the same mode). */
static int dir_create_file(const char *db_path, const char **error_r)
{
	int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return open_fail(error_r, "cannot open the directory database %s: %s", db_path,
		                 strerror(errno));
	close(fd);
	return 0;
}

static const char *const dir_pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
};

/* Switching to WAL needs a moment alone with the file, and SQLite does not
 * always call the busy handler for it (several processes opening a new
 * database at once): retry for as long as the busy timeout. */
static int dir_exec_retry(struct dir *dir, const char *sql)
{
	int rc;
	for (int waited = 0;; waited += DIR_RETRY_SLEEP_MS) {
		rc = sqlite3_exec(dir->db, sql, NULL, NULL, NULL);
		int primary = rc & 0xff;
		if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) ||
		    waited >= DIR_BUSY_TIMEOUT_MS)
			break;
		usleep(DIR_RETRY_SLEEP_MS * 1000);
	}
	return rc;
}

static int dir_configure(struct dir *dir, const char *db_path, const char **error_r)
{
	sqlite3_busy_timeout(dir->db, DIR_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(dir->db, 1);
	for (size_t i = 0; i < sizeof(dir_pragmas) / sizeof(dir_pragmas[0]); i++) {
		if (dir_exec_retry(dir, dir_pragmas[i]) != SQLITE_OK)
			return open_fail(error_r, "cannot set up the directory database %s: %s",
			                 db_path, sqlite3_errmsg(dir->db));
	}
	return 0;
}

int dir_open(const char *db_path, struct dir **dir_r, const char **error_r)
{
	if (dir_create_file(db_path, error_r) < 0)
		return -1;
	struct dir *dir = xcalloc(1, sizeof(*dir));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(db_path, &dir->db, flags, NULL) != SQLITE_OK) {
		open_fail(error_r, "cannot open the directory database %s: %s", db_path,
		          dir->db != NULL ? sqlite3_errmsg(dir->db) : "out of memory");
		dir_close(&dir);
		return -1;
	}
	if (dir_configure(dir, db_path, error_r) < 0 || dir_migrate(dir, db_path, error_r) < 0) {
		if (*error_r == dir->error)
			open_fail(error_r, "%s", dir->error);
		dir_close(&dir);
		return -1;
	}
	*dir_r = dir;
	return 0;
}

void dir_close(struct dir **dirp)
{
	struct dir *dir = *dirp;
	if (dir == NULL)
		return;
	for (size_t i = 0; i < dir->stmt_count; i++)
		sqlite3_finalize(dir->stmts[i].stmt);
	sqlite3_close(dir->db);
	free(dir->error);
	free(dir);
	*dirp = NULL;
}

int dir_schema_version(struct dir *dir)
{
	return dir->version;
}
