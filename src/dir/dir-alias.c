#include "dir/dir-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/xmalloc.h"

#define LOCAL_PART_MAX 64

/* RFC 5321 atext: what a dot-atom local part may hold besides '.'. */
static bool is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static const char *dot_atom_check(const char *local, size_t len)
{
	if (len == 0 || len > LOCAL_PART_MAX)
		return "its local part must be 1 to 64 characters long";
	if (local[0] == '.' || local[len - 1] == '.')
		return "its local part starts or ends with '.'";
	for (size_t i = 0; i < len; i++) {
		if (local[i] == '.' && local[i + 1] == '.')
			return "its local part has two dots in a row";
		if (local[i] != '.' && !is_atext((unsigned char)local[i]))
			return "its local part has a character that needs quoting";
	}
	return NULL;
}

/* External targets keep the case of their local part (only the receiving
 * host may interpret it); the domain is lower-cased. */
static char *external_target_normalize(const char *target, const char **why_r)
{
	const char *at = strrchr(target, '@');
	if (at == NULL || memchr(target, '@', (size_t)(at - target)) != NULL) {
		*why_r = "it needs exactly one '@'";
		return NULL;
	}
	*why_r = dot_atom_check(target, (size_t)(at - target));
	if (*why_r != NULL)
		return NULL;
	char *domain = domain_normalize(at + 1, why_r);
	if (domain == NULL)
		return NULL;
	char *result = xasprintf("%.*s@%s", (int)(at - target), target, domain);
	free(domain);
	return result;
}

/* A target in a hosted domain must be a valid account or alias address
 * (the strict rule); any other target only needs to be a valid address. */
static char *dir_target_arg(struct dir *dir, const char *target, const char **error_r)
{
	const char *why;
	char *normalized = external_target_normalize(target, &why);
	if (normalized == NULL) {
		dir_fail(dir, error_r, "invalid target address: %s", why);
		return NULL;
	}
	int64_t id;
	int hosted = dir_domain_id(dir, address_domain(normalized), &id, error_r);
	if (hosted == 0)
		return normalized;
	free(normalized);
	if (hosted < 0)
		return NULL;
	normalized = address_normalize(target, &why);
	if (normalized == NULL)
		dir_fail(dir, error_r, "invalid target address in a hosted domain: %s", why);
	return normalized;
}

static char *dir_alias_arg(struct dir *dir, const char *address, const char **error_r)
{
	const char *why;
	char *normalized = address_normalize(address, &why);
	if (normalized == NULL)
		dir_fail(dir, error_r, "invalid alias address: %s", why);
	return normalized;
}

static int dir_alias_pair_exists(struct dir *dir, const char *address, const char *target,
                                 const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "SELECT EXISTS (SELECT 1 FROM aliases "
	                              "WHERE address = ? AND target = ?)",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0 || dir_bind_text(stmt, 2, target) < 0)
		return dir_db_fail(dir, "looking up an alias", error_r);
	int64_t found;
	if (dir_query_int(dir, stmt, &found, error_r) < 0)
		return -1;
	return found != 0 ? 1 : 0;
}

static int dir_alias_check_new(struct dir *dir, const char *address, const char *target,
                               int64_t *domain_id_r, const char **error_r)
{
	if (strcmp(address, target) == 0)
		return dir_fail(dir, error_r, "an alias cannot point to itself");
	if (dir_domain_require(dir, address_domain(address), domain_id_r, error_r) < 0)
		return -1;
	int ret = dir_is_account(dir, address, error_r);
	if (ret != 0)
		return ret < 0 ? -1
		               : dir_fail(dir, error_r,
		                          "%s is an account: an address "
		                          "cannot be both an account and an alias",
		                          address);
	ret = dir_alias_pair_exists(dir, address, target, error_r);
	if (ret != 0)
		return ret < 0 ? -1
		               : dir_fail(dir, error_r, "the alias %s already points to %s",
		                          address, target);
	return 0;
}

