/* The ManageSieve command parser (src/managesieve/managesieve-parser.c):
 * every case is fed whole and one byte at a time, and must give the same
 * commands and errors both ways. */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "managesieve/managesieve-private.h"
#include "test.h"

/* Renders what the parser gives for input: each command as
 * "[A:word Q:word L:word]" (atom, quoted, literal; NUL shown as \0), each
 * error as "<error text>" ("<error text!>" when the literal was too large). */
static char *parse_all(const char *input, size_t len, size_t step,
		       const struct managesieve_parser_limits *limits)
{
	struct managesieve_parser *parser = managesieve_parser_create(limits);
	struct buf out = BUF_INIT(0);
	size_t pos = 0;

	while (pos < len) {
		size_t chunk = step == 0 || len - pos < step ? len - pos : step;
		size_t used = 0;
		enum managesieve_parse_result res =
			managesieve_parser_feed(parser, input + pos, chunk, &used);
		if (used == 0 && res == MANAGESIEVE_PARSE_NEED_MORE)
			abort();
		pos += used;
		if (res == MANAGESIEVE_PARSE_DONE) {
			unsigned int count;
			const struct managesieve_arg *args = managesieve_parser_args(parser, &count);
			buf_append_char(&out, '[');
			for (unsigned int i = 0; i < count; i++) {
				static const char types[] = "AQL";
				buf_printf(&out, "%s%c:", i > 0 ? " " : "", types[args[i].type]);
				for (size_t j = 0; j < args[i].len; j++)
					buf_append_str(&out, args[i].str[j] == '\0' ? "\\0" :
							     (char[]){ args[i].str[j], '\0' });
			}
			buf_append_char(&out, ']');
		} else if (res == MANAGESIEVE_PARSE_ERROR) {
			const struct managesieve_parser_error *err = managesieve_parser_error(parser);
			buf_printf(&out, "<%s%s>", err->text, err->literal_too_large ? "!" : "");
		}
	}
	managesieve_parser_destroy(&parser);
	return out.data != NULL ? buf_steal(&out) : xstrdup("");
}

