/* IMAP command parser and sequence sets: every command is fed whole, one
 * byte at a time and in 3-byte chunks, and must give the same events. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include "lib/buf.h"
#include "test.h"

/* What the driver does on a literal: inline, stream, refuse, or choose
 * (inline up to 16 bytes, stream above). */
enum lit_mode { LIT_CHOOSE, LIT_INLINE, LIT_STREAM, LIT_REFUSE };

struct parse_case {
	const char *input;
	size_t len;		/* 0: strlen(input) */
	const char *want;
	enum lit_mode mode;
	unsigned int flags;
	const struct imap_parser_limits *limits;
};

static const struct imap_parser_limits default_limits = {
	.max_line_length = 8192,
	.max_literal_size = 1024 * 1024,
	.max_list_depth = 8,
	.max_args = 100,
};

static const struct imap_parser_limits small_limits = {
	.max_line_length = 40,
	.max_literal_size = 100,
	.max_list_depth = 2,
	.max_args = 5,
};

static void dump_bytes(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			buf_printf(out, "\\x%02x", c);
		else
			buf_append_char(out, (char)c);
	}
}

static void dump_args(struct buf *out, const struct imap_arg *args, unsigned int count);

static void dump_section(struct buf *out, const struct imap_arg *arg)
{
	const struct imap_section *sec = arg->section;
	buf_printf(out, "%s[", arg->str);
	for (unsigned int i = 0; i < sec->part_count; i++)
		buf_printf(out, "%s%u", i > 0 ? "." : "p=", sec->parts[i]);
	buf_printf(out, " t=%d", (int)sec->text);
	for (unsigned int i = 0; i < sec->field_count; i++)
		buf_printf(out, "%s%s", i > 0 ? "," : " f=", sec->fields[i]);
	buf_append_char(out, ']');
	if (sec->has_partial)
		buf_printf(out, "<%llu.%llu>", (unsigned long long)sec->partial_offset,
			   (unsigned long long)sec->partial_length);
}

static void dump_literal(struct buf *out, const struct imap_arg *arg)
{
	buf_printf(out, "%s{%llu%s}", (arg->flags & IMAP_ARG_FLAG_BINARY) ? "~" : "",
		   (unsigned long long)arg->literal_size,
		   (arg->flags & IMAP_ARG_FLAG_NONSYNC) ? "+" : "");
	if (arg->flags & IMAP_ARG_FLAG_STREAMED)
		buf_append_str(out, "stream");
	else
		dump_bytes(out, arg->str, arg->len);
}

static void dump_arg(struct buf *out, const struct imap_arg *arg)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
		buf_append_str(out, arg->str);
		break;
	case IMAP_ARG_NIL:
		buf_printf(out, "<NIL:%s>", arg->str);
		break;
	case IMAP_ARG_STRING:
		buf_append_char(out, '"');
		dump_bytes(out, arg->str, arg->len);
		buf_append_char(out, '"');
		break;
	case IMAP_ARG_LITERAL:
		dump_literal(out, arg);
		break;
	case IMAP_ARG_LIST:
		buf_append_char(out, '(');
		dump_args(out, arg->list->args, arg->list->count);
		buf_append_char(out, ')');
		break;
	case IMAP_ARG_SECTION:
		dump_section(out, arg);
		break;
	}
}

static void dump_args(struct buf *out, const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (i > 0)
			buf_append_char(out, ' ');
		dump_arg(out, &args[i]);
	}
}

static void dump_error(struct buf *out, struct imap_parser *p)
{
	const struct imap_parser_error *err = imap_parser_error(p);
	const struct imap_command *cmd = imap_parser_command(p);
	buf_printf(out, "%s BAD %s%s%s%s\n", cmd->tag != NULL ? cmd->tag : "*",
		   err->code != NULL ? "[" : "", err->code != NULL ? err->code : "",
		   err->code != NULL ? "] " : "", err->text);
}

/* The first event tells the driver to switch to raw line mode. */
static void dump_done(struct buf *out, struct imap_parser *p, struct buf *stream)
{
	const struct imap_command *cmd = imap_parser_command(p);
	if (cmd->line != NULL) {
		buf_append_str(out, "LINE ");
		dump_bytes(out, cmd->line, cmd->line_len);
	} else {
		buf_printf(out, "%s %s", cmd->tag, cmd->name);
		if (cmd->args.count > 0)
			buf_append_char(out, ' ');
		dump_args(out, cmd->args.args, cmd->args.count);
		/* IDLE and AUTHENTICATE without an initial response read lines. */
		if (strcmp(cmd->name, "IDLE") == 0 ||
		    (strcmp(cmd->name, "AUTHENTICATE") == 0 && cmd->args.count == 1))
			imap_parser_read_line(p);
	}
	if (stream->len > 0) {
		buf_append_str(out, " S=");
		dump_bytes(out, stream->data, stream->len);
	}
	buf_append_char(out, '\n');
	buf_reset(stream);
}

