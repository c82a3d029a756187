/* Routing settings (dir-routing.c) and the system script made from them
 * (deliver-routing.c): stored and read back, turned into the exact Sieve
 * text with strings escaped, and that text accepted by the Sieve
 * compiler; the Delivered-To loop check. */
#include "deliver/deliver-private.h"
#include "dir/dir.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "sieve/sieve.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCOUNT "alice@example.org"

static char tmpdir[] = "/tmp/test-routing-XXXXXX";
static struct yubin_config config;
static struct dir *dir;

static void set(struct dir_routing *r)
{
	const char *error = NULL;
	int ret = dir_routing_set(dir, ACCOUNT, r, &error);
	if (ret < 0)
		fprintf(stderr, "dir_routing_set: %s\n", error);
	CHECK_INT(ret, 0);
}

static char *script(void)
{
	struct dir_account account = {.address = (char *)ACCOUNT};
	return deliver_routing_script(&config, dir, &account);
}

/* The script compiles: every string was escaped right. */
static void check_compiles(const char *text)
{
	struct sieve_error err;
	struct sieve_script *s =
	        sieve_compile("routing", text, strlen(text), &sieve_default_limits, &err);
	if (s == NULL)
		fprintf(stderr, "line %u column %u: %s\n%s\n", err.line, err.column, err.message,
		        text);
	CHECK(s != NULL);
	sieve_script_free(&s);
}

static void check_script(struct dir_routing *r, const char *want)
{
	set(r);
	char *got = script();
	if (want == NULL) {
		CHECK(got == NULL);
	} else {
		CHECK_STR(got, want);
		if (got != NULL)
			check_compiles(got);
	}
	free(got);
}

static void test_defaults_and_round_trip(void)
{
	struct dir_routing r;
	const char *error;
	char *targets[] = {(char *)"a@x.example", (char *)"b+c@y.example"};
	CHECK_INT(dir_routing_get(dir, ACCOUNT, &r, &error), 0);
	CHECK_INT(r.mode, DIR_ROUTING_NORMAL);
	CHECK_INT(r.forward_count, 0);
	CHECK(!r.vacation_enabled);
	CHECK_INT(r.vacation_days, 7);
	dir_routing_free(&r);
	CHECK(script() == NULL);

	struct dir_routing w = {.mode = DIR_ROUTING_FORWARD,
	                        .forward_to = targets,
	                        .forward_count = 2,
	                        .keep_copy = true,
	                        .close_reason = (char *)"",
	                        .vacation_enabled = true,
	                        .vacation_subject = (char *)"S",
	                        .vacation_body = (char *)"B",
	                        .vacation_days = 3};
	set(&w);
	CHECK_INT(dir_routing_get(dir, ACCOUNT, &r, &error), 0);
	CHECK_INT(r.mode, DIR_ROUTING_FORWARD);
	CHECK_INT(r.forward_count, 2);
	CHECK_STR(r.forward_to[1], "b+c@y.example");
	CHECK(r.keep_copy && r.vacation_enabled);
	CHECK_STR(r.vacation_subject, "S");
	CHECK_INT(r.vacation_days, 3);
	dir_routing_free(&r);
	/* refused: no such account, a target with a line break */
	CHECK_INT(dir_routing_set(dir, "bob@example.org", &w, &error), -1);
	targets[1] = (char *)"b@y.example\nredirect";
	CHECK_INT(dir_routing_set(dir, ACCOUNT, &w, &error), -1);
}

