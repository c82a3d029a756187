#include "dir/dir-private.h"

#include <stdlib.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* The schema, one step per version. Never edit a step that has shipped:
 * append a new one. Step i takes user_version i to i + 1. */
const char *const dir_migrations[] = {
        /* 1: domains, accounts, aliases. `role` leaves room for domain
         * administrators; every account starts as a plain user. */
        "CREATE TABLE domains ("
        "  id INTEGER PRIMARY KEY,"
        "  name TEXT UNIQUE NOT NULL,"
        "  created INTEGER NOT NULL);"
        "CREATE TABLE accounts ("
        "  id INTEGER PRIMARY KEY,"
        "  address TEXT UNIQUE NOT NULL,"
        "  domain_id INTEGER NOT NULL REFERENCES domains(id),"
        "  name TEXT NOT NULL DEFAULT '',"
        "  password_hash TEXT NOT NULL,"
        "  quota_bytes INTEGER NOT NULL DEFAULT 0,"
        "  quota_messages INTEGER NOT NULL DEFAULT 0,"
        "  enabled INTEGER NOT NULL DEFAULT 1,"
        "  role TEXT NOT NULL DEFAULT 'user',"
        "  created INTEGER NOT NULL);"
        "CREATE INDEX accounts_domain ON accounts(domain_id);"
        "CREATE TABLE aliases ("
        "  address TEXT NOT NULL,"
        "  target TEXT NOT NULL,"
        "  domain_id INTEGER NOT NULL REFERENCES domains(id),"
        "  PRIMARY KEY (address, target));"
        "CREATE INDEX aliases_domain ON aliases(domain_id);",

        /* 2: last login per account and protocol, for POP3 LOGIN-DELAY. */
        "CREATE TABLE logins ("
        "  address TEXT NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,"
        "  protocol TEXT NOT NULL,"
        "  last INTEGER NOT NULL,"
        "  PRIMARY KEY (address, protocol));",

        /* 3: routing settings per account (forwarding, closed account,
         * vacation). No row = receive normally, vacation off. forward_to
         * holds the validated targets one per line (an address has no
         * line break). */
        "CREATE TABLE routing ("
        "  address TEXT PRIMARY KEY REFERENCES accounts(address) ON DELETE CASCADE,"
        "  mode TEXT NOT NULL DEFAULT 'normal',"
        "  forward_to TEXT NOT NULL DEFAULT '',"
        "  keep_copy INTEGER NOT NULL DEFAULT 0,"
        "  close_reason TEXT NOT NULL DEFAULT '',"
        "  vacation_enabled INTEGER NOT NULL DEFAULT 0,"
        "  vacation_subject TEXT NOT NULL DEFAULT '',"
        "  vacation_body TEXT NOT NULL DEFAULT '',"
        "  vacation_days INTEGER NOT NULL DEFAULT 7);",
};

const int dir_migration_count = (int)(sizeof(dir_migrations) / sizeof(dir_migrations[0]));

static int dir_read_version(struct dir *dir, int *version_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	if (sqlite3_prepare_v2(dir->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
		return dir_db_fail(dir, "reading the schema version", error_r);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return dir_db_fail(dir, "reading the schema version", error_r);
	return 0;
}

static int dir_check_version(struct dir *dir, const char *db_path, int version,
                             const char **error_r)
{
	if (version >= 0 && version <= dir_migration_count)
		return 0;
	return dir_fail(dir, error_r,
	                "the directory database %s has schema version %d, but this yubin "
	                "knows only versions up to %d: run a newer yubin (or restore a backup)",
	                db_path, version, dir_migration_count);
}

/* Applies step `step` in its own transaction. The version is read again
 * inside the transaction: another process may have migrated meanwhile. */
static int dir_apply_step(struct dir *dir, const char *db_path, int step, const char **error_r)
{
	int version;
	if (dir_begin(dir, true, error_r) < 0)
		return -1;
	if (dir_read_version(dir, &version, error_r) < 0)
		return dir_abort(dir);
	if (version > step)
		return dir_commit(dir, error_r);
	if (sqlite3_exec(dir->db, dir_migrations[step], NULL, NULL, NULL) != SQLITE_OK) {
		dir_fail(dir, error_r,
		         "upgrading the directory database %s to version %d "
		         "failed: %s",
		         db_path, step + 1, sqlite3_errmsg(dir->db));
		return dir_abort(dir);
	}
	/* PRAGMA takes no parameters; the number is ours, not user input. */
	char *sql = xasprintf("PRAGMA user_version = %d", step + 1);
	int rc = sqlite3_exec(dir->db, sql, NULL, NULL, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		dir_db_fail(dir, "recording the schema version", error_r);
		return dir_abort(dir);
	}
	return dir_commit(dir, error_r);
}

int dir_migrate(struct dir *dir, const char *db_path, const char **error_r)
{
	int version;
	if (dir_read_version(dir, &version, error_r) < 0 ||
	    dir_check_version(dir, db_path, version, error_r) < 0)
		return -1;
	for (int step = version; step < dir_migration_count; step++) {
		if (dir_apply_step(dir, db_path, step, error_r) < 0)
			return -1;
	}
	if (dir_read_version(dir, &dir->version, error_r) < 0 ||
	    dir_check_version(dir, db_path, dir->version, error_r) < 0)
		return -1;
	if (dir->version != version)
		log_info("dir migrate db=%s from=%d to=%d", db_path, version, dir->version);
	return 0;
}
