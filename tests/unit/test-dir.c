#include "dir/dir.h"
#include "dir/dir-private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test-dir-XXXXXX";
static int db_counter;

static char *new_db_path(void)
{
	return xasprintf("%s/db%d.db", tmpdir, ++db_counter);
}

static struct dir *open_ok(const char *path)
{
	struct dir *dir = NULL;
	const char *error = NULL;
	if (dir_open(path, &dir, &error) < 0)
		fprintf(stderr, "dir_open: %s\n", error);
	CHECK(dir != NULL);
	return dir;
}

/* A fresh directory with example.org hosted. */
static struct dir *fixture(char **path_r)
{
	char *path = new_db_path();
	struct dir *dir = open_ok(path);
	const char *error;
	CHECK_INT(dir_domain_add(dir, "Example.ORG", &error), 0);
	if (path_r != NULL)
		*path_r = path;
	else
		free(path);
	return dir;
}

static void add_account(struct dir *dir, const char *address)
{
	const char *error = NULL;
	int ret = dir_account_add(dir, address, "$y$hash", "", 0, 0, &error);
	if (ret < 0)
		fprintf(stderr, "account_add %s: %s\n", address, error);
	CHECK_INT(ret, 0);
}

static void add_alias(struct dir *dir, const char *address, const char *target)
{
	const char *error = NULL;
	int ret = dir_alias_add(dir, address, target, &error);
	if (ret < 0)
		fprintf(stderr, "alias_add %s %s: %s\n", address, target, error);
	CHECK_INT(ret, 0);
}

static void test_migrations(void)
{
	char *path = new_db_path();
	struct dir *dir = open_ok(path);
	const char *error;
	CHECK_INT(dir_schema_version(dir), dir_migration_count);
	CHECK_INT(dir_domain_add(dir, "example.org", &error), 0);
	dir_close(&dir);
	CHECK(dir == NULL);

	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);

	dir = open_ok(path); /* reopen keeps data */
	CHECK_INT(dir_domain_exists(dir, "example.org", &error), 1);
	CHECK_INT(dir_schema_version(dir), dir_migration_count);
	dir_close(&dir);
	free(path);
}

/* A database left at version 1 by an older yubin is brought up to date,
 * and its data survives. */
static void test_migrate_old(void)
{
	char *path = new_db_path();
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, dir_migrations[0], NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
	                       "INSERT INTO domains (name, created) VALUES "
	                       "('old.example', 1); PRAGMA user_version = 1;",
	                       NULL, NULL, NULL),
	          SQLITE_OK);
	sqlite3_close(db);

	struct dir *dir = open_ok(path);
	const char *error;
	CHECK_INT(dir_schema_version(dir), dir_migration_count);
	CHECK_INT(dir_domain_exists(dir, "old.example", &error), 1);
	add_account(dir, "u@old.example");
	CHECK_INT(dir_login_record(dir, "u@old.example", "pop3", 1234, &error), 0);
	dir_close(&dir);
	free(path);
}

static void test_newer_refused(void)
{
	char *path = new_db_path();
	sqlite3 *db;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct dir *dir = NULL;
	const char *error = NULL;
	CHECK_INT(dir_open(path, &dir, &error), -1);
	CHECK(dir == NULL);
	CHECK(error != NULL && strstr(error, "schema version 999") != NULL);
	CHECK_INT(dir_open("/nonexistent/dir/yubin.db", &dir, &error), -1);
	CHECK(error != NULL && strstr(error, "/nonexistent/dir/yubin.db") != NULL);
	free(path);
}

