/* IMAP output of the part tree: ENVELOPE and BODY / BODYSTRUCTURE exactly in
 * RFC 3501 / RFC 9051 syntax, with Dovecot's choices where the RFC leaves
 * room (docs/mime.md): values as found (no case change), defaults written
 * in lower case ("text" "plain" ("charset" "us-ascii") ... "7bit"), all
 * four extension fields always present, subject and display names with
 * whitespace runs collapsed, MISSING_MAILBOX / MISSING_DOMAIN for broken
 * addresses. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define IMAP_QUOTED_MAX 1000
/* Addresses written per header field. */
#define IMAP_MAX_ADDRESSES 10000

static bool imap_needs_literal(const char *s, size_t len)
{
	if (len > IMAP_QUOTED_MAX)
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			return true;
	}
	return false;
}

int mime_imap_append_string_len(struct buf *out, const char *s, size_t len)
{
	if (imap_needs_literal(s, len)) {
		if (buf_printf(out, "{%zu}\r\n", len) < 0)
			return -1;
		return buf_append(out, s, len);
	}
	if (buf_append_char(out, '"') < 0)
		return -1;
	/* runs without '"' or '\\' go in one piece */
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		if (buf_append(out, s + start, i - start) < 0 || buf_append_char(out, '\\') < 0)
			return -1;
		start = i;
	}
	if (buf_append(out, s + start, len - start) < 0)
		return -1;
	return buf_append_char(out, '"');
}

int mime_imap_append_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		return buf_append(out, "NIL", 3);
	return mime_imap_append_string_len(out, s, strlen(s));
}

static bool imap_is_lwsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Dovecot's imap_append_string_for_humans: CR, LF and tabs become spaces,
 * runs of them one space, leading and trailing ones go. A value that
 * needed any change (or has '"', '\\' or 8-bit bytes) is sent as a
 * literal, else as a plain quoted string. */
static int imap_append_for_humans(struct buf *out, const char *s)
{
	if (s == NULL)
		return buf_append(out, "NIL", 3);
	struct buf tmp = BUF_INIT(0);
	bool modify = false, last_lwsp = true;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (imap_is_lwsp(*p)) {
			modify |= c != ' ' || last_lwsp;
			if (!last_lwsp)
				(void)buf_append_char(&tmp, ' ');
			last_lwsp = true;
			continue;
		}
		modify |= c == '"' || c == '\\' || c >= 0x80;
		last_lwsp = false;
		(void)buf_append_char(&tmp, (char)c);
	}
	if (tmp.len > 0 && tmp.data[tmp.len - 1] == ' ') {
		tmp.data[--tmp.len] = '\0';
		modify = true;
	}
	int ret;
	if (!modify || tmp.len == 0)
		ret = buf_printf(out, "\"%s\"", buf_str(&tmp));
	else
		ret = buf_printf(out, "{%zu}\r\n%s", tmp.len, buf_str(&tmp));
	buf_free(&tmp);
	return ret;
}

/* Dovecot's imap_append_nstring_nolf: line ends go; a line that starts
 * without a blank gets a space in their place. */
static int imap_append_nstring_nolf(struct buf *out, const char *s)
{
	if (s == NULL || strpbrk(s, "\r\n") == NULL)
		return mime_imap_append_nstring(out, s);
	struct buf tmp = BUF_INIT(0);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p != '\r' && *p != '\n')
			(void)buf_append_char(&tmp, *p);
		else if (p[1] != '\0' && !imap_is_lwsp(p[1]))
			(void)buf_append_char(&tmp, ' ');
	}
	int ret = mime_imap_append_string_len(out, buf_str(&tmp), tmp.len);
	buf_free(&tmp);
	return ret;
}

/* ---- ENVELOPE ---- */

static int imap_write_address(struct buf *out, const struct mime_address *a)
{
	int ret = buf_append_char(out, '(');
	if (a->mailbox == NULL && a->host == NULL) /* group end */
		return ret < 0 ? -1 : buf_append_str(out, "NIL NIL NIL NIL)");
	ret |= imap_append_for_humans(out, a->name);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, a->route);
	ret |= buf_append_char(out, ' ');
	if (a->host == NULL) { /* group start */
		ret |= mime_imap_append_nstring(out, a->mailbox);
		ret |= buf_append_str(out, " NIL)");
		return ret < 0 ? -1 : 0;
	}
	ret |= mime_imap_append_nstring(out, a->mailbox[0] != '\0' ? a->mailbox : "MISSING_MAILBOX");
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, a->host[0] != '\0' ? a->host : "MISSING_DOMAIN");
	ret |= buf_append_char(out, ')');
	return ret < 0 ? -1 : 0;
}

static struct mime_address *imap_addresses(const char *value)
{
	if (value == NULL)
		return NULL;
	return mime_address_parse(value, strlen(value), IMAP_MAX_ADDRESSES);
}

