/* SRS (deliver-srs.c): forward and reverse round trips, SRS1 over SRS0,
 * tampered and expired addresses, case folding, odd local parts, the
 * null sender, and the secret file made at first use. */
#include "deliver/deliver-private.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "test.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400
static const time_t t0 = (time_t)1700000000;
static struct yubin_config config;

static void test_key_file(void)
{
	char *path = config_data_path(&config, "srs.key");
	char *out = deliver_srs_forward_at(&config, "a@b.example", "fwd.example", t0);
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(st.st_size, 32);
	free(out);
	free(path);
}

static void test_round_trips(void)
{
	static const char *const senders[] = {
	        "alice@example.org", "Bob.Smith@Example.ORG",   "a+tag@example.org",
	        "x=y=z@example.org", "a+b=c-d@sub.example.net", "\"quoted local\"@example.org",
	};
	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		char *srs = deliver_srs_forward_at(&config, senders[i], "fwd.example", t0);
		char *back = NULL;
		CHECK(strncmp(srs, "SRS0=", 5) == 0);
		CHECK(strlen(srs) > 8 && strcmp(srs + strlen(srs) - 12, "@fwd.example") == 0);
		CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0 + DAY), 1);
		CHECK_STR(back, senders[i]);
		free(back);
		free(srs);
	}
}

/* SRS1 of SRS0 from another forwarder, SRS1 of SRS1, and undoing them. */
static void test_srs1(void)
{
	char *srs0 = deliver_srs_forward_at(&config, "alice@example.org", "first.example", t0);
	char *srs1 = deliver_srs_forward_at(&config, srs0, "second.example", t0);
	char *again = deliver_srs_forward_at(&config, srs1, "third.example", t0);
	char *back = NULL;
	CHECK(strncmp(srs1, "SRS1=", 5) == 0);
	/* SRS1=HHHH=first.example==HHHH=TT=example.org=alice@second.example */
	CHECK(strstr(srs1, "=first.example==") != NULL);
	CHECK(strstr(srs1, "@second.example") != NULL);
	CHECK_INT(deliver_srs_reverse_at(&config, srs1, &back, t0), 1);
	CHECK_STR(back, srs0);
	free(back);
	CHECK(strncmp(again, "SRS1=", 5) == 0);
	CHECK(strstr(again, "=first.example==") != NULL);
	CHECK(strstr(again, "@third.example") != NULL);
	CHECK_INT(deliver_srs_reverse_at(&config, again, &back, t0), 1);
	CHECK_STR(back, srs0);
	free(back);
	free(again);
	free(srs1);
	free(srs0);
}

static char *with_char(const char *s, size_t pos, char c)
{
	char *copy = xstrdup(s);
	copy[pos] = c;
	return copy;
}

static void test_rejects(void)
{
	char *srs = deliver_srs_forward_at(&config, "alice@example.org", "fwd.example", t0);
	char *back = (char *)"untouched";
	/* a hash character changed (to a different letter or digit) */
	char *bad = with_char(srs, 5, srs[5] == 'A' || srs[5] == 'a' ? 'B' : 'A');
	CHECK_INT(deliver_srs_reverse_at(&config, bad, &back, t0), 0);
	CHECK(back == NULL);
	free(bad);
	/* the original domain changed */
	char *dom = xstrdup(srs);
	char *p = strstr(dom, "example.org");
	p[0] = 'f';
	CHECK_INT(deliver_srs_reverse_at(&config, dom, &back, t0), 0);
	free(dom);
	/* expired: 21d is the default max age */
	CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0 + 21 * DAY), 1);
	free(back);
	CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0 + 22 * DAY), 0);
	CHECK(back == NULL);
	/* from the future (more than the max age ahead wraps round: too old) */
	CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0 - 2 * DAY), 0);
	/* not SRS, or malformed */
	static const char *const junk[] = {
	        "alice@example.org",
	        "SRS0@fwd.example",
	        "SRS0=@fwd.example",
	        "SRS0=abcd@fwd.example",
	        "SRS0=abcd=AA@fwd.example",
	        "SRS0=abcd=AA=example.org@fwd.example",
	        "SRS1=abcd=host@fwd.example",
	        "SRS0=abcd=A=example.org=alice@fwd.example",
	        "",
	        "SRS2=a=b=c=d@e",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		CHECK_INT(deliver_srs_reverse_at(&config, junk[i], &back, t0), 0);
		CHECK(back == NULL);
	}
	free(srs);
}

/* Some MTAs fold local parts to lower or upper case: still ours. */
static void test_case_insensitive(void)
{
	char *srs = deliver_srs_forward_at(&config, "Alice@Example.org", "fwd.example", t0);
	char *back = NULL;
	char *lower = xstrdup(srs), *upper = xstrdup(srs);
	for (char *p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = upper; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	CHECK_INT(deliver_srs_reverse_at(&config, lower, &back, t0), 1);
	CHECK_STR(back, "alice@example.org");
	free(back);
	CHECK_INT(deliver_srs_reverse_at(&config, upper, &back, t0), 1);
	CHECK_STR(back, "ALICE@EXAMPLE.ORG");
	free(back);
	free(lower);
	free(upper);
	free(srs);
}

/* "" stays "" (bounces are never given a sender); SRS off passes through. */
static void test_null_and_off(void)
{
	char *out = deliver_srs_forward_at(&config, "", "fwd.example", t0);
	CHECK_STR(out, "");
	free(out);
	out = deliver_srs_forward_at(&config, "nodomain", "fwd.example", t0);
	CHECK_STR(out, "nodomain");
	free(out);
	config.forward.srs = false;
	out = deliver_srs_forward_at(&config, "alice@example.org", "fwd.example", t0);
	CHECK_STR(out, "alice@example.org");
	free(out);
	config.forward.srs = true;
}

/* A different key does not take our addresses. */
static void test_other_key(void)
{
	char *srs = deliver_srs_forward_at(&config, "alice@example.org", "fwd.example", t0);
	char *back = NULL;
	char *path = config_data_path(&config, "other.key");
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("0123456789abcdef0123456789abcdef", f);
	fclose(f);
	config.forward.srs_secret_file = (char *)"other.key";
	CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0), 0);
	config.forward.srs_secret_file = (char *)"";
	CHECK_INT(deliver_srs_reverse_at(&config, srs, &back, t0), 1);
	free(back);
	unlink(path);
	free(path);
	free(srs);
}

int main(void)
{
	char tmpl[] = "/tmp/test-srs-XXXXXX";
	const char *log_error;
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_open("stderr", LOG_LEVEL_ERROR, "test-srs", &log_error);
	config.server.data_dir = tmpl;
	config.forward.srs = true;
	config.forward.srs_secret_file = (char *)"";
	config.forward.srs_max_age = 21ULL * DAY * 1000;
	test_key_file();
	test_round_trips();
	test_srs1();
	test_rejects();
	test_case_insensitive();
	test_null_and_off();
	test_other_key();
	char *key = config_data_path(&config, "srs.key");
	unlink(key);
	free(key);
	rmdir(tmpl);
	return test_report();
}
