/* Header blocks: field iteration and the Content-* / envelope fields of a
 * part. Values are kept as found (case included): Dovecot shows
 * "TEXT" "PLAIN" for "Content-Type: TEXT/PLAIN" (docs/mime.md). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

static bool hdr_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* End of the logical field starting at p: the first line end not
 * followed by whitespace. */
static const char *hdr_field_end(const char *p, const char *end)
{
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return end;
		p = nl + 1;
		if (p >= end || !hdr_is_wsp(*p))
			return p;
	}
}

bool mime_header_next(struct mime_header_iter *iter, const char **name_r, size_t *name_len_r,
		      const char **value_r, size_t *value_len_r)
{
	while (iter->p < iter->end) {
		const char *start = iter->p;
		const char *fend = hdr_field_end(start, iter->end);
		iter->p = fend;
		const char *colon = memchr(start, ':', (size_t)(fend - start));
		if (colon == NULL || hdr_is_wsp(*start))
			continue;
		const char *name_end = colon;
		while (name_end > start && hdr_is_wsp(name_end[-1]))
			name_end--;
		if (name_end == start)
			continue;
		*name_r = start;
		*name_len_r = (size_t)(name_end - start);
		*value_r = colon + 1;
		*value_len_r = (size_t)(fend - colon - 1);
		return true;
	}
	return false;
}

void mime_append_unfolded(struct buf *out, const char *s, size_t len)
{
	while (len > 0) {
		size_t span = 0;
		while (span < len && s[span] != '\r' && s[span] != '\n')
			span++;
		(void)buf_append(out, s, span);
		while (span < len && (s[span] == '\r' || s[span] == '\n'))
			span++;
		s += span;
		len -= span;
	}
}

char *mime_unfold(const char *value, size_t len)
{
	struct buf out = BUF_INIT(0);
	size_t i = 0;
	while (i < len && (hdr_is_wsp(value[i]) || value[i] == '\r' || value[i] == '\n'))
		i++;
	mime_append_unfolded(&out, value + i, len - i);
	while (out.len > 0 && hdr_is_wsp(out.data[out.len - 1]))
		out.data[--out.len] = '\0';
	return buf_steal(&out);
}

