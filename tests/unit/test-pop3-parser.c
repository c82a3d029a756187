/* pop3_parse_command, the RETR/TOP transformation and HTTP detection. */
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3-private.h"
#include "test.h"

struct parse_case {
	const char *line;
	size_t len;              /* 0: strlen(line) */
	const char *name;        /* NULL: an error is expected */
	const char *error;
	size_t argc;
	const char *argv[POP3_MAX_ARGS];
	const char *rest;
};

static const struct parse_case parse_cases[] = {
	{ "STAT", 0, "STAT", NULL, 0, { NULL }, "" },
	{ "stat", 0, "STAT", NULL, 0, { NULL }, "" },
	{ "LiSt 3", 0, "LIST", NULL, 1, { "3" }, "3" },
	{ "TOP 1 10", 0, "TOP", NULL, 2, { "1", "10" }, "1" },
	{ "TOP   1    10  ", 0, "TOP", NULL, 2, { "1", "10" }, "1" },
	{ "LIST ", 0, "LIST", NULL, 0, { NULL }, "" },
	{ "USER alice@example.test", 0, "USER", NULL, 1, { "alice@example.test" },
	  "alice@example.test" },
	{ "PASS secret with  spaces ", 0, "PASS", NULL, 1, { "secret with  spaces " },
	  "secret with  spaces " },
	{ "pass  lead", 0, "PASS", NULL, 1, { " lead" }, " lead" },
	{ "PASS", 0, "PASS", NULL, 0, { NULL }, "" },
	{ "PASS a b c d e f", 0, "PASS", NULL, 1, { "a b c d e f" }, "a b c d e f" },
	{ "PASS p\xc3\xa4ss", 0, "PASS", NULL, 1, { "p\xc3\xa4ss" }, "p\xc3\xa4ss" },
	{ "AUTH PLAIN dGVzdAB0ZXN0AHBhc3M=", 0, "AUTH", NULL, 2,
	  { "PLAIN", "dGVzdAB0ZXN0AHBhc3M=" }, "PLAIN" },
	{ "ABCDEFGHIJKLMNO", 0, "ABCDEFGHIJKLMNO", NULL, 0, { NULL }, "" },
	{ "a b c d e", 0, "A", NULL, 4, { "b", "c", "d", "e" }, "b" },
	/* errors */
	{ "", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ " STAT", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ "ABCDEFGHIJKLMNOP", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ "ST4T", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ "LIST:1", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ "\xc3\xa4", 0, NULL, "Invalid command", 0, { NULL }, NULL },
	{ "a b c d e f", 0, NULL, "Too many arguments", 0, { NULL }, NULL },
	{ "STAT\tx", 0, NULL, "Invalid characters in command", 0, { NULL }, NULL },
	{ "LIST 1\r", 0, NULL, "Invalid characters in command", 0, { NULL }, NULL },
	{ "STAT\x7f", 0, NULL, "Invalid characters in command", 0, { NULL }, NULL },
	{ "LIST 1\0" "2", 8, NULL, "Invalid characters in command", 0, { NULL }, NULL },
	{ "PASS a\0b", 8, NULL, "Invalid characters in command", 0, { NULL }, NULL },
};

static void test_parse_case(const struct parse_case *c)
{
	size_t len = c->len != 0 ? c->len : strlen(c->line);
	char *line = malloc(len + 1);
	memcpy(line, c->line, len);
	line[len] = 'X'; /* the parser must terminate it */
	struct pop3_command cmd;
	const char *error = NULL;
	int ret = pop3_parse_command(line, len, &cmd, &error);
	if (c->name == NULL) {
		CHECK_INT(ret, -1);
		CHECK_STR(error, c->error);
		free(line);
		return;
	}
	CHECK_INT(ret, 0);
	if (ret == 0) {
		CHECK_STR(cmd.name, c->name);
		CHECK_INT(cmd.argc, c->argc);
		for (size_t i = 0; i < c->argc && i < cmd.argc; i++)
			CHECK_STR(cmd.argv[i], c->argv[i]);
		CHECK_STR(cmd.rest, c->rest);
	}
	free(line);
}

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		test_parse_case(&parse_cases[i]);
}