static void test_domains(void)
{
	struct dir *dir = fixture(NULL);
	const char *error = NULL;
	CHECK_INT(dir_domain_add(dir, "example.org", &error), -1);
	CHECK_STR(error, "domain example.org is already hosted here");
	CHECK_INT(dir_domain_add(dir, "localhost", &error), -1);
	CHECK(strstr(error, "invalid domain") != NULL);
	CHECK_INT(dir_domain_add(dir, "b.example", &error), 0);
	CHECK_INT(dir_domain_exists(dir, "B.Example.", &error), 1);
	CHECK_INT(dir_domain_exists(dir, "c.example", &error), 0);
	CHECK_INT(dir_domain_exists(dir, "bad..name", &error), 0);

	char **names;
	size_t count;
	CHECK_INT(dir_domain_list(dir, &names, &count, &error), 0);
	CHECK_INT(count, 2);
	if (count == 2) {
		CHECK_STR(names[0], "b.example");
		CHECK_STR(names[1], "example.org");
	}
	dir_strings_free(&names, count);

	add_account(dir, "a@b.example");
	add_alias(dir, "x@b.example", "a@b.example");
	add_alias(dir, "x@b.example", "other@elsewhere.example");
	CHECK_INT(dir_domain_del(dir, "b.example", &error), -1);
	CHECK_STR(error, "domain b.example still has 1 account and 1 alias: delete them first");
	CHECK_INT(dir_account_del(dir, "a@b.example", &error), 0);
	CHECK_INT(dir_alias_del(dir, "x@b.example", NULL, &error), 0);
	CHECK_INT(dir_domain_del(dir, "b.example", &error), 0);
	CHECK_INT(dir_domain_del(dir, "b.example", &error), -1);
	CHECK(strstr(error, "not hosted here") != NULL);
	dir_close(&dir);
}

static void test_accounts(void)
{
	struct dir *dir = fixture(NULL);
	const char *error = NULL;
	CHECK_INT(dir_account_add(dir, "Alice@Example.org", "$y$a", "Alice", 1000, 10, &error), 0);
	CHECK_INT(dir_account_add(dir, "alice@example.org", "$y$a", NULL, 0, 0, &error), -1);
	CHECK_STR(error, "alice@example.org is already an account");
	CHECK_INT(dir_account_add(dir, "bob@nothosted.example", "$y$b", NULL, 0, 0, &error), -1);
	CHECK_STR(error, "domain nothosted.example is not hosted here: add it with "
	                 "'yubin domain add'");
	CHECK_INT(dir_account_add(dir, "a..b@example.org", "$y$b", NULL, 0, 0, &error), -1);
	CHECK(strstr(error, "invalid address") != NULL);
	add_account(dir, "bob@example.org");

	struct dir_account *acc = NULL;
	CHECK_INT(dir_account_lookup(dir, "ALICE@example.org", &acc, &error), 1);
	if (acc != NULL) {
		CHECK_STR(acc->address, "alice@example.org");
		CHECK_STR(acc->name, "Alice");
		CHECK_STR(acc->password_hash, "$y$a");
		CHECK_INT(acc->quota_bytes, 1000);
		CHECK_INT(acc->quota_messages, 10);
		CHECK(acc->enabled);
		CHECK(acc->created > 0);
	}
	dir_account_free(&acc);
	CHECK(acc == NULL);
	CHECK_INT(dir_account_lookup(dir, "nobody@example.org", &acc, &error), 0);
	CHECK_INT(dir_account_lookup(dir, "not an address", &acc, &error), 0);

	CHECK_INT(dir_account_set_password(dir, "alice@example.org", "$y$new", &error), 0);
	CHECK_INT(dir_account_set_quota(dir, "alice@example.org", 5, 6, &error), 0);
	CHECK_INT(dir_account_set_name(dir, "alice@example.org", "A. Smith", &error), 0);
	CHECK_INT(dir_account_set_enabled(dir, "alice@example.org", false, &error), 0);
	CHECK_INT(dir_account_set_enabled(dir, "nobody@example.org", false, &error), -1);
	CHECK_STR(error, "there is no account nobody@example.org");
	CHECK_INT(dir_account_set_quota(dir, "alice@example.org", UINT64_MAX, 0, &error), -1);
	CHECK_INT(dir_account_lookup(dir, "alice@example.org", &acc, &error), 1);
	if (acc != NULL) {
		CHECK_STR(acc->password_hash, "$y$new");
		CHECK_INT(acc->quota_bytes, 5);
		CHECK_INT(acc->quota_messages, 6);
		CHECK_STR(acc->name, "A. Smith");
		CHECK(!acc->enabled);
	}
	dir_account_free(&acc);

	CHECK_INT(dir_domain_add(dir, "other.example", &error), 0);
	add_account(dir, "carol@other.example");
	struct dir_account **list;
	size_t count;
	CHECK_INT(dir_account_list(dir, NULL, &list, &count, &error), 0);
	CHECK_INT(count, 3);
	if (count == 3) {
		CHECK_STR(list[0]->address, "alice@example.org");
		CHECK_STR(list[1]->address, "bob@example.org");
		CHECK_STR(list[2]->address, "carol@other.example");
	}
	dir_account_list_free(&list, count);
	CHECK_INT(dir_account_list(dir, "other.example", &list, &count, &error), 0);
	CHECK_INT(count, 1);
	dir_account_list_free(&list, count);
	CHECK_INT(dir_account_list(dir, "missing.example", &list, &count, &error), -1);

	CHECK_INT(dir_account_del(dir, "bob@example.org", &error), 0);
	CHECK_INT(dir_account_del(dir, "bob@example.org", &error), -1);
	CHECK_INT(dir_account_lookup(dir, "bob@example.org", &acc, &error), 0);
	dir_close(&dir);
}

