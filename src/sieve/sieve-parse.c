/* The Sieve parser (RFC 5228 section 8.2): commands, arguments, string
 * lists, tests, test lists and blocks, by recursive descent over the
 * lexer's tokens. Each command and test is checked by the validator as
 * soon as its arguments are read, so errors come in source order. Nesting
 * is bounded (SIEVE_MAX_NESTING) so hostile scripts cannot exhaust the
 * stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve-parse-private.h"

struct sieve_parser {
	struct sieve_lexer lex;
	struct sieve_token tok; /* the current token */
	struct sieve_validator v;
	struct sieve_error *err;
	unsigned int block_depth, test_depth;
};

static int parse_test(struct sieve_parser *p, struct sieve_node *node);
static int parse_commands(struct sieve_parser *p, struct sieve_node **nodes_r, size_t *count_r,
                          bool top_level);

static int next(struct sieve_parser *p)
{
	free(p->tok.text);
	p->tok.text = NULL;
	return sieve_lexer_next(&p->lex, &p->tok);
}

static int unexpected(struct sieve_parser *p, const char *expected)
{
	char found[80];

	sieve_token_describe(&p->tok, found, sizeof(found));
	sieve_error_set(p->err, p->tok.line, p->tok.column, "expected %s, found %s", expected,
	                found);
	return -1;
}

static int expect(struct sieve_parser *p, enum sieve_token_type type, const char *what)
{
	if (p->tok.type != type)
		return unexpected(p, what);
	return next(p);
}

/* Enters one more level of *depth; refused past SIEVE_MAX_NESTING. */
static int nest(struct sieve_parser *p, unsigned int *depth, const char *what)
{
	if (++*depth > SIEVE_MAX_NESTING) {
		sieve_error_set(p->err, p->tok.line, p->tok.column,
		                "%s nested too deep (more than %d levels)", what,
		                SIEVE_MAX_NESTING);
		return -1;
	}
	return 0;
}

/* ---- arguments --------------------------------------------------------- */

static void take_string(struct sieve_parser *p, struct sieve_arg *arg)
{
	arg->strings = xreallocarray(arg->strings, arg->count + 1, sizeof(*arg->strings));
	arg->strings[arg->count].data = p->tok.text;
	arg->strings[arg->count].len = p->tok.len;
	arg->count++;
	p->tok.text = NULL;
}

static int parse_string_list(struct sieve_parser *p, struct sieve_arg *arg)
{
	arg->type = SIEVE_ARG_STRING_LIST;
	if (next(p) < 0)
		return -1;
	for (;;) {
		if (p->tok.type != SIEVE_TOK_STRING)
			return unexpected(p, "a string");
		take_string(p, arg);
		if (next(p) < 0)
			return -1;
		if (p->tok.type == SIEVE_TOK_RBRACKET)
			return next(p);
		if (expect(p, SIEVE_TOK_COMMA, "\",\" or \"]\"") < 0)
			return -1;
	}
}

/* One argument at the current token into raw. */
static int parse_argument(struct sieve_parser *p, struct sieve_raw_arg *raw)
{
	raw->arg.line = p->tok.line;
	raw->arg.column = p->tok.column;
	switch (p->tok.type) {
	case SIEVE_TOK_TAG:
		raw->tag = p->tok.text;
		p->tok.text = NULL;
		break;
	case SIEVE_TOK_NUMBER:
		raw->arg.type = SIEVE_ARG_NUMBER;
		raw->arg.number = p->tok.number;
		break;
	case SIEVE_TOK_STRING:
		raw->arg.type = SIEVE_ARG_STRING;
		take_string(p, &raw->arg);
		break;
	default:
		return parse_string_list(p, &raw->arg);
	}
	return next(p);
}

static bool is_argument(const struct sieve_token *tok)
{
	return tok->type == SIEVE_TOK_TAG || tok->type == SIEVE_TOK_NUMBER ||
	       tok->type == SIEVE_TOK_STRING || tok->type == SIEVE_TOK_LBRACKET;
}

