#include "dir/dir-private.h"

#include <stdlib.h>
#include <time.h>

#include "lib/address.h"
#include "lib/xmalloc.h"

#define ACCOUNT_COLUMNS \
	"address, name, password_hash, quota_bytes, quota_messages, enabled, created"

/* Normalizes an address argument; the error names the input's problem. */
static char *dir_address_arg(struct dir *dir, const char *address, const char **error_r)
{
	const char *why;
	char *normalized = address_normalize(address, &why);
	if (normalized == NULL)
		dir_fail(dir, error_r, "invalid address: %s", why);
	return normalized;
}

static int dir_address_exists(struct dir *dir, const char *sql, const char *address,
                              const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir, sql, error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0)
		return dir_db_fail(dir, "looking up an address", error_r);
	int64_t found;
	if (dir_query_int(dir, stmt, &found, error_r) < 0)
		return -1;
	return found != 0 ? 1 : 0;
}

int dir_is_account(struct dir *dir, const char *address, const char **error_r)
{
	return dir_address_exists(dir,
	                          "SELECT EXISTS (SELECT 1 FROM accounts "
	                          "WHERE address = ?)",
	                          address, error_r);
}

int dir_is_alias(struct dir *dir, const char *address, const char **error_r)
{
	return dir_address_exists(dir,
	                          "SELECT EXISTS (SELECT 1 FROM aliases "
	                          "WHERE address = ?)",
	                          address, error_r);
}

/* SQLite integers are signed: larger quotas would come back negative. */
static int dir_check_quota(struct dir *dir, uint64_t bytes, uint64_t messages, const char **error_r)
{
	if (bytes > INT64_MAX || messages > INT64_MAX)
		return dir_fail(dir, error_r, "the quota is too large");
	return 0;
}

struct account_new {
	const char *address;
	const char *password_hash;
	const char *name;
	uint64_t quota_bytes;
	uint64_t quota_messages;
};

static int dir_account_check_new(struct dir *dir, const char *address, int64_t *domain_id_r,
                                 const char **error_r)
{
	if (dir_domain_require(dir, address_domain(address), domain_id_r, error_r) < 0)
		return -1;
	int ret = dir_is_account(dir, address, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : dir_fail(dir, error_r, "%s is already an account", address);
	ret = dir_is_alias(dir, address, error_r);
	if (ret != 0)
		return ret < 0 ? -1
		               : dir_fail(dir, error_r,
		                          "%s is already an alias: remove "
		                          "the alias first",
		                          address);
	return 0;
}

static int dir_account_insert(struct dir *dir, const struct account_new *acc, const char **error_r)
{
	int64_t domain_id;
	if (dir_account_check_new(dir, acc->address, &domain_id, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "INSERT INTO accounts (address, domain_id, name, "
	                              "password_hash, quota_bytes, quota_messages, enabled, "
	                              "created) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, acc->address) < 0 || dir_bind_int(stmt, 2, domain_id) < 0 ||
	    dir_bind_text(stmt, 3, acc->name) < 0 ||
	    dir_bind_text(stmt, 4, acc->password_hash) < 0 ||
	    dir_bind_int(stmt, 5, (int64_t)acc->quota_bytes) < 0 ||
	    dir_bind_int(stmt, 6, (int64_t)acc->quota_messages) < 0 ||
	    dir_bind_int(stmt, 7, (int64_t)time(NULL)) < 0)
		return dir_db_fail(dir, "adding an account", error_r);
	return dir_exec_stmt(dir, stmt, "adding an account", error_r);
}

int dir_account_add(struct dir *dir, const char *address, const char *password_hash,
                    const char *name, uint64_t quota_bytes, uint64_t quota_messages,
                    const char **error_r)
{
	if (password_hash == NULL || password_hash[0] == '\0')
		return dir_fail(dir, error_r, "an account needs a password hash");
	if (dir_check_quota(dir, quota_bytes, quota_messages, error_r) < 0)
		return -1;
	struct account_new acc = {
	        .password_hash = password_hash,
	        .name = name != NULL ? name : "",
	        .quota_bytes = quota_bytes,
	        .quota_messages = quota_messages,
	};
	char *normalized = dir_address_arg(dir, address, error_r);
	if (normalized == NULL)
		return -1;
	acc.address = normalized;
	int ret = dir_begin(dir, true, error_r);
	if (ret == 0) {
		ret = dir_account_insert(dir, &acc, error_r);
		ret = ret < 0 ? dir_abort(dir) : dir_commit(dir, error_r);
	}
	free(normalized);
	return ret;
}

/* Runs an UPDATE or DELETE whose last parameter is the address; the
 * values before it are bound by the caller. Fails when no account
 * matched. */
static int dir_account_change(struct dir *dir, sqlite3_stmt *stmt, int address_idx,
                              const char *address, const char **error_r)
{
	char *normalized = dir_address_arg(dir, address, error_r);
	if (normalized == NULL)
		return -1;
	int ret = 0;
	if (dir_bind_text(stmt, address_idx, normalized) < 0)
		ret = dir_db_fail(dir, "changing an account", error_r);
	if (ret == 0)
		ret = dir_exec_stmt(dir, stmt, "changing an account", error_r);
	if (ret == 0 && sqlite3_changes(dir->db) == 0)
		ret = dir_fail(dir, error_r, "there is no account %s", normalized);
	free(normalized);
	return ret;
}

int dir_account_del(struct dir *dir, const char *address, const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir, "DELETE FROM accounts WHERE address = ?", error_r);
	if (stmt == NULL)
		return -1;
	return dir_account_change(dir, stmt, 1, address, error_r);
}

int dir_account_set_password(struct dir *dir, const char *address, const char *password_hash,
                             const char **error_r)
{
	if (password_hash == NULL || password_hash[0] == '\0')
		return dir_fail(dir, error_r, "an account needs a password hash");
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "UPDATE accounts SET password_hash = ? "
	                              "WHERE address = ?",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, password_hash) < 0)
		return dir_db_fail(dir, "changing a password", error_r);
	return dir_account_change(dir, stmt, 2, address, error_r);
}

