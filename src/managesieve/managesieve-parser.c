/* The ManageSieve command parser (RFC 5804 4): an incremental state
 * machine fed bytes as they arrive. A command is words separated by
 * spaces and ended by CRLF (or LF): atoms, quoted strings (\" and \\
 * escapes, at most 1024 octets) and literals "{n+}" CRLF n octets, also
 * taken without the '+' (ManageSieve has no continuation request, so
 * clients send the bytes at once either way). A literal over the limit is
 * refused on its header and its bytes are skipped, never buffered. */
#include "managesieve/managesieve-private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

enum parser_state {
	P_ARG_START,    /* a word may begin, or the line end */
	P_ATOM,
	P_QUOTED,
	P_QUOTED_ESC,
	P_AFTER_WORD,   /* a space or the line end */
	P_LIT_SIZE,     /* inside "{": digits */
	P_LIT_CLOSE,    /* after "+": "}" */
	P_LIT_EOL,      /* after "}": CR or LF */
	P_LIT_LF,       /* after "}" CR: LF */
	P_LIT_DATA,
	P_CR,           /* the line's CR: LF */
	P_SKIP_LITERAL, /* error: a refused literal's bytes */
	P_SKIP_LINE,    /* error: up to the next LF */
};

struct managesieve_parser {
	struct managesieve_parser_limits limits;
	enum parser_state state;
	struct managesieve_arg args[MANAGESIEVE_MAX_ARGS];
	unsigned int count;
	bool done;              /* DONE was returned: clear on the next feed */
	struct buf word;        /* the word being read */
	enum managesieve_arg_type word_type;
	size_t line_bytes;      /* bytes outside literals */
	uint64_t literal_size;
	bool literal_digits;
	uint64_t literal_left;  /* P_LIT_DATA and P_SKIP_LITERAL */
	struct managesieve_parser_error error;
};

struct managesieve_parser *managesieve_parser_create(const struct managesieve_parser_limits *limits)
{
	struct managesieve_parser *parser = xcalloc(1, sizeof(*parser));
	parser->limits = *limits;
	return parser;
}

static void parser_clear_args(struct managesieve_parser *parser)
{
	for (unsigned int i = 0; i < parser->count; i++) {
		if (parser->args[i].type == MANAGESIEVE_ARG_LITERAL)
			explicit_bzero(parser->args[i].str, parser->args[i].len);
		free(parser->args[i].str);
	}
	parser->count = 0;
	parser->done = false;
}

void managesieve_parser_reset(struct managesieve_parser *parser)
{
	parser_clear_args(parser);
	buf_free(&parser->word);
	parser->state = P_ARG_START;
	parser->line_bytes = 0;
	parser->literal_left = 0;
}

void managesieve_parser_destroy(struct managesieve_parser **parser)
{
	if (*parser == NULL)
		return;
	managesieve_parser_reset(*parser);
	free(*parser);
	*parser = NULL;
}

void managesieve_parser_set_limits(struct managesieve_parser *parser,
				   const struct managesieve_parser_limits *limits)
{
	parser->limits = *limits;
}

const struct managesieve_arg *managesieve_parser_args(const struct managesieve_parser *parser,
						      unsigned int *count_r)
{
	*count_r = parser->count;
	return parser->args;
}

const struct managesieve_parser_error *
managesieve_parser_error(const struct managesieve_parser *parser)
{
	return &parser->error;
}

/* RFC 5804 4: ATOM-CHAR is any CHAR but "(" ")" "{" SP CTL '"' '\'. */
static bool is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != '\\';
}

/* An error: the rest of the command is skipped unless the byte that
 * caused it ended the line. */
static enum managesieve_parse_result parser_fail(struct managesieve_parser *parser,
						 const char *text, unsigned char c)
{
	parser->error.text = text;
	parser->error.literal_too_large = false;
	parser_clear_args(parser);
	buf_free(&parser->word);
	parser->line_bytes = 0;
	parser->state = c == '\n' ? P_ARG_START : P_SKIP_LINE;
	return MANAGESIEVE_PARSE_ERROR;
}

static enum managesieve_parse_result parser_begin_word(struct managesieve_parser *parser,
						       enum managesieve_arg_type type,
						       enum parser_state next)
{
	if (parser->count == MANAGESIEVE_MAX_ARGS)
		return parser_fail(parser, "Too many arguments", 0);
	buf_free(&parser->word);
	buf_init(&parser->word, 0);
	parser->word_type = type;
	parser->state = next;
	return MANAGESIEVE_PARSE_NEED_MORE;
}