static void test_long_argument(void)
{
	char line[5 + 257];
	memcpy(line, "USER ", 5);
	memset(line + 5, 'a', 255);
	line[260] = '\0';
	struct pop3_command cmd;
	const char *error = NULL;
	CHECK_INT(pop3_parse_command(line, 260, &cmd, &error), 0);
	CHECK_INT(strlen(cmd.argv[0]), 255);

	memcpy(line, "USER ", 5);
	memset(line + 5, 'a', 256);
	line[261] = '\0';
	CHECK_INT(pop3_parse_command(line, 261, &cmd, &error), -1);
	CHECK_STR(error, "Argument too long");
}

/* Runs the transformation over in, split as the caller says. */
struct stuff_run {
	struct pop3_stuff st;
	char out[1024];
	size_t len;
};

static void stuff_feed(struct stuff_run *run, const char *in, size_t len)
{
	char tmp[512];
	size_t n = pop3_stuff_chunk(&run->st, in, len, tmp);
	CHECK(n <= 2 * len);
	memcpy(run->out + run->len, tmp, n);
	run->len += n;
}

static void stuff_end(struct stuff_run *run)
{
	run->len += pop3_stuff_finish(&run->st, run->out + run->len);
	run->out[run->len] = '\0';
}

struct stuff_case {
	const char *in;
	bool top;
	uint64_t lines;
	const char *want;
};

static const struct stuff_case stuff_cases[] = {
	{ "a\r\n.b\n\r\nc", false, 0, "a\r\n..b\r\n\r\nc\r\n" },
	{ "", false, 0, "" },
	{ ".", false, 0, "..\r\n" },
	{ "\n", false, 0, "\r\n" },
	{ "a\r", false, 0, "a\r\r\n" },   /* a bare CR is data, also at the end */
	{ "a\rb\n", false, 0, "a\rb\r\n" },
	{ "..x\n.\n", false, 0, "...x\r\n..\r\n" },
	{ "x.\n.y", false, 0, "x.\r\n..y\r\n" },
	{ "a\r\r\nb", false, 0, "a\r\r\nb\r\n" },
	{ "A: 1\nB: 2\n\nl1\nl2\nl3\n", true, 0, "A: 1\r\nB: 2\r\n\r\n" },
	{ "A: 1\nB: 2\n\nl1\nl2\nl3\n", true, 2, "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n" },
	{ "A: 1\r\n\r\nl1\r\n.l2\r\nl3", true, 2, "A: 1\r\n\r\nl1\r\n..l2\r\n" },
	{ "A: 1\r\n\r\nl1\r\nl2", true, 5, "A: 1\r\n\r\nl1\r\nl2\r\n" },
	{ "A: 1\r\nB: 2", true, 3, "A: 1\r\nB: 2\r\n" },
	{ "\n\n\nx", true, 1, "\r\n\r\n" },
	{ "H: v\n\r\n\r\nx", true, 1, "H: v\r\n\r\n\r\n" },
};

static void test_stuff_case(const struct stuff_case *c)
{
	size_t len = strlen(c->in);
	struct stuff_run run;

	/* In one piece and cut in two at every offset. */
	for (size_t cut = 0; cut <= len; cut++) {
		memset(&run, 0, sizeof(run));
		pop3_stuff_init(&run.st, c->top, c->lines);
		stuff_feed(&run, c->in, cut);
		stuff_feed(&run, c->in + cut, len - cut);
		stuff_end(&run);
		CHECK_STR(run.out, c->want);
	}
	/* One byte at a time. */
	memset(&run, 0, sizeof(run));
	pop3_stuff_init(&run.st, c->top, c->lines);
	for (size_t i = 0; i < len; i++)
		stuff_feed(&run, c->in + i, 1);
	stuff_end(&run);
	CHECK_STR(run.out, c->want);
}

static void test_stuff(void)
{
	for (size_t i = 0; i < sizeof(stuff_cases) / sizeof(stuff_cases[0]); i++)
		test_stuff_case(&stuff_cases[i]);
}

static void test_http(void)
{
	static const struct {
		const char *line;
		bool http;
	} cases[] = {
		{ "GET / HTTP/1.1", true },
		{ "POST /login HTTP/1.0", true },
		{ "HEAD / HTTP/1.1", true },
		{ "CONNECT example.test:443 HTTP/1.1", true },
		{ "GET", false },
		{ "get / HTTP/1.1", false },
		{ "DELE 1", false },
		{ "STAT", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_INT(pop3_is_http_request(cases[i].line, strlen(cases[i].line)),
			  cases[i].http);
}

int main(void)
{
	test_parse();
	test_long_argument();
	test_stuff();
	test_http();
	return test_report();
}