static void test_aliases(void)
{
	struct dir *dir = fixture(NULL);
	const char *error = NULL;
	add_account(dir, "alice@example.org");
	add_alias(dir, "Postmaster@example.org", "alice@example.org");
	add_alias(dir, "postmaster@example.org", "Ext.User@Far.Example");
	CHECK_INT(dir_alias_add(dir, "postmaster@example.org", "alice@EXAMPLE.org", &error), -1);
	CHECK_STR(error, "the alias postmaster@example.org already points to alice@example.org");
	CHECK_INT(dir_alias_add(dir, "x@nothosted.example", "alice@example.org", &error), -1);
	CHECK(strstr(error, "not hosted here") != NULL);
	CHECK_INT(dir_alias_add(dir, "x@example.org", "bad target", &error), -1);
	CHECK(strstr(error, "invalid target") != NULL);
	CHECK_INT(dir_alias_add(dir, "x@example.org", "a+b@example.org", &error), -1);
	CHECK(strstr(error, "hosted domain") != NULL);
	CHECK_INT(dir_alias_add(dir, "x@example.org", "x@example.org", &error), -1);
	add_alias(dir, "x@example.org", "o'brien+tag@far.example");

	struct dir_alias *list;
	size_t count;
	CHECK_INT(dir_alias_list(dir, NULL, &list, &count, &error), 0);
	CHECK_INT(count, 3);
	if (count == 3) {
		CHECK_STR(list[0].address, "postmaster@example.org");
		CHECK_STR(list[0].target, "alice@example.org");
		CHECK_STR(list[1].target, "Ext.User@far.example");
		CHECK_STR(list[2].address, "x@example.org");
	}
	dir_alias_list_free(&list, count);
	CHECK_INT(dir_alias_list(dir, "example.org", &list, &count, &error), 0);
	CHECK_INT(count, 3);
	dir_alias_list_free(&list, count);

	CHECK_INT(dir_alias_del(dir, "postmaster@example.org", "nobody@example.org", &error), -1);
	CHECK_STR(error, "the alias postmaster@example.org does not point to nobody@example.org");
	CHECK_INT(dir_alias_del(dir, "postmaster@example.org", "ext.user@far.example", &error), -1);
	CHECK_INT(dir_alias_del(dir, "postmaster@example.org", "Ext.User@far.example", &error), 0);
	CHECK_INT(dir_alias_del(dir, "x@example.org", NULL, &error), 0);
	CHECK_INT(dir_alias_del(dir, "x@example.org", NULL, &error), -1);
	CHECK_STR(error, "there is no alias x@example.org");
	CHECK_INT(dir_alias_list(dir, NULL, &list, &count, &error), 0);
	CHECK_INT(count, 1);
	dir_alias_list_free(&list, count);
	dir_close(&dir);
}