static void parser_end_word(struct managesieve_parser *parser)
{
	struct managesieve_arg *arg = &parser->args[parser->count++];
	arg->type = parser->word_type;
	arg->len = parser->word.len;
	arg->str = buf_steal(&parser->word);
	if (arg->str == NULL)
		arg->str = xstrdup("");
	parser->state = P_AFTER_WORD;
}

/* The limits were checked before the byte is added. */
static void parser_add(struct managesieve_parser *parser, const void *data, size_t len)
{
	if (buf_append(&parser->word, data, len) < 0)
		abort();
}

/* The line ended: a command, or nothing when it was empty. */
static enum managesieve_parse_result parser_line_end(struct managesieve_parser *parser)
{
	parser->state = P_ARG_START;
	parser->line_bytes = 0;
	if (parser->count == 0)
		return MANAGESIEVE_PARSE_NEED_MORE;
	parser->done = true;
	return MANAGESIEVE_PARSE_DONE;
}

static enum managesieve_parse_result parser_arg_start(struct managesieve_parser *parser,
						      unsigned char c)
{
	if (c == ' ') {
		parser->state = P_ARG_START;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c == '\r') {
		parser->state = P_CR;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c == '\n')
		return parser_line_end(parser);
	if (c == '"')
		return parser_begin_word(parser, MANAGESIEVE_ARG_QUOTED, P_QUOTED);
	if (c == '{') {
		parser->literal_size = 0;
		parser->literal_digits = false;
		return parser_begin_word(parser, MANAGESIEVE_ARG_LITERAL, P_LIT_SIZE);
	}
	if (!is_atom_char(c))
		return parser_fail(parser, "Invalid character in command", c);
	enum managesieve_parse_result res = parser_begin_word(parser, MANAGESIEVE_ARG_ATOM, P_ATOM);
	if (res == MANAGESIEVE_PARSE_NEED_MORE)
		parser_add(parser, &c, 1);
	return res;
}

static enum managesieve_parse_result parser_atom(struct managesieve_parser *parser,
						 unsigned char c)
{
	if (is_atom_char(c)) {
		parser_add(parser, &c, 1);
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c != ' ' && c != '\r' && c != '\n')
		return parser_fail(parser, "Invalid character in command", c);
	parser_end_word(parser);
	return parser_arg_start(parser, c);
}

static enum managesieve_parse_result parser_quoted(struct managesieve_parser *parser,
						   unsigned char c)
{
	if (c == '"') {
		parser_end_word(parser);
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c == '\\') {
		parser->state = P_QUOTED_ESC;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c == '\r' || c == '\n' || c == '\0')
		return parser_fail(parser, "Unterminated or invalid quoted string", c);
	if (parser->word.len >= MANAGESIEVE_MAX_QUOTED)
		return parser_fail(parser, "Quoted string too long: use a literal", c);
	parser_add(parser, &c, 1);
	return MANAGESIEVE_PARSE_NEED_MORE;
}

static enum managesieve_parse_result parser_quoted_esc(struct managesieve_parser *parser,
						       unsigned char c)
{
	if (c != '"' && c != '\\')
		return parser_fail(parser, "Invalid escape in quoted string", c);
	parser->state = P_QUOTED;
	parser_add(parser, &c, 1);
	return MANAGESIEVE_PARSE_NEED_MORE;
}

static enum managesieve_parse_result parser_after_word(struct managesieve_parser *parser,
						       unsigned char c)
{
	if (c != ' ' && c != '\r' && c != '\n')
		return parser_fail(parser, "Missing space between arguments", c);
	return parser_arg_start(parser, c);
}

