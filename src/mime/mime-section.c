/* Section addressing for BODY[section] and BINARY[section] (RFC 3501
 * 6.4.5, RFC 9051 6.4.5, RFC 3516): parsing the section text, resolving it
 * to a byte range of the message, and HEADER.FIELDS(.NOT) extraction with
 * the original bytes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define SECTION_MAX_FIELDS 1000
#define SECTION_MAX_FIELD_LEN 1000

static const struct {
	const char *name;
	enum mime_section_kind kind;
	bool needs_list;
} section_texts[] = {
	{"HEADER.FIELDS.NOT", MIME_SECTION_HEADER_FIELDS_NOT, true},
	{"HEADER.FIELDS", MIME_SECTION_HEADER_FIELDS, true},
	{"HEADER", MIME_SECTION_HEADER, false},
	{"TEXT", MIME_SECTION_TEXT, false},
	{"MIME", MIME_SECTION_MIME, false},
};

static int section_number(const char **p, struct mime_section *sec, const char **error_r)
{
	const char *s = *p;
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	uint64_t num;
	if (s[0] == '0' || strn_to_uint64(s, n, &num) < 0 || num > UINT32_MAX) {
		*error_r = "Invalid part number";
		return -1;
	}
	if (sec->path_len == MIME_SECTION_MAX_PATH) {
		*error_r = "Part number path too long";
		return -1;
	}
	sec->path[sec->path_len++] = (unsigned int)num;
	*p = s + n;
	return 0;
}

/* One header field name: an atom, or a quoted string. */
static int section_field(const char **p, struct buf *name)
{
	const char *s = *p;
	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0')
				return -1;
			if (*s == '\\' && s[1] != '\0')
				s++;
			(void)buf_append_char(name, *s);
		}
		*p = s + 1;
	} else {
		while (*s > ' ' && *s < 0x7f && *s != '(' && *s != ')' && *s != '"')
			(void)buf_append_char(name, *s++);
		*p = s;
	}
	return name->len == 0 || name->len > SECTION_MAX_FIELD_LEN ? -1 : 0;
}

static int section_fields(const char *s, struct mime_section *sec, const char **error_r)
{
	*error_r = "Invalid header field list";
	if (*s++ != ' ' || *s++ != '(')
		return -1;
	unsigned int cap = 0;
	for (;;) {
		struct buf name = BUF_INIT(0);
		if (section_field(&s, &name) < 0 || sec->field_count == SECTION_MAX_FIELDS) {
			buf_free(&name);
			return -1;
		}
		if (sec->field_count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			sec->fields = xreallocarray(sec->fields, cap, sizeof(*sec->fields));
		}
		sec->fields[sec->field_count++] = buf_steal(&name);
		if (*s == ')')
			break;
		if (*s++ != ' ')
			return -1;
	}
	return s[1] == '\0' ? 0 : -1;
}

static int section_text(const char *s, struct mime_section *sec, const char **error_r)
{
	for (size_t i = 0; i < sizeof(section_texts) / sizeof(section_texts[0]); i++) {
		size_t len = strlen(section_texts[i].name);
		if (strncasecmp(s, section_texts[i].name, len) != 0)
			continue;
		if (section_texts[i].needs_list ? s[len] != ' ' : s[len] != '\0')
			continue;
		sec->kind = section_texts[i].kind;
		if (sec->kind == MIME_SECTION_MIME && sec->path_len == 0) {
			*error_r = "MIME needs a part number";
			return -1;
		}
		return section_texts[i].needs_list ? section_fields(s + len, sec, error_r) : 0;
	}
	*error_r = "Invalid section";
	return -1;
}

int mime_section_parse(const char *spec, struct mime_section *sec, const char **error_r)
{
	memset(sec, 0, sizeof(*sec));
	sec->kind = MIME_SECTION_ALL;
	const char *p = spec;
	while (*p >= '0' && *p <= '9') {
		if (section_number(&p, sec, error_r) < 0)
			goto fail;
		if (*p == '\0')
			return 0;
		if (*p++ != '.' || *p == '\0') {
			*error_r = "Invalid section";
			goto fail;
		}
	}
	if (*p == '\0')
		return 0;
	if (section_text(p, sec, error_r) == 0)
		return 0;
fail:
	mime_section_free(sec);
	return -1;
}