static void test_table(void)
{
#define CASE(in, want) { in, sizeof(in) - 1, want }
	static const struct {
		const char *input;
		size_t len;
		const char *want;
	} cases[] = {
		CASE("CAPABILITY\r\n", "[A:CAPABILITY]"),
		CASE("logout\n", "[A:logout]"),
		CASE("\r\n\r\nNOOP\r\n", "[A:NOOP]"),
		CASE("AUTHENTICATE \"PLAIN\" \"AGEAYg==\"\r\n", "[A:AUTHENTICATE Q:PLAIN Q:AGEAYg==]"),
		CASE("AUTHENTICATE \"PLAIN\" {8+}\r\nAGEAYg==\r\n", "[A:AUTHENTICATE Q:PLAIN L:AGEAYg==]"),
		CASE("PUTSCRIPT \"a\" {7}\r\nkeep;\r\n\r\n", "[A:PUTSCRIPT Q:a L:keep;\r\n]"),
		CASE("PUTSCRIPT {1+}\r\nx {0+}\r\n\r\n", "[A:PUTSCRIPT L:x L:]"),
		CASE("PUTSCRIPT \"a\" {3+}\r\na\0b\r\n", "[A:PUTSCRIPT Q:a L:a\\0b]"),
		CASE("GETSCRIPT \"q\\\"uo\\\\te\"\r\n", "[A:GETSCRIPT Q:q\"uo\\te]"),
		CASE("SETACTIVE \"\"\r\n", "[A:SETACTIVE Q:]"),
		CASE("HAVESPACE \"a\" 100\r\n", "[A:HAVESPACE Q:a A:100]"),
		CASE("NOOP  \"two  spaces\"\r\n", "[A:NOOP Q:two  spaces]"),
		CASE("\"*\"\r\n", "[Q:*]"),
		CASE("dGVzdA==\r\n", "[A:dGVzdA==]"),
		CASE("NOOP\r\nNOOP \"x\"\r\n", "[A:NOOP][A:NOOP Q:x]"),
		/* errors: the rest of the command is skipped, the next one parses */
		CASE("GETSCRIPT \"a\"\"b\"\r\nNOOP\r\n", "<Missing space between arguments>[A:NOOP]"),
		CASE("GETSCRIPT \"open\r\nNOOP\r\n", "<Unterminated or invalid quoted string>[A:NOOP]"),
		CASE("GETSCRIPT \"bad\\n\"\r\nNOOP\r\n", "<Invalid escape in quoted string>[A:NOOP]"),
		CASE("A B C D E\r\nNOOP\r\n", "<Too many arguments>[A:NOOP]"),
		CASE("PUTSCRIPT {x+}\r\nNOOP\r\n", "<Invalid literal>[A:NOOP]"),
		CASE("PUTSCRIPT {+}\r\nNOOP\r\n", "<Invalid literal>[A:NOOP]"),
		CASE("PUTSCRIPT {3+} x\r\nNOOP\r\n", "<A literal's size must end the line>[A:NOOP]"),
		CASE("PUTSCRIPT {99999999999+}\r\nNOOP\r\n", "<Literal size too large>[A:NOOP]"),
		CASE("NO(OP\r\nNOOP\r\n", "<Invalid character in command>[A:NOOP]"),
		CASE("NOOP\rX\nNOOP\r\n", "<CR without LF>[A:NOOP]"),
		CASE("NOOP \x01\r\nNOOP\r\n", "<Invalid character in command>[A:NOOP]"),
		/* a literal over the limit: refused on its header, bytes skipped */
		CASE("PUTSCRIPT \"a\" {40+}\r\n0123456789012345678901234567890123456789 more\r\nNOOP\r\n",
		     "<Literal too large!>[A:NOOP]"),
		/* a literal's bytes are never parsed */
		CASE("PUTSCRIPT \"a\" {27+}\r\n{3+}\r\nabc\r\n\"quoted\"\r\nNOOP\r\n\r\nLOGOUT\r\n",
		     "[A:PUTSCRIPT Q:a L:{3+}\r\nabc\r\n\"quoted\"\r\nNOOP\r\n][A:LOGOUT]"),
	};
#undef CASE
	struct managesieve_parser_limits limits = { 256, 32 };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len;
		char *whole = parse_all(cases[i].input, len, 0, &limits);
		char *bytes = parse_all(cases[i].input, len, 1, &limits);
		if (strcmp(whole, cases[i].want) != 0)
			fprintf(stderr, "case %zu\n", i);
		CHECK_STR(whole, cases[i].want);
		CHECK_STR(bytes, cases[i].want);
		free(whole);
		free(bytes);
	}
}

static void test_line_limit(void)
{
	struct managesieve_parser_limits limits = { 20, 8 };
	char *got = parse_all("NOOP \"0123456789abcdef\"\r\nNOOP\r\n", 31, 1, &limits);
	CHECK_STR(got, "<Line too long>[A:NOOP]");
	free(got);
	/* literal bytes do not count against the line */
	got = parse_all("PUTSCRIPT {8+}\r\n12345678\r\n", 26, 3, &limits);
	CHECK_STR(got, "[A:PUTSCRIPT L:12345678]");
	free(got);
	/* quoted strings stop at 1024 octets */
	struct managesieve_parser_limits big = { 4096, 8 };
	char line[2048];
	memcpy(line, "NOOP \"", 6);
	memset(line + 6, 'x', 1025);
	memcpy(line + 1031, "\"\r\nNOOP\r\n", 9);
	got = parse_all(line, 1040, 0, &big);
	CHECK_STR(got, "<Quoted string too long: use a literal>[A:NOOP]");
	free(got);
}

static void test_write_string(void)
{
	static const struct {
		const char *str;
		size_t len;
		const char *want;
	} cases[] = {
		{ "plain", 5, "\"plain\"" },
		{ "", 0, "\"\"" },
		{ "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
		{ "two\r\nlines", 10, "{10}\r\ntwo\r\nlines" },
		{ "nul\0x", 5, "{5}\r\nnul\0x" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out = BUF_INIT(0);
		managesieve_write_string(&out, cases[i].str, cases[i].len);
		size_t want_len = strlen(cases[i].want);
		if (i == 4)
			want_len += 2;
		CHECK_INT(out.len, want_len);
		CHECK(out.len == want_len && memcmp(out.data, cases[i].want, want_len) == 0);
		buf_free(&out);
	}
}

int main(void)
{
	test_table();
	test_line_limit();
	test_write_string();
	return test_report();
}