/* RFC 5804 4: number is a 32-bit unsigned number. */
static enum managesieve_parse_result parser_lit_size(struct managesieve_parser *parser,
						     unsigned char c)
{
	if (c >= '0' && c <= '9') {
		parser->literal_size = parser->literal_size * 10 + (uint64_t)(c - '0');
		parser->literal_digits = true;
		if (parser->literal_size > UINT32_MAX)
			return parser_fail(parser, "Literal size too large", c);
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (parser->literal_digits && (c == '+' || c == '}')) {
		parser->state = c == '+' ? P_LIT_CLOSE : P_LIT_EOL;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	return parser_fail(parser, "Invalid literal", c);
}

/* The header is complete: refuse a literal over the limit (its bytes are
 * skipped), else read it. */
static enum managesieve_parse_result parser_lit_start(struct managesieve_parser *parser)
{
	if (parser->literal_size > parser->limits.max_literal) {
		parser_fail(parser, "Literal too large", 0);
		parser->error.literal_too_large = true;
		parser->literal_left = parser->literal_size;
		parser->state = parser->literal_left > 0 ? P_SKIP_LITERAL : P_SKIP_LINE;
		return MANAGESIEVE_PARSE_ERROR;
	}
	parser->literal_left = parser->literal_size;
	if (parser->literal_left == 0) {
		parser_end_word(parser);
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	buf_free(&parser->word);
	buf_init(&parser->word, (size_t)parser->literal_size + 1);
	parser->state = P_LIT_DATA;
	return MANAGESIEVE_PARSE_NEED_MORE;
}

static enum managesieve_parse_result parser_lit_eol(struct managesieve_parser *parser,
						    unsigned char c)
{
	if (parser->state == P_LIT_CLOSE) {
		if (c != '}')
			return parser_fail(parser, "Invalid literal", c);
		parser->state = P_LIT_EOL;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (parser->state == P_LIT_EOL && c == '\r') {
		parser->state = P_LIT_LF;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
	if (c != '\n')
		return parser_fail(parser, "A literal's size must end the line", c);
	return parser_lit_start(parser);
}

static enum managesieve_parse_result parser_byte(struct managesieve_parser *parser,
						 unsigned char c)
{
	switch (parser->state) {
	case P_ARG_START:
		return parser_arg_start(parser, c);
	case P_ATOM:
		return parser_atom(parser, c);
	case P_QUOTED:
		return parser_quoted(parser, c);
	case P_QUOTED_ESC:
		return parser_quoted_esc(parser, c);
	case P_AFTER_WORD:
		return parser_after_word(parser, c);
	case P_LIT_SIZE:
		return parser_lit_size(parser, c);
	case P_LIT_CLOSE:
	case P_LIT_EOL:
	case P_LIT_LF:
		return parser_lit_eol(parser, c);
	case P_CR:
		if (c == '\n')
			return parser_line_end(parser);
		return parser_fail(parser, "CR without LF", c);
	default:
		if (c == '\n')
			parser->state = P_ARG_START;
		return MANAGESIEVE_PARSE_NEED_MORE;
	}
}

/* Literal bytes: kept, or skipped after a refusal. */
static size_t parser_literal_bytes(struct managesieve_parser *parser, const char *data,
				   size_t size)
{
	size_t n = size < parser->literal_left ? size : (size_t)parser->literal_left;
	parser->literal_left -= n;
	if (parser->state == P_LIT_DATA) {
		parser_add(parser, data, n);
		if (parser->literal_left == 0)
			parser_end_word(parser);
	} else if (parser->literal_left == 0) {
		parser->state = P_SKIP_LINE;
	}
	return n;
}

enum managesieve_parse_result managesieve_parser_feed(struct managesieve_parser *parser,
						      const void *data, size_t size,
						      size_t *consumed_r)
{
	const char *p = data;
	size_t used = 0;

	if (parser->done)
		parser_clear_args(parser);
	while (used < size) {
		if (parser->state == P_LIT_DATA || parser->state == P_SKIP_LITERAL) {
			used += parser_literal_bytes(parser, p + used, size - used);
			continue;
		}
		unsigned char c = (unsigned char)p[used++];
		bool counted = parser->state != P_SKIP_LINE;
		if (counted && ++parser->line_bytes > parser->limits.max_line) {
			*consumed_r = used;
			return parser_fail(parser, "Line too long", c);
		}
		enum managesieve_parse_result res = parser_byte(parser, c);
		if (res != MANAGESIEVE_PARSE_NEED_MORE) {
			*consumed_r = used;
			return res;
		}
	}
	*consumed_r = used;
	return MANAGESIEVE_PARSE_NEED_MORE;
}

/* ---- writing strings ---------------------------------------------------- */

static bool can_be_quoted(const char *str, size_t len)
{
	if (len > MANAGESIEVE_MAX_QUOTED)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '\r' || str[i] == '\n' || str[i] == '\0')
			return false;
	}
	return true;
}

void managesieve_write_string(struct buf *out, const char *str, size_t len)
{
	if (!can_be_quoted(str, len)) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, str, len);
		return;
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, str[i]);
	}
	buf_append_char(out, '"');
}
