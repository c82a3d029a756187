/* SMTP command lines, paths (RFC 5321 4.1.2, RFC 6531 3.3) and the
 * parameters of MAIL and RCPT. Strict: whatever the grammar does not
 * allow is an error, so that nothing odd reaches the routing decision. */
#include "smtp/smtp.h"

#include <string.h>
#include <strings.h>

#include "lib/strnum.h"

#define REPLY_SYNTAX "501 5.5.2 Syntax error in command"
#define REPLY_PATH "501 5.1.3 Bad address syntax"
#define REPLY_PARAM "501 5.5.4 Syntax error in parameters"
#define REPLY_UNKNOWN_PARAM "555 5.5.4 Unsupported parameter"

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

int smtp_parse_command(char *line, size_t len, struct smtp_command *cmd_r,
		       const char **reply_r)
{
	size_t i = 0;
	line[len] = '\0';
	for (size_t j = 0; j < len; j++) {
		unsigned char c = (unsigned char)line[j];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*reply_r = "500 5.5.2 Control characters in command";
			return -1;
		}
	}
	while (i < len && is_alpha((unsigned char)line[i])) {
		if (i >= sizeof(cmd_r->verb) - 1) {
			*reply_r = "500 5.5.2 Unknown command";
			return -1;
		}
		cmd_r->verb[i] = (char)(line[i] & ~0x20);
		i++;
	}
	cmd_r->verb[i] = '\0';
	if (i == 0 || (i < len && line[i] != ' ')) {
		*reply_r = "500 5.5.2 Unknown command";
		return -1;
	}
	cmd_r->arg = line + (i < len ? i + 1 : i);
	return 0;
}

bool smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c >= 0x80 ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Dot-string: atoms separated by single dots. */
static int parse_dot_string(const char **p, struct smtp_path *path)
{
	const char *s = *p;
	size_t n = 0;
	for (;;) {
		if (!is_atext((unsigned char)*s))
			return -1;
		while (is_atext((unsigned char)*s)) {
			if (n >= SMTP_MAX_LOCAL)
				return -1;
			path->local[n++] = *s++;
		}
		if (*s != '.')
			break;
		if (n >= SMTP_MAX_LOCAL)
			return -1;
		path->local[n++] = *s++;
	}
	path->local[n] = '\0';
	*p = s;
	return 0;
}

static int parse_quoted_string(const char **p, struct smtp_path *path)
{
	const char *s = *p + 1;
	size_t n = 0;
	while (*s != '"') {
		unsigned char c = (unsigned char)*s;
		if (c == '\\') {
			c = (unsigned char)*++s;
			if (c < 32 || c > 126)
				return -1;
		} else if (c < 32 || c == 127) {
			return -1;
		}
		if (n >= SMTP_MAX_LOCAL)
			return -1;
		path->local[n++] = (char)c;
		s++;
	}
	path->local[n] = '\0';
	path->quoted = true;
	*p = s + 1;
	return 0;
}

/* sub-domain *("." sub-domain); U-labels allowed (checked for UTF-8
 * later). A trailing dot or an empty label is an error. */
