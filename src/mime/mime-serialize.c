/* The part tree in a compact binary form for the index cache:
 *   "YMT" version(2) cached-header part
 *   part = varint flags, varint children, 8 varint sizes/offsets,
 *          9 strings, params, disposition params, envelope flag [10 strings],
 *          children parts
 *   string = varint (length + 1), 0 for NULL; no NUL bytes inside
 *   cached-header = varint (length + 1), 0 for none, then the bytes (any)
 * Version 1 (no cached header) is still read.
 * The reader trusts nothing (the index is a file on disk): every number,
 * length, range and count is checked, and the tree must be one the parser
 * could have produced. */
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define SERIAL_MAGIC "YMT"
#define SERIAL_VERSION 2
#define SERIAL_VERSION_NO_HEADER 1
#define SERIAL_MAX_CACHED_HEADER (64 * 1024)
#define SERIAL_MAX_DEPTH 256
#define SERIAL_MAX_PARTS 100000
#define SERIAL_KNOWN_FLAGS (MIME_PART_MULTIPART | MIME_PART_MESSAGE | MIME_PART_HEADER_TRUNCATED)
#define SERIAL_MAX_NUMBER ((uint64_t)1 << 62)

static int ser_varint(struct buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	return buf_append(out, b, n);
}

static int ser_string(struct buf *out, const char *s)
{
	if (s == NULL)
		return ser_varint(out, 0);
	size_t len = strlen(s);
	if (ser_varint(out, (uint64_t)len + 1) < 0)
		return -1;
	return buf_append(out, s, len);
}

static int ser_params(struct buf *out, const struct mime_param *params, unsigned int count)
{
	int ret = ser_varint(out, count);
	for (unsigned int i = 0; i < count; i++) {
		ret |= ser_string(out, params[i].name);
		ret |= ser_string(out, params[i].value);
	}
	return ret;
}

static unsigned int ser_child_count(const struct mime_part *part)
{
	unsigned int n = 0;
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		n++;
	return n;
}

static int ser_part(struct buf *out, const struct mime_part *part, unsigned int depth)
{
	if (depth > SERIAL_MAX_DEPTH)
		return -1;
	const uint64_t nums[] = {part->header_offset, part->header_size, part->header_vsize,
				 part->header_lines,  part->body_offset, part->body_size,
				 part->body_vsize,    part->body_lines};
	const char *const strs[] = {part->type,     part->subtype,  part->encoding,
				    part->id,       part->description, part->md5,
				    part->location, part->language, part->disposition};
	int ret = ser_varint(out, part->flags);
	ret |= ser_varint(out, ser_child_count(part));
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		ret |= ser_varint(out, nums[i]);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		ret |= ser_string(out, strs[i]);
	ret |= ser_params(out, part->params, part->param_count);
	ret |= ser_params(out, part->disp_params, part->disp_param_count);
	ret |= ser_varint(out, part->envelope != NULL);
	for (unsigned int i = 0; part->envelope != NULL && i < MIME_ENV_COUNT; i++)
		ret |= ser_string(out, part->envelope->fields[i]);
	for (const struct mime_part *c = part->children; c != NULL && ret == 0; c = c->next)
		ret |= ser_part(out, c, depth + 1);
	return ret < 0 ? -1 : 0;
}