static void test_scripts(void)
{
	char *one[] = {(char *)"a@x.example"};
	char *two[] = {(char *)"a@x.example", (char *)"b\"q\\@y.example"};
	struct dir_routing r = {.close_reason = (char *)"",
	                        .vacation_subject = (char *)"",
	                        .vacation_body = (char *)"",
	                        .vacation_days = 7};

	r.mode = DIR_ROUTING_FORWARD;
	r.forward_to = one;
	r.forward_count = 1;
	r.keep_copy = true;
	check_script(&r, "# yubin routing settings\r\nrequire [\"copy\"];\r\n"
	                 "redirect :copy \"a@x.example\";\r\n");
	r.keep_copy = false;
	r.forward_to = two;
	r.forward_count = 2;
	check_script(&r, "# yubin routing settings\r\nredirect \"a@x.example\";\r\n"
	                 "redirect \"b\\\"q\\\\@y.example\";\r\nstop;\r\n");

	r.vacation_enabled = true;
	r.vacation_subject = (char *)"Away \"now\"";
	r.vacation_body = (char *)"Line 1\nC:\\path \xe6\x97\xa5\r\nend";
	r.vacation_days = 5;
	r.forward_count = 1;
	check_script(&r, "# yubin routing settings\r\nrequire [\"vacation\"];\r\n"
	                 "vacation :days 5 :subject \"Away \\\"now\\\"\" "
	                 "\"Line 1\r\nC:\\\\path \xe6\x97\xa5\r\nend\";\r\n"
	                 "redirect \"a@x.example\";\r\nstop;\r\n");
	r.keep_copy = true;
	r.vacation_subject = (char *)"";
	check_script(&r, "# yubin routing settings\r\nrequire [\"copy\", \"vacation\"];\r\n"
	                 "vacation :days 5 \"Line 1\r\nC:\\\\path \xe6\x97\xa5\r\nend\";\r\n"
	                 "redirect :copy \"a@x.example\";\r\n");

	/* closed wins over forwarding and vacation */
	r.mode = DIR_ROUTING_CLOSED;
	r.close_reason = (char *)"Gone; see \"office\"";
	check_script(&r, "# yubin routing settings\r\nrequire \"ereject\";\r\n"
	                 "ereject \"Gone; see \\\"office\\\"\";\r\nstop;\r\n");
	r.close_reason = (char *)"";
	check_script(&r, "# yubin routing settings\r\nrequire \"ereject\";\r\n"
	                 "ereject \"This account is closed and no longer receives mail.\";\r\n"
	                 "stop;\r\n");

	/* forward with no targets and no vacation: nothing to run */
	r.mode = DIR_ROUTING_FORWARD;
	r.forward_count = 0;
	r.vacation_enabled = false;
	check_script(&r, NULL);
}

static int message_fd(const char *text)
{
	char *path = xasprintf("%s/msg", tmpdir);
	FILE *f = fopen(path, "w+");
	CHECK(f != NULL);
	fputs(text, f);
	fflush(f);
	int fd = dup(fileno(f));
	fclose(f);
	unlink(path);
	free(path);
	return fd;
}

static void test_loop(void)
{
	static const struct {
		const char *message;
		bool loop;
	} cases[] = {
	        {"Delivered-To: alice@example.org\r\nSubject: x\r\n\r\nbody\r\n", true},
	        {"Received: x\r\nDELIVERED-TO:   <Alice@Example.ORG> \r\n\r\nbody\r\n", true},
	        {"Delivered-To: bob@example.org\nDelivered-To: alice@example.org\n\nb\n", true},
	        {"Delivered-To: alice@example.org.evil\r\n\r\nbody\r\n", false},
	        {"Delivered-To: xalice@example.org\r\n\r\nbody\r\n", false},
	        {"Subject: x\r\n\r\nDelivered-To: alice@example.org\r\n", false},
	        {"X-Delivered-To: alice@example.org\r\n\r\n", false},
	        {"", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = message_fd(cases[i].message);
		if (deliver_routing_loop(fd, ACCOUNT) != cases[i].loop)
			fprintf(stderr, "loop case %zu\n", i);
		CHECK(deliver_routing_loop(fd, ACCOUNT) == cases[i].loop);
		close(fd);
	}
}

int main(void)
{
	const char *error;
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_open("stderr", LOG_LEVEL_ERROR, "test-routing", &error);
	config.server.data_dir = tmpdir;
	char *db = xasprintf("%s/yubin.db", tmpdir);
	CHECK_INT(dir_open(db, &dir, &error), 0);
	CHECK_INT(dir_domain_add(dir, "example.org", &error), 0);
	CHECK_INT(dir_account_add(dir, ACCOUNT, "$y$hash", "", 0, 0, &error), 0);
	test_defaults_and_round_trip();
	test_scripts();
	test_loop();
	/* deleting the account takes its settings along */
	CHECK_INT(dir_account_del(dir, ACCOUNT, &error), 0);
	CHECK_INT(dir_account_add(dir, ACCOUNT, "$y$hash", "", 0, 0, &error), 0);
	char *s = script();
	CHECK(s == NULL);
	free(s);
	dir_close(&dir);
	char *cmd = xasprintf("rm -rf %s", tmpdir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	free(db);
	return test_report();
}