static int parse_domain(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t n = 0;
	for (;;) {
		unsigned char c = (unsigned char)*s;
		if (!is_alpha(c) && !is_digit(c) && c < 0x80)
			return -1;
		size_t label = 0;
		while (is_alpha((unsigned char)*s) || is_digit((unsigned char)*s) || *s == '-' ||
		       (unsigned char)*s >= 0x80) {
			if (n + 1 >= size || ++label > 63)
				return -1;
			out[n++] = *s++;
		}
		if (out[n - 1] == '-')
			return -1;
		if (*s != '.')
			break;
		if (n + 1 >= size)
			return -1;
		out[n++] = *s++;
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

/* "[" 1*dcontent "]" where dcontent is %d33-90 / %d94-126 (RFC 5321
 * General-address-literal); the routing code treats every literal alike. */
static int parse_literal(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t n = 0;
	out[n++] = *s++;
	while (*s != ']') {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '[' || c == '\\' || n + 2 >= size)
			return -1;
		out[n++] = *s++;
	}
	if (n == 1)
		return -1;
	out[n++] = *s++;
	out[n] = '\0';
	*p = s;
	return 0;
}

/* A-d-l ":" — an obsolete source route: parsed and ignored (RFC 5321
 * 4.1.1.3 and appendix C), so it never decides where mail goes. */
static int parse_route(const char **p)
{
	char skip[SMTP_MAX_DOMAIN + 1];
	const char *s = *p;
	for (;;) {
		if (*s++ != '@' || parse_domain(&s, skip, sizeof(skip)) < 0)
			return -1;
		if (*s == ':')
			break;
		if (*s++ != ',')
			return -1;
	}
	*p = s + 1;
	return 0;
}

static int parse_mailbox(const char **p, struct smtp_path *path)
{
	const char *s = *p;
	int ret = *s == '"' ? parse_quoted_string(&s, path) : parse_dot_string(&s, path);
	if (ret < 0 || *s++ != '@')
		return -1;
	if (*s == '[') {
		path->literal = true;
		ret = parse_literal(&s, path->domain, sizeof(path->domain));
	} else {
		ret = parse_domain(&s, path->domain, sizeof(path->domain));
	}
	if (ret < 0)
		return -1;
	size_t len = (size_t)(s - *p);
	if (len > SMTP_MAX_PATH)
		return -1;
	memcpy(path->address, *p, len);
	path->address[len] = '\0';
	*p = s;
	return 0;
}

int smtp_parse_path(const char **p, bool allow_null, struct smtp_path *path_r,
		    const char **reply_r)
{
	const char *s = *p;
	memset(path_r, 0, sizeof(*path_r));
	*reply_r = REPLY_PATH;
	if (*s++ != '<')
		return -1;
	if (*s == '>') {
		if (!allow_null)
			return -1;
		*p = s + 1;
		return 0;
	}
	if (*s == '@') {
		if (parse_route(&s) < 0)
			return -1;
		path_r->route = true;
	}
	if (parse_mailbox(&s, path_r) < 0 || *s++ != '>')
		return -1;
	size_t len = strlen(path_r->address);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)path_r->address[i] >= 0x80)
			path_r->utf8 = true;
	}
	if (path_r->utf8 && !smtp_utf8_valid((const unsigned char *)path_r->address, len))
		return -1;
	*p = s;
	return 0;
}

int smtp_xtext_decode(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (const char *s = in; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '=')
			return -1;
		if (c == '+') {
			const char *h1 = s[1] != '\0' ? strchr(hex, s[1]) : NULL;
			const char *h2 = h1 != NULL && s[2] != '\0' ? strchr(hex, s[2]) : NULL;
			if (h1 == NULL || h2 == NULL)
				return -1;
			c = (unsigned char)(((h1 - hex) << 4) | (h2 - hex));
			s += 2;
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* One KEYWORD[=VALUE] of esmtp-param (RFC 5321 4.1.2). */
struct smtp_param {
	const char *key;
	const char *value;   /* NULL without "=" */
};

static int split_param(char *word, struct smtp_param *param)
{
	char *eq = strchr(word, '=');
	if (eq != NULL)
		*eq = '\0';
	if (!is_alpha((unsigned char)word[0]) && !is_digit((unsigned char)word[0]))
		return -1;
	for (char *k = word; *k != '\0'; k++) {
		if (!is_alpha((unsigned char)*k) && !is_digit((unsigned char)*k) && *k != '-')
			return -1;
	}
	param->key = word;
	param->value = eq != NULL ? eq + 1 : NULL;
	if (param->value != NULL && param->value[0] == '\0')
		return -1;
	return 0;
}

/* A parameter keyword and its handler; parse_params refuses repeats. */
struct param_def {
	const char *key;
	int (*handle)(const struct smtp_param *param, void *ctx, const char **reply_r);
};

static int parse_params(char *s, const struct param_def *defs, size_t count, void *ctx,
			const char **reply_r)
{
	unsigned int seen = 0;
	while (*s != '\0') {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		char *word = s;
		s += strcspn(s, " ");
		if (*s != '\0')
			*s++ = '\0';
		struct smtp_param param;
		*reply_r = REPLY_PARAM;
		if (split_param(word, &param) < 0)
			return -1;
		size_t i = 0;
		while (i < count && strcasecmp(defs[i].key, param.key) != 0)
			i++;
		if (i == count) {
			*reply_r = REPLY_UNKNOWN_PARAM;
			return -1;
		}
		if ((seen & (1u << i)) != 0)
			return -1;
		seen |= 1u << i;
		if (defs[i].handle(&param, ctx, reply_r) < 0)
			return -1;
	}
	return 0;
}

static int mail_size(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_mail_params *mp = ctx;
	if (param->value == NULL || str_to_uint64(param->value, &mp->size) < 0)
		return -1;
	mp->size_given = true;
	(void)reply_r;
	return 0;
}

static int mail_body(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	static const char *const names[] = { "7BIT", "8BITMIME", "BINARYMIME" };
	struct smtp_mail_params *mp = ctx;
	for (size_t i = 0; param->value != NULL && i < 3; i++) {
		if (strcasecmp(param->value, names[i]) == 0) {
			mp->body = (enum smtp_body)i;
			return 0;
		}
	}
	*reply_r = "501 5.5.4 BODY must be 7BIT, 8BITMIME or BINARYMIME";
	return -1;
}

static int mail_smtputf8(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_mail_params *mp = ctx;
	if (param->value != NULL)
		return -1;
	mp->smtputf8 = true;
	(void)reply_r;
	return 0;
}

static int mail_ret(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_mail_params *mp = ctx;
	if (param->value != NULL && strcasecmp(param->value, "FULL") == 0)
		mp->ret = SMTP_RET_FULL;
	else if (param->value != NULL && strcasecmp(param->value, "HDRS") == 0)
		mp->ret = SMTP_RET_HDRS;
	else
		return -1;
	(void)reply_r;
	return 0;
}

/* RFC 3461 4.4: at most 100 characters of xtext, printable when decoded. */
static int mail_envid(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_mail_params *mp = ctx;
	if (param->value == NULL || strlen(param->value) > 100 ||
	    smtp_xtext_decode(param->value, mp->envid, sizeof(mp->envid)) < 0)
		return -1;
	for (const char *c = mp->envid; *c != '\0'; c++) {
		if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
			return -1;
	}
	mp->envid_given = true;
	(void)reply_r;
	return 0;
}

/* RFC 4954 5: AUTH=<mailbox> is accepted and not trusted (we know who
 * authenticated). */
static int mail_auth(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	char tmp[600];
	(void)ctx;
	(void)reply_r;
	if (param->value == NULL || strlen(param->value) >= sizeof(tmp))
		return -1;
	return smtp_xtext_decode(param->value, tmp, sizeof(tmp));
}

static const struct param_def mail_params[] = {
	{ "SIZE", mail_size },
	{ "BODY", mail_body },
	{ "SMTPUTF8", mail_smtputf8 },
	{ "RET", mail_ret },
	{ "ENVID", mail_envid },
	{ "AUTH", mail_auth },
};

int smtp_parse_mail_params(char *s, struct smtp_mail_params *params_r, const char **reply_r)
{
	memset(params_r, 0, sizeof(*params_r));
	return parse_params(s, mail_params, sizeof(mail_params) / sizeof(mail_params[0]),
			    params_r, reply_r);
}

static int notify_word(const char *w, size_t len, unsigned int *bit_r)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} words[] = {
		{ "NEVER", SMTP_NOTIFY_NEVER },
		{ "SUCCESS", SMTP_NOTIFY_SUCCESS },
		{ "FAILURE", SMTP_NOTIFY_FAILURE },
		{ "DELAY", SMTP_NOTIFY_DELAY },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strlen(words[i].name) == len && strncasecmp(words[i].name, w, len) == 0) {
			*bit_r = words[i].bit;
			return 0;
		}
	}
	return -1;
}

