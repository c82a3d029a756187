/* The SMTP parsers: command lines, paths (RFC 5321 4.1.2, RFC 6531),
 * MAIL/RCPT parameters (RFC 1870, 3030, 3461, 6152, 6531), xtext, and
 * the DATA reader fed whole and one byte at a time. */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"
#include "test.h"

struct cmd_case {
	const char *line;
	size_t len;          /* 0: strlen(line) */
	const char *verb;    /* NULL: an error */
	const char *arg;
};

static const struct cmd_case cmd_cases[] = {
	{ "EHLO client.test", 0, "EHLO", "client.test" },
	{ "ehlo client.test", 0, "EHLO", "client.test" },
	{ "QUIT", 0, "QUIT", "" },
	{ "MAIL FROM:<a@b.c> SIZE=1", 0, "MAIL", "FROM:<a@b.c> SIZE=1" },
	{ "STARTTLS ", 0, "STARTTLS", "" },
	{ "ABCDEFGHIJKLMNO", 0, "ABCDEFGHIJKLMNO", "" },
	{ "", 0, NULL, NULL },
	{ " NOOP", 0, NULL, NULL },
	{ "NO0P", 0, NULL, NULL },
	{ "ABCDEFGHIJKLMNOP", 0, NULL, NULL },
	{ "NOOP\x01", 0, NULL, NULL },
	{ "NOOP \0x", 7, NULL, NULL },
	{ "NOOP \x7f", 0, NULL, NULL },
};

static void test_commands(void)
{
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->line);
		char *line = malloc(len + 1);
		memcpy(line, c->line, len);
		struct smtp_command cmd;
		const char *reply = NULL;
		int ret = smtp_parse_command(line, len, &cmd, &reply);
		if (c->verb == NULL) {
			CHECK_INT(ret, -1);
			CHECK(reply != NULL && reply[0] == '5');
		} else {
			CHECK_INT(ret, 0);
			CHECK_STR(cmd.verb, c->verb);
			CHECK_STR(cmd.arg, c->arg);
		}
		free(line);
	}
}

struct path_case {
	const char *in;
	bool allow_null;
	int ret;
	const char *address, *local, *domain;
	bool quoted, literal, route, utf8;
	const char *rest;
};

static const struct path_case path_cases[] = {
	{ "<a@b.c>", false, 0, "a@b.c", "a", "b.c", false, false, false, false, "" },
	{ "<A.B-c+d@Ex-ample.TEST> SIZE=1", false, 0, "A.B-c+d@Ex-ample.TEST", "A.B-c+d",
	  "Ex-ample.TEST", false, false, false, false, " SIZE=1" },
	{ "<>", true, 0, "", "", "", false, false, false, false, "" },
	{ "<>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<\"a b\\\"c\"@d.e>", false, 0, "\"a b\\\"c\"@d.e", "a b\"c", "d.e", true, false,
	  false, false, "" },
	{ "<u@[192.0.2.1]>", false, 0, "u@[192.0.2.1]", "u", "[192.0.2.1]", false, true, false,
	  false, "" },
	{ "<u@[IPv6:::1]>", false, 0, "u@[IPv6:::1]", "u", "[IPv6:::1]", false, true, false,
	  false, "" },
	{ "<@x.y,@z.w:u@d.e>", false, 0, "u@d.e", "u", "d.e", false, false, true, false, "" },
	{ "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test>", false, 0,
	  "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.test", "\xe7\x94\xa8\xe6\x88\xb7",
	  "\xe4\xbe\x8b\xe5\xad\x90.test", false, false, false, true, "" },
	/* errors: the open-relay tricks that are not even syntax */
	{ "a@b.c", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b.c", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<postmaster>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b@c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b.c.>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@.b.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b..c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b-.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@b%c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a..b@c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<.a@c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a.@c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@[]>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a@[1.2.3.4>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<@x.y:>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<@x.y u@d.e>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<\"a\x01\"@b.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<a b@c.d>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<\xff@b.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<\xc0\xaf@b.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<\xed\xa0\x80@b.c>", false, -1, NULL, NULL, NULL, false, false, false, false, NULL },
	{ "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.c>", false, -1,
	  NULL, NULL, NULL, false, false, false, false, NULL },
};