int mime_part_serialize(const struct mime_part *root, struct buf *out)
{
	size_t start = out->len;
	int ret = buf_append(out, SERIAL_MAGIC, 3);
	ret |= buf_append_char(out, SERIAL_VERSION);
	/* first, so that mime_blob_cached_header finds it without the tree */
	if (root->cached_header == NULL) {
		ret |= ser_varint(out, 0);
	} else {
		ret |= ser_varint(out, (uint64_t)root->cached_header_len + 1);
		ret |= buf_append(out, root->cached_header, root->cached_header_len);
	}
	ret |= ser_part(out, root, 0);
	if (ret < 0) {
		out->len = start; /* nothing half-written */
		if (out->data != NULL)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

/* ---- reading ---- */

struct deser {
	const unsigned char *p, *end;
	unsigned int parts;
	const char *error;
};

static bool de_fail(struct deser *d, const char *error)
{
	if (d->error == NULL)
		d->error = error;
	return false;
}

static bool de_varint(struct deser *d, uint64_t *v_r)
{
	uint64_t v = 0;
	for (unsigned int shift = 0; shift < 63; shift += 7) {
		if (d->p >= d->end)
			return de_fail(d, "truncated number");
		unsigned char b = *d->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v_r = v;
			return v <= SERIAL_MAX_NUMBER || de_fail(d, "number out of range");
		}
	}
	return de_fail(d, "number too long");
}

static bool de_string(struct deser *d, char **s_r)
{
	uint64_t len;
	*s_r = NULL;
	if (!de_varint(d, &len))
		return false;
	if (len == 0)
		return true;
	len--;
	if (len > (uint64_t)(d->end - d->p) || len > MIME_MAX_VALUE * 2)
		return de_fail(d, "bad string length");
	if (memchr(d->p, '\0', len) != NULL)
		return de_fail(d, "NUL in string");
	*s_r = xstrndup((const char *)d->p, len);
	d->p += len;
	return true;
}

static bool de_params(struct deser *d, struct mime_param **params_r, unsigned int *count_r)
{
	uint64_t count;
	if (!de_varint(d, &count))
		return false;
	if (count > MIME_MAX_PARAMS)
		return de_fail(d, "too many parameters");
	if (count == 0)
		return true;
	*params_r = xcalloc(count, sizeof(**params_r));
	*count_r = (unsigned int)count;
	for (uint64_t i = 0; i < count; i++) {
		if (!de_string(d, &(*params_r)[i].name) || !de_string(d, &(*params_r)[i].value))
			return false;
		if ((*params_r)[i].name == NULL || (*params_r)[i].value == NULL)
			return de_fail(d, "NULL parameter");
	}
	return true;
}

static bool de_envelope(struct deser *d, struct mime_part *part)
{
	uint64_t has;
	if (!de_varint(d, &has) || has > 1)
		return de_fail(d, "bad envelope flag");
	if (has == 0)
		return true;
	part->envelope = xcalloc(1, sizeof(*part->envelope));
	for (unsigned int i = 0; i < MIME_ENV_COUNT; i++) {
		if (!de_string(d, &part->envelope->fields[i]))
			return false;
	}
	return true;
}

static bool de_fields(struct deser *d, struct mime_part *part)
{
	uint64_t *nums[] = {&part->header_offset, &part->header_size, &part->header_vsize,
			    &part->header_lines,  &part->body_offset, &part->body_size,
			    &part->body_vsize,    &part->body_lines};
	char **strs[] = {&part->type,     &part->subtype,     &part->encoding,
			 &part->id,       &part->description, &part->md5,
			 &part->location, &part->language,    &part->disposition};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (!de_varint(d, nums[i]))
			return false;
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!de_string(d, strs[i]))
			return false;
	}
	return de_params(d, &part->params, &part->param_count) &&
	       de_params(d, &part->disp_params, &part->disp_param_count) && de_envelope(d, part);
}

/* Sizes that the parser could have produced: ranges adjoin, a bare LF
 * count no larger than the line count, no more lines than bytes. */
static bool de_check_sizes(struct deser *d, const struct mime_part *part)
{
	if (part->header_offset + part->header_size != part->body_offset)
		return de_fail(d, "header and body do not adjoin");
	if (part->header_vsize < part->header_size || part->body_vsize < part->body_size ||
	    part->header_vsize - part->header_size > part->header_lines ||
	    part->body_vsize - part->body_size > part->body_lines ||
	    part->header_lines > part->header_size || part->body_lines > part->body_size)
		return de_fail(d, "inconsistent sizes");
	return true;
}

/* A child lies inside its parent's body, after its previous sibling. */
static bool de_check_child(struct deser *d, const struct mime_part *parent,
			   const struct mime_part *prev, const struct mime_part *child)
{
	uint64_t end = parent->body_offset + parent->body_size;
	uint64_t start = prev != NULL ? prev->body_offset + prev->body_size : parent->body_offset;
	if (child->header_offset < start || child->body_offset + child->body_size > end)
		return de_fail(d, "child outside its parent");
	return true;
}

static bool de_check_kind(struct deser *d, const struct mime_part *part, uint64_t children)
{
	if ((part->flags & ~(unsigned int)SERIAL_KNOWN_FLAGS) != 0)
		return de_fail(d, "unknown flags");
	if ((part->flags & MIME_PART_MULTIPART) != 0 && (part->flags & MIME_PART_MESSAGE) != 0)
		return de_fail(d, "multipart and message");
	if ((part->flags & MIME_PART_MESSAGE) != 0 && children != 1)
		return de_fail(d, "message part without one child");
	if ((part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE)) == 0 && children != 0)
		return de_fail(d, "leaf with children");
	bool want_env = part->parent == NULL || (part->parent->flags & MIME_PART_MESSAGE) != 0;
	if (want_env != (part->envelope != NULL))
		return de_fail(d, "envelope in the wrong place");
	return true;
}