static void on_literal(struct buf *out, struct imap_parser *p, enum lit_mode mode)
{
	const struct imap_literal_info *lit = imap_parser_literal(p);
	buf_printf(out, "L%llu%s%s\n", (unsigned long long)lit->size, lit->nonsync ? "+" : "",
		   lit->binary ? "~" : "");
	if (mode == LIT_CHOOSE)
		mode = lit->size <= 16 ? LIT_INLINE : LIT_STREAM;
	int ret = 0;
	if (mode == LIT_INLINE)
		ret = imap_parser_literal_inline(p);
	else if (mode == LIT_STREAM)
		ret = imap_parser_literal_stream(p);
	else
		imap_parser_literal_refuse(p);
	if (ret < 0)
		dump_error(out, p);
}

/* Feeds input in chunks of `chunk` bytes (0 = all at once). */
static char *run_case(const struct parse_case *tc, size_t chunk)
{
	const struct imap_parser_limits *limits = tc->limits ? tc->limits : &default_limits;
	struct imap_parser *p = imap_parser_create(limits, tc->flags);
	struct buf out = BUF_INIT(0), stream = BUF_INIT(0);
	size_t len = tc->len ? tc->len : strlen(tc->input), pos = 0;
	while (pos < len) {
		size_t n = chunk == 0 || len - pos < chunk ? len - pos : chunk;
		size_t used = 0;
		enum imap_parse_result res = imap_parser_feed(p, tc->input + pos, n, &used);
		CHECK(used > 0 && used <= n);
		if (res == IMAP_PARSE_LITERAL_DATA)
			buf_append(&stream, tc->input + pos, used);
		pos += used;
		if (res == IMAP_PARSE_DONE)
			dump_done(&out, p, &stream);
		else if (res == IMAP_PARSE_ERROR)
			dump_error(&out, p);
		else if (res == IMAP_PARSE_LITERAL)
			on_literal(&out, p, tc->mode);
		if (res == IMAP_PARSE_ERROR)
			buf_reset(&stream);
	}
	imap_parser_destroy(&p);
	CHECK(p == NULL);
	buf_free(&stream);
	return buf_steal(&out);
}

#define T(in, out) { in, sizeof(in) - 1, out, LIT_CHOOSE, 0, NULL }

