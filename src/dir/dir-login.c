#include "dir/dir-private.h"

int dir_login_last(struct dir *dir, const char *address, const char *protocol, time_t *when_r,
                   const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "SELECT last FROM logins "
	                              "WHERE address = ? AND protocol = ?",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0 || dir_bind_text(stmt, 2, protocol) < 0)
		return dir_db_fail(dir, "reading the last login", error_r);
	int64_t last;
	if (dir_query_int(dir, stmt, &last, error_r) < 0)
		return -1;
	*when_r = (time_t)last;
	return 0;
}

int dir_login_record(struct dir *dir, const char *address, const char *protocol, time_t when,
                     const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "INSERT INTO logins (address, protocol, last) "
	                              "VALUES (?, ?, ?) ON CONFLICT (address, protocol) "
	                              "DO UPDATE SET last = excluded.last",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0 || dir_bind_text(stmt, 2, protocol) < 0 ||
	    dir_bind_int(stmt, 3, (int64_t)when) < 0)
		return dir_db_fail(dir, "recording a login", error_r);
	if (dir_exec_stmt(dir, stmt, "recording a login", error_r) == 0)
		return 0;
	if (sqlite3_extended_errcode(dir->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		return dir_fail(dir, error_r, "there is no account %s", address);
	return -1;
}