static void test_paths(void)
{
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		struct smtp_path path;
		const char *reply = NULL;
		const char *p = c->in;
		int ret = smtp_parse_path(&p, c->allow_null, &path, &reply);
		CHECK_INT(ret, c->ret);
		if (ret != 0 || c->ret != 0) {
			CHECK(reply != NULL && strncmp(reply, "501 5.1.3", 9) == 0);
			continue;
		}
		CHECK_STR(path.address, c->address);
		CHECK_STR(path.local, c->local);
		CHECK_STR(path.domain, c->domain);
		CHECK_INT(path.quoted, c->quoted);
		CHECK_INT(path.literal, c->literal);
		CHECK_INT(path.route, c->route);
		CHECK_INT(path.utf8, c->utf8);
		CHECK_STR(p, c->rest);
	}
}

struct mail_case {
	const char *in;
	const char *reply;   /* NULL: accepted; else the reply's first 9 bytes */
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	const char *envid;
};

static const struct mail_case mail_cases[] = {
	{ "", NULL, 0, SMTP_BODY_7BIT, false, SMTP_RET_DEFAULT, "" },
	{ " SIZE=1000 BODY=8BITMIME", NULL, 1000, SMTP_BODY_8BITMIME, false, SMTP_RET_DEFAULT,
	  "" },
	{ "size=5 body=binarymime smtputf8 ret=hdrs envid=a+2Bb", NULL, 5,
	  SMTP_BODY_BINARYMIME, true, SMTP_RET_HDRS, "a+b" },
	{ "RET=FULL AUTH=<>", NULL, 0, SMTP_BODY_7BIT, false, SMTP_RET_FULL, "" },
	{ "AUTH=alice+40example.test", NULL, 0, SMTP_BODY_7BIT, false, SMTP_RET_DEFAULT, "" },
	{ "SIZE=x", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "SIZE=99999999999999999999999", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "SIZE", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "SIZE=", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "SIZE=1 SIZE=2", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "BODY=9BIT", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "SMTPUTF8=yes", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "RET=ALL", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "ENVID=a+zz", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "ENVID=a+0Ab", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "ENVID=a=b", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "FOO=BAR", "555 5.5.4", 0, 0, false, 0, NULL },
	{ "-X=1", "501 5.5.4", 0, 0, false, 0, NULL },
	{ "X_Y=1", "501 5.5.4", 0, 0, false, 0, NULL },
};

static void test_mail_params(void)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		char *s = strdup(c->in);
		struct smtp_mail_params mp;
		const char *reply = NULL;
		int ret = smtp_parse_mail_params(s, &mp, &reply);
		if (c->reply != NULL) {
			CHECK_INT(ret, -1);
			CHECK(reply != NULL && strncmp(reply, c->reply, 9) == 0);
		} else {
			CHECK_INT(ret, 0);
			CHECK_INT(mp.size, c->size);
			CHECK_INT(mp.body, c->body);
			CHECK_INT(mp.smtputf8, c->smtputf8);
			CHECK_INT(mp.ret, c->ret);
			CHECK_STR(mp.envid, c->envid);
		}
		free(s);
	}
}

struct rcpt_case {
	const char *in;
	int ret;
	unsigned int notify;
	const char *orcpt;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "", 0, 0, "" },
	{ "NOTIFY=NEVER", 0, SMTP_NOTIFY_NEVER, "" },
	{ "notify=success,failure,delay", 0,
	  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, "" },
	{ "ORCPT=rfc822;a+40b.c NOTIFY=FAILURE", 0, SMTP_NOTIFY_FAILURE, "rfc822;a+40b.c" },
	{ "NOTIFY=NEVER,SUCCESS", -1, 0, NULL },
	{ "NOTIFY=SUCCESS,SUCCESS", -1, 0, NULL },
	{ "NOTIFY=", -1, 0, NULL },
	{ "NOTIFY=SUCCESS,", -1, 0, NULL },
	{ "NOTIFY=MAYBE", -1, 0, NULL },
	{ "ORCPT=rfc822", -1, 0, NULL },
	{ "ORCPT=;a@b", -1, 0, NULL },
	{ "ORCPT=rfc822;", -1, 0, NULL },
	{ "ORCPT=rf c822;a", -1, 0, NULL },
	{ "ORCPT=rfc822;a+4", -1, 0, NULL },
	{ "SIZE=1", -1, 0, NULL },
};