static int parse_arguments(struct sieve_parser *p, struct sieve_raw_arg **raw_r, size_t *count_r)
{
	while (is_argument(&p->tok)) {
		*raw_r = xreallocarray(*raw_r, *count_r + 1, sizeof(**raw_r));
		memset(&(*raw_r)[*count_r], 0, sizeof(**raw_r));
		(*count_r)++;
		if (parse_argument(p, &(*raw_r)[*count_r - 1]) < 0)
			return -1;
	}
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static struct sieve_node *add_node(struct sieve_node **nodes, size_t *count)
{
	*nodes = xreallocarray(*nodes, *count + 1, sizeof(**nodes));
	memset(&(*nodes)[*count], 0, sizeof(**nodes));
	return &(*nodes)[(*count)++];
}

static int parse_test_list(struct sieve_parser *p, struct sieve_node *node)
{
	if (next(p) < 0)
		return -1;
	for (;;) {
		if (parse_test(p, add_node(&node->tests, &node->test_count)) < 0)
			return -1;
		if (p->tok.type == SIEVE_TOK_RPAREN)
			return next(p);
		if (expect(p, SIEVE_TOK_COMMA, "\",\" or \")\"") < 0)
			return -1;
	}
}

/* The test or test list that node's spec asks for. */
static int parse_node_tests(struct sieve_parser *p, const struct sieve_cmd_spec *spec,
                            struct sieve_node *node)
{
	char what[64];

	switch (sieve_spec_tests(spec)) {
	case SIEVE_TESTS_ONE:
		if (p->tok.type != SIEVE_TOK_IDENTIFIER) {
			snprintf(what, sizeof(what), "a test after \"%s\"", node->name);
			return unexpected(p, what);
		}
		return parse_test(p, add_node(&node->tests, &node->test_count));
	case SIEVE_TESTS_LIST:
		if (p->tok.type != SIEVE_TOK_LPAREN) {
			snprintf(what, sizeof(what), "a test list \"(...)\" after \"%s\"",
			         node->name);
			return unexpected(p, what);
		}
		return parse_test_list(p, node);
	default:
		return 0;
	}
}

/* Name, arguments and tests of a command or test at the current token. */
static const struct sieve_cmd_spec *parse_node(struct sieve_parser *p, struct sieve_node *node,
                                               bool test, bool top_level)
{
	struct sieve_raw_arg *raw = NULL;
	size_t raw_count = 0;

	node->name = p->tok.text;
	node->line = p->tok.line;
	node->column = p->tok.column;
	p->tok.text = NULL;
	const struct sieve_cmd_spec *spec =
	        sieve_validate_start(&p->v, node, test, top_level, p->err);
	if (spec == NULL || next(p) < 0 || parse_arguments(p, &raw, &raw_count) < 0 ||
	    sieve_validate_node(&p->v, spec, node, raw, raw_count, p->err) < 0 ||
	    parse_node_tests(p, spec, node) < 0)
		spec = NULL;
	sieve_raw_args_free(raw, raw_count);
	return spec;
}

static int parse_test(struct sieve_parser *p, struct sieve_node *node)
{
	int ret = -1;

	if (p->tok.type != SIEVE_TOK_IDENTIFIER)
		return unexpected(p, "a test");
	if (nest(p, &p->test_depth, "tests") == 0)
		ret = parse_node(p, node, true, false) == NULL ? -1 : 0;
	p->test_depth--;
	return ret;
}

/* ---- commands ---------------------------------------------------------- */

static int parse_block(struct sieve_parser *p, struct sieve_node *node)
{
	int ret = -1;

	if (nest(p, &p->block_depth, "blocks") == 0 && next(p) == 0 &&
	    parse_commands(p, &node->block, &node->block_count, false) == 0)
		ret = expect(p, SIEVE_TOK_RBRACE, "\"}\"");
	p->block_depth--;
	return ret;
}

static int parse_command_end(struct sieve_parser *p, const struct sieve_cmd_spec *spec,
                             struct sieve_node *node)
{
	char what[64];

	if (sieve_spec_block(spec)) {
		snprintf(what, sizeof(what), "a block \"{\" after \"%s\"", node->name);
		if (p->tok.type != SIEVE_TOK_LBRACE)
			return unexpected(p, what);
		return parse_block(p, node);
	}
	if (p->tok.type == SIEVE_TOK_LBRACE) {
		sieve_error_set(p->err, p->tok.line, p->tok.column, "\"%s\" cannot have a block",
		                node->name);
		return -1;
	}
	if (p->tok.type != SIEVE_TOK_SEMICOLON) {
		snprintf(what, sizeof(what), "\";\" after \"%s\"", node->name);
		return unexpected(p, what);
	}
	return next(p);
}

static int parse_command(struct sieve_parser *p, struct sieve_node *node, bool top_level)
{
	if (p->tok.type != SIEVE_TOK_IDENTIFIER)
		return unexpected(p, "a command");
	const struct sieve_cmd_spec *spec = parse_node(p, node, false, top_level);
	if (spec == NULL)
		return -1;
	if (parse_command_end(p, spec, node) < 0)
		return -1;
	sieve_validate_end(&p->v, spec);
	return 0;
}

static int parse_commands(struct sieve_parser *p, struct sieve_node **nodes_r, size_t *count_r,
                          bool top_level)
{
	p->v.after_if = false;
	while (p->tok.type != SIEVE_TOK_EOF && p->tok.type != SIEVE_TOK_RBRACE) {
		if (parse_command(p, add_node(nodes_r, count_r), top_level) < 0)
			return -1;
	}
	if (top_level && p->tok.type != SIEVE_TOK_EOF)
		return unexpected(p, "a command");
	return 0;
}

/* ---- encoded-character (RFC 5228 2.4.2.4) ------------------------------ */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, b, n);
}