static const struct parse_case valid_cases[] = {
	T("a1 NOOP\r\n", "a1 NOOP\n"),
	T("a1 noop\r\nA2 Capability\r\n", "a1 NOOP\nA2 CAPABILITY\n"),
	T("a1 LOGIN alice secret\r\n", "a1 LOGIN alice secret\n"),
	T("a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\n",
	  "L5\nL6+\na1 LOGIN {5}alice {6+}secret\n"),
	T("a1 LOGIN \"al\\\"ice\" \"p\\\\w d\"\r\n", "a1 LOGIN \"al\"ice\" \"p\\w d\"\n"),
	T("a1 LOGIN \"\" {0}\r\n\r\n", "L0\na1 LOGIN \"\" {0}\n"),
	/* Thunderbird */
	T("3 UID fetch 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
	  "3 UID fetch 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\n"),
	T("7 UID fetch 4:9 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc "
	  "Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To "
	  "Content-Type Reply-To)])\r\n",
	  "7 UID fetch 4:9 (UID RFC822.SIZE FLAGS BODY.PEEK[ t=2 f=From,To,Cc,Bcc,Subject,"
	  "Date,Message-ID,Priority,X-Priority,References,Newsgroups,In-Reply-To,"
	  "Content-Type,Reply-To])\n"),
	/* Apple Mail / iOS */
	T("5.113 UID FETCH 42 (BODY.PEEK[1.2.MIME] BINARY.PEEK[1]<0.1024> BODY[]<0.2048> "
	  "BINARY.SIZE[2] body[1.HEADER.FIELDS.NOT (\"X-A\" {3}\r\nX-B)])\r\n",
	  "L3\n5.113 UID FETCH 42 (BODY.PEEK[p=1.2 t=5] BINARY.PEEK[p=1 t=0]<0.1024> "
	  "BODY[ t=0]<0.2048> BINARY.SIZE[p=2 t=0] body[p=1 t=3 f=X-A,X-B])\n"),
	T("f FETCH 1 BODY[]\r\n", "f FETCH 1 BODY[ t=0]\n"),
	T("f FETCH 1,3 (BODY[TEXT]<100.50> RFC822.HEADER ENVELOPE)\r\n",
	  "f FETCH 1,3 (BODY[ t=4]<100.50> RFC822.HEADER ENVELOPE)\n"),
	T("f FETCH 2 BODY.PEEK[HEADER]\r\n", "f FETCH 2 BODY.PEEK[ t=1]\n"),
	/* "[" outside FETCH is an ordinary atom character (Gmail-style names) */
	T("s SELECT [Gmail]/Sent\r\n", "s SELECT [Gmail]/Sent\n"),
	T("l LIST \"\" [Gmail]/%\r\n", "l LIST \"\" [Gmail]/%\n"),
	/* Outlook */
	T("AB12 UID STORE 1:3,5 +FLAGS.SILENT (\\Seen \\Flagged $Forwarded)\r\n",
	  "AB12 UID STORE 1:3,5 +FLAGS.SILENT (\\Seen \\Flagged $Forwarded)\n"),
	T("s STORE 1 (UNCHANGEDSINCE 12345) +FLAGS (\\Deleted)\r\n",
	  "s STORE 1 (UNCHANGEDSINCE 12345) +FLAGS (\\Deleted)\n"),
	T("x STORE 1 FLAGS ()\r\n", "x STORE 1 FLAGS ()\n"),
	T("s UID SEARCH CHARSET UTF-8 OR (FROM \"alice\" SINCE 1-Feb-1994) NOT SUBJECT "
	  "{9+}\r\n\xe7\xa0\x94\xe7\xa9\xb6\xe5\xae\xa4 UNDELETED\r\n",
	  "L9+\ns UID SEARCH CHARSET UTF-8 OR (FROM \"alice\" SINCE 1-Feb-1994) NOT SUBJECT "
	  "{9+}\xe7\xa0\x94\xe7\xa9\xb6\xe5\xae\xa4 UNDELETED\n"),
	T("s SEARCH RETURN (MIN MAX COUNT SAVE) 1:100 ((SEEN) (OR DRAFT (NOT DELETED)))\r\n",
	  "s SEARCH RETURN (MIN MAX COUNT SAVE) 1:100 ((SEEN) (OR DRAFT (NOT DELETED)))\n"),
	T("m UID MOVE $ Trash\r\n", "m UID MOVE $ Trash\n"),
	T("t UID SORT (REVERSE ARRIVAL) UTF-8 ALL\r\n", "t UID SORT (REVERSE ARRIVAL) UTF-8 ALL\n"),
	/* APPEND: K-9 style literal+ streamed; MULTIAPPEND */
	T("A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {21+}\r\n"
	  "Subject: hi\r\n\r\nbody\r\n\r\n",
	  "L21+\nA003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {21+}stream"
	  " S=Subject: hi\\x0d\\x0a\\x0d\\x0abody\\x0d\\x0a\n"),
	T("a APPEND INBOX (\\Seen) {20}\r\n01234567890123456789 (\\Draft) {17}\r\n"
	  "abcdefghijklmnopq\r\n",
	  "L20\nL17\na APPEND INBOX (\\Seen) {20}stream (\\Draft) {17}stream "
	  "S=01234567890123456789abcdefghijklmnopq\n"),
	T("a APPEND INBOX ~{3}\r\na\0b\r\n", "L3~\na APPEND INBOX ~{3}a\\x00b\n"),
	/* IDLE and AUTHENTICATE read raw lines after the command */
	T("i1 IDLE\r\nDONE\r\ni2 NOOP\r\n", "i1 IDLE\nLINE DONE\ni2 NOOP\n"),
	T("au AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
	  "au AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\n"),
	T("au AUTHENTICATE PLAIN\r\nAGFsaWNl AHNl\r\nn NOOP\r\n",
	  "au AUTHENTICATE PLAIN\nLINE AGFsaWNl AHNl\nn NOOP\n"),
	T("e ENABLE QRESYNC UTF8=ACCEPT IMAP4rev2\r\n", "e ENABLE QRESYNC UTF8=ACCEPT IMAP4rev2\n"),
	T("l LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Sent*\") RETURN (CHILDREN SPECIAL-USE "
	  "STATUS (MESSAGES UNSEEN))\r\n",
	  "l LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Sent*\") RETURN (CHILDREN SPECIAL-USE "
	  "STATUS (MESSAGES UNSEEN))\n"),
	T("l LIST \"\" *\r\n", "l LIST \"\" *\n"),
	T("st STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)\r\n",
	  "st STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)\n"),
	T("s SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
	  "s SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\n"),
	T("id ID NIL\r\n", "id ID <NIL:NIL>\n"),
	T("id ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")\r\n",
	  "id ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")\n"),
	T("c CREATE {12}\r\n&U,BTFw-/Foo\r\n", "L12\nc CREATE {12}&U,BTFw-/Foo\n"),
	T("c CREATE Drafts (USE (\\Drafts))\r\n", "c CREATE Drafts (USE (\\Drafts))\n"),
	T("a GETQUOTAROOT INBOX\r\nb SETQUOTA \"\" (STORAGE 512)\r\n",
	  "a GETQUOTAROOT INBOX\nb SETQUOTA \"\" (STORAGE 512)\n"),
	T("q SELECT \"\t\"\r\n", "q SELECT \"\\x09\"\n"),
};

static const struct imap_parser_limits lminus_limits = {
	.max_line_length = 8192,
	.max_literal_size = 1024 * 1024,
	.max_list_depth = 8,
	.max_args = 100,
};

