/* Address lists (RFC 5322 3.4 with the obsolete forms of section 4.4):
 * groups, comments (a trailing comment names an address without a display
 * name, "a@b (Name)"), quoted local parts, source routes, missing angle
 * brackets and garbage. Each address is read as a run of tokens up to ','
 * ';' '<' or ':'; what the run turns out to be decides how it is used. */
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

struct addr_ctx {
	struct mime_lex lex;
	struct mime_token tok;
	struct mime_address *head, **tail;
	unsigned int count, max;
	bool in_group;
};

/* Words of a phrase: display name (spaces kept between words) and the
 * same words as an addr-spec (no spaces, '@' splits local from host). */
struct addr_words {
	struct buf phrase, local, host, comment;
	bool seen_at, invalid, any;
	bool done; /* "a@b c@d": what follows a complete address is ignored */
	bool last_dot;
};

static void addr_words_init(struct addr_words *w)
{
	memset(w, 0, sizeof(*w));
	buf_init(&w->phrase, MIME_MAX_VALUE);
	buf_init(&w->local, MIME_MAX_VALUE);
	buf_init(&w->host, MIME_MAX_VALUE);
	buf_init(&w->comment, MIME_MAX_VALUE);
}

static void addr_words_free(struct addr_words *w)
{
	buf_free(&w->phrase);
	buf_free(&w->local);
	buf_free(&w->host);
	buf_free(&w->comment);
}

static char *addr_take(struct buf *b)
{
	return b->len > 0 ? buf_steal(b) : NULL;
}

static struct mime_address *addr_add(struct addr_ctx *ctx)
{
	if (ctx->count >= ctx->max)
		return NULL;
	struct mime_address *a = xcalloc(1, sizeof(*a));
	*ctx->tail = a;
	ctx->tail = &a->next;
	ctx->count++;
	return a;
}

static bool addr_tok_is(const struct mime_token *tok, char c)
{
	return tok->type == MIME_TOK_SPECIAL && tok->special == c;
}

static bool addr_tok_ends_word_run(const struct mime_token *tok)
{
	return tok->type == MIME_TOK_END || addr_tok_is(tok, ',') || addr_tok_is(tok, ';') ||
	       addr_tok_is(tok, '<') || addr_tok_is(tok, ':');
}

static void addr_word(struct addr_words *w, const struct mime_token *tok)
{
	if (tok->type == MIME_TOK_COMMENT) {
		buf_reset(&w->comment);
		(void)buf_append(&w->comment, tok->value.data, tok->value.len);
		return;
	}
	w->any = true;
	if (w->phrase.len > 0 && tok->space_before && !addr_tok_is(tok, '.'))
		(void)buf_append_char(&w->phrase, ' ');
	(void)buf_append(&w->phrase, tok->value.data, tok->value.len);
	if (w->seen_at && w->host.len > 0 && tok->space_before && !addr_tok_is(tok, '.') &&
	    !w->last_dot) {
		w->done = true;
		w->invalid = true;
	}
	w->last_dot = addr_tok_is(tok, '.');
	if (w->done)
		return;
	if (addr_tok_is(tok, '@')) {
		if (w->seen_at) {
			w->invalid = true; /* a@b@c: the host keeps the rest */
			(void)buf_append_char(&w->host, '@');
		}
		w->seen_at = true;
		return;
	}
	if (tok->type == MIME_TOK_SPECIAL && !addr_tok_is(tok, '.'))
		w->invalid = true;
	(void)buf_append(w->seen_at ? &w->host : &w->local, tok->value.data, tok->value.len);
}

/* Reads tokens until one that ends a word run (left in ctx->tok). */
static void addr_read_words(struct addr_ctx *ctx, struct addr_words *w)
{
	for (;;) {
		mime_lex_next(&ctx->lex, &ctx->tok, true);
		if (addr_tok_ends_word_run(&ctx->tok) || addr_tok_is(&ctx->tok, '>'))
			return;
		addr_word(w, &ctx->tok);
	}
}

/* "@a,@b:" at the start of an angle address: the obsolete source route.
 * Returns it (or NULL) and leaves the lexer after the ':'. */