static int imap_write_address_list(struct buf *out, const struct mime_address *list)
{
	if (list == NULL)
		return buf_append(out, "NIL", 3);
	if (buf_append_char(out, '(') < 0)
		return -1;
	for (; list != NULL; list = list->next) {
		if (imap_write_address(out, list) < 0)
			return -1;
	}
	return buf_append_char(out, ')');
}

/* RFC 3501 7.4.2: Sender and Reply-To absent or empty mean From. */
static int imap_write_env_addresses(struct buf *out, const struct mime_envelope *env,
				    enum mime_envelope_field field)
{
	struct mime_address *list = imap_addresses(env->fields[field]);
	if (list == NULL && (field == MIME_ENV_SENDER || field == MIME_ENV_REPLY_TO))
		list = imap_addresses(env->fields[MIME_ENV_FROM]);
	int ret = imap_write_address_list(out, list);
	mime_address_free(&list);
	return ret;
}

int mime_write_envelope(struct buf *out, const struct mime_envelope *env)
{
	if (env == NULL)
		return buf_append_str(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	int ret = buf_append_char(out, '(');
	ret |= imap_append_nstring_nolf(out, env->fields[MIME_ENV_DATE]);
	ret |= buf_append_char(out, ' ');
	ret |= imap_append_for_humans(out, env->fields[MIME_ENV_SUBJECT]);
	for (unsigned int f = MIME_ENV_FROM; f <= MIME_ENV_BCC; f++) {
		ret |= buf_append_char(out, ' ');
		ret |= imap_write_env_addresses(out, env, f);
	}
	ret |= buf_append_char(out, ' ');
	ret |= imap_append_nstring_nolf(out, env->fields[MIME_ENV_IN_REPLY_TO]);
	ret |= buf_append_char(out, ' ');
	ret |= imap_append_nstring_nolf(out, env->fields[MIME_ENV_MESSAGE_ID]);
	ret |= buf_append_char(out, ')');
	return ret < 0 ? -1 : 0;
}

/* ---- BODY / BODYSTRUCTURE ---- */

static int imap_write_params(struct buf *out, const struct mime_param *params, unsigned int count,
			     bool default_charset)
{
	bool charset = mime_param_get(params, count, "charset") != NULL;
	if (count == 0 && !default_charset)
		return buf_append(out, "NIL", 3);
	int ret = buf_append_char(out, '(');
	for (unsigned int i = 0; i < count; i++) {
		if (i > 0)
			ret |= buf_append_char(out, ' ');
		ret |= mime_imap_append_nstring(out, params[i].name);
		ret |= buf_append_char(out, ' ');
		ret |= mime_imap_append_nstring(out, params[i].value);
	}
	if (default_charset && !charset)
		ret |= buf_append_str(out, count > 0 ? " \"charset\" \"us-ascii\""
						     : "\"charset\" \"us-ascii\"");
	ret |= buf_append_char(out, ')');
	return ret < 0 ? -1 : 0;
}

static int imap_write_language(struct buf *out, const char *value)
{
	struct buf list = BUF_INIT(0);
	if (value != NULL) {
		struct mime_lex lex;
		struct mime_token tok;
		mime_lex_init(&lex, value, strlen(value), true);
		mime_token_init(&tok);
		for (mime_lex_next(&lex, &tok, false); tok.type != MIME_TOK_END;
		     mime_lex_next(&lex, &tok, false)) {
			if (tok.type != MIME_TOK_ATOM && tok.type != MIME_TOK_QUOTED)
				continue;
			if (list.len > 0)
				(void)buf_append_char(&list, ' ');
			(void)mime_imap_append_string_len(&list, tok.value.data, tok.value.len);
		}
		mime_token_free(&tok);
	}
	int ret = list.len == 0 ? buf_append(out, "NIL", 3) : buf_printf(out, "(%s)", list.data);
	buf_free(&list);
	return ret;
}

/* body-fld-dsp, body-fld-lang, body-fld-loc (RFC 3501 9). */
static int imap_write_ext_common(struct buf *out, const struct mime_part *part)
{
	int ret = buf_append_char(out, ' ');
	if (part->disposition == NULL || part->disposition[0] == '\0') {
		ret |= buf_append(out, "NIL", 3);
	} else {
		ret |= buf_append_char(out, '(');
		ret |= mime_imap_append_nstring(out, part->disposition);
		ret |= buf_append_char(out, ' ');
		ret |= imap_write_params(out, part->disp_params, part->disp_param_count, false);
		ret |= buf_append_char(out, ')');
	}
	ret |= buf_append_char(out, ' ');
	ret |= imap_write_language(out, part->language);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, part->location);
	return ret < 0 ? -1 : 0;
}