size_t mime_header_size(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (i + 1 < len && data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

char *mime_header_get(const char *header, size_t len, const char *name)
{
	struct mime_header_iter iter = {header, header + len};
	const char *n, *v;
	size_t nlen, vlen;
	size_t want = strlen(name);
	while (mime_header_next(&iter, &n, &nlen, &v, &vlen)) {
		if (nlen == want && strncasecmp(n, name, want) == 0)
			return mime_unfold(v, vlen);
	}
	return NULL;
}

/* Reads "type[/subtype]" and stops at ';'; false when anything else is
 * there (then Dovecot shows "" "" without parameters). */
static bool hdr_read_type(struct mime_lex *lex, struct mime_token *tok, struct buf *type,
			  struct buf *sub)
{
	mime_lex_next(lex, tok, false);
	if (tok->type != MIME_TOK_ATOM)
		return false;
	(void)buf_append(type, tok->value.data, tok->value.len);
	mime_lex_next(lex, tok, false);
	if (tok->type == MIME_TOK_END)
		return true; /* "text" alone: subtype "" */
	if (tok->type != MIME_TOK_SPECIAL || tok->special != '/')
		return false;
	mime_lex_next(lex, tok, false);
	if (tok->type != MIME_TOK_ATOM)
		return false;
	(void)buf_append(sub, tok->value.data, tok->value.len);
	mime_lex_next(lex, tok, false);
	return tok->type == MIME_TOK_END || (tok->type == MIME_TOK_SPECIAL && tok->special == ';');
}

/* "type/subtype; params", type and subtype as found. */
static void hdr_content_type(struct mime_part *part, const char *v, size_t len)
{
	struct mime_lex lex;
	struct mime_token tok;
	mime_lex_init(&lex, v, len, true);
	mime_token_init(&tok);
	struct buf type = BUF_INIT(MIME_MAX_VALUE), sub = BUF_INIT(MIME_MAX_VALUE);
	if (!hdr_read_type(&lex, &tok, &type, &sub)) {
		buf_reset(&type);
		buf_reset(&sub);
		tok.type = MIME_TOK_END;
	}
	part->type = buf_steal(&type);
	part->subtype = buf_steal(&sub);
	if (tok.type != MIME_TOK_END)
		mime_params_parse(&lex, &part->params, &part->param_count);
	mime_token_free(&tok);
}

/* "token; params" (Content-Disposition); anything else is shown as ""
 * without parameters, as Dovecot does. */
static void hdr_disposition(struct mime_part *part, const char *v, size_t len)
{
	struct mime_lex lex;
	struct mime_token tok;
	mime_lex_init(&lex, v, len, true);
	mime_token_init(&tok);
	char *value = NULL;
	mime_lex_next(&lex, &tok, false);
	if (tok.type == MIME_TOK_ATOM) {
		value = buf_steal(&tok.value);
		mime_lex_next(&lex, &tok, false);
		if (tok.type == MIME_TOK_SPECIAL && tok.special == ';')
			mime_params_parse(&lex, &part->disp_params, &part->disp_param_count);
		else if (tok.type != MIME_TOK_END)
			value[0] = '\0';
	}
	part->disposition = value != NULL ? value : xstrdup("");
	mime_token_free(&tok);
}

/* Content-Transfer-Encoding: exactly one token (comments allowed); else
 * NULL, which shows as the default "7bit" (as Dovecot does). */
static char *hdr_token(const char *v, size_t len)
{
	struct mime_lex lex;
	struct mime_token tok;
	mime_lex_init(&lex, v, len, true);
	mime_token_init(&tok);
	mime_lex_next(&lex, &tok, false);
	char *ret = NULL;
	if (tok.type == MIME_TOK_ATOM) {
		ret = buf_steal(&tok.value);
		mime_lex_next(&lex, &tok, false);
		if (tok.type != MIME_TOK_END)
			xfree(ret);
	}
	mime_token_free(&tok);
	return ret;
}

/* A field's value: leading blanks go, CR and LF go, the rest is kept
 * (Dovecot keeps trailing blanks of Content-Description). */
static char *hdr_raw_value(const char *v, size_t len)
{
	struct buf out = BUF_INIT(0);
	size_t i = 0;
	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	for (; i < len; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			(void)buf_append_char(&out, v[i]);
	}
	return buf_steal(&out);
}

struct hdr_field {
	const char *name;
	size_t offset; /* of a char * in struct mime_part, or 0 for a handler */
	void (*handler)(struct mime_part *part, const char *v, size_t len);
	bool token;
	bool first_wins;
};

#define HDR_STR(name, member) {name, offsetof(struct mime_part, member), NULL, false, false}

static const struct hdr_field hdr_fields[] = {
	{"Content-Type", 0, hdr_content_type, false, true},
	{"Content-Disposition", 0, hdr_disposition, false, false},
	{"Content-Transfer-Encoding", offsetof(struct mime_part, encoding), NULL, true, true},
	HDR_STR("Content-ID", id),
	HDR_STR("Content-Description", description),
	HDR_STR("Content-MD5", md5),
	HDR_STR("Content-Location", location),
	HDR_STR("Content-Language", language),
};

static const char *const env_names[MIME_ENV_COUNT] = {
	[MIME_ENV_DATE] = "Date",
	[MIME_ENV_SUBJECT] = "Subject",
	[MIME_ENV_FROM] = "From",
	[MIME_ENV_SENDER] = "Sender",
	[MIME_ENV_REPLY_TO] = "Reply-To",
	[MIME_ENV_TO] = "To",
	[MIME_ENV_CC] = "Cc",
	[MIME_ENV_BCC] = "Bcc",
	[MIME_ENV_IN_REPLY_TO] = "In-Reply-To",
	[MIME_ENV_MESSAGE_ID] = "Message-ID",
};

static bool hdr_name_is(const char *n, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(n, want, nlen) == 0;
}

/* As Dovecot: the first Content-Type and Content-Transfer-Encoding count,
 * a later occurrence of any other field replaces the earlier one. */
static void hdr_content_field(struct mime_part *part, const char *n, size_t nlen, const char *v,
			      size_t vlen, unsigned int *seen)
{
	for (unsigned int i = 0; i < sizeof(hdr_fields) / sizeof(hdr_fields[0]); i++) {
		const struct hdr_field *f = &hdr_fields[i];
		if (!hdr_name_is(n, nlen, f->name))
			continue;
		if (f->first_wins && (*seen & (1u << i)) != 0)
			return;
		*seen |= 1u << i;
		if (f->handler == hdr_disposition) {
			free(part->disposition);
			mime_params_free(part->disp_params, part->disp_param_count);
			part->disp_params = NULL;
			part->disp_param_count = 0;
		}
		if (f->handler != NULL) {
			f->handler(part, v, vlen);
			return;
		}
		char **dest = (char **)((char *)part + f->offset);
		free(*dest);
		*dest = f->token ? hdr_token(v, vlen) : hdr_raw_value(v, vlen);
		return;
	}
}

/* Envelope values are kept raw: leading blanks and the final line end go,
 * folding stays (the writer unfolds as Dovecot does). */
static char *hdr_env_value(const char *v, size_t len)
{
	while (len > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		len--;
	}
	if (len > 0 && v[len - 1] == '\n')
		len--;
	if (len > 0 && v[len - 1] == '\r')
		len--;
	if (len > MIME_MAX_VALUE)
		len = MIME_MAX_VALUE;
	return xstrndup(v, len);
}

/* As Dovecot: a repeated address field adds its addresses, a repeated
 * string field replaces the earlier value. */
static void hdr_env_field(struct mime_envelope *env, const char *n, size_t nlen, const char *v,
			  size_t vlen)
{
	for (unsigned int i = 0; i < MIME_ENV_COUNT; i++) {
		if (!hdr_name_is(n, nlen, env_names[i]))
			continue;
		char *value = hdr_env_value(v, vlen);
		bool addresses = i >= MIME_ENV_FROM && i <= MIME_ENV_BCC;
		if (addresses && env->fields[i] != NULL && env->fields[i][0] != '\0' &&
		    strlen(env->fields[i]) < MIME_MAX_VALUE) {
			char *joined = xasprintf("%s, %s", env->fields[i], value);
			free(value);
			value = joined;
		}
		free(env->fields[i]);
		env->fields[i] = value;
		return;
	}
}

/* RFC 2045 4: Content-* fields of a message count only in a MIME message;
 * like Dovecot, a Content-Type field is taken as a sign of one too. */
static bool hdr_is_mime(const char *header, size_t len)
{
	struct mime_header_iter iter = {header, header + len};
	const char *n, *v;
	size_t nlen, vlen;
	while (mime_header_next(&iter, &n, &nlen, &v, &vlen)) {
		if (hdr_name_is(n, nlen, "MIME-Version") || hdr_name_is(n, nlen, "Content-Type"))
			return true;
	}
	return false;
}

void mime_part_parse_header(struct mime_part *part, const char *header, size_t len,
			    bool want_envelope)
{
	struct mime_header_iter iter = {header, header + len};
	const char *n, *v;
	size_t nlen, vlen;
	unsigned int seen = 0;
	if (want_envelope && part->envelope == NULL)
		part->envelope = xcalloc(1, sizeof(*part->envelope));
	bool mime = !want_envelope || hdr_is_mime(header, len);
	while (mime_header_next(&iter, &n, &nlen, &v, &vlen)) {
		if (nlen > 8 && strncasecmp(n, "Content-", 8) == 0 && mime)
			hdr_content_field(part, n, nlen, v, vlen, &seen);
		else if (want_envelope)
			hdr_env_field(part->envelope, n, nlen, v, vlen);
	}
}

int mime_header_text(const char *header, size_t len, struct buf *out)
{
	struct mime_header_iter iter = {header, header + len};
	const char *n, *v;
	size_t nlen, vlen;
	while (mime_header_next(&iter, &n, &nlen, &v, &vlen)) {
		char *dec = mime_header_decode(v, vlen);
		int ret = mime_utf8_append_sanitized(out, n, nlen);
		if (ret == 0)
			ret = buf_append(out, ": ", 2);
		if (ret == 0)
			ret = buf_append_str(out, dec);
		if (ret == 0)
			ret = buf_append_char(out, '\n');
		free(dec);
		if (ret < 0)
			return -1;
	}
	return 0;
}
