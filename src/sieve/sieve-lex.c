/* The Sieve lexer (RFC 5228 section 8.1): comments, identifiers, tags,
 * numbers with K/M/G, quoted strings and multi-line "text:" strings. Lines
 * end with CRLF or a bare LF; line ends inside strings become CRLF, so a
 * script means the same whichever way it was stored. Columns count UTF-8
 * characters, from 1. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "sieve/sieve-parse-private.h"

void sieve_error_set(struct sieve_error *err, unsigned int line, unsigned int column,
                     const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void sieve_error_quote(char *out, size_t out_size, const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 4 < out_size; i++) {
		if (i == 40) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		out[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	out[n] = '\0';
}

void sieve_lexer_init(struct sieve_lexer *lex, const char *source, size_t len,
                      struct sieve_error *err)
{
	lex->p = source;
	lex->end = source + len;
	lex->line = 1;
	lex->column = 1;
	lex->err = err;
}

static int peek(const struct sieve_lexer *lex, size_t ahead)
{
	if ((size_t)(lex->end - lex->p) <= ahead)
		return -1;
	return (unsigned char)lex->p[ahead];
}

static void advance(struct sieve_lexer *lex)
{
	char c = *lex->p++;

	if (c == '\n') {
		lex->line++;
		lex->column = 1;
	} else if (lex->p == lex->end || ((unsigned char)*lex->p & 0xc0) != 0x80) {
		lex->column++;
	}
}

/* A line end at the current position: 2 for CRLF, 1 for LF, else 0. */
static size_t line_end_len(const struct sieve_lexer *lex)
{
	if (peek(lex, 0) == '\n')
		return 1;
	if (peek(lex, 0) == '\r' && peek(lex, 1) == '\n')
		return 2;
	return 0;
}

static void skip_hash_comment(struct sieve_lexer *lex)
{
	while (lex->p < lex->end && *lex->p != '\n')
		advance(lex);
}

static int skip_bracket_comment(struct sieve_lexer *lex)
{
	unsigned int line = lex->line, column = lex->column;

	advance(lex);
	advance(lex);
	while (lex->p < lex->end) {
		if (peek(lex, 0) == '*' && peek(lex, 1) == '/') {
			advance(lex);
			advance(lex);
			return 0;
		}
		advance(lex);
	}
	sieve_error_set(lex->err, line, column, "unterminated comment");
	return -1;
}

static int skip_space(struct sieve_lexer *lex)
{
	while (lex->p < lex->end) {
		int c = peek(lex, 0);
		if (c == ' ' || c == '\t' || line_end_len(lex) > 0) {
			advance(lex);
		} else if (c == '#') {
			skip_hash_comment(lex);
		} else if (c == '/' && peek(lex, 1) == '*') {
			if (skip_bracket_comment(lex) < 0)
				return -1;
		} else {
			break;
		}
	}
	return 0;
}

static bool is_ident_start(int c)
{
	return c == '_' || (c >= 0 && isalpha(c) && c < 0x80);
}

