/* Content-Type / Content-Disposition parameters. Values are read the way
 * clients read them: a quoted string, or everything up to the next ';'
 * (so the common unquoted "boundary=----=_Part_1" works). RFC 2231
 * continuations (name*0, name*1*...) are joined into one parameter, named
 * "name*" with a charset'language'%XX value when any section is extended,
 * as Dovecot shows them. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mime/mime-private.h"

struct raw_param {
	char *name;  /* base name, without "*N*" */
	int section; /* -1 when not a continuation */
	bool extended;
	char *value;
	bool used;
};

static bool param_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void param_skip_space(struct mime_lex *lex)
{
	while (lex->p < lex->end && param_is_space(*lex->p))
		lex->p++;
}

/* Raw text up to ';' (or '=' when stop_eq), trimmed; comments dropped. */
static char *param_read_until(struct mime_lex *lex, bool stop_eq)
{
	struct buf out = BUF_INIT(MIME_MAX_VALUE);
	param_skip_space(lex);
	while (lex->p < lex->end && *lex->p != ';' && !(stop_eq && *lex->p == '=')) {
		char c = *lex->p;
		if (c == '(') {
			struct mime_token tok;
			mime_token_init(&tok);
			mime_lex_next(lex, &tok, true);
			mime_token_free(&tok);
			continue;
		}
		if (c != '\r' && c != '\n')
			(void)buf_append_char(&out, c);
		lex->p++;
	}
	while (out.len > 0 && param_is_space(out.data[out.len - 1]))
		out.data[--out.len] = '\0';
	return buf_steal(&out);
}

/* A quoted string, or raw text up to ';'. NULL for an unterminated quoted
 * string: the parameter is dropped, as Dovecot does. */
/* "a=b c=d" (a forgotten ';'): the value ends at the blank when what
 * follows looks like another parameter, which is then read too. */
static char *param_read_unquoted(struct mime_lex *lex)
{
	if (lex->p >= lex->end)
		return xstrdup("");
	const char *semi = memchr(lex->p, ';', (size_t)(lex->end - lex->p));
	if (semi == NULL)
		semi = lex->end;
	const char *blank = lex->p;
	while (blank < semi && !param_is_space(*blank))
		blank++;
	if (blank == semi || memchr(blank, '=', (size_t)(semi - blank)) == NULL)
		return param_read_until(lex, false);
	char *value = xstrndup(lex->p, (size_t)(blank - lex->p));
	lex->p = blank; /* the caller steps over this blank */
	return value;
}

static char *param_read_value(struct mime_lex *lex)
{
	param_skip_space(lex);
	if (lex->p >= lex->end || *lex->p != '"')
		return param_read_unquoted(lex);
	struct buf out = BUF_INIT(MIME_MAX_VALUE);
	for (lex->p++; lex->p < lex->end && *lex->p != '"'; lex->p++) {
		if (*lex->p == '\\' && lex->p + 1 < lex->end)
			lex->p++;
		if (*lex->p != '\r' && *lex->p != '\n')
			(void)buf_append_char(&out, *lex->p);
	}
	if (lex->p >= lex->end) {
		buf_free(&out);
		return NULL;
	}
	/* junk after the closing quote is ignored up to the next ';' */
	while (lex->p < lex->end && *lex->p != ';')
		lex->p++;
	return buf_steal(&out);
}

/* "name*12*" -> base "name", section 12, extended. */
static void param_split_name(struct raw_param *rp, char *name)
{
	rp->section = -1;
	rp->extended = false;
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '*') {
		rp->extended = true;
		name[--len] = '\0';
	}
	char *star = strrchr(name, '*');
	uint32_t num;
	if (star != NULL && star[1] != '\0' && star > name && str_to_uint32(star + 1, &num) == 0 &&
	    num < 1000 && (star[1] != '0' || star[2] == '\0')) {
		rp->section = (int)num;
		*star = '\0';
	}
	rp->name = name;
}

/* RFC 2231 attribute-char: what may appear unencoded in an extended value. */
static bool param_attr_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("*'%()<>@,;:\\\"/[]?=", c) == NULL;
}

static void param_append_encoded(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (param_attr_char(c))
			(void)buf_append_char(out, (char)c);
		else
			(void)buf_printf(out, "%%%02X", c);
	}
}

static struct raw_param *param_find_section(struct raw_param *raw, unsigned int n,
					    const char *base, int section)
{
	for (unsigned int i = 0; i < n; i++) {
		if (!raw[i].used && raw[i].section == section && strcasecmp(raw[i].name, base) == 0)
			return &raw[i];
	}
	return NULL;
}

/* Joins name*0, name*1... (stopping at the first gap). */
static void param_join(struct raw_param *raw, unsigned int n, struct raw_param *first,
		       struct mime_param *out)
{
	bool extended = first->extended;
	struct buf value = BUF_INIT(MIME_MAX_VALUE);
	struct raw_param *rp = first;
	for (int section = 0; rp != NULL; rp = param_find_section(raw, n, first->name, ++section)) {
		rp->used = true;
		if (rp->extended || !extended)
			(void)buf_append_str(&value, rp->value);
		else
			param_append_encoded(&value, rp->value);
	}
	out->name = xasprintf("%s%s", first->name, extended ? "*" : "");
	out->value = buf_steal(&value);
}

static void param_merge(struct raw_param *raw, unsigned int n, struct mime_param **params_r,
			unsigned int *count_r)
{
	struct mime_param *params = xcalloc(n, sizeof(*params));
	unsigned int count = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct raw_param *rp = &raw[i];
		if (rp->used)
			continue;
		if (rp->section < 0) {
			rp->used = true;
			params[count].name = xasprintf("%s%s", rp->name, rp->extended ? "*" : "");
			params[count++].value = xstrdup(rp->value);
			continue;
		}
		struct raw_param *first = param_find_section(raw, n, rp->name, 0);
		if (first == NULL) {
			rp->used = true; /* a continuation without section 0 */
			continue;
		}
		param_join(raw, n, first, &params[count++]);
	}
	*params_r = params;
	*count_r = count;
}

void mime_params_parse(struct mime_lex *lex, struct mime_param **params_r, unsigned int *count_r)
{
	struct raw_param raw[MIME_MAX_PARAMS];
	unsigned int n = 0;
	while (lex->p < lex->end && n < MIME_MAX_PARAMS) {
		char *name = param_read_until(lex, true);
		if (lex->p >= lex->end || *lex->p != '=' || name[0] == '\0') {
			free(name);
			if (lex->p < lex->end)
				lex->p++;
			continue;
		}
		lex->p++;
		char *value = param_read_value(lex);
		if (value == NULL) {
			free(name);
			break;
		}
		memset(&raw[n], 0, sizeof(raw[n]));
		param_split_name(&raw[n], name);
		raw[n++].value = value;
		if (lex->p < lex->end)
			lex->p++;
	}
	*params_r = NULL;
	*count_r = 0;
	if (n > 0)
		param_merge(raw, n, params_r, count_r);
	for (unsigned int i = 0; i < n; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
	if (*count_r == 0) {
		free(*params_r);
		*params_r = NULL;
	}
}