static void test_conflicts(void)
{
	struct dir *dir = fixture(NULL);
	const char *error = NULL;
	add_account(dir, "alice@example.org");
	add_alias(dir, "info@example.org", "alice@example.org");
	CHECK_INT(dir_alias_add(dir, "alice@example.org", "bob@far.example", &error), -1);
	CHECK_STR(error, "alice@example.org is an account: an address cannot be both an "
	                 "account and an alias");
	CHECK_INT(dir_account_add(dir, "info@example.org", "$y$x", NULL, 0, 0, &error), -1);
	CHECK_STR(error, "info@example.org is already an alias: remove the alias first");
	dir_close(&dir);
}

struct resolve_want {
	const char *address;
	int ret;
	const char *accounts; /* space-separated, in order */
	const char *external;
};

static void join(char **strings, size_t count, char *out, size_t outsize)
{
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(out);
		snprintf(out + len, outsize - len, "%s%s", i > 0 ? " " : "", strings[i]);
	}
}

static void check_resolve(struct dir *dir, const struct resolve_want *want)
{
	char **accounts, **external;
	size_t n_accounts, n_external;
	const char *error = NULL;
	int ret = dir_resolve(dir, want->address, &accounts, &n_accounts, &external, &n_external,
	                      &error);
	CHECK_INT(ret, want->ret);
	char got[512];
	join(accounts, n_accounts, got, sizeof(got));
	CHECK_STR(got, want->accounts);
	join(external, n_external, got, sizeof(got));
	CHECK_STR(got, want->external);
	dir_strings_free(&accounts, n_accounts);
	dir_strings_free(&external, n_external);
}

static void test_resolve(void)
{
	struct dir *dir = fixture(NULL);
	add_account(dir, "alice@example.org");
	add_account(dir, "bob@example.org");
	add_account(dir, "carol@example.org");
	add_alias(dir, "team@example.org", "bob@example.org");
	add_alias(dir, "team@example.org", "alice@example.org");
	add_alias(dir, "all@example.org", "team@example.org");
	add_alias(dir, "all@example.org", "carol@example.org");
	add_alias(dir, "all@example.org", "alice@example.org");
	add_alias(dir, "all@example.org", "friend@far.example");
	/* a -> b -> a, and a also reaches carol */
	add_alias(dir, "loop-a@example.org", "carol@example.org");
	add_alias(dir, "loop-b@example.org", "loop-a@example.org");
	add_alias(dir, "loop-a@example.org", "loop-b@example.org");
	add_alias(dir, "stale@example.org", "gone@example.org");
	add_alias(dir, "stale@example.org", "bob@example.org");
	add_alias(dir, "fwd@example.org", "x@far.example");
	add_alias(dir, "fwd@example.org", "friend@far.example.");
	add_alias(dir, "fwd@example.org", "all@example.org");
	/* chains: 10 aliases deep still delivers, 11 is cut */
	add_alias(dir, "d1@example.org", "alice@example.org");
	for (int i = 2; i <= 11; i++) {
		char alias[64], target[64];
		snprintf(alias, sizeof(alias), "d%d@example.org", i);
		snprintf(target, sizeof(target), "d%d@example.org", i - 1);
		add_alias(dir, alias, target);
	}
	static const struct resolve_want wants[] = {
	        {"Alice@Example.org", 1, "alice@example.org", ""},
	        {"team@example.org", 1, "bob@example.org alice@example.org", ""},
	        {"all@example.org", 1, "bob@example.org alice@example.org carol@example.org",
	         "friend@far.example"},
	        {"loop-a@example.org", 1, "carol@example.org", ""},
	        {"loop-b@example.org", 1, "carol@example.org", ""},
	        {"stale@example.org", 1, "bob@example.org", ""},
	        {"fwd@example.org", 1, "bob@example.org alice@example.org carol@example.org",
	         "x@far.example friend@far.example"},
	        {"d10@example.org", 1, "alice@example.org", ""},
	        {"d11@example.org", 1, "", ""},
	        {"nobody@example.org", 0, "", ""},
	        {"alice@far.example", 0, "", ""},
	        {"not an address", 0, "", ""},
	};
	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
		check_resolve(dir, &wants[i]);
	dir_close(&dir);
}