/* RFC 3461 4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
static int rcpt_notify(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_rcpt_params *rp = ctx;
	const char *s = param->value;
	if (s == NULL)
		return -1;
	for (;;) {
		size_t len = strcspn(s, ",");
		unsigned int bit;
		if (notify_word(s, len, &bit) < 0 || (rp->notify & bit) != 0)
			return -1;
		rp->notify |= bit;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	if ((rp->notify & SMTP_NOTIFY_NEVER) != 0 && rp->notify != SMTP_NOTIFY_NEVER) {
		*reply_r = "501 5.5.4 NOTIFY=NEVER cannot be combined";
		return -1;
	}
	return 0;
}

/* RFC 3461 4.2: addr-type ";" xtext; kept as received. */
static int rcpt_orcpt(const struct smtp_param *param, void *ctx, const char **reply_r)
{
	struct smtp_rcpt_params *rp = ctx;
	char decoded[501];
	(void)reply_r;
	if (param->value == NULL || strlen(param->value) >= sizeof(rp->orcpt))
		return -1;
	const char *semi = strchr(param->value, ';');
	if (semi == NULL || semi == param->value ||
	    smtp_xtext_decode(semi + 1, decoded, sizeof(decoded)) < 0 || decoded[0] == '\0')
		return -1;
	for (const char *t = param->value; t < semi; t++) {
		if (!is_alpha((unsigned char)*t) && !is_digit((unsigned char)*t) && *t != '-')
			return -1;
	}
	memcpy(rp->orcpt, param->value, strlen(param->value) + 1);
	return 0;
}

static const struct param_def rcpt_params[] = {
	{ "NOTIFY", rcpt_notify },
	{ "ORCPT", rcpt_orcpt },
};

int smtp_parse_rcpt_params(char *s, struct smtp_rcpt_params *params_r, const char **reply_r)
{
	memset(params_r, 0, sizeof(*params_r));
	return parse_params(s, rcpt_params, sizeof(rcpt_params) / sizeof(rcpt_params[0]),
			    params_r, reply_r);
}
