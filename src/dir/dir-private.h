/* Inside the SQLite directory backend: the handle, cached prepared
 * statements, transactions and error strings shared by the files of src/dir/. */
#ifndef YUBIN_DIR_PRIVATE_H
#define YUBIN_DIR_PRIVATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "dir/dir.h"

#define DIR_STMT_CACHE_MAX 48
/* Alias chains longer than this are cut by dir_resolve. */
#define DIR_RESOLVE_MAX_DEPTH 10

struct dir_stmt_slot {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct dir {
	sqlite3 *db;
	int version;
	/* The text of the last error; *error_r points here until the next
	 * failing call on this handle or dir_close. */
	char *error;
	struct dir_stmt_slot stmts[DIR_STMT_CACHE_MAX];
	size_t stmt_count;
};

/* Migrations (dir-migrate.c): step i takes the schema from version i to
 * i + 1; PRAGMA user_version records how many were applied. */
extern const char *const dir_migrations[];
extern const int dir_migration_count;
int dir_migrate(struct dir *dir, const char *db_path, const char **error_r);

/* A cached prepared statement for sql (a string literal), reset and with
 * its bindings cleared; NULL on error. */
sqlite3_stmt *dir_stmt(struct dir *dir, const char *sql, const char **error_r);

/* Formats an error into dir->error; always returns -1. */
int dir_fail(struct dir *dir, const char **error_r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A database error: the SQLite message, prefixed with what was being done. */
int dir_db_fail(struct dir *dir, const char *doing, const char **error_r);

/* BEGIN IMMEDIATE for changes (check-then-write without a race between
 * processes), plain BEGIN for consistent reads. */
int dir_begin(struct dir *dir, bool write, const char **error_r);
int dir_commit(struct dir *dir, const char **error_r);
void dir_rollback(struct dir *dir);
/* Rolls back and returns -1: the common error exit inside a transaction. */
int dir_abort(struct dir *dir);

/* Binds text or an integer; the statement is stepped by the caller. */
int dir_bind_text(sqlite3_stmt *stmt, int idx, const char *text);
int dir_bind_int(sqlite3_stmt *stmt, int idx, int64_t value);

/* Runs a statement that returns no rows (or whose rows are ignored). */
int dir_exec_stmt(struct dir *dir, sqlite3_stmt *stmt, const char *doing, const char **error_r);
/* Runs a query whose single row holds one integer (COUNT, EXISTS...). */
int dir_query_int(struct dir *dir, sqlite3_stmt *stmt, int64_t *value_r, const char **error_r);

/* Row id of a hosted domain (normalized name): 1, 0 or -1. */
int dir_domain_id(struct dir *dir, const char *domain, int64_t *id_r, const char **error_r);
/* Like dir_domain_id, but a missing domain is an error that says how to
 * add it. */
int dir_domain_require(struct dir *dir, const char *domain, int64_t *id_r, const char **error_r);
/* all_sql when domain is NULL; otherwise by_domain_sql with the domain's id
 * bound to parameter 1 (an unknown or invalid domain is an error). */
sqlite3_stmt *dir_domain_filtered_stmt(struct dir *dir, const char *domain, const char *all_sql,
                                       const char *by_domain_sql, const char *what,
                                       const char **error_r);
/* Whether address is an account / has alias rows: 1, 0 or -1. */
int dir_is_account(struct dir *dir, const char *address, const char **error_r);
int dir_is_alias(struct dir *dir, const char *address, const char **error_r);
/* Every target of an alias (0 when address is no alias). */
int dir_alias_targets(struct dir *dir, const char *address, char ***targets_r, size_t *count_r,
                      const char **error_r);

/* Appends a copy of s to a growing string array. */
void dir_strings_push(char ***strings, size_t *count, const char *s);

#endif
