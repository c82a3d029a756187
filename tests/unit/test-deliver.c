#include "deliver/deliver.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "store/store.h"
#include "test.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp_root;
static struct yubin_config config;
static struct dir *dir;

/* A message in an unlinked temp file, left positioned at its end (deliver
 * must read from offset 0 anyway). */
static int message_fd(const char *data, size_t len)
{
	char *path = xasprintf("%s/msg-XXXXXX", tmp_root);
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	free(path);
	CHECK_INT(write(fd, data, len), (long long)len);
	return fd;
}

/* The INBOX messages of an account, as count and the last one's bytes. */
static size_t inbox_count(const char *address, char **last_r, size_t *len_r)
{
	char *root = store_account_root(config.server.data_dir, address);
	struct store *store = NULL;
	const char *error;
	size_t count = 0;
	if (last_r != NULL)
		*last_r = NULL;
	if (access(root, F_OK) < 0 || store_open(root, &store, &error) < 0) {
		free(root);
		return 0;
	}
	struct store_msg *msgs;
	enum store_error err;
	if (store_msg_list(store, "INBOX", &msgs, &count, &err, &error) == 0) {
		if (count > 0 && last_r != NULL) {
			int fd = store_msg_open(store, "INBOX", msgs[count - 1].uid, &err, &error);
			size_t cap = (size_t)msgs[count - 1].size + 1;
			*last_r = xmalloc(cap);
			ssize_t n = pread(fd, *last_r, cap, 0);
			*len_r = n < 0 ? 0 : (size_t)n;
			close(fd);
		}
		store_msg_list_free(&msgs, count);
	}
	store_close(&store);
	free(root);
	return count;
}

static enum deliver_status deliver(const char *const *rcpts, size_t count, const char *data,
                                   struct deliver_result *results)
{
	int fd = message_fd(data, strlen(data));
	enum deliver_status status = deliver_message(&config, dir, fd, rcpts, count, results);
	close(fd);
	return status;
}

static void setup_directory(void)
{
	const char *error = NULL;
	char *path = xasprintf("%s/yubin.db", tmp_root);
	CHECK_INT(dir_open(path, &dir, &error), 0);
	free(path);
	if (dir == NULL) {
		fprintf(stderr, "dir_open: %s\n", error);
		exit(1);
	}
	CHECK_INT(dir_domain_add(dir, "example.test", &error), 0);
	static const struct {
		const char *address;
		uint64_t quota_bytes, quota_messages;
	} accounts[] = {
	        {"alice@example.test", 0, 0},
	        {"bob@example.test", 0, 0},
	        {"small@example.test", 40, 0},
	        {"few@example.test", 0, 1},
	};
	for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++)
		CHECK_INT(dir_account_add(dir, accounts[i].address, "$y$hash", "",
		                          accounts[i].quota_bytes, accounts[i].quota_messages,
		                          &error),
		          0);
	CHECK_INT(dir_alias_add(dir, "team@example.test", "alice@example.test", &error), 0);
	CHECK_INT(dir_alias_add(dir, "team@example.test", "bob@example.test", &error), 0);
	CHECK_INT(dir_alias_add(dir, "all@example.test", "team@example.test", &error), 0);
	CHECK_INT(dir_alias_add(dir, "all@example.test", "alice@example.test", &error), 0);
	CHECK_INT(dir_alias_add(dir, "fwd@example.test", "someone@elsewhere.test", &error), 0);
	CHECK_INT(dir_alias_add(dir, "fwd@example.test", "bob@example.test", &error), 0);
}