static struct mime_part *de_part(struct deser *d, struct mime_part *parent, unsigned int depth)
{
	if (depth > SERIAL_MAX_DEPTH || ++d->parts > SERIAL_MAX_PARTS) {
		de_fail(d, "tree too large");
		return NULL;
	}
	uint64_t flags, children;
	if (!de_varint(d, &flags) || !de_varint(d, &children))
		return NULL;
	if (children > SERIAL_MAX_PARTS || flags > SERIAL_KNOWN_FLAGS) {
		de_fail(d, "bad part header");
		return NULL;
	}
	struct mime_part *part = mime_part_new(parent);
	part->flags = (unsigned int)flags;
	if (!de_fields(d, part) || !de_check_sizes(d, part) || !de_check_kind(d, part, children))
		return NULL;
	const struct mime_part *prev = NULL;
	for (uint64_t i = 0; i < children; i++) {
		struct mime_part *child = de_part(d, part, depth + 1);
		if (child == NULL || !de_check_child(d, part, prev, child))
			return NULL;
		prev = child;
	}
	return part;
}

/* The header bytes before the tree (version 2): where they are. */
static bool de_cached_header(struct deser *d, const unsigned char **data_r, size_t *len_r)
{
	uint64_t len;
	*data_r = NULL;
	*len_r = 0;
	if (!de_varint(d, &len))
		return false;
	if (len == 0)
		return true;
	len--;
	if (len > (uint64_t)(d->end - d->p) || len > SERIAL_MAX_CACHED_HEADER)
		return de_fail(d, "bad cached header length");
	*data_r = d->p;
	*len_r = (size_t)len;
	d->p += len;
	return true;
}

static bool de_start(struct deser *d, size_t len, bool *with_header_r)
{
	if (len < 4 || memcmp(d->p, SERIAL_MAGIC, 3) != 0 ||
	    (d->p[3] != SERIAL_VERSION && d->p[3] != SERIAL_VERSION_NO_HEADER))
		return de_fail(d, "not a serialized part tree of this version");
	*with_header_r = d->p[3] == SERIAL_VERSION;
	d->p += 4;
	return true;
}

int mime_blob_cached_header(const void *data, size_t len, const char **header_r,
                            size_t *header_len_r)
{
	struct deser d = {data, (const unsigned char *)data + len, 0, NULL};
	const unsigned char *header;
	bool with_header;
	if (!de_start(&d, len, &with_header) || !with_header ||
	    !de_cached_header(&d, &header, header_len_r) || header == NULL)
		return -1;
	*header_r = (const char *)header;
	return 0;
}

struct mime_part *mime_part_deserialize(const void *data, size_t len, const char **error_r)
{
	struct deser d = {data, (const unsigned char *)data + len, 0, NULL};
	const unsigned char *header = NULL;
	size_t header_len = 0;
	bool with_header;
	if (!de_start(&d, len, &with_header) ||
	    (with_header && !de_cached_header(&d, &header, &header_len))) {
		*error_r = d.error;
		return NULL;
	}
	/* parts are linked into the tree as they are read, so on failure
	 * freeing the root frees everything */
	struct mime_part *root = mime_part_new(NULL);
	root->flags = MIME_PART_MESSAGE; /* so the real root wants an envelope */
	struct mime_part *tree = de_part(&d, root, 0);
	if (tree != NULL && tree->header_offset != 0)
		de_fail(&d, "root does not start at 0");
	if (tree != NULL && header != NULL && header_len > tree->header_size + 2)
		de_fail(&d, "cached header longer than the header");
	if (tree != NULL && d.error == NULL && d.p != d.end)
		de_fail(&d, "trailing bytes");
	if (tree == NULL || d.error != NULL) {
		*error_r = d.error != NULL ? d.error : "invalid tree";
		mime_part_free(&root);
		return NULL;
	}
	root->children = NULL;
	tree->parent = NULL;
	mime_part_free(&root);
	if (header != NULL) {
		tree->cached_header = xmalloc(header_len + 1);
		memcpy(tree->cached_header, header, header_len);
		tree->cached_header[header_len] = '\0';
		tree->cached_header_len = header_len;
	}
	return tree;
}