int dir_account_set_quota(struct dir *dir, const char *address, uint64_t bytes, uint64_t messages,
                          const char **error_r)
{
	if (dir_check_quota(dir, bytes, messages, error_r) < 0)
		return -1;
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "UPDATE accounts SET quota_bytes = ?, "
	                              "quota_messages = ? WHERE address = ?",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_int(stmt, 1, (int64_t)bytes) < 0 ||
	    dir_bind_int(stmt, 2, (int64_t)messages) < 0)
		return dir_db_fail(dir, "changing a quota", error_r);
	return dir_account_change(dir, stmt, 3, address, error_r);
}

int dir_account_set_name(struct dir *dir, const char *address, const char *name,
                         const char **error_r)
{
	sqlite3_stmt *stmt =
	        dir_stmt(dir, "UPDATE accounts SET name = ? WHERE address = ?", error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, name != NULL ? name : "") < 0)
		return dir_db_fail(dir, "changing a name", error_r);
	return dir_account_change(dir, stmt, 2, address, error_r);
}

int dir_account_set_enabled(struct dir *dir, const char *address, bool enabled,
                            const char **error_r)
{
	sqlite3_stmt *stmt =
	        dir_stmt(dir, "UPDATE accounts SET enabled = ? WHERE address = ?", error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_int(stmt, 1, enabled ? 1 : 0) < 0)
		return dir_db_fail(dir, "enabling or disabling an account", error_r);
	return dir_account_change(dir, stmt, 2, address, error_r);
}

static const char *column_str(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);
	return text != NULL ? (const char *)text : "";
}

static struct dir_account *dir_account_from_row(sqlite3_stmt *stmt)
{
	struct dir_account *acc = xcalloc(1, sizeof(*acc));
	acc->address = xstrdup(column_str(stmt, 0));
	acc->name = xstrdup(column_str(stmt, 1));
	acc->password_hash = xstrdup(column_str(stmt, 2));
	acc->quota_bytes = (uint64_t)sqlite3_column_int64(stmt, 3);
	acc->quota_messages = (uint64_t)sqlite3_column_int64(stmt, 4);
	acc->enabled = sqlite3_column_int(stmt, 5) != 0;
	acc->created = (time_t)sqlite3_column_int64(stmt, 6);
	return acc;
}

static int dir_account_fetch(struct dir *dir, const char *address, struct dir_account **account_r,
                             const char **error_r)
{
	sqlite3_stmt *stmt = dir_stmt(dir,
	                              "SELECT " ACCOUNT_COLUMNS " FROM accounts "
	                              "WHERE address = ?",
	                              error_r);
	if (stmt == NULL)
		return -1;
	if (dir_bind_text(stmt, 1, address) < 0)
		return dir_db_fail(dir, "looking up an account", error_r);
	int rc = sqlite3_step(stmt), ret = 1;
	if (rc == SQLITE_ROW)
		*account_r = dir_account_from_row(stmt);
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = dir_db_fail(dir, "looking up an account", error_r);
	sqlite3_reset(stmt);
	return ret;
}

int dir_account_lookup(struct dir *dir, const char *address, struct dir_account **account_r,
                       const char **error_r)
{
	/* An address that cannot be an account is simply not found. */
	const char *why;
	char *normalized = address_normalize(address, &why);
	if (normalized == NULL)
		return 0;
	int ret = dir_account_fetch(dir, normalized, account_r, error_r);
	free(normalized);
	return ret;
}

static sqlite3_stmt *dir_account_list_stmt(struct dir *dir, const char *domain,
                                           const char **error_r)
{
	return dir_domain_filtered_stmt(dir, domain,
	                                "SELECT " ACCOUNT_COLUMNS " FROM accounts "
	                                "ORDER BY address",
	                                "SELECT " ACCOUNT_COLUMNS " FROM accounts "
	                                "WHERE domain_id = ? ORDER BY address",
	                                "listing accounts", error_r);
}

int dir_account_list(struct dir *dir, const char *domain, struct dir_account ***accounts_r,
                     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt = dir_account_list_stmt(dir, domain, error_r);
	if (stmt == NULL)
		return -1;
	struct dir_account **list = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		list = xreallocarray(list, count + 1, sizeof(*list));
		list[count++] = dir_account_from_row(stmt);
	}
	if (rc != SQLITE_DONE) {
		dir_account_list_free(&list, count);
		dir_db_fail(dir, "listing accounts", error_r);
		sqlite3_reset(stmt);
		return -1;
	}
	sqlite3_reset(stmt);
	*accounts_r = list;
	*count_r = count;
	return 0;
}

void dir_account_free(struct dir_account **accountp)
{
	struct dir_account *acc = *accountp;
	if (acc == NULL)
		return;
	free(acc->address);
	free(acc->name);
	free(acc->password_hash);
	free(acc);
	*accountp = NULL;
}

void dir_account_list_free(struct dir_account ***accounts, size_t count)
{
	if (*accounts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		dir_account_free(&(*accounts)[i]);
	xfree(*accounts);
}