static void test_rcpt_params(void)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		char *s = strdup(c->in);
		struct smtp_rcpt_params rp;
		const char *reply = NULL;
		int ret = smtp_parse_rcpt_params(s, &rp, &reply);
		CHECK_INT(ret, c->ret);
		if (ret == 0 && c->ret == 0) {
			CHECK_INT(rp.notify, c->notify);
			CHECK_STR(rp.orcpt, c->orcpt);
		}
		free(s);
	}
}

struct data_case {
	const char *in;
	const char *out;        /* what is stored */
	size_t used;            /* bytes consumed; 0: all */
	bool done, bad;
	uint64_t max;
	bool too_big;
};

static const struct data_case data_cases[] = {
	{ "a\r\nb\r\n.\r\n", "a\r\nb\r\n", 0, true, false, 0, false },
	{ ".\r\n", "", 0, true, false, 0, false },
	{ "..x\r\n.\r\nMAIL", ".x\r\n", 8, true, false, 0, false },
	{ "a\r\n..\r\n.\r\n", "a\r\n.\r\n", 0, true, false, 0, false },
	{ ".a\r\n.b.\r\n.\r\n", "a\r\nb.\r\n", 0, true, false, 0, false },
	{ "a\r\n.\r", "a\r\n", 0, false, false, 0, false },
	/* smuggling: none of these ends the data; all mark it bad */
	{ "a\n.\nb", "", 0, false, true, 0, false },
	{ "a\r\n.\nb", "a\r\n", 0, false, true, 0, false },
	{ "a\n.\r\nb", "", 0, false, true, 0, false },
	{ "a\r.\rb", "", 0, false, true, 0, false },
	{ "a\r\n.\rb", "a\r\n", 0, false, true, 0, false },
	{ "a\n.\n\r\n.\r\nX", "", 9, true, true, 0, false },
	{ "x\rb\r\n.\r\n", "", 0, true, true, 0, false },
	/* the limit counts unstuffed bytes; nothing past it is output */
	{ "12345\r\n.\r\n", "12345\r\n", 0, true, false, 7, false },
	{ "123456\r\n.\r\n", "123456\r", 0, true, false, 7, true },
	{ "....\r\n.\r\n", "...\r\n", 0, true, false, 5, false },
};

static void data_check(const struct data_case *c, bool bytewise)
{
	struct smtp_data d;
	size_t len = strlen(c->in), used = 0, outlen = 0;
	char *out = malloc(len + 2);
	smtp_data_init(&d, c->max);
	if (bytewise) {
		while (used < len && !smtp_data_done(&d)) {
			size_t n;
			used += smtp_data_feed(&d, c->in + used, 1, out + outlen, &n);
			outlen += n;
		}
	} else {
		used = smtp_data_feed(&d, c->in, len, out, &outlen);
	}
	CHECK_INT(used, c->used != 0 ? c->used : len);
	CHECK_INT(smtp_data_done(&d), c->done);
	CHECK_INT(d.bare_cr || d.bare_lf, c->bad);
	CHECK_INT(d.too_big, c->too_big);
	if (!c->bad) {
		out[outlen] = '\0';
		CHECK_STR(out, c->out);
	}
	free(out);
}

static void test_data(void)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		data_check(&data_cases[i], false);
		data_check(&data_cases[i], true);
	}
}

static void test_xtext_utf8(void)
{
	char out[8];
	CHECK_INT(smtp_xtext_decode("a+2Bb", out, sizeof(out)), 0);
	CHECK_STR(out, "a+b");
	CHECK_INT(smtp_xtext_decode("a+2b", out, sizeof(out)), -1);
	CHECK_INT(smtp_xtext_decode("a+", out, sizeof(out)), -1);
	CHECK_INT(smtp_xtext_decode("abcdefgh", out, sizeof(out)), -1);
	CHECK_INT(smtp_xtext_decode("a b", out, sizeof(out)), -1);
	CHECK(smtp_utf8_valid((const unsigned char *)"\xe3\x81\x82", 3));
	CHECK(smtp_utf8_valid((const unsigned char *)"\xf0\x9f\x98\x80", 4));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xe3\x81", 2));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4));
	CHECK(!smtp_utf8_valid((const unsigned char *)"\xe0\x80\x80", 3));
	CHECK(!smtp_utf8_valid((const unsigned char *)"a\0b", 3));
}

int main(void)
{
	test_commands();
	test_paths();
	test_mail_params();
	test_rcpt_params();
	test_data();
	test_xtext_utf8();
	return test_report();
}
