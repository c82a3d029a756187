/* Response formatting: strings go out as atom, quoted or literal,
 * whichever represents them exactly. */
#include "imap/imap-parser.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"

/* Longer strings go out as literals: easier on clients than long quoted. */
#define IMAP_QUOTED_MAX 1024

/* ATOM-CHAR; "]" is quoted too although astrings allow it, because
 * client parsers read it as the end of a response code. */
static bool imap_write_is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* Can str be sent as a quoted string? */
static bool imap_write_quotable(const char *str, size_t len, bool utf8)
{
	if (len > IMAP_QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8))
			return false;
	}
	return true;
}

int imap_write_quoted(struct buf *buf, const char *str, size_t len)
{
	if (buf_append_char(buf, '"') < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = str[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return -1;
		if ((c == '"' || c == '\\') && buf_append_char(buf, '\\') < 0)
			return -1;
		if (buf_append_char(buf, c) < 0)
			return -1;
	}
	return buf_append_char(buf, '"');
}

int imap_write_literal(struct buf *buf, const char *str, size_t len)
{
	if (memchr(str, '\0', len) != NULL)
		return -1;
	if (buf_printf(buf, "{%zu}\r\n", len) < 0)
		return -1;
	return buf_append(buf, str, len);
}

int imap_write_string(struct buf *buf, const char *str, size_t len, bool utf8)
{
	if (imap_write_quotable(str, len, utf8))
		return imap_write_quoted(buf, str, len);
	return imap_write_literal(buf, str, len);
}

int imap_write_astring(struct buf *buf, const char *str, bool utf8)
{
	size_t len = strlen(str);
	bool atom = len > 0 && strcasecmp(str, "NIL") != 0;
	for (size_t i = 0; i < len && atom; i++)
		atom = imap_write_is_atom_char((unsigned char)str[i]);
	if (atom)
		return buf_append(buf, str, len);
	return imap_write_string(buf, str, len, utf8);
}

int imap_write_nstring(struct buf *buf, const char *str, bool utf8)
{
	if (str == NULL)
		return buf_append_str(buf, "NIL");
	return imap_write_string(buf, str, strlen(str), utf8);
}

static int imap_write_fields(struct buf *buf, const struct imap_section *section)
{
	if (buf_append_str(buf, " (") < 0)
		return -1;
	for (unsigned int i = 0; i < section->field_count; i++) {
		if (i > 0 && buf_append_char(buf, ' ') < 0)
			return -1;
		if (imap_write_astring(buf, section->fields[i], false) < 0)
			return -1;
	}
	return buf_append_char(buf, ')');
}

int imap_write_section(struct buf *buf, const char *name, const struct imap_section *section,
                       bool with_partial)
{
	if (buf_printf(buf, "%s[%s", name, section->spec != NULL ? section->spec : "") < 0)
		return -1;
	if (section->field_count > 0 && imap_write_fields(buf, section) < 0)
		return -1;
	if (buf_append_char(buf, ']') < 0)
		return -1;
	if (with_partial && section->has_partial &&
	    buf_printf(buf, "<%" PRIu64 ">", section->partial_offset) < 0)
		return -1;
	return 0;
}

static int imap_write_arg(struct buf *buf, const struct imap_arg *arg)
{
	const struct imap_section *sec = arg->section;
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
		return buf_append(buf, arg->str, arg->len);
	case IMAP_ARG_STRING:
		return imap_write_quoted(buf, arg->str, arg->len);
	case IMAP_ARG_LITERAL:
		if (arg->str == NULL)
			return buf_printf(buf, "{%" PRIu64 "}", arg->literal_size);
		return imap_write_literal(buf, arg->str, arg->len);
	case IMAP_ARG_LIST:
		if (buf_append_char(buf, '(') < 0 ||
		    imap_write_args(buf, arg->list->args, arg->list->count) < 0)
			return -1;
		return buf_append_char(buf, ')');
	case IMAP_ARG_SECTION:
		if (imap_write_section(buf, arg->str, sec, false) < 0)
			return -1;
		if (!sec->has_partial)
			return 0;
		return buf_printf(buf, "<%" PRIu64 ".%" PRIu64 ">", sec->partial_offset,
		                  sec->partial_length);
	}
	return -1;
}

int imap_write_args(struct buf *buf, const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (i > 0 && buf_append_char(buf, ' ') < 0)
			return -1;
		if (imap_write_arg(buf, &args[i]) < 0)
			return -1;
	}
	return 0;
}
