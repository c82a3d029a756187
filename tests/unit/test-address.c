#include "lib/address.h"
#include "test.h"

#include <stdlib.h>

static void test_addresses(void)
{
	static const struct {
		const char *in;
		const char *want; /* NULL = rejected */
	} cases[] = {
	        {"alice@example.org", "alice@example.org"},
	        {"Alice.Smith@Example.ORG", "alice.smith@example.org"},
	        {"a_b-c.d@mail.example.org.", "a_b-c.d@mail.example.org"},
	        {"x@a-b.c0", "x@a-b.c0"},
	        {"0123456789012345678901234567890123456789012345678901234567890123@example.org",
	         "0123456789012345678901234567890123456789012345678901234567890123@example.org"},
	        {"01234567890123456789012345678901234567890123456789012345678901234@example.org",
	         NULL},
	        {"alice", NULL},
	        {"@example.org", NULL},
	        {"alice@", NULL},
	        {"a@b@example.org", NULL},
	        {".alice@example.org", NULL},
	        {"alice.@example.org", NULL},
	        {"a..b@example.org", NULL},
	        {"a+tag@example.org", NULL},
	        {"a b@example.org", NULL},
	        {"a\"b@example.org", NULL},
	        {"alice@localhost", NULL},
	        {"alice@-example.org", NULL},
	        {"alice@example-.org", NULL},
	        {"alice@example..org", NULL},
	        {"alice@.example.org", NULL},
	        {"alice@exa_mple.org", NULL},
	        {"alice@example.org..", NULL},
	        {"\xc3\xa9@example.org", NULL},
	        {"", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *error = NULL;
		char *got = address_normalize(cases[i].in, &error);
		if (cases[i].want == NULL) {
			CHECK(got == NULL);
			CHECK(error != NULL);
		} else {
			CHECK_STR(got, cases[i].want);
		}
		free(got);
	}
}

static void test_domains(void)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
	        {"Example.ORG", "example.org"},
	        {"example.org.", "example.org"},
	        {"xn--wgv71a.jp", "xn--wgv71a.jp"},
	        {"a.b.c.d", "a.b.c.d"},
	        {"example", NULL},
	        {"", NULL},
	        {".", NULL},
	        {"example.org..", NULL},
	        {"ex ample.org", NULL},
	        {"-a.org", NULL},
	        {"a-.org", NULL},
	        {"a.-org", NULL},
	        {"a..org", NULL},
	        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org",
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org"},
	        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *error = NULL;
		char *got = domain_normalize(cases[i].in, &error);
		if (cases[i].want == NULL) {
			CHECK(got == NULL);
			CHECK(error != NULL);
		} else {
			CHECK_STR(got, cases[i].want);
		}
		free(got);
	}
}

/* 253 bytes is the longest name; 254 is refused. */
static void test_domain_length(void)
{
	char name[300];
	size_t len = 0;
	while (len + 10 <= 250) {
		memcpy(name + len, "abcdefghi.", 10);
		len += 10;
	}
	memcpy(name + len, "abc", 3); /* 250 + 3 = 253 */
	name[len + 3] = '\0';
	const char *error = NULL;
	char *got = domain_normalize(name, &error);
	CHECK(got != NULL);
	free(got);
	name[len + 3] = 'd';
	name[len + 4] = '\0';
	got = domain_normalize(name, &error);
	CHECK(got == NULL);
	free(got);
}

static void test_error_text(void)
{
	const char *error = NULL;
	CHECK(address_normalize("a..b@example.org", &error) == NULL);
	CHECK_STR(error, "the local part (before '@') has two dots in a row");
	CHECK(address_normalize("ab@localhost", &error) == NULL);
	CHECK_STR(error, "the domain needs at least two labels (like example.org)");
}

static void test_address_domain(void)
{
	CHECK_STR(address_domain("alice@example.org"), "example.org");
	CHECK_STR(address_domain("nodomain"), "");
}

int main(void)
{
	test_addresses();
	test_domains();
	test_domain_length();
	test_error_text();
	test_address_domain();
	return test_report();
}