/* Decodes the sequence of hex groups in s[0..len) into out: 1 when valid,
 * 0 when not (left as written), -1 for a code point out of range. */
static int decode_sequence(const char *s, size_t len, bool unicode, struct buf *out)
{
	size_t i = 0, groups = 0;

	while (i < len) {
		if (is_blank(s[i])) {
			i++;
			continue;
		}
		if (groups > 0 && !is_blank(s[i - 1]))
			return 0;
		uint32_t value = 0;
		size_t digits = 0;
		for (; i < len && hex_value(s[i]) >= 0; i++, digits++) {
			if (value <= 0x10ffff)
				value = value * 16 + (uint32_t)hex_value(s[i]);
		}
		if (digits == 0 || (!unicode && digits > 2))
			return 0;
		if (unicode && (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)))
			return -1;
		if (unicode)
			put_utf8(out, value);
		else
			buf_append_char(out, (char)value);
		groups++;
	}
	return groups > 0 ? 1 : 0;
}

/* At s (just after "${"): decodes one encoding into out and returns the
 * bytes consumed up to the "}", 0 when it is not a valid one, -1 on error. */
static long decode_one(const char *s, size_t len, struct buf *out)
{
	static const struct {
		const char *prefix;
		bool unicode;
	} kinds[] = {{"hex:", false}, {"unicode:", true}};

	for (size_t k = 0; k < 2; k++) {
		size_t plen = strlen(kinds[k].prefix);
		if (len < plen || strncasecmp(s, kinds[k].prefix, plen) != 0)
			continue;
		const char *close = memchr(s + plen, '}', len - plen);
		if (close == NULL)
			return 0;
		size_t mark = out->len;
		int ret = decode_sequence(s + plen, (size_t)(close - s) - plen, kinds[k].unicode,
		                          out);
		if (ret <= 0) {
			out->len = mark;
			return ret;
		}
		return (long)(close - s) + 1;
	}
	return 0;
}

int sieve_decode_encoded(struct sieve_string *str, const char **error_r)
{
	struct buf out = BUF_INIT(0);
	size_t i = 0;

	if (memmem(str->data, str->len, "${", 2) == NULL)
		return 0;
	while (i < str->len) {
		long used = 0;
		if (i + 1 < str->len && str->data[i] == '$' && str->data[i + 1] == '{')
			used = decode_one(str->data + i + 2, str->len - i - 2, &out);
		if (used < 0) {
			buf_free(&out);
			*error_r = "encoded character out of range (surrogate or above U+10FFFF)";
			return -1;
		}
		if (used > 0) {
			i += 2 + (size_t)used;
			continue;
		}
		buf_append_char(&out, str->data[i++]);
	}
	free(str->data);
	str->len = out.len;
	str->data = out.len == 0 ? xstrdup("") : buf_steal(&out);
	buf_free(&out);
	return 0;
}

/* ---- compiling --------------------------------------------------------- */

/* Line and column of source[offset], the way the lexer counts them. */
static void position_of(const char *source, size_t offset, struct sieve_error *err)
{
	err->line = 1;
	err->column = 1;
	for (size_t i = 0; i < offset; i++) {
		if (source[i] == '\n') {
			err->line++;
			err->column = 1;
		} else if (i + 1 == offset || ((unsigned char)source[i + 1] & 0xc0) != 0x80) {
			err->column++;
		}
	}
}

static int check_source(const char *source, size_t len, const struct sieve_limits *limits,
                        struct sieve_error *err)
{
	const char *nul = memchr(source, '\0', len);

	if (len > limits->max_script_size) {
		position_of(source, limits->max_script_size, err);
		snprintf(err->message, sizeof(err->message),
		         "script too large (%zu bytes, at most %zu)", len, limits->max_script_size);
		return -1;
	}
	if (nul != NULL) {
		position_of(source, (size_t)(nul - source), err);
		snprintf(err->message, sizeof(err->message), "NUL byte in script");
		return -1;
	}
	return 0;
}

struct sieve_script *sieve_compile(const char *name, const char *source, size_t len,
                                   const struct sieve_limits *limits, struct sieve_error *err)
{
	struct sieve_parser p;
	struct sieve_script *script = xcalloc(1, sizeof(*script));

	memset(err, 0, sizeof(*err));
	memset(&p, 0, sizeof(p));
	if (source == NULL)
		source = ""; /* no arithmetic on a null pointer */
	script->name = xstrdup(name != NULL ? name : "");
	if (check_source(source, len, limits != NULL ? limits : &sieve_default_limits, err) < 0) {
		sieve_script_free(&script);
		return NULL;
	}
	p.err = err;
	sieve_lexer_init(&p.lex, source, len, err);
	if (next(&p) < 0 || parse_commands(&p, &script->commands, &script->command_count, true) < 0)
		sieve_script_free(&script);
	else
		script->extensions = p.v.extensions;
	free(p.tok.text);
	return script;
}
