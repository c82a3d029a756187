/* An RFC 5322 / RFC 2045 lexer for structured header values. It never
 * fails: unterminated quotes, comments and literals end at the value's
 * end, as real clients read them. */
#include <string.h>

#include "mime/mime-private.h"

static const char rfc822_specials[] = "()<>[]:;@\\,.\"";
static const char rfc2045_specials[] = "()<>@,;:\\\"/[]?=";

void mime_lex_init(struct mime_lex *lex, const char *s, size_t len, bool tspecials)
{
	lex->p = s;
	lex->end = s + len;
	lex->tspecials = tspecials;
}

void mime_token_init(struct mime_token *tok)
{
	memset(tok, 0, sizeof(*tok));
	buf_init(&tok->value, MIME_MAX_VALUE);
}

void mime_token_free(struct mime_token *tok)
{
	buf_free(&tok->value);
}

static bool lex_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool lex_is_special(const struct mime_lex *lex, char c)
{
	return strchr(lex->tspecials ? rfc2045_specials : rfc822_specials, c) != NULL;
}

/* Reads up to the closing delimiter, resolving quoted-pairs. Comments nest. */
static void lex_delimited(struct mime_lex *lex, struct buf *out, char close, bool nest)
{
	int depth = 1;
	while (lex->p < lex->end) {
		char c = *lex->p++;
		if (c == '\\' && lex->p < lex->end) {
			(void)buf_append_char(out, *lex->p++);
			continue;
		}
		if (nest && c == '(') {
			depth++;
		} else if (c == close && --depth == 0) {
			return;
		}
		if (c != '\r' && c != '\n')
			(void)buf_append_char(out, c);
	}
}

static void lex_atom(struct mime_lex *lex, struct buf *out)
{
	const char *start = lex->p;
	while (lex->p < lex->end && !lex_is_space(*lex->p) && !lex_is_special(lex, *lex->p))
		lex->p++;
	(void)buf_append(out, start, (size_t)(lex->p - start));
}

static void lex_one(struct mime_lex *lex, struct mime_token *tok)
{
	char c = *lex->p;
	if (c == '"') {
		lex->p++;
		tok->type = MIME_TOK_QUOTED;
		lex_delimited(lex, &tok->value, '"', false);
	} else if (c == '(') {
		lex->p++;
		tok->type = MIME_TOK_COMMENT;
		lex_delimited(lex, &tok->value, ')', true);
	} else if (c == '[' && !lex->tspecials) {
		lex->p++;
		tok->type = MIME_TOK_DLITERAL;
		(void)buf_append_char(&tok->value, '[');
		lex_delimited(lex, &tok->value, ']', false);
		(void)buf_append_char(&tok->value, ']');
	} else if (lex_is_special(lex, c)) {
		lex->p++;
		tok->type = MIME_TOK_SPECIAL;
		tok->special = c;
		(void)buf_append_char(&tok->value, c);
	} else {
		tok->type = MIME_TOK_ATOM;
		lex_atom(lex, &tok->value);
	}
}

void mime_lex_next(struct mime_lex *lex, struct mime_token *tok, bool keep_comments)
{
	tok->space_before = false;
	tok->special = '\0';
	for (;;) {
		buf_reset(&tok->value);
		while (lex->p < lex->end && lex_is_space(*lex->p)) {
			lex->p++;
			tok->space_before = true;
		}
		if (lex->p >= lex->end) {
			tok->type = MIME_TOK_END;
			return;
		}
		lex_one(lex, tok);
		if (tok->type != MIME_TOK_COMMENT || keep_comments)
			return;
		tok->space_before = true;
	}
}
