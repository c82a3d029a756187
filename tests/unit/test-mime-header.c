/* Header decoding: RFC 2047 (the RFC's own examples), RFC 2231, Japanese
 * charsets (ISO-2022-JP with CP50221 extensions, raw Shift_JIS, raw EUC-JP),
 * broken encoded-words, charset aliases, and address lists (RFC 5322
 * appendix A). */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mime/mime.h"
#include "test.h"

#define JP_TESUTO "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"         /* テスト */
#define JP_KENKYU "\xe7\xa0\x94\xe7\xa9\xb6\xe5\xae\xa4"          /* 研究室 */
#define JP_NIHON "\xe6\x97\xa5\xe6\x9c\xac"                       /* 日本 */
#define FFFD "\xef\xbf\xbd"

static const struct {
	const char *in, *want;
} decode_cases[] = {
	/* RFC 2047 section 8 */
	{"(=?ISO-8859-1?Q?a?=)", "(a)"},
	{"(=?ISO-8859-1?Q?a?= b)", "(a b)"},
	{"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"},
	{"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"},
	{"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"},
	{"(=?ISO-8859-1?Q?a_b?=)", "(a b)"},
	{"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"},
	{"=?US-ASCII?Q?Keith_Moore?=", "Keith Moore"},
	{"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=", "Keld J\xc3\xb8rn Simonsen"},
	{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard"},
	{"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
	 "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
	 "If you can read this you understand the example."},
	/* RFC 2231 section 5: charset*language */
	{"=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"},
	/* plain text, unfolding */
	{"plain text", "plain text"},
	{"  folded\r\n\tline  ", "folded\tline"},
	{"", ""},
	/* adjacent words joined before conversion: a character split in two */
	{"=?UTF-8?B?5pc=?= =?UTF-8?B?peacrA==?=", JP_NIHON},
	{"=?UTF-8?B?5pel?= =?UTF-8?B?5pys?=", JP_NIHON},
	/* encoded words in broken places */
	{"\"=?UTF-8?B?5pel5pys?=\" <a@b>", "\"" JP_NIHON "\" <a@b>"},
	{"abc=?UTF-8?Q?d?=ef", "abcdef"},
	{"=?UTF-8?Q?no_end", "=?UTF-8?Q?no_end"},
	{"=?UTF-8?X?bad?=", "=?UTF-8?X?bad?="},
	{"=??Q?a?=", "=??Q?a?="},
	{"=?UTF-8?Q?has space?=", "=?UTF-8?Q?has space?="},
	{"=?UTF-8?B?!!5pel!!?=", "\xe6\x97\xa5"},
	{"=?UTF-8?Q?=E6=97?=", FFFD FFFD},
	{"=?UTF-8?Q?bad=ZZescape?=", "bad=ZZescape"},
	{"=?x-unknown-cs?Q?a=FFb?=", "a" FFFD "b"},
	{"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
	/* Japanese */
	{"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", JP_TESUTO},
	{"=?iso-2022-jp?B?GyRCOCY1Zjw8JE4kKkNOJGkkOxsoQg==?=",
	 JP_KENKYU "\xe3\x81\xae\xe3\x81\x8a\xe7\x9f\xa5\xe3\x82\x89\xe3\x81\x9b"},
	{"\x1b$B%F%9%H\x1b(B", JP_TESUTO},                    /* raw ISO-2022-JP */
	{"\x83\x65\x83\x58\x83\x67", JP_TESUTO},              /* raw Shift_JIS */
	{"\xb8\xa6\xb5\xe6\xbc\xbc", JP_KENKYU},              /* raw EUC-JP */
	{"Re: \x83\x65\x83\x58\x83\x67", "Re: " JP_TESUTO},
	{JP_KENKYU, JP_KENKYU},                               /* raw UTF-8 kept */
	/* CP50221: NEC row 13 and JIS X 0201 kana by ESC ( I */
	{"\x1b$B-!\x1b(I1\x1b(B", "\xe2\x91\xa0\xef\xbd\xb1"},
	{"=?x-sjis?B?g2WDWINn?=", JP_TESUTO},
	{"=?Windows-31J?B?g2WDWINn?=", JP_TESUTO},
	{"=?EUC-JP?B?uKa15ry8?=", JP_KENKYU},
	/* undecodable raw bytes */
	{"J\xf6rn", "J" FFFD "rn"},
	{"\xff\xfe", FFFD FFFD},
	/* other charsets through iconv */
	{"=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
	{"=?windows-1252?Q?=80?=", "\xe2\x82\xac"},
	{"=?iso-8859-1?Q?=80?=", "\xe2\x82\xac"},
	{"=?gb2312?B?1tDOxA==?=", "\xe4\xb8\xad\xe6\x96\x87"},
	{"=?big5?B?pKSk5Q==?=", "\xe4\xb8\xad\xe6\x96\x87"},
	{"=?ks_c_5601-1987?B?x9Gx27no?=", "\xed\x95\x9c\xea\xb8\x80\xeb\xb0\xb0"},
	{"=?utf-7?Q?+ZeVnLA-?=", JP_NIHON},
};

static void test_decode(void)
{
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		char *got = mime_header_decode(decode_cases[i].in, strlen(decode_cases[i].in));
		CHECK_STR(got, decode_cases[i].want);
		CHECK(mime_utf8_is_valid(got, strlen(got)));
		free(got);
	}
}

static const struct {
	const char *content_type, *name, *want;
} param_cases[] = {
	/* RFC 2231 section 4.1 */
	{"application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20;\r\n"
	 " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
	 "title", "This is even more ***fun*** isn't it!"},
	{"application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
	 "title", "This is ***fun***"},
	{"application/x-stuff;\r\n title*0=\"abc\"; title*1=\"def\"", "title", "abcdef"},
	{"text/plain; name*=utf-8''%E6%97%A5%E6%9C%AC.txt", "name", JP_NIHON ".txt"},
	{"text/plain; name*=iso-8859-1'en'%A3%20rates", "name", "\xc2\xa3 rates"},
	{"text/plain; name*=''%E6%97%A5", "name", "\xe6\x97\xa5"},
	{"text/plain; name=\"=?UTF-8?B?5pel5pys?=.txt\"", "name", JP_NIHON ".txt"},
	{"text/plain; name=\"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\"", "name", JP_TESUTO},
	{"text/plain; name=\"a\\\"b\"", "name", "a\"b"},
	{"text/plain; name=unquoted file.txt ; x=y", "name", "unquoted file.txt"},
	{"multipart/mixed; boundary=----=_Part_1", "boundary", "----=_Part_1"},
	{"text/plain; CHARSET=\"UTF-8\" (comment)", "charset", "UTF-8"},
	{"text/plain; name*1=\"b\"", "name", NULL}, /* no section 0 */
	{"text/plain; name=\"unterminated", "name", NULL},
};

static void test_params(void)
{
	for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		struct buf msg = BUF_INIT(0);
		buf_printf(&msg, "Content-Type: %s\r\n\r\nbody\r\n", param_cases[i].content_type);
		struct mime_part *root = mime_parse(msg.data, msg.len, NULL);
		char *got = mime_param_get_utf8(root->params, root->param_count, param_cases[i].name);
		if (param_cases[i].want == NULL)
			CHECK(got == NULL);
		else
			CHECK_STR(got, param_cases[i].want);
		free(got);
		mime_part_free(&root);
		buf_free(&msg);
	}
}

/* "name|route|mailbox|host;" per entry, "-" for NULL; "!" marks invalid */
static char *addr_format(const char *value)
{
	struct mime_address *list = mime_address_parse(value, strlen(value), 100);
	struct buf out = BUF_INIT(0);
	for (struct mime_address *a = list; a != NULL; a = a->next) {
		buf_printf(&out, "%s|%s|%s|%s%s;", a->name ? a->name : "-", a->route ? a->route : "-",
			   a->mailbox ? a->mailbox : "-", a->host ? a->host : "-",
			   a->invalid ? "!" : "");
	}
	mime_address_free(&list);
	return buf_steal(&out);
}

static const struct {
	const char *in, *want;
} address_cases[] = {
	/* RFC 5322 A.1.1 */
	{"John Doe <jdoe@machine.example>", "John Doe|-|jdoe|machine.example;"},
	{"Mary Smith <mary@example.net>", "Mary Smith|-|mary|example.net;"},
	/* A.1.2 */
	{"Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	 "Mary Smith|-|mary|x.test;-|-|jdoe|example.org;Who?|-|one|y.test;"},
	{"<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
	 "-|-|boss|nil.test;Giant; \"Big\" Box|-|sysservices|example.net;"},
	/* A.1.3 */
	{"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	 "-|-|A Group|-;Ed Jones|-|c|a.test;-|-|joe|where.test;John|-|jdoe|one.test;-|-|-|-;"},
	{"Undisclosed recipients:;", "-|-|Undisclosed recipients|-;-|-|-|-;"},
	/* A.5: comments and white space */
	{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	 "Pete|-|pete|silly.test;"},
	{"A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
	 "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
	 "-|-|A Group|-;Chris Jones|-|c|public.example;-|-|joe|example.org;John|-|jdoe|one.test;"
	 "-|-|-|-;"},
	/* A.6.1 obsolete forms: route, empty members, spaces around dots */
	{"Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
	 "Mary Smith|@node.test|mary|example.net;-|-|jdoe|test.example;"},
	{"<@r1,@r2:x@y>", "-|@r1,@r2|x|y;"},
	/* a comment names an address without a display name */
	{"a@b (Real Name)", "Real Name|-|a|b;"},
	{"\"Joe Q. Public\" <john.q.public@example.com>",
	 "Joe Q. Public|-|john.q.public|example.com;"},
	{"\"quoted local\"@example.com", "-|-|quoted local|example.com;"},
	{"=?utf-8?q?J=C3=B6?= <j@x>", "=?utf-8?q?J=C3=B6?=|-|j|x;"},
	/* garbage */
	{"<>", "-|-||!;"},
	{"foo", "-|-|foo|!;"},
	{"a@b c@d", "-|-|a|b!;"},
	{"<unterminated@x", "-|-|unterminated|x!;"},
	{"", ""},
	{",,,", ""},
	{"Group: a@b", "-|-|Group|-;-|-|a|b;-|-|-|-;"},
};

static void test_addresses(void)
{
	for (size_t i = 0; i < sizeof(address_cases) / sizeof(address_cases[0]); i++) {
		char *got = addr_format(address_cases[i].in);
		CHECK_STR(got, address_cases[i].want);
		free(got);
	}
	/* the limit is kept */
	struct mime_address *list = mime_address_parse("a@b, c@d, e@f", 13, 2);
	CHECK(list != NULL && list->next != NULL && list->next->next == NULL);
	mime_address_free(&list);
}

static const struct {
	const char *name, *want;
} charset_cases[] = {
	{"x-sjis", "CP932"},       {"Shift_JIS", "CP932"},    {"MS932", "CP932"},
	{"windows-31j", "CP932"},  {"euc-jp", "EUC-JP-MS"},   {"gb2312", "GB18030"},
	{"GBK", "GB18030"},        {"ks_c_5601-1987", "CP949"}, {"big5", "CP950"},
	{"iso-2022-jp", "ISO-2022-JP"}, {"CP50221", "ISO-2022-JP"}, {"utf-7", "UTF-7"},
	{"ISO-8859-15", "ISO-8859-15"}, {"no-such-charset", NULL}, {"../etc/x", NULL},
	{"UTF-8//IGNORE", NULL},
};

static void test_charsets(void)
{
	for (size_t i = 0; i < sizeof(charset_cases) / sizeof(charset_cases[0]); i++) {
		const char *got = mime_charset_canonical(charset_cases[i].name);
		if (charset_cases[i].want == NULL)
			CHECK(got == NULL);
		else
			CHECK_STR(got, charset_cases[i].want);
	}
	/* streaming conversion: a Shift_JIS text cut at every byte */
	const char sjis[] = "\x83\x65\x83\x58\x83\x67";
	struct mime_charset_conv *conv = mime_charset_conv_create("shift_jis");
	struct buf out = BUF_INIT(0);
	for (size_t i = 0; i < strlen(sjis); i++)
		mime_charset_conv_feed(conv, sjis + i, 1, &out);
	mime_charset_conv_finish(conv, &out);
	CHECK_STR(buf_str(&out), JP_TESUTO);
	mime_charset_conv_destroy(&conv);
	buf_reset(&out);
	/* invalid input: U+FFFD and go on */
	mime_charset_to_utf8("utf-8", "a\xc3(b\xed\xa0\x80", 7, &out);
	CHECK_STR(buf_str(&out), "a" FFFD "(b" FFFD FFFD FFFD);
	buf_reset(&out);
	mime_charset_to_utf8("euc-jp", "\xb8\xa6\xff\xb5\xe6", 5, &out);
	CHECK_STR(buf_str(&out), "\xe7\xa0\x94" FFFD "\xe7\xa9\xb6");
	buf_free(&out);
}

static void test_header_text(void)
{
	const char hdr[] = "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n"
			   "From: =?utf-8?q?J=C3=B6?= <j@x>\r\n\r\n";
	struct buf out = BUF_INIT(0);
	CHECK_INT(mime_header_text(hdr, strlen(hdr), &out), 0);
	CHECK_STR(buf_str(&out), "Subject: " JP_TESUTO "\nFrom: J\xc3\xb6 <j@x>\n");
	buf_free(&out);
	char *v = mime_header_get(hdr, strlen(hdr), "from");
	CHECK_STR(v, "=?utf-8?q?J=C3=B6?= <j@x>");
	free(v);
	CHECK(mime_header_get(hdr, strlen(hdr), "To") == NULL);
}

int main(void)
{
	test_decode();
	test_params();
	test_addresses();
	test_charsets();
	test_header_text();
	return test_report();
}