void mime_section_free(struct mime_section *sec)
{
	for (unsigned int i = 0; i < sec->field_count; i++)
		free(sec->fields[i]);
	xfree(sec->fields);
	sec->field_count = 0;
}

/* The empty text/plain that BODYSTRUCTURE shows for a multipart without
 * parts: its part 1 is empty, as in Dovecot. */
static const struct mime_part section_empty_part;

/* Follows the part numbers: a message/rfc822 part is entered before its
 * number is applied; part 1 of a non-multipart is the part itself. */
static const struct mime_part *section_find(const struct mime_part *root,
					    const struct mime_section *sec)
{
	const struct mime_part *part = root;
	for (unsigned int i = 0; i < sec->path_len; i++) {
		if (i > 0 && (part->flags & MIME_PART_MESSAGE) != 0)
			part = part->children;
		if ((part->flags & MIME_PART_MULTIPART) == 0) {
			if (sec->path[i] != 1)
				return NULL;
			continue;
		}
		if (part->children == NULL)
			return i + 1 == sec->path_len && sec->path[i] == 1 ? &section_empty_part
									    : NULL;
		const struct mime_part *child = part->children;
		for (unsigned int n = 1; child != NULL && n < sec->path[i]; n++)
			child = child->next;
		if (child == NULL)
			return NULL;
		part = child;
	}
	return part;
}

static void section_range(struct mime_section_range *r, const struct mime_part *part, bool header)
{
	r->part = part;
	r->offset = header ? part->header_offset : part->body_offset;
	r->size = header ? part->header_size : part->body_size;
	r->vsize = header ? part->header_vsize : part->body_vsize;
}

int mime_section_resolve(const struct mime_part *root, const struct mime_section *sec,
			 struct mime_section_range *r, const char **error_r)
{
	memset(r, 0, sizeof(*r));
	const struct mime_part *part = section_find(root, sec);
	if (part == NULL) {
		*error_r = "No such part";
		return -1;
	}
	if (sec->kind == MIME_SECTION_ALL) {
		if (sec->path_len > 0) {
			section_range(r, part, false);
			return 0;
		}
		r->part = root;
		r->size = root->header_size + root->body_size;
		r->vsize = root->header_vsize + root->body_vsize;
		return 0;
	}
	if (sec->kind == MIME_SECTION_MIME) {
		section_range(r, part, true);
		return 0;
	}
	/* HEADER, HEADER.FIELDS, TEXT: of the message, or of a message part */
	if (sec->path_len > 0) {
		if ((part->flags & MIME_PART_MESSAGE) == 0 || part->children == NULL) {
			*error_r = "Part is not a message";
			return -1;
		}
		part = part->children;
	}
	section_range(r, part, sec->kind != MIME_SECTION_TEXT);
	r->filter = sec->kind == MIME_SECTION_HEADER_FIELDS ||
		    sec->kind == MIME_SECTION_HEADER_FIELDS_NOT;
	return 0;
}

static bool filter_matches(const char *name, size_t len, char *const *fields, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strlen(fields[i]) == len && strncasecmp(fields[i], name, len) == 0)
			return true;
	}
	return false;
}

int mime_header_filter(const char *header, size_t len, char *const *fields, unsigned int count,
		       bool not, struct buf *out)
{
	struct mime_header_iter iter = {header, header + len};
	const char *n, *v;
	size_t nlen, vlen;
	const char *nl = memchr(header, '\n', len);
	bool crlf = nl == NULL || (nl > header && nl[-1] == '\r');
	while (mime_header_next(&iter, &n, &nlen, &v, &vlen)) {
		if (filter_matches(n, nlen, fields, count) == not)
			continue;
		const char *end = v + vlen;
		if (buf_append(out, n, (size_t)(end - n)) < 0)
			return -1;
		if (end == header + len && end[-1] != '\n' &&
		    buf_append_str(out, crlf ? "\r\n" : "\n") < 0)
			return -1;
	}
	return buf_append_str(out, crlf ? "\r\n" : "\n");
}
