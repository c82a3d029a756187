/* The IMAP command parser: an incremental state machine fed bytes as they
 * arrive (RFC 9051 / RFC 3501 section 9, RFC 7888 LITERAL+/LITERAL-,
 * RFC 3516 literal8). It never blocks and never holds more than its limits:
 * large literals are handed to the caller as a stream. See docs/imap-parser.md.
 *
 * Use:
 *	for (;;) {
 *		res = imap_parser_feed(p, data, size, &used);
 *		data += used; size -= used;
 *		NEED_MORE:    read more bytes
 *		LITERAL:      decide: imap_parser_literal_inline/_stream/_refuse
 *		              (for a synchronizing one send "+ OK" unless refused)
 *		LITERAL_DATA: the `used` bytes just consumed are literal content
 *		DONE:         run imap_parser_command(p)
 *		ERROR:        answer "<tag or *> BAD <text>"; the parser skips what
 *		              must be skipped by itself on the next feeds
 *	}
 * The command (and the error) stay valid until the next feed or reset. */
#ifndef YUBIN_IMAP_PARSER_H
#define YUBIN_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct imap_seqset;

/* The limit LITERAL- (RFC 7888) puts on non-synchronizing literals. */
#define IMAP_LITERAL_MINUS_MAX 4096
/* Parts in a section number ("1.2.3"): deeper MIME nesting is refused. */
#define IMAP_SECTION_MAX_PARTS 64

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE,    /* everything fed was consumed */
	IMAP_PARSE_DONE,         /* a complete command (or raw line) */
	IMAP_PARSE_LITERAL,      /* a literal header was read: the caller decides */
	IMAP_PARSE_LITERAL_DATA, /* the consumed bytes are streamed literal content */
	IMAP_PARSE_ERROR,        /* syntax error: see imap_parser_error() */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_STRING,  /* quoted string, escapes removed */
	IMAP_ARG_LITERAL, /* in memory (str) or streamed (str == NULL) */
	IMAP_ARG_NIL,     /* the atom NIL (str is "NIL" as sent) */
	IMAP_ARG_LIST,
	IMAP_ARG_SECTION, /* FETCH BODY[...]<..>/BINARY[...]: str is the name */
};

/* enum imap_arg flags */
#define IMAP_ARG_FLAG_NONSYNC 0x01   /* literal was {n+} */
#define IMAP_ARG_FLAG_BINARY 0x02    /* literal8 ~{n} */
#define IMAP_ARG_FLAG_STREAMED 0x04  /* literal bytes went to the caller */
#define IMAP_ARG_FLAG_WILDCARD 0x08  /* atom contains '%' or '*' */
#define IMAP_ARG_FLAG_BACKSLASH 0x10 /* atom starts with '\' (a flag) */
#define IMAP_ARG_FLAG_RBRACKET 0x20  /* atom contains ']' (astring only) */

struct imap_arg;

struct imap_arg_list {
	struct imap_arg *args;
	unsigned int count;
	unsigned int alloc;
};

enum imap_section_text {
	IMAP_SECTION_NONE, /* BODY[] or BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

/* A parsed fetch section: BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>. */
struct imap_section {
	char *spec; /* the text inside [] before any header list */
	uint32_t parts[IMAP_SECTION_MAX_PARTS];
	unsigned int part_count;
	enum imap_section_text text;
	char **fields; /* HEADER.FIELDS names, as sent */
	unsigned int field_count;
	bool has_partial;
	uint64_t partial_offset;
	uint64_t partial_length;
};

struct imap_arg {
	enum imap_arg_type type;
	unsigned int flags;
	/* ATOM, STRING, NIL, in-memory LITERAL, SECTION (its name, e.g.
	 * "BODY.PEEK"): NUL-terminated, len bytes (a literal8 may hold NULs). */
	char *str;
	size_t len;
	uint64_t literal_size;        /* LITERAL */
	struct imap_arg_list *list;   /* LIST */
	struct imap_section *section; /* SECTION */
};

struct imap_command {
	char *tag;  /* NULL until read (and in raw line mode) */
	char *name; /* upper-cased; NULL until read */
	struct imap_arg_list args;
	char *line; /* raw line mode: the line without CRLF */
	size_t line_len;
};

struct imap_parser_limits {
	size_t max_line_length;    /* command bytes outside streamed literals */
	uint64_t max_literal_size; /* any literal, checked before its bytes */
	unsigned int max_list_depth;
	unsigned int max_args; /* all arguments, nested ones included */
};

/* imap_parser flags */
#define IMAP_PARSER_FLAG_UTF8 0x1          /* UTF8=ACCEPT enabled: UTF-8 in quoted */
#define IMAP_PARSER_FLAG_LITERAL_MINUS 0x2 /* only LITERAL- announced */

struct imap_parser_error {
	const char *text; /* client-facing, static */
	const char *code; /* response code ("TOOBIG") or NULL */
	bool skip_line;   /* the parser will skip the rest of the line */
};

struct imap_literal_info {
	uint64_t size;
	bool nonsync;
	bool binary;
};

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits, unsigned int flags);
void imap_parser_destroy(struct imap_parser **parser);
/* Call between commands (e.g. looser limits after login). */
void imap_parser_set_limits(struct imap_parser *parser, const struct imap_parser_limits *limits);
void imap_parser_set_flags(struct imap_parser *parser, unsigned int flags);