static void test_exit_codes(void)
{
	static const struct {
		enum deliver_status status;
		int code;
	} cases[] = {
	        {DELIVER_OK, 0},
	        {DELIVER_UNKNOWN_USER, 67},
	        {DELIVER_TEMPFAIL, 75},
	        {DELIVER_PERMFAIL, 77},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_INT(deliver_exit_code(cases[i].status), cases[i].code);
}

static void test_simple(void)
{
	static const char msg[] = "From: a@b\r\nSubject: hi\r\n\r\nhello\r\n";
	const char *rcpts[] = {"Alice@Example.Test"};
	struct deliver_result results[1];
	CHECK_INT(deliver(rcpts, 1, msg, results), DELIVER_OK);
	CHECK_INT(results[0].status, DELIVER_OK);
	CHECK_STR(results[0].recipient, "Alice@Example.Test");
	deliver_results_free(results, 1);
	char *last;
	size_t len = 0;
	CHECK_INT(inbox_count("alice@example.test", &last, &len), 1);
	CHECK_INT(len, strlen(msg));
	CHECK(last != NULL && memcmp(last, msg, strlen(msg)) == 0);
	free(last);
}

static void test_aliases_one_copy(void)
{
	size_t alice = inbox_count("alice@example.test", NULL, NULL);
	size_t bob = inbox_count("bob@example.test", NULL, NULL);
	const char *rcpts[] = {"all@example.test", "alice@example.test", "team@example.test"};
	struct deliver_result results[3];
	CHECK_INT(deliver(rcpts, 3, "Subject: team\n\nx\n", results), DELIVER_OK);
	for (size_t i = 0; i < 3; i++)
		CHECK_INT(results[i].status, DELIVER_OK);
	deliver_results_free(results, 3);
	CHECK_INT(inbox_count("alice@example.test", NULL, NULL), alice + 1);
	CHECK_INT(inbox_count("bob@example.test", NULL, NULL), bob + 1);
}

static void test_statuses(void)
{
	static const char big[] = "Subject: this message is over forty bytes long\n\nbody\n";
	static const struct {
		const char *rcpt;
		bool tempfail;
		enum deliver_status want;
	} cases[] = {
	        {"nobody@example.test", false, DELIVER_UNKNOWN_USER},
	        {"nobody@elsewhere.test", false, DELIVER_UNKNOWN_USER},
	        {"small@example.test", false, DELIVER_PERMFAIL},
	        {"small@example.test", true, DELIVER_TEMPFAIL},
	        {"fwd@example.test", false, DELIVER_TEMPFAIL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct deliver_result result;
		config.mail.quota_tempfail = cases[i].tempfail;
		CHECK_INT(deliver(&cases[i].rcpt, 1, big, &result), cases[i].want);
		CHECK_INT(result.status, cases[i].want);
		CHECK(result.reason != NULL);
		deliver_results_free(&result, 1);
		CHECK(result.reason == NULL);
	}
	config.mail.quota_tempfail = false;
	CHECK_INT(inbox_count("small@example.test", NULL, NULL), 0);
	/* fwd's local target still got its copy */
	CHECK(inbox_count("bob@example.test", NULL, NULL) >= 2);

	/* message quota: the first fits, the second does not */
	const char *few[] = {"few@example.test"};
	struct deliver_result result;
	CHECK_INT(deliver(few, 1, "a\n", &result), DELIVER_OK);
	deliver_results_free(&result, 1);
	CHECK_INT(deliver(few, 1, "b\n", &result), DELIVER_PERMFAIL);
	deliver_results_free(&result, 1);
	CHECK_INT(inbox_count("few@example.test", NULL, NULL), 1);
}

static void test_worst(void)
{
	static const struct {
		const char *rcpts[3];
		enum deliver_status want;
	} cases[] = {
	        {{"alice@example.test", "nobody@example.test", "bob@example.test"},
	         DELIVER_UNKNOWN_USER},
	        {{"nobody@example.test", "small@example.test", "alice@example.test"},
	         DELIVER_PERMFAIL},
	        {{"small@example.test", "fwd@example.test", "nobody@example.test"},
	         DELIVER_TEMPFAIL},
	};
	static const char big[] = "Subject: this message is over forty bytes long\n\nbody\n";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct deliver_result results[3];
		CHECK_INT(deliver(cases[i].rcpts, 3, big, results), cases[i].want);
		bool has_want = false;
		for (size_t j = 0; j < 3; j++)
			has_want = has_want || results[j].status == cases[i].want;
		CHECK(has_want);
		deliver_results_free(results, 3);
	}
}

static void test_size_limit(void)
{
	const char *rcpts[] = {"alice@example.test", "bob@example.test"};
	struct deliver_result results[2];
	size_t before = inbox_count("alice@example.test", NULL, NULL);
	config.mail.max_message_size = 10;
	CHECK_INT(deliver(rcpts, 2, "Subject: too big\n\n", results), DELIVER_PERMFAIL);
	CHECK_INT(results[0].status, DELIVER_PERMFAIL);
	CHECK_INT(results[1].status, DELIVER_PERMFAIL);
	deliver_results_free(results, 2);
	config.mail.max_message_size = 0;
	CHECK_INT(inbox_count("alice@example.test", NULL, NULL), before);
}

static void test_large(void)
{
	size_t len = 300 * 1024 + 17;
	char *msg = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		msg[i] = i % 77 == 76 ? '\n' : (char)('a' + i % 26);
	msg[len] = '\0';
	const char *rcpts[] = {"bob@example.test"};
	struct deliver_result result;
	int fd = message_fd(msg, len);
	CHECK_INT(deliver_message(&config, dir, fd, rcpts, 1, &result), DELIVER_OK);
	close(fd);
	deliver_results_free(&result, 1);
	char *last = NULL;
	size_t got = 0;
	inbox_count("bob@example.test", &last, &got);
	CHECK_INT(got, len);
	CHECK(last != NULL && memcmp(last, msg, len) == 0);
	free(last);
	free(msg);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

int main(void)
{
	char tmpl[] = "/tmp/test-deliver-XXXXXX";
	tmp_root = mkdtemp(tmpl);
	if (tmp_root == NULL) {
		perror("mkdtemp");
		return 1;
	}
	const char *log_error;
	log_open("stderr", LOG_LEVEL_ERROR, "test-deliver", &log_error);
	config.server.data_dir = tmp_root;
	setup_directory();
	test_exit_codes();
	test_simple();
	test_aliases_one_copy();
	test_statuses();
	test_worst();
	test_size_limit();
	test_large();
	dir_close(&dir);
	nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_report();
}
