/* Modified UTF-7 (RFC 3501 5.1.3): round trips, and strict refusal of
 * every form a correct encoder would not produce. */
#include <stdlib.h>
#include <string.h>

#include "imap/imap-utf7.h"
#include "lib/buf.h"
#include "test.h"

static const struct {
	const char *utf8;
	const char *utf7;
} round_trips[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "\xe5\x8f\x97\xe4\xbf\xa1\xe7\xae\xb1/\xe7\xa0\x94\xe7\xa9\xb6\xe5\xae\xa4",
	  "&U9dP4Xux-/&eBR6dluk-" },
	/* the RFC's example */
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
	{ "a&b", "a&-b" },
	{ "&", "&-" },
	{ "&&", "&-&-" },
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "\xe2\x98\xba", "&Jjo-" },
	{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e & English", "&ZeVnLIqe- &- English" },
	{ "\t", "&AAk-" },
	{ "\xe2\x98\xba&", "&Jjo-&-" },
	{ "~/.Sent Items", "~/.Sent Items" },
};

static const char *const bad_utf7[] = {
	"&",		/* unterminated shift */
	"&Jjo",		/* unterminated shift */
	"a&Jjo-b&",
	"&AGE-",	/* printable ASCII encoded */
	"&ACY-",	/* '&' encoded */
	"&AAA-",	/* NUL */
	"&Jjo-&Jjo-",	/* two shifts in a row: not canonical */
	"&Jjp-",	/* non-zero padding bits */
	"&JjoA-",	/* a whole base64 digit too many */
	"&Jj-",		/* fewer bits than one unit */
	"&2D0-",	/* lone high surrogate (truncated pair) */
	"&2D3YPQ-",	/* high surrogate followed by a high one */
	"&3gA-",	/* lone low surrogate */
	"&Jjo/-",	/* '/' is ',' in modified base64 */
	"&Jjo=-",	/* no padding */
	"&Jj!o-",
	"a\tb",		/* control characters are never raw */
	"\xe5\x8f\x97",	/* 8-bit bytes are never raw */
	"\x7f",
};

static const char *const bad_utf8[] = {
	"\xff",
	"a\x80",
	"\xc0\xaf",		/* overlong '/' */
	"\xe0\x80\xaf",		/* overlong '/' */
	"\xed\xa0\x80",		/* UTF-16 surrogate */
	"\xf4\x90\x80\x80",	/* beyond U+10FFFF */
	"\xe5\x8f",		/* truncated */
	"\xf0\x9f\x98",
};

static void test_round_trips(void)
{
	for (size_t i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]); i++) {
		struct buf b = BUF_INIT(0);
		CHECK_INT(imap_utf8_to_utf7(round_trips[i].utf8, &b), 0);
		CHECK_STR(buf_str(&b), round_trips[i].utf7);
		buf_reset(&b);
		CHECK_INT(imap_utf7_to_utf8(round_trips[i].utf7, &b), 0);
		CHECK_STR(buf_str(&b), round_trips[i].utf8);
		CHECK(imap_utf7_is_valid(round_trips[i].utf7));
		CHECK(imap_utf8_is_valid(round_trips[i].utf8, strlen(round_trips[i].utf8)));
		buf_free(&b);
	}
}

static void test_invalid(void)
{
	for (size_t i = 0; i < sizeof(bad_utf7) / sizeof(bad_utf7[0]); i++) {
		struct buf b = BUF_INIT(0);
		if (imap_utf7_to_utf8(bad_utf7[i], &b) != -1)
			fprintf(stderr, "accepted bad UTF-7 \"%s\"\n", bad_utf7[i]);
		CHECK(!imap_utf7_is_valid(bad_utf7[i]));
		buf_free(&b);
	}
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct buf b = BUF_INIT(0);
		CHECK_INT(imap_utf8_to_utf7(bad_utf8[i], &b), -1);
		CHECK(!imap_utf8_is_valid(bad_utf8[i], strlen(bad_utf8[i])));
		buf_free(&b);
	}
	CHECK(!imap_utf8_is_valid("a\0b", 3));
}

/* Every BMP and some astral code points survive the round trip. */
static void test_all_code_points(void)
{
	int failures = 0;
	for (unsigned int cp = 1; cp < 0x110000 && failures < 5; cp += cp < 0x10000 ? 1 : 97) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char in[8];
		size_t n = 0;
		if (cp < 0x80) {
			in[n++] = (char)cp;
		} else if (cp < 0x800) {
			in[n++] = (char)(0xc0 | (cp >> 6));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			in[n++] = (char)(0xe0 | (cp >> 12));
			in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			in[n++] = (char)(0xf0 | (cp >> 18));
			in[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		}
		in[n++] = 'x';
		in[n] = '\0';
		struct buf enc = BUF_INIT(0), dec = BUF_INIT(0);
		if (imap_utf8_to_utf7(in, &enc) < 0 || imap_utf7_to_utf8(buf_str(&enc), &dec) < 0 ||
		    strcmp(buf_str(&dec), in) != 0) {
			fprintf(stderr, "round trip failed for U+%04X\n", cp);
			failures++;
		}
		buf_free(&enc);
		buf_free(&dec);
	}
	CHECK_INT(failures, 0);
}

static void test_limits(void)
{
	struct buf b = BUF_INIT(5);
	CHECK_INT(imap_utf8_to_utf7("\xe2\x98\xba\xe2\x98\xba", &b), -1);
	buf_free(&b);
	struct buf c = BUF_INIT(2);
	CHECK_INT(imap_utf7_to_utf8("&Jjo-", &c), -1);
	buf_free(&c);
}

int main(void)
{
	test_round_trips();
	test_invalid();
	test_all_code_points();
	test_limits();
	return test_report();
}
