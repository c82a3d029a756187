#include "auth/auth.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test-auth-XXXXXX";

/* A hash made directly with libxcrypt, as an import from another system
 * would carry (low cost: this is a test). */
static char *make_hash(const char *prefix, unsigned long count, const char *password)
{
	char *salt = crypt_gensalt_ra(prefix, count, NULL, 0);
	CHECK(salt != NULL);
	void *data = NULL;
	int size = 0;
	const char *hash = salt != NULL ? crypt_ra(password, salt, &data, &size) : NULL;
	char *copy = hash != NULL ? xstrdup(hash) : xstrdup("*");
	free(data);
	free(salt);
	return copy;
}

static void test_hashes(void)
{
	char *hash = auth_hash_password("correct horse");
	CHECK(hash != NULL && strncmp(hash, "$y$", 3) == 0);
	CHECK(auth_verify_hash("correct horse", hash));
	CHECK(!auth_verify_hash("correct horsE", hash));
	CHECK(!auth_verify_hash("", hash));
	char *again = auth_hash_password("correct horse");
	CHECK(again != NULL && strcmp(hash, again) != 0); /* salted */
	free(again);
	free(hash);

	static const struct {
		const char *prefix;
		unsigned long count;
	} imports[] = {{"$2b$", 4}, {"$6$", 1000}, {"$y$", 0}};
	for (size_t i = 0; i < sizeof(imports) / sizeof(imports[0]); i++) {
		hash = make_hash(imports[i].prefix, imports[i].count, "s3cret");
		CHECK(strncmp(hash, imports[i].prefix, strlen(imports[i].prefix)) == 0);
		CHECK(auth_verify_hash("s3cret", hash));
		CHECK(!auth_verify_hash("s3cret!", hash));
		free(hash);
	}

	static const char *const locked[] = {"", "*", "!", "*LK*", "!$y$j9T$abc$def", "garbage"};
	for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++)
		CHECK(!auth_verify_hash("", locked[i]));
	CHECK(!auth_verify_hash("x", NULL));
}

static void test_allowed(void)
{
	struct yubin_config config;
	memset(&config, 0, sizeof(config));
	CHECK(auth_allowed(&config, true));
	CHECK(!auth_allowed(&config, false));
	config.auth.allow_plaintext = true;
	CHECK(auth_allowed(&config, false));
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return xstrdup("");
	static char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return xstrdup(text);
}

static struct dir *setup_dir(void)
{
	char *path = xasprintf("%s/yubin.db", tmpdir);
	struct dir *dir = NULL;
	const char *error = NULL;
	CHECK_INT(dir_open(path, &dir, &error), 0);
	free(path);
	CHECK_INT(dir_domain_add(dir, "example.org", &error), 0);
	char *hash = auth_hash_password("alice-pw");
	CHECK_INT(dir_account_add(dir, "alice@example.org", hash, "Alice", 0, 0, &error), 0);
	free(hash);
	hash = auth_hash_password("bob-pw");
	CHECK_INT(dir_account_add(dir, "bob@example.org", hash, "", 0, 0, &error), 0);
	free(hash);
	CHECK_INT(dir_account_set_enabled(dir, "bob@example.org", false, &error), 0);
	return dir;
}

static void test_password(void)
{
	struct dir *dir = setup_dir();
	struct auth_request req = {
	        .protocol = "pop3",
	        .session_id = "s1",
	        .remote_ip = "192.0.2.1",
	        .secured = true,
	        .mechanism = "PLAIN",
	};
	static const struct {
		const char *user;
		const char *password;
		enum auth_result want;
		const char *address;
	} cases[] = {
	        {"alice@example.org", "alice-pw", AUTH_OK, "alice@example.org"},
	        {"Alice@Example.ORG", "alice-pw", AUTH_OK, "alice@example.org"},
	        {"alice@example.org", "wrong", AUTH_FAILED, NULL},
	        {"alice@example.org", "", AUTH_FAILED, NULL},
	        {"alice", "alice-pw", AUTH_FAILED, NULL},
	        {"bob@example.org", "bob-pw", AUTH_DISABLED, NULL},
	        {"bob@example.org", "wrong", AUTH_FAILED, NULL},
	        {"nobody@example.org", "alice-pw", AUTH_FAILED, NULL},
	        {"x result=ok\r\n", "pw", AUTH_FAILED, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *address = (char *)"unset";
		enum auth_result got =
		        auth_password(dir, &req, cases[i].user, cases[i].password, &address);
		CHECK_INT(got, cases[i].want);
		if (cases[i].address != NULL) {
			CHECK_STR(address, cases[i].address);
			free(address);
		} else {
			CHECK(address == NULL);
		}
	}
	dir_close(&dir);
}

/* One line per attempt, the user name escaped, the password never. */
static void test_log(void)
{
	char *log_path = xasprintf("%s/auth.log", tmpdir);
	const char *error;
	CHECK_INT(log_open(log_path, LOG_LEVEL_INFO, "test-auth", &error), 0);
	test_password();
	log_open("stderr", LOG_LEVEL_ERROR, "test-auth", &error);
	char *text = read_file(log_path);
	CHECK(strstr(text, "auth session=s1 protocol=pop3 ip=192.0.2.1 mech=PLAIN "
	                   "user=\"alice@example.org\" result=ok") != NULL);
	CHECK(strstr(text, "warn: auth session=s1 protocol=pop3 ip=192.0.2.1 mech=PLAIN "
	                   "user=\"nobody@example.org\" result=failed") != NULL);
	CHECK(strstr(text, "user=\"bob@example.org\" result=disabled") != NULL);
	CHECK(strstr(text, "user=\"x result=ok\\x0d\\x0a\" result=failed") != NULL);
	CHECK(strstr(text, "alice-pw") == NULL);
	CHECK(strstr(text, "bob-pw") == NULL);
	free(text);
	free(log_path);
}

int main(void)
{
	const char *error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-auth", &error);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_hashes();
	test_allowed();
	test_log();
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	free(cmd);
	return test_report();
}