static const struct parse_case special_cases[] = {
	/* UTF8=ACCEPT lets UTF-8 into quoted strings */
	{ "s SELECT \"\xe5\x8f\x97\xe4\xbf\xa1\xe7\xae\xb1\"\r\n", 0,
	  "s SELECT \"\xe5\x8f\x97\xe4\xbf\xa1\xe7\xae\xb1\"\n", LIT_CHOOSE,
	  IMAP_PARSER_FLAG_UTF8, NULL },
	{ "s SELECT \"\xe5\x8f\x97\"\r\nb NOOP\r\n", 0,
	  "s BAD 8-bit characters in quoted string\nb NOOP\n", LIT_CHOOSE, 0, NULL },
	{ "s SELECT \"\xc0\xaf\"\r\n", 0, "s BAD Invalid UTF-8 in quoted string\n", LIT_CHOOSE,
	  IMAP_PARSER_FLAG_UTF8, NULL },
	/* LITERAL-: non-synchronizing literals up to 4096 bytes only */
	{ "a LOGIN {4097+}\r\n", 0,
	  "a BAD [TOOBIG] Non-synchronizing literal larger than 4096 bytes\n", LIT_CHOOSE,
	  IMAP_PARSER_FLAG_LITERAL_MINUS, &lminus_limits },
	{ "a LOGIN {4097}\r\n", 0, "L4097\n", LIT_REFUSE, IMAP_PARSER_FLAG_LITERAL_MINUS,
	  &lminus_limits },
	/* refused literals: a synchronizing one ends the command, a
	 * non-synchronizing one is skipped with the rest of its line */
	{ "a APPEND INBOX {10}\r\nb NOOP\r\n", 0, "L10\nb NOOP\n", LIT_REFUSE, 0, NULL },
	{ "a APPEND INBOX {3+}\r\nabc (x) {2+}\r\nzz\r\nb NOOP\r\n", 0, "L3+\nb NOOP\n",
	  LIT_REFUSE, 0, NULL },
	/* over max_literal_size: refused before any byte is read */
	{ "a APPEND INBOX {101}\r\nb NOOP\r\n", 0, "a BAD [TOOBIG] Literal too large\nb NOOP\n",
	  LIT_CHOOSE, 0, &small_limits },
	{ "a APPEND INBOX {18446744073709551615}\r\nb NOOP\r\n", 0,
	  "a BAD [TOOBIG] Literal too large\nb NOOP\n", LIT_CHOOSE, 0, NULL },
	{ "a APPEND INBOX {18446744073709551616}\r\nb NOOP\r\n", 0,
	  "a BAD Invalid literal size\nb NOOP\n", LIT_CHOOSE, 0, NULL },
	{ "a APPEND INBOX {101+}\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "012345678901234567890123456789 x\r\nb NOOP\r\n", 0,
	  "a BAD [TOOBIG] Literal too large\nb NOOP\n", LIT_CHOOSE, 0, &small_limits },
	/* in memory only what fits in the line */
	{ "a LOGIN {30}\r\n", 0, "L30\na BAD [TOOBIG] Literal too large\n", LIT_INLINE, 0,
	  &small_limits },
	{ "a LOGIN {3}\r\na\0c\r\nb NOOP\r\n", 26,
	  "L3\na BAD NUL characters in literal\nb NOOP\n", LIT_INLINE, 0, NULL },
	/* small limits */
	{ "a X (((x)))\r\nb NOOP\r\n", 0, "a BAD List nested too deeply\nb NOOP\n", LIT_CHOOSE,
	  0, &small_limits },
	{ "a X ((x))\r\n", 0, "a X ((x))\n", LIT_CHOOSE, 0, &small_limits },
	{ "a X 1 2 3 4 5\r\n", 0, "a X 1 2 3 4 5\n", LIT_CHOOSE, 0, &small_limits },
	{ "a X 1 2 3 4 5 6\r\nb NOOP\r\n", 0, "a BAD Too many arguments\nb NOOP\n", LIT_CHOOSE,
	  0, &small_limits },
	{ "a X 1 2 3 (4) {1}\r\n", 0, "a BAD Too many arguments\n", LIT_CHOOSE, 0,
	  &small_limits },
	{ "a X 0123456789012345678901234567890123456789\r\nb NOOP\r\n", 0,
	  "a BAD Command line too long\nb NOOP\n", LIT_CHOOSE, 0, &small_limits },
	{ "a LOGIN \"a\" \"b\"\r\n", 0, "a LOGIN \"a\" \"b\"\n", LIT_CHOOSE, 0, &small_limits },
};