static char *addr_route(struct addr_ctx *ctx)
{
	struct mime_lex save = ctx->lex;
	struct buf route = BUF_INIT(MIME_MAX_VALUE);
	mime_lex_next(&ctx->lex, &ctx->tok, false);
	if (addr_tok_is(&ctx->tok, '@')) {
		for (;;) {
			(void)buf_append(&route, ctx->tok.value.data, ctx->tok.value.len);
			mime_lex_next(&ctx->lex, &ctx->tok, false);
			if (addr_tok_is(&ctx->tok, ':'))
				return buf_steal(&route);
			if (ctx->tok.type == MIME_TOK_END || addr_tok_is(&ctx->tok, '>'))
				break;
		}
	}
	buf_free(&route);
	ctx->lex = save;
	return NULL;
}

/* Inside <...>: an optional route, then an addr-spec up to '>'. */
static void addr_angle(struct addr_ctx *ctx, struct mime_address *a)
{
	struct addr_words w;
	addr_words_init(&w);
	a->route = addr_route(ctx);
	for (;;) {
		mime_lex_next(&ctx->lex, &ctx->tok, false);
		if (ctx->tok.type == MIME_TOK_END || addr_tok_is(&ctx->tok, '>'))
			break;
		addr_word(&w, &ctx->tok);
	}
	a->mailbox = buf_steal(&w.local);
	a->host = buf_steal(&w.host);
	a->invalid = w.invalid || ctx->tok.type == MIME_TOK_END || !w.seen_at;
	addr_words_free(&w);
}

/* A mailbox whose words have been read: either "name <addr>" or addr-spec. */
static void addr_mailbox(struct addr_ctx *ctx, struct addr_words *w)
{
	struct mime_address *a = addr_add(ctx);
	if (a == NULL)
		return;
	if (addr_tok_is(&ctx->tok, '<')) {
		a->name = addr_take(&w->phrase);
		addr_angle(ctx, a);
		/* a comment after the angle address */
		struct addr_words rest;
		addr_words_init(&rest);
		addr_read_words(ctx, &rest);
		addr_words_free(&rest);
	} else {
		a->mailbox = buf_steal(&w->local);
		a->host = buf_steal(&w->host);
		a->invalid = w->invalid || !w->seen_at;
	}
	if (a->name == NULL && w->comment.len > 0)
		a->name = buf_steal(&w->comment);
}

static void addr_group_end(struct addr_ctx *ctx)
{
	if (ctx->in_group)
		(void)addr_add(ctx);
	ctx->in_group = false;
}

/* One element: returns false at the end of the input. */
static bool addr_one(struct addr_ctx *ctx)
{
	struct addr_words w;
	addr_words_init(&w);
	addr_read_words(ctx, &w);
	if (addr_tok_is(&ctx->tok, ':') && !ctx->in_group) {
		struct mime_address *a = addr_add(ctx);
		if (a != NULL) {
			a->mailbox = buf_steal(&w.phrase);
			ctx->in_group = true;
		}
	} else if (addr_tok_is(&ctx->tok, '<') || w.any) {
		addr_mailbox(ctx, &w);
	}
	addr_words_free(&w);
	if (addr_tok_is(&ctx->tok, ';'))
		addr_group_end(ctx);
	return ctx->tok.type != MIME_TOK_END;
}

struct mime_address *mime_address_parse(const char *value, size_t len, unsigned int max)
{
	struct addr_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.tail = &ctx.head;
	ctx.max = max;
	mime_lex_init(&ctx.lex, value, len, false);
	mime_token_init(&ctx.tok);
	while (addr_one(&ctx) && ctx.count < ctx.max)
		;
	addr_group_end(&ctx);
	mime_token_free(&ctx.tok);
	return ctx.head;
}

void mime_address_free(struct mime_address **list)
{
	struct mime_address *a = *list;
	while (a != NULL) {
		struct mime_address *next = a->next;
		free(a->name);
		free(a->route);
		free(a->mailbox);
		free(a->host);
		free(a);
		a = next;
	}
	*list = NULL;
}