static void test_logins(void)
{
	struct dir *dir = fixture(NULL);
	const char *error = NULL;
	add_account(dir, "alice@example.org");
	time_t when = 99;
	CHECK_INT(dir_login_last(dir, "alice@example.org", "pop3", &when, &error), 0);
	CHECK_INT(when, 0);
	CHECK_INT(dir_login_record(dir, "alice@example.org", "pop3", 1000, &error), 0);
	CHECK_INT(dir_login_record(dir, "alice@example.org", "pop3", 2000, &error), 0);
	CHECK_INT(dir_login_record(dir, "alice@example.org", "imap", 3000, &error), 0);
	CHECK_INT(dir_login_last(dir, "alice@example.org", "pop3", &when, &error), 0);
	CHECK_INT(when, 2000);
	CHECK_INT(dir_login_record(dir, "nobody@example.org", "pop3", 1, &error), -1);
	CHECK_STR(error, "there is no account nobody@example.org");
	/* logins go with the account */
	CHECK_INT(dir_account_del(dir, "alice@example.org", &error), 0);
	add_account(dir, "alice@example.org");
	CHECK_INT(dir_login_last(dir, "alice@example.org", "pop3", &when, &error), 0);
	CHECK_INT(when, 0);
	dir_close(&dir);
}

/* Two processes write at once (the CLI and `yubin deliver`): the busy
 * timeout and IMMEDIATE transactions make both succeed. */
static void concurrent_writer(const char *path, const char *prefix, int n)
{
	struct dir *dir = open_ok(path);
	const char *error;
	for (int i = 0; i < n; i++) {
		char address[64];
		snprintf(address, sizeof(address), "%s%d@example.org", prefix, i);
		if (dir_account_add(dir, address, "$y$x", NULL, 0, 0, &error) < 0) {
			fprintf(stderr, "concurrent add %s: %s\n", address, error);
			_exit(1);
		}
	}
	dir_close(&dir);
}

static void test_concurrent(void)
{
	char *path;
	struct dir *first = fixture(&path);
	struct dir *second = open_ok(path);
	const char *error;
	add_account(first, "one@example.org");
	struct dir_account *acc = NULL;
	CHECK_INT(dir_account_lookup(second, "one@example.org", &acc, &error), 1);
	dir_account_free(&acc);
	CHECK_INT(dir_account_add(second, "one@example.org", "$y$x", NULL, 0, 0, &error), -1);

	pid_t pid = fork();
	if (pid == 0) {
		concurrent_writer(path, "child", 40);
		_exit(0);
	}
	concurrent_writer(path, "parent", 40);
	int status = 0;
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	struct dir_account **list;
	size_t count;
	CHECK_INT(dir_account_list(second, "example.org", &list, &count, &error), 0);
	CHECK_INT(count, 81);
	dir_account_list_free(&list, count);
	dir_close(&first);
	dir_close(&second);
	free(path);
}

/* Several processes open (and so create and migrate) one new database at
 * the same moment, as `yubin deliver` runs may on a fresh install. */
static void test_concurrent_create(void)
{
	char *path = new_db_path();
	pid_t pids[8];
	for (size_t i = 0; i < 8; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct dir *dir = NULL;
			const char *error;
			if (dir_open(path, &dir, &error) < 0) {
				fprintf(stderr, "concurrent open: %s\n", error);
				_exit(1);
			}
			dir_close(&dir);
			_exit(0);
		}
	}
	for (size_t i = 0; i < 8; i++) {
		int status = 0;
		CHECK_INT(waitpid(pids[i], &status, 0), pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct dir *dir = open_ok(path);
	CHECK_INT(dir_schema_version(dir), dir_migration_count);
	dir_close(&dir);
	free(path);
}

static void cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	free(cmd);
}

int main(void)
{
	const char *error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-dir", &error);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_migrations();
	test_migrate_old();
	test_newer_refused();
	test_domains();
	test_accounts();
	test_aliases();
	test_conflicts();
	test_resolve();
	test_logins();
	test_concurrent();
	test_concurrent_create();
	cleanup();
	return test_report();
}