static const struct parse_case error_cases[] = {
	T("a LOGIN (a\r\nb NOOP\r\n", "a BAD Missing ')'\nb NOOP\n"),
	T("a LOGIN a)\r\nb NOOP\r\n", "a BAD Unexpected ')'\nb NOOP\n"),
	T("a LOGIN )\r\n", "a BAD Unexpected ')'\n"),
	T("a X (a )\r\n", "a BAD Space before ')'\n"),
	T("a X ( a)\r\n", "a BAD Space after '('\n"),
	T("a X (a)b\r\n", "a BAD Missing space between arguments\n"),
	T("a X \"a\"b\r\n", "a BAD Missing space between arguments\n"),
	T("a SELECT fo{o\r\nb NOOP\r\n", "a BAD Invalid characters in atom\nb NOOP\n"),
	T("a SELECT fo\"o\r\n", "a BAD Invalid characters in atom\n"),
	T("a SELECT fo\\o\r\n", "a BAD Invalid characters in atom\n"),
	T("a SELECT fo(o\r\n", "a BAD Invalid characters in atom\n"),
	T("a SELECT f\x80o\r\n", "a BAD Invalid characters in atom\n"),
	T("a SELECT f\x01o\r\n", "a BAD Invalid characters in atom\n"),
	T("a LOGIN \"abc\r\nb NOOP\r\n", "a BAD Missing '\"'\nb NOOP\n"),
	T("a LOGIN \"a\\qb\"\r\n", "a BAD Invalid escape in quoted string\n"),
	{ "a SELECT \"a\0b\"\r\nb NOOP\r\n", 24, "a BAD NUL characters in quoted string\nb NOOP\n",
	  LIT_CHOOSE, 0, NULL },
	{ "a SELECT a\0b\r\n", 14, "a BAD Invalid characters in atom\n", LIT_CHOOSE, 0, NULL },
	T("a NOOP\nb NOOP\r\n", "a BAD LF without CR\nb NOOP\n"),
	T("a SELECT x\nb NOOP\r\n", "a BAD LF without CR\nb NOOP\n"),
	T("a NOOP\rb\r\nc NOOP\r\n", "a BAD CR without LF\nc NOOP\n"),
	T("a  NOOP\r\n", "a BAD Missing command name\n"),
	T("a NOOP \r\n", "a BAD Trailing space at end of line\n"),
	T("a LIST  \"\" *\r\n", "a BAD Double space between arguments\n"),
	T("\r\nb NOOP\r\n", "* BAD Empty command line\nb NOOP\n"),
	T("a\r\n", "* BAD Missing command name\n"),
	T("+ NOOP\r\n", "* BAD Invalid tag\n"),
	T("a* NOOP\r\n", "* BAD Invalid tag\n"),
	T("a N(OOP\r\n", "a BAD Invalid characters in command name\n"),
	T("a LOGIN {5x}\r\nb NOOP\r\n", "a BAD Invalid literal size\nb NOOP\n"),
	T("a LOGIN {}\r\n", "a BAD Invalid literal size\n"),
	T("a LOGIN {+}\r\n", "a BAD Invalid literal size\n"),
	T("a LOGIN {5} \r\nb NOOP\r\n", "a BAD Missing CRLF after literal size\nb NOOP\n"),
	/* the skipped rest of a line may announce a literal+ to skip too */
	T("a LOGIN ) {3+}\r\nabc\r\nb NOOP\r\n", "a BAD Unexpected ')'\nb NOOP\n"),
	T("a LOGIN ) {3}\r\nb NOOP\r\n", "a BAD Unexpected ')'\nb NOOP\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[MIME]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[1.]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[0]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[1TEXT]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[TEXT (a)]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BINARY[TEXT]\r\n", "a BAD Invalid section\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "a BAD Invalid header list in section\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS (a]\r\n", "a BAD Invalid header list in section\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS (a(]\r\n", "a BAD Invalid characters in atom\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS (a) ]\r\n", "a BAD Missing ']' after section\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS (a b\r\nc NOOP\r\n", "a BAD Invalid header list in section\nc NOOP\n"),
	T("a FETCH 1 BODY[HEADER.FIELDS (a)\r\n", "a BAD Missing ']' after section\n"),
	T("a FETCH 1 BODY[]<0.0>\r\n", "a BAD Invalid partial\n"),
	T("a FETCH 1 BODY[]<1>\r\n", "a BAD Invalid partial\n"),
	T("a FETCH 1 BODY[]<1.2>x\r\n", "a BAD Invalid characters after section\n"),
	T("a FETCH 1 BINARY.SIZE[1]<0.5>\r\n", "a BAD Invalid characters after section\n"),
	T("a FETCH 1 BODY[]x\r\n", "a BAD Invalid characters after section\n"),
	T("a FETCH 1 BODY[]<9223372036854775808.1>\r\n", "a BAD Invalid partial\n"),
	/* a bad raw line ends line mode */
	T("i IDLE\r\nDO\0NE\r\nn NOOP\r\n", "i IDLE\n* BAD NUL characters in line\nn NOOP\n"),
	T("i IDLE\r\nDONE\nn NOOP\r\n", "i IDLE\n* BAD LF without CR\nn NOOP\n"),
};

static void check_cases(const struct parse_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *whole = run_case(&cases[i], 0);
		char *bytes = run_case(&cases[i], 1);
		char *chunks = run_case(&cases[i], 3);
		CHECK_STR(whole, cases[i].want);
		CHECK_STR(bytes, cases[i].want);
		CHECK_STR(chunks, cases[i].want);
		free(whole);
		free(bytes);
		free(chunks);
	}
}

/* Tracks an argument's shape through the typed getters. */
static void test_accessors(void)
{
	static const char input[] =
		"a X atom \"str\" NIL \\Seen \\* 1:5,* ]x [a] %x {3}\r\nlit\r\n";
	struct imap_parser *p = imap_parser_create(&default_limits, 0);
	size_t used, pos = 0;
	enum imap_parse_result res;
	while ((res = imap_parser_feed(p, input + pos, sizeof(input) - 1 - pos, &used)) ==
	       IMAP_PARSE_LITERAL) {
		pos += used;
		CHECK_INT(imap_parser_literal_inline(p), 0);
	}
	CHECK_INT(res, IMAP_PARSE_DONE);
	const struct imap_command *cmd = imap_parser_command(p);
	const struct imap_arg *a = cmd->args.args;
	const char *s;
	CHECK_INT(cmd->args.count, 10);
	CHECK(imap_arg_get_atom(&a[0], &s) && strcmp(s, "atom") == 0);
	CHECK(imap_arg_atom_equals(&a[0], "ATOM"));
	CHECK(!imap_arg_get_atom(&a[1], &s));
	CHECK(imap_arg_get_string(&a[1], &s) && strcmp(s, "str") == 0);
	CHECK(imap_arg_get_astring(&a[1], &s));
	CHECK(imap_arg_get_nstring(&a[2], &s) && s == NULL);
	CHECK(imap_arg_get_astring(&a[2], &s) && strcmp(s, "NIL") == 0);
	CHECK(imap_arg_get_flag(&a[3], false, &s) && strcmp(s, "\\Seen") == 0);
	CHECK(!imap_arg_get_astring(&a[3], &s));
	CHECK(!imap_arg_get_flag(&a[4], false, &s));
	CHECK(imap_arg_get_flag(&a[4], true, &s));
	CHECK(imap_arg_get_flag(&a[0], false, &s));
	CHECK(!imap_arg_get_astring(&a[5], &s));
	struct imap_seqset set;
	const char *error;
	CHECK_INT(imap_arg_get_seqset(&a[5], &set, &error), 0);
	CHECK(set.has_star);
	imap_seqset_free(&set);
	CHECK_INT(imap_arg_get_seqset(&a[1], &set, &error), -1);
	imap_seqset_free(&set);
	CHECK(!imap_arg_get_atom(&a[6], &s));
	CHECK(imap_arg_get_astring(&a[6], &s) && strcmp(s, "]x") == 0);
	CHECK(imap_arg_get_astring(&a[7], &s) && strcmp(s, "[a]") == 0);
	CHECK(!imap_arg_get_astring(&a[8], &s));
	CHECK(imap_arg_get_list_mailbox(&a[8], &s) && strcmp(s, "%x") == 0);
	CHECK(imap_arg_get_astring(&a[9], &s) && strcmp(s, "lit") == 0);
	const struct imap_arg *list;
	unsigned int count;
	CHECK(!imap_arg_get_list(&a[0], &list, &count));
	imap_parser_destroy(&p);
	imap_parser_destroy(&p);
}

/* A 50 MB APPEND goes through a parser whose line limit is 8 KB. */
static void test_large_stream(void)
{
	struct imap_parser_limits limits = default_limits;
	limits.max_literal_size = 64ull * 1024 * 1024;
	struct imap_parser *p = imap_parser_create(&limits, 0);
	static const char head[] = "a APPEND INBOX {52428800}\r\n";
	char chunk[65536];
	memset(chunk, 'x', sizeof(chunk));
	size_t used;
	CHECK_INT(imap_parser_feed(p, head, sizeof(head) - 1, &used), IMAP_PARSE_LITERAL);
	CHECK_INT(imap_parser_literal_inline(p), -1);
	CHECK_INT(imap_parser_feed(p, head, sizeof(head) - 1, &used), IMAP_PARSE_LITERAL);
	CHECK_INT(imap_parser_literal_stream(p), 0);
	uint64_t total = 0;
	while (total < 52428800) {
		size_t n = sizeof(chunk);
		if (imap_parser_feed(p, chunk, n, &used) != IMAP_PARSE_LITERAL_DATA)
			break;
		total += used;
	}
	CHECK_INT(total, 52428800);
	CHECK_INT(imap_parser_feed(p, "\r\n", 2, &used), IMAP_PARSE_DONE);
	const struct imap_command *cmd = imap_parser_command(p);
	CHECK_INT(cmd->args.count, 2);
	CHECK_INT(cmd->args.args[1].literal_size, 52428800);
	CHECK(cmd->args.args[1].str == NULL);
	imap_parser_destroy(&p);
}

/* The command so far is visible when a literal is announced. */
static void test_partial_command(void)
{
	struct imap_parser *p = imap_parser_create(&default_limits, 0);
	static const char in[] = "t1 APPEND Sent (\\Seen) {5}\r\n";
	size_t used;
	CHECK_INT(imap_parser_feed(p, in, sizeof(in) - 1, &used), IMAP_PARSE_LITERAL);
	const struct imap_command *cmd = imap_parser_command(p);
	CHECK_STR(cmd->tag, "t1");
	CHECK_STR(cmd->name, "APPEND");
	CHECK_INT(cmd->args.count, 2);
	CHECK_INT(imap_parser_literal(p)->size, 5);
	CHECK(!imap_parser_literal(p)->nonsync);
	imap_parser_literal_refuse(p);
	/* STARTTLS: whatever was buffered is forgotten */
	CHECK_INT(imap_parser_feed(p, "x NO", 4, &used), IMAP_PARSE_NEED_MORE);
	imap_parser_reset(p);
	CHECK_INT(imap_parser_feed(p, "y NOOP\r\n", 8, &used), IMAP_PARSE_DONE);
	CHECK_STR(imap_parser_command(p)->tag, "y");
	struct imap_parser_limits more = default_limits;
	more.max_list_depth = 32;
	imap_parser_set_limits(p, &more);
	imap_parser_set_flags(p, IMAP_PARSER_FLAG_UTF8);
	CHECK_INT(imap_parser_feed(p, "z X ((((((((((a))))))))))\r\n", 27, &used), IMAP_PARSE_DONE);
	imap_parser_destroy(&p);
}

static void test_write(void)
{
	static const struct {
		const char *in;
		bool utf8;
		const char *want;
	} cases[] = {
		{ "INBOX", false, "INBOX" },
		{ "", false, "\"\"" },
		{ "NIL", false, "\"NIL\"" },
		{ "a b", false, "\"a b\"" },
		{ "a\"b\\c", false, "\"a\\\"b\\\\c\"" },
		{ "[Gmail]/Sent", false, "\"[Gmail]/Sent\"" },
		{ "50%", false, "\"50%\"" },
		{ "a\r\nb", false, "{4}\r\na\r\nb" },
		{ "\xe5\x8f\x97", false, "{3}\r\n\xe5\x8f\x97" },
		{ "\xe5\x8f\x97", true, "\"\xe5\x8f\x97\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = BUF_INIT(0);
		CHECK_INT(imap_write_astring(&b, cases[i].in, cases[i].utf8), 0);
		CHECK_STR(buf_str(&b), cases[i].want);
		buf_free(&b);
	}
	struct buf b = BUF_INIT(0);
	CHECK_INT(imap_write_nstring(&b, NULL, false), 0);
	CHECK_INT(imap_write_nstring(&b, "x", false), 0);
	CHECK_STR(buf_str(&b), "NIL\"x\"");
	buf_reset(&b);
	CHECK_INT(imap_write_string(&b, "a\0b", 3, false), -1);
	struct buf small = BUF_INIT(4);
	CHECK_INT(imap_write_astring(&small, "a b c", false), -1);
	buf_free(&small);
	buf_free(&b);
}

/* A parsed command written back parses to the same thing. */
static void test_write_args(void)
{
	static const char in[] =
		"r FETCH 1 (BODY.PEEK[1.HEADER.FIELDS (From \"To\")]<0.10> "
		"FLAGS) \"q\\\"\" {2}\r\nab NIL\r\n";
	struct imap_parser *p = imap_parser_create(&default_limits, 0);
	size_t used, pos = 0;
	enum imap_parse_result res;
	while ((res = imap_parser_feed(p, in + pos, sizeof(in) - 1 - pos, &used)) !=
	       IMAP_PARSE_DONE) {
		pos += used;
		if (res == IMAP_PARSE_LITERAL)
			imap_parser_literal_inline(p);
		if (pos >= sizeof(in) - 1)
			break;
	}
	CHECK_INT(res, IMAP_PARSE_DONE);
	struct buf b = BUF_INIT(0);
	const struct imap_command *cmd = imap_parser_command(p);
	CHECK_INT(imap_write_args(&b, cmd->args.args, cmd->args.count), 0);
	CHECK_STR(buf_str(&b), "1 (BODY.PEEK[1.HEADER.FIELDS (From To)]<0.10> FLAGS) "
		  "\"q\\\"\" {2}\r\nab NIL");
	buf_reset(&b);
	const struct imap_arg *att = &cmd->args.args[1].list->args[0];
	CHECK_INT(imap_write_section(&b, "BODY", att->section, true), 0);
	CHECK_STR(buf_str(&b), "BODY[1.HEADER.FIELDS (From To)]<0>");
	buf_free(&b);
	imap_parser_destroy(&p);
}

/* ---- sequence sets ---- */

static void test_seqset_parse(void)
{
	static const struct {
		const char *in;
		const char *want;	/* NULL: invalid */
		uint32_t max;
		const char *resolved;
	} cases[] = {
		{ "1", "1", 10, "1" },
		{ "1:5,7,9:*", "1:5,7,9:*", 20, "1:5,7,9:20" },
		{ "1:5,7,9:*,$", "1:5,7,9:*,$", 20, "1:5,7,9:20,$" },
		{ "$", "$", 5, "$" },
		{ "5:1", "1:5", 10, "1:5" },
		{ "3,1,2", "1:3", 10, "1:3" },
		{ "1:3,2:6,8,7", "1:8", 10, "1:8" },
		{ "*", "*", 7, "7" },
		{ "*:4", "*:4", 2, "2:4" },
		{ "100:*", "100:*", 50, "50:100" },
		{ "1:*", "1:*", 0, "" },
		{ "4294967295", "4294967295", 1, "4294967295" },
		{ "1:4294967295,4294967295", "1:4294967295", 1, "1:4294967295" },
		{ "4294967296", NULL, 0, NULL },
		{ "0", NULL, 0, NULL },
		{ "01", NULL, 0, NULL },
		{ "", NULL, 0, NULL },
		{ ",1", NULL, 0, NULL },
		{ "1,", NULL, 0, NULL },
		{ "1::2", NULL, 0, NULL },
		{ "1:", NULL, 0, NULL },
		{ "a", NULL, 0, NULL },
		{ "$,1", NULL, 0, NULL },
		{ "$$", NULL, 0, NULL },
		{ "1 2", NULL, 0, NULL },
		{ "-1", NULL, 0, NULL },
		{ "99999999999999999999999", NULL, 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_seqset set;
		const char *error = NULL;
		int ret = imap_seqset_parse(&set, cases[i].in, &error);
		if (cases[i].want == NULL) {
			CHECK_INT(ret, -1);
			CHECK_STR(error, "Invalid sequence set");
			imap_seqset_free(&set);
			continue;
		}
		CHECK_INT(ret, 0);
		struct buf b = BUF_INIT(0);
		imap_seqset_format(&set, &b);
		CHECK_STR(buf_str(&b), cases[i].want);
		buf_reset(&b);
		imap_seqset_resolve(&set, cases[i].max);
		imap_seqset_format(&set, &b);
		CHECK_STR(buf_str(&b), cases[i].resolved);
		buf_free(&b);
		imap_seqset_free(&set);
	}
}

static void test_seqset_ops(void)
{
	struct imap_seqset set;
	const char *error;
	CHECK_INT(imap_seqset_parse(&set, "2:4,10,7:8,*", &error), 0);
	imap_seqset_resolve(&set, 12);
	CHECK_INT(imap_seqset_count(&set), 7);
	static const uint32_t members[] = { 2, 3, 4, 7, 8, 10, 12 };
	static const uint32_t others[] = { 1, 5, 6, 9, 11, 13, 4294967295u };
	for (size_t i = 0; i < 7; i++) {
		CHECK(imap_seqset_contains(&set, members[i]));
		CHECK(!imap_seqset_contains(&set, others[i]));
	}
	struct imap_seqset_iter iter;
	imap_seqset_iter_init(&iter);
	uint32_t n, k = 0;
	while (imap_seqset_iter_next(&set, &iter, &n)) {
		CHECK(k < 7 && n == members[k]);
		k++;
	}
	CHECK_INT(k, 7);
	uint32_t uids[] = { 1, 3, 4, 5, 9, 10, 12, 20 };
	uint32_t out[8];
	CHECK_INT(imap_seqset_filter(&set, uids, 8, out), 4);
	CHECK(out[0] == 3 && out[1] == 4 && out[2] == 10 && out[3] == 12);
	CHECK_INT(imap_seqset_filter(&set, uids, 8, uids), 4);
	CHECK(uids[0] == 3 && uids[3] == 12);
	/* building a set: SEARCH results, SEARCHRES */
	struct imap_seqset built;
	imap_seqset_init(&built);
	imap_seqset_add_range(&built, 9, 9);
	imap_seqset_add_range(&built, 5, 3);
	imap_seqset_add_range(&built, 6, 6);
	imap_seqset_add_set(&built, &set);
	struct buf b = BUF_INIT(0);
	imap_seqset_format(&built, &b);
	CHECK_STR(buf_str(&b), "2:10,12");
	buf_free(&b);
	struct buf tiny = BUF_INIT(3);
	CHECK_INT(imap_seqset_format(&built, &tiny), -1);
	buf_free(&tiny);
	/* the whole range iterates to its end without wrapping */
	struct imap_seqset top;
	CHECK_INT(imap_seqset_parse(&top, "4294967294:*", &error), 0);
	imap_seqset_resolve(&top, 4294967295u);
	imap_seqset_iter_init(&iter);
	k = 0;
	while (imap_seqset_iter_next(&top, &iter, &n))
		k++;
	CHECK_INT(k, 2);
	imap_seqset_free(&top);
	imap_seqset_free(&built);
	imap_seqset_free(&set);
}

int main(void)
{
	check_cases(valid_cases, sizeof(valid_cases) / sizeof(valid_cases[0]));
	check_cases(special_cases, sizeof(special_cases) / sizeof(special_cases[0]));
	check_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]));
	test_accessors();
	test_large_stream();
	test_partial_command();
	test_write();
	test_write_args();
	test_seqset_parse();
	test_seqset_ops();
	return test_report();
}