/* Consumes a prefix of data (*consumed_r bytes, at least 1 when size > 0)
 * and says why it stopped. */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser, const void *data, size_t size,
                                        size_t *consumed_r);

/* The command being parsed: complete after DONE, partial (tag, name and
 * the arguments so far) after LITERAL / LITERAL_DATA / ERROR. */
const struct imap_command *imap_parser_command(const struct imap_parser *parser);
/* After ERROR. */
const struct imap_parser_error *imap_parser_error(const struct imap_parser *parser);
/* After LITERAL: the literal announced. */
const struct imap_literal_info *imap_parser_literal(const struct imap_parser *parser);
/* After LITERAL, exactly one of these. _inline keeps the bytes in the
 * argument; it fails (-1, the parser is then in the ERROR state with
 * "Literal too large" and skips the literal) when the literal does not fit
 * in what is left of max_line_length. _stream hands the bytes to the caller
 * as LITERAL_DATA results (a literal inside a FETCH header list is kept in
 * memory instead); both return -1 in the ERROR state. _refuse drops the command: nothing more is
 * reported for it (a non-synchronizing literal and the rest of its line are
 * skipped); the caller sends its own NO/BAD. */
int imap_parser_literal_inline(struct imap_parser *parser);
int imap_parser_literal_stream(struct imap_parser *parser);
void imap_parser_literal_refuse(struct imap_parser *parser);
/* The next DONE delivers one raw line in command->line instead of a command
 * (AUTHENTICATE responses, IDLE's DONE). */
void imap_parser_read_line(struct imap_parser *parser);
/* Forgets everything buffered and starts at a new command (STARTTLS). */
void imap_parser_reset(struct imap_parser *parser);

/* Argument accessors: true when arg has the wanted shape. Strings are
 * owned by the parser's command. */
bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* ATOM (']' allowed), STRING, in-memory LITERAL or NIL as "NIL". */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r);
/* STRING or in-memory LITERAL. */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r);
/* As astring, NIL gives NULL. */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r);
/* list-mailbox: astring that may also hold the wildcards % and *. */
bool imap_arg_get_list_mailbox(const struct imap_arg *arg, const char **str_r);
bool imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **args_r,
                       unsigned int *count_r);
/* A flag: \Seen, \Draft, ... \Extension or a keyword atom; "\*" only when
 * allow_star (PERMANENTFLAGS contexts). */
bool imap_arg_get_flag(const struct imap_arg *arg, bool allow_star, const char **str_r);
/* Case-insensitive atom comparison. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom);
/* A sequence set atom ("1:5,7,*", "$"); the set is initialized here. */
int imap_arg_get_seqset(const struct imap_arg *arg, struct imap_seqset *set, const char **error_r);

/* Response formatting into buf; all return -1 when buf's maximum is hit
 * or the value cannot be represented (NUL bytes). utf8: the session
 * enabled UTF8=ACCEPT, so 8-bit text may go in quoted strings. */
int imap_write_quoted(struct buf *buf, const char *str, size_t len);
int imap_write_literal(struct buf *buf, const char *str, size_t len);
/* Quoted when possible, else a literal. */
int imap_write_string(struct buf *buf, const char *str, size_t len, bool utf8);
/* Atom when possible, else as imap_write_string. */
int imap_write_astring(struct buf *buf, const char *str, bool utf8);
/* NULL gives NIL. */
int imap_write_nstring(struct buf *buf, const char *str, bool utf8);
/* A section as a FETCH response names it: "BODY[1.HEADER.FIELDS (FROM)]<0>". */
int imap_write_section(struct buf *buf, const char *name, const struct imap_section *section,
                       bool with_partial);
/* Arguments back in IMAP syntax (streamed literals as "{n}" with no data). */
int imap_write_args(struct buf *buf, const struct imap_arg *args, unsigned int count);

#endif
