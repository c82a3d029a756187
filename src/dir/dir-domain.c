#include "dir/dir-private.h"

#include <stdlib.h>
#include <time.h>

#include "lib/address.h"
#include "lib/xmalloc.h"

int dir_domain_id(struct dir *dir, const char *domain, int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir, "SELECT id FROM domains WHERE name = ?", error_r);
	if (stmt == NULL || dir_bind_text(stmt, 1, domain) < 0)
		return stmt == NULL ? -1 : dir_db_fail(dir, "looking up a domain", error_r);
	int rc = sqlite3_step(stmt);
	int ret = 1;
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(stmt, 0);
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = dir_db_fail(dir, "looking up a domain", error_r);
	sqlite3_reset(stmt);
	return ret;
}

int dir_domain_require(struct dir *dir, const char *domain, int64_t *id_r, const char **error_r)
{
	int ret = dir_domain_id(dir, domain, id_r, error_r);
	if (ret == 0)
		return dir_fail(dir, error_r,
		                "domain %s is not hosted here: add it with "
		                "'yubin domain add'",
		                domain);
	return ret < 0 ? -1 : 0;
}

/* Normalizes a domain argument; the error names the input's problem. */
static char *dir_domain_arg(struct dir *dir, const char *domain, const char **error_r)
{
	const char *why;
	char *name = domain_normalize(domain, &why);
	if (name == NULL)
		dir_fail(dir, error_r, "invalid domain: %s", why);
	return name;
}

static int dir_domain_insert(struct dir *dir, const char *name, const char **error_r)
{
	int64_t id;
	int ret = dir_domain_id(dir, name, &id, error_r);
	if (ret != 0)
		return ret < 0 ? -1
		               : dir_fail(dir, error_r, "domain %s is already hosted here", name);
	sqlite3_stmt *stmt =
	        dir_stmt(dir, "INSERT INTO domains (name, created) VALUES (?, ?)", error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, name) < 0 || dir_bind_int(stmt, 2, (int64_t)time(NULL)) < 0)
		return dir_db_fail(dir, "adding a domain", error_r);
	return dir_exec_stmt(dir, stmt, "adding a domain", error_r);
}

int dir_domain_add(struct dir *dir, const char *domain, const char **error_r)
{
	char *name = dir_domain_arg(dir, domain, error_r);
	if (name == NULL)
		return -1;
	int ret = dir_begin(dir, true, error_r);
	if (ret == 0) {
		ret = dir_domain_insert(dir, name, error_r);
		ret = ret < 0 ? dir_abort(dir) : dir_commit(dir, error_r);
	}
	free(name);
	return ret;
}

static int dir_domain_count(struct dir *dir, const char *sql, int64_t id, int64_t *count_r,
                            const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir, sql, error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_int(stmt, 1, id) < 0)
		return dir_db_fail(dir, "counting a domain's entries", error_r);
	return dir_query_int(dir, stmt, count_r, error_r);
}

static const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int dir_domain_delete(struct dir *dir, const char *name, const char **error_r)
{
	int64_t id, accounts, aliases;
	if (dir_domain_require(dir, name, &id, error_r) < 0 ||
	    dir_domain_count(dir, "SELECT COUNT(*) FROM accounts WHERE domain_id = ?", id,
	                     &accounts, error_r) < 0 ||
	    dir_domain_count(dir,
	                     "SELECT COUNT(DISTINCT address) FROM aliases "
	                     "WHERE domain_id = ?",
	                     id, &aliases, error_r) < 0)
		return -1;
	if (accounts > 0 || aliases > 0)
		return dir_fail(dir, error_r,
		                "domain %s still has %lld %s and %lld %s: "
		                "delete them first",
		                name, (long long)accounts, plural(accounts, "account", "accounts"),
		                (long long)aliases, plural(aliases, "alias", "aliases"));
	sqlite3_stmt *stmt = dir_stmt(dir, "DELETE FROM domains WHERE id = ?", error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_int(stmt, 1, id) < 0)
		return dir_db_fail(dir, "deleting a domain", error_r);
	return dir_exec_stmt(dir, stmt, "deleting a domain", error_r);
}

int dir_domain_del(struct dir *dir, const char *domain, const char **error_r)
{
	char *name = dir_domain_arg(dir, domain, error_r);
	if (name == NULL)
		return -1;
	int ret = dir_begin(dir, true, error_r);
	if (ret == 0) {
		ret = dir_domain_delete(dir, name, error_r);
		ret = ret < 0 ? dir_abort(dir) : dir_commit(dir, error_r);
	}
	free(name);
	return ret;
}

int dir_domain_exists(struct dir *dir, const char *domain, const char **error_r)
{
	const char *why;
	char *name = domain_normalize(domain, &why);
	if (name == NULL)
		return 0;
	int64_t id;
	int ret = dir_domain_id(dir, name, &id, error_r);
	free(name);
	return ret;
}

int dir_domain_list(struct dir *dir, char ***domains_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir, "SELECT name FROM domains ORDER BY name", error_r);
	if (stmt == NULL)
		return -1;
	char **names = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		dir_strings_push(&names, &count, (const char *)sqlite3_column_text(stmt, 0));
	if (rc != SQLITE_DONE) {
		dir_strings_free(&names, count);
		dir_db_fail(dir, "listing domains", error_r);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	*domains_r = names;
	*count_r = count;
	return 0;
}

sqlite3_stmt *dir_domain_filtered_stmt(struct dir *dir, const char *domain, const char *all_sql,
                                       const char *by_domain_sql, const char *what,
                                       const char **error_r)
{
	if (domain == NULL)
		return dir_stmt(dir, all_sql, error_r);
	const char *why;
	char *name = domain_normalize(domain, &why);
	if (name == NULL) {
		dir_fail(dir, error_r, "invalid domain: %s", why);
		return NULL;
	}
	int64_t id;
	int ret = dir_domain_require(dir, name, &id, error_r);
	free(name);
	if (ret < 0)
		return NULL;
	sqlite3_stmt *stmt = dir_stmt(dir, by_domain_sql, error_r);
	if (stmt != NULL && dir_bind_int(stmt, 1, id) < 0) {
		dir_db_fail(dir, what, error_r);
		return NULL;
	}
	return stmt;
}