static bool is_ident_char(int c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static char *lex_word(struct sieve_lexer *lex, size_t *len_r)
{
	const char *start = lex->p;

	while (is_ident_char(peek(lex, 0)))
		advance(lex);
	*len_r = (size_t)(lex->p - start);
	char *word = xstrndup(start, *len_r);
	for (char *s = word; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	return word;
}

static int lex_number(struct sieve_lexer *lex, struct sieve_token *tok)
{
	static const struct {
		char quantifier;
		unsigned int shift;
	} quantifiers[] = {{'k', 10}, {'m', 20}, {'g', 30}};
	uint64_t n = 0;
	bool overflow = false;

	while (peek(lex, 0) >= '0' && peek(lex, 0) <= '9') {
		unsigned int digit = (unsigned int)(peek(lex, 0) - '0');
		if (n > (UINT64_MAX - digit) / 10)
			overflow = true;
		n = n * 10 + digit;
		advance(lex);
	}
	for (size_t i = 0; i < sizeof(quantifiers) / sizeof(quantifiers[0]); i++) {
		if (peek(lex, 0) < 0 || tolower(peek(lex, 0)) != quantifiers[i].quantifier)
			continue;
		if (n > (UINT64_MAX >> quantifiers[i].shift))
			overflow = true;
		n <<= quantifiers[i].shift;
		advance(lex);
		break;
	}
	if (overflow) {
		sieve_error_set(lex->err, tok->line, tok->column, "number too large");
		return -1;
	}
	tok->type = SIEVE_TOK_NUMBER;
	tok->number = n;
	return 0;
}

/* Appends the line end at the current position as CRLF and skips it. */
static void take_line_end(struct sieve_lexer *lex, struct buf *out)
{
	size_t n = line_end_len(lex);

	buf_append(out, "\r\n", 2);
	while (n-- > 0)
		advance(lex);
}

static int lex_quoted(struct sieve_lexer *lex, struct sieve_token *tok)
{
	struct buf out = BUF_INIT(0);

	advance(lex);
	while (lex->p < lex->end && *lex->p != '"') {
		if (*lex->p == '\\' && lex->p + 1 < lex->end) {
			/* RFC 5228 2.4.2: only \" and \\ are escapes; in any
			 * other pair the backslash is dropped. */
			advance(lex);
		}
		if (line_end_len(lex) > 0) {
			take_line_end(lex, &out);
			continue;
		}
		buf_append_char(&out, *lex->p);
		advance(lex);
	}
	if (lex->p == lex->end) {
		buf_free(&out);
		sieve_error_set(lex->err, tok->line, tok->column, "unterminated string");
		return -1;
	}
	advance(lex);
	tok->type = SIEVE_TOK_STRING;
	tok->len = out.len;
	tok->text = out.len == 0 ? xstrdup("") : buf_steal(&out);
	return 0;
}

/* After "text:": spaces, then a comment or a line end. */
static int lex_multiline_start(struct sieve_lexer *lex, const struct sieve_token *tok)
{
	while (peek(lex, 0) == ' ' || peek(lex, 0) == '\t')
		advance(lex);
	if (peek(lex, 0) == '#')
		skip_hash_comment(lex);
	if (line_end_len(lex) == 0) {
		sieve_error_set(lex->err, tok->line, tok->column,
		                "\"text:\" must be followed by a line end");
		return -1;
	}
	for (size_t n = line_end_len(lex); n > 0; n--)
		advance(lex);
	return 0;
}

/* A line that is "." alone ends the string (at the end of the script too). */
static bool multiline_end(const struct sieve_lexer *lex)
{
	if (peek(lex, 0) != '.')
		return false;
	return peek(lex, 1) < 0 || peek(lex, 1) == '\n' ||
	       (peek(lex, 1) == '\r' && peek(lex, 2) == '\n');
}

static int lex_multiline(struct sieve_lexer *lex, struct sieve_token *tok)
{
	struct buf out = BUF_INIT(0);

	if (lex_multiline_start(lex, tok) < 0)
		return -1;
	while (lex->p < lex->end && !multiline_end(lex)) {
		if (peek(lex, 0) == '.' && peek(lex, 1) == '.')
			advance(lex); /* dot-unstuffing */
		while (lex->p < lex->end && line_end_len(lex) == 0) {
			buf_append_char(&out, *lex->p);
			advance(lex);
		}
		if (lex->p < lex->end)
			take_line_end(lex, &out);
	}
	if (lex->p == lex->end) {
		buf_free(&out);
		sieve_error_set(lex->err, tok->line, tok->column,
		                "unterminated multi-line string (no \".\" line)");
		return -1;
	}
	advance(lex);
	for (size_t n = line_end_len(lex); n > 0; n--)
		advance(lex);
	tok->type = SIEVE_TOK_STRING;
	tok->len = out.len;
	tok->text = out.len == 0 ? xstrdup("") : buf_steal(&out);
	return 0;
}

static int lex_identifier(struct sieve_lexer *lex, struct sieve_token *tok)
{
	size_t len;
	char *word = lex_word(lex, &len);

	if (strcmp(word, "text") == 0 && peek(lex, 0) == ':') {
		free(word);
		advance(lex);
		return lex_multiline(lex, tok);
	}
	tok->type = SIEVE_TOK_IDENTIFIER;
	tok->text = word;
	tok->len = len;
	return 0;
}

static int lex_tag(struct sieve_lexer *lex, struct sieve_token *tok)
{
	size_t len;

	advance(lex);
	if (!is_ident_start(peek(lex, 0))) {
		sieve_error_set(lex->err, tok->line, tok->column, "\":\" must start a tag");
		return -1;
	}
	char *word = lex_word(lex, &len);
	tok->type = SIEVE_TOK_TAG;
	tok->text = xasprintf(":%s", word);
	tok->len = len + 1;
	free(word);
	return 0;
}

static const struct {
	char c;
	enum sieve_token_type type;
} punctuation[] = {
        {'[', SIEVE_TOK_LBRACKET}, {']', SIEVE_TOK_RBRACKET},  {'(', SIEVE_TOK_LPAREN},
        {')', SIEVE_TOK_RPAREN},   {'{', SIEVE_TOK_LBRACE},    {'}', SIEVE_TOK_RBRACE},
        {',', SIEVE_TOK_COMMA},    {';', SIEVE_TOK_SEMICOLON},
};

static int lex_other(struct sieve_lexer *lex, struct sieve_token *tok, int c)
{
	for (size_t i = 0; i < sizeof(punctuation) / sizeof(punctuation[0]); i++) {
		if (punctuation[i].c == c) {
			tok->type = punctuation[i].type;
			advance(lex);
			return 0;
		}
	}
	if (c >= 0x21 && c < 0x7f)
		sieve_error_set(lex->err, tok->line, tok->column, "unexpected character '%c'", c);
	else
		sieve_error_set(lex->err, tok->line, tok->column,
		                "unexpected character (byte 0x%02x)", (unsigned int)c);
	return -1;
}

int sieve_lexer_next(struct sieve_lexer *lex, struct sieve_token *tok)
{
	memset(tok, 0, sizeof(*tok));
	if (skip_space(lex) < 0)
		return -1;
	tok->line = lex->line;
	tok->column = lex->column;
	int c = peek(lex, 0);
	if (c < 0) {
		tok->type = SIEVE_TOK_EOF;
		return 0;
	}
	if (c >= '0' && c <= '9')
		return lex_number(lex, tok);
	if (c == '"')
		return lex_quoted(lex, tok);
	if (is_ident_start(c))
		return lex_identifier(lex, tok);
	if (c == ':')
		return lex_tag(lex, tok);
	return lex_other(lex, tok, c);
}

void sieve_token_describe(const struct sieve_token *tok, char *out, size_t out_size)
{
	static const char *const names[] = {
	        [SIEVE_TOK_EOF] = "end of script", [SIEVE_TOK_NUMBER] = "a number",
	        [SIEVE_TOK_STRING] = "a string",   [SIEVE_TOK_LBRACKET] = "\"[\"",
	        [SIEVE_TOK_RBRACKET] = "\"]\"",    [SIEVE_TOK_LPAREN] = "\"(\"",
	        [SIEVE_TOK_RPAREN] = "\")\"",      [SIEVE_TOK_LBRACE] = "\"{\"",
	        [SIEVE_TOK_RBRACE] = "\"}\"",      [SIEVE_TOK_COMMA] = "\",\"",
	        [SIEVE_TOK_SEMICOLON] = "\";\"",
	};
	char word[48];

	if (tok->type == SIEVE_TOK_IDENTIFIER || tok->type == SIEVE_TOK_TAG) {
		sieve_error_quote(word, sizeof(word), tok->text, tok->len);
		snprintf(out, out_size, "%s \"%s\"",
		         tok->type == SIEVE_TOK_TAG ? "tag" : "identifier", word);
		return;
	}
	snprintf(out, out_size, "%s", names[tok->type]);
}