static int dir_alias_insert(struct dir *dir, const char *address, const char *target,
                            const char **error_r)
{
	int64_t domain_id;
	if (dir_alias_check_new(dir, address, target, &domain_id, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "INSERT INTO aliases (address, target, domain_id) "
	                              "VALUES (?, ?, ?)",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0 || dir_bind_text(stmt, 2, target) < 0 ||
	    dir_bind_int(stmt, 3, domain_id) < 0)
		return dir_db_fail(dir, "adding an alias", error_r);
	return dir_exec_stmt(dir, stmt, "adding an alias", error_r);
}

/* Normalizes both arguments inside the transaction (whether a target's
 * domain is hosted is read from the database). */
static int dir_alias_add_locked(struct dir *dir, const char *address, const char *target,
                                const char **error_r)
{
	char *alias = dir_alias_arg(dir, address, error_r);
	if (alias == NULL)
		return -1;
	char *dest = dir_target_arg(dir, target, error_r);
	int ret = dest == NULL ? -1 : dir_alias_insert(dir, alias, dest, error_r);
	free(alias);
	free(dest);
	return ret;
}

int dir_alias_add(struct dir *dir, const char *address, const char *target, const char **error_r)
{
	if (dir_begin(dir, true, error_r) < 0)
		return -1;
	if (dir_alias_add_locked(dir, address, target, error_r) < 0)
		return dir_abort(dir);
	return dir_commit(dir, error_r);
}

static int dir_alias_delete(struct dir *dir, const char *alias, const char *dest,
                            const char **error_r)
{
	sqlite3_stmt *stmt =
	        dest == NULL ? dir_stmt(dir, "DELETE FROM aliases WHERE address = ?", error_r)
	                     : dir_stmt(dir, "DELETE FROM aliases WHERE address = ? AND target = ?",
	                                error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, alias) < 0 || (dest != NULL && dir_bind_text(stmt, 2, dest) < 0))
		return dir_db_fail(dir, "deleting an alias", error_r);
	if (dir_exec_stmt(dir, stmt, "deleting an alias", error_r) < 0)
		return -1;
	if (sqlite3_changes(dir->db) > 0)
		return 0;
	if (dest == NULL)
		return dir_fail(dir, error_r, "there is no alias %s", alias);
	return dir_fail(dir, error_r, "the alias %s does not point to %s", alias, dest);
}

int dir_alias_del(struct dir *dir, const char *address, const char *target, const char **error_r)
{
	char *alias = dir_alias_arg(dir, address, error_r);
	if (alias == NULL)
		return -1;
	char *dest = NULL;
	int ret = 0;
	if (target != NULL) {
		dest = dir_target_arg(dir, target, error_r);
		ret = dest == NULL ? -1 : 0;
	}
	if (ret == 0)
		ret = dir_alias_delete(dir, alias, dest, error_r);
	free(alias);
	free(dest);
	return ret;
}

int dir_alias_targets(struct dir *dir, const char *address, char ***targets_r, size_t *count_r,
                      const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "SELECT target FROM aliases WHERE address = ? "
	                              "ORDER BY rowid",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0)
		return dir_db_fail(dir, "reading an alias", error_r);
	char **targets = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		dir_strings_push(&targets, &count, (const char *)sqlite3_column_text(stmt, 0));
	if (rc != SQLITE_DONE) {
		dir_strings_free(&targets, count);
		dir_db_fail(dir, "reading an alias", error_r);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	*targets_r = targets;
	*count_r = count;
	return count > 0 ? 1 : 0;
}

static sqlite3_stmt *dir_alias_list_stmt(struct dir *dir, const char *domain, const char **error_r)
{
	return dir_domain_filtered_stmt(dir, domain,
	                                "SELECT address, target FROM aliases "
	                                "ORDER BY address, rowid",
	                                "SELECT address, target FROM aliases "
	                                "WHERE domain_id = ? ORDER BY address, rowid",
	                                "listing aliases", error_r);
}

int dir_alias_list(struct dir *dir, const char *domain, struct dir_alias **aliases_r,
                   size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = dir_alias_list_stmt(dir, domain, error_r);
	if (stmt == NULL)
		return -1;
	struct dir_alias *list = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		list = xreallocarray(list, count + 1, sizeof(*list));
		list[count].address = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		list[count].target = xstrdup((const char *)sqlite3_column_text(stmt, 1));
		count++;
	}
	if (rc != SQLITE_DONE) {
		dir_alias_list_free(&list, count);
		dir_db_fail(dir, "listing aliases", error_r);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	*aliases_r = list;
	*count_r = count;
	return 0;
}

void dir_alias_list_free(struct dir_alias **aliases, size_t count)
{
	if (*aliases == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*aliases)[i].address);
		free((*aliases)[i].target);
	}
	xfree(*aliases);
}