static int imap_write_part(struct buf *out, const struct mime_part *part, bool extended,
			   unsigned int depth);

/* A multipart without parts (no boundary line found): RFC 3501 needs at
 * least one body, Dovecot shows an empty text/plain. */
static int imap_write_empty_text(struct buf *out, bool extended)
{
	int ret = buf_append_str(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
				      "\"7bit\" 0 0");
	if (extended)
		ret |= buf_append_str(out, " NIL NIL NIL NIL");
	ret |= buf_append_char(out, ')');
	return ret < 0 ? -1 : 0;
}

static int imap_write_multipart(struct buf *out, const struct mime_part *part, bool extended,
				unsigned int depth)
{
	int ret = 0;
	if (part->children == NULL)
		ret |= imap_write_empty_text(out, extended);
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		ret |= imap_write_part(out, c, extended, depth + 1);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, part->subtype != NULL ? part->subtype : "");
	if (extended) {
		ret |= buf_append_char(out, ' ');
		ret |= imap_write_params(out, part->params, part->param_count, false);
		ret |= imap_write_ext_common(out, part);
	}
	return ret < 0 ? -1 : 0;
}

/* body-fields: params, id, description, encoding, octets. */
static int imap_write_fields(struct buf *out, const struct mime_part *part, bool text)
{
	int ret = 0;
	if (part->type == NULL) {
		ret |= buf_append_str(out, "\"text\" \"plain\" ");
	} else if ((part->flags & MIME_PART_MESSAGE) != 0 && strcasecmp(part->subtype, "rfc822") == 0) {
		ret |= buf_append_str(out, "\"message\" \"rfc822\" "); /* as Dovecot */
	} else {
		ret |= mime_imap_append_nstring(out, part->type);
		ret |= buf_append_char(out, ' ');
		ret |= mime_imap_append_nstring(out, part->subtype != NULL ? part->subtype : "");
		ret |= buf_append_char(out, ' ');
	}
	ret |= imap_write_params(out, part->params, part->param_count, text);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, part->id);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, part->description);
	ret |= buf_append_char(out, ' ');
	ret |= mime_imap_append_nstring(out, part->encoding != NULL ? part->encoding : "7bit");
	ret |= buf_printf(out, " %llu", (unsigned long long)part->body_vsize);
	return ret < 0 ? -1 : 0;
}

static bool imap_is_message_type(const struct mime_part *part)
{
	return part->type != NULL && strcasecmp(part->type, "message") == 0 &&
	       part->subtype != NULL &&
	       (strcasecmp(part->subtype, "rfc822") == 0 || strcasecmp(part->subtype, "global") == 0);
}

/* body-type-msg: envelope, body, lines. A message part we did not parse
 * (an encoded one) gets an empty envelope and body, as in Dovecot, since
 * RFC 3501 allows no other form for message/rfc822. */
static int imap_write_message(struct buf *out, const struct mime_part *part, bool extended,
			      unsigned int depth)
{
	const struct mime_part *msg = part->children;
	int ret = buf_append_char(out, ' ');
	ret |= mime_write_envelope(out, msg != NULL ? msg->envelope : NULL);
	ret |= buf_append_char(out, ' ');
	if (msg != NULL)
		ret |= imap_write_part(out, msg, extended, depth + 1);
	else
		ret |= imap_write_empty_text(out, extended);
	ret |= buf_printf(out, " %llu", (unsigned long long)part->body_lines);
	return ret < 0 ? -1 : 0;
}

static int imap_write_single(struct buf *out, const struct mime_part *part, bool extended,
			     unsigned int depth)
{
	bool text = mime_part_is_text(part);
	bool message = imap_is_message_type(part);
	int ret = imap_write_fields(out, part, text);
	if (message)
		ret |= imap_write_message(out, part, extended, depth);
	else if (text)
		ret |= buf_printf(out, " %llu", (unsigned long long)part->body_lines);
	if (extended) {
		ret |= buf_append_char(out, ' ');
		ret |= mime_imap_append_nstring(out, part->md5);
		ret |= imap_write_ext_common(out, part);
	}
	return ret < 0 ? -1 : 0;
}

static int imap_write_part(struct buf *out, const struct mime_part *part, bool extended,
			   unsigned int depth)
{
	if (depth > MIME_SECTION_MAX_PATH * 2)
		return -1;
	int ret = buf_append_char(out, '(');
	if ((part->flags & MIME_PART_MULTIPART) != 0)
		ret |= imap_write_multipart(out, part, extended, depth);
	else
		ret |= imap_write_single(out, part, extended, depth);
	ret |= buf_append_char(out, ')');
	return ret < 0 ? -1 : 0;
}

int mime_write_bodystructure(struct buf *out, const struct mime_part *part, bool extended)
{
	return imap_write_part(out, part, extended, 0);
}
