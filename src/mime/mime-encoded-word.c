/* Header text to UTF-8: RFC 2047 encoded-words wherever they appear (real
 * mail puts them inside quoted strings and glued to other text), the
 * whitespace between two adjacent encoded-words dropped (RFC 2047 6.2), the
 * bytes of adjacent words in one charset joined before conversion (senders
 * split multibyte characters and ISO-2022-JP escapes across words), raw
 * 8-bit text guessed; RFC 2231 parameter values. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define EW_CHARSET_MAX 64

struct ew_ctx {
	struct buf *out;
	struct buf pending;  /* decoded bytes of adjacent words in one charset */
	char charset[EW_CHARSET_MAX + 1];
	struct buf raw;      /* plain text not yet converted */
};

static void ew_flush_pending(struct ew_ctx *ctx)
{
	if (ctx->pending.len > 0)
		(void)mime_charset_to_utf8(ctx->charset, ctx->pending.data, ctx->pending.len, ctx->out);
	buf_reset(&ctx->pending);
}

static void ew_flush_raw(struct ew_ctx *ctx)
{
	if (ctx->raw.len > 0)
		(void)mime_charset_guess_to_utf8(ctx->raw.data, ctx->raw.len, ctx->out);
	buf_reset(&ctx->raw);
}


static void ew_decode_q(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '_') {
			(void)buf_append_char(out, ' ');
		} else if (s[i] == '=' && i + 2 < len && hex_digit_value(s[i + 1]) >= 0 &&
			   hex_digit_value(s[i + 2]) >= 0) {
			(void)buf_append_char(out, (char)(hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2])));
			i += 2;
		} else {
			(void)buf_append_char(out, s[i]);
		}
	}
}

struct ew_word {
	const char *charset, *text;
	size_t charset_len, text_len, total;
	char enc;
};

/* Parses "=?charset[*lang]?E?text?=" at s; false when it is not one. */
static bool ew_parse(const char *s, size_t len, struct ew_word *w)
{
	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	const char *q1 = memchr(s + 2, '?', len - 2);
	if (q1 == NULL || q1 == s + 2 || (size_t)(q1 - s) + 3 >= len || q1[2] != '?')
		return false;
	char enc = q1[1];
	if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
		return false;
	const char *text = q1 + 3;
	const char *end = s + len;
	for (const char *p = text; p + 1 < end; p++) {
		if (p[0] == ' ' || p[0] == '\t')
			return false;
		if (p[0] == '?' && p[1] == '=') {
			w->charset = s + 2;
			w->charset_len = (size_t)(q1 - s - 2);
			const char *star = memchr(w->charset, '*', w->charset_len);
			if (star != NULL)
				w->charset_len = (size_t)(star - w->charset);
			w->enc = enc;
			w->text = text;
			w->text_len = (size_t)(p - text);
			w->total = (size_t)(p + 2 - s);
			return w->charset_len > 0 && w->charset_len <= EW_CHARSET_MAX;
		}
	}
	return false;
}

static void ew_word_decode(struct ew_ctx *ctx, const struct ew_word *w)
{
	if (ctx->pending.len > 0 && (strlen(ctx->charset) != w->charset_len ||
				     strncasecmp(ctx->charset, w->charset, w->charset_len) != 0))
		ew_flush_pending(ctx);
	memcpy(ctx->charset, w->charset, w->charset_len);
	ctx->charset[w->charset_len] = '\0';
	if (w->enc == 'B' || w->enc == 'b') {
		struct mime_decoder *dec = mime_decoder_create(MIME_CTE_BASE64);
		(void)mime_decoder_feed(dec, w->text, w->text_len, &ctx->pending);
		(void)mime_decoder_finish(dec, &ctx->pending);
		mime_decoder_destroy(&dec);
	} else {
		ew_decode_q(w->text, w->text_len, &ctx->pending);
	}
}

static bool ew_is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	}
	return true;
}

char *mime_header_decode(const char *value, size_t len)
{
	struct buf out = BUF_INIT(0);
	struct ew_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = &out;
	buf_init(&ctx.pending, 0);
	buf_init(&ctx.raw, 0);
	size_t i = 0, plain = 0;
	bool after_word = false;
	while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n'))
		plain = ++i;
	while (i < len) {
		struct ew_word w;
		const char *eq = memchr(value + i, '=', len - i);
		if (eq == NULL)
			break;
		i = (size_t)(eq - value);
		if (!ew_parse(value + i, len - i, &w)) {
			i++;
			continue;
		}
		/* text before the word; dropped when blank between two words */
		if (!(after_word && ew_is_blank(value + plain, i - plain))) {
			ew_flush_pending(&ctx);
			mime_append_unfolded(&ctx.raw, value + plain, i - plain);
			ew_flush_raw(&ctx);
		}
		ew_word_decode(&ctx, &w);
		i += w.total;
		plain = i;
		after_word = true;
	}
	ew_flush_pending(&ctx);
	mime_append_unfolded(&ctx.raw, value + plain, len - plain);
	while (ctx.raw.len > 0 && (ctx.raw.data[ctx.raw.len - 1] == ' ' ||
				   ctx.raw.data[ctx.raw.len - 1] == '\t'))
		ctx.raw.data[--ctx.raw.len] = '\0';
	ew_flush_raw(&ctx);
	buf_free(&ctx.pending);
	buf_free(&ctx.raw);
	return buf_steal(&out);
}

/* "charset'language'%XX..." (RFC 2231 4). */
static char *param_decode_2231(const char *value)
{
	const char *q1 = strchr(value, '\'');
	const char *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
	if (q2 == NULL)
		return mime_header_decode(value, strlen(value));
	char *charset = xstrndup(value, (size_t)(q1 - value));
	struct buf raw = BUF_INIT(0);
	for (const char *p = q2 + 1; *p != '\0'; p++) {
		if (p[0] == '%' && hex_digit_value(p[1]) >= 0 && hex_digit_value(p[2]) >= 0) {
			(void)buf_append_char(&raw, (char)(hex_digit_value(p[1]) * 16 + hex_digit_value(p[2])));
			p += 2;
		} else {
			(void)buf_append_char(&raw, *p);
		}
	}
	struct buf out = BUF_INIT(0);
	if (charset[0] == '\0')
		(void)mime_charset_guess_to_utf8(buf_str(&raw), raw.len, &out);
	else
		(void)mime_charset_to_utf8(charset, buf_str(&raw), raw.len, &out);
	free(charset);
	buf_free(&raw);
	return buf_steal(&out);
}

char *mime_param_get_utf8(const struct mime_param *params, unsigned int count, const char *name)
{
	char *ext = xasprintf("%s*", name);
	const char *value = mime_param_get(params, count, ext);
	free(ext);
	if (value != NULL)
		return param_decode_2231(value);
	value = mime_param_get(params, count, name);
	if (value == NULL)
		return NULL;
	return mime_header_decode(value, strlen(value));
}
