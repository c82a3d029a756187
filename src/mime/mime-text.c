/* Text for search: the message is fed again, and the tree says which byte
 * ranges are headers to decode and bodies to decode, convert and strip.
 * Memory stays bounded: a header is kept up to the parser's header limit,
 * a body streams through its decoder and converter chunk by chunk. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

struct text_segment {
	const struct mime_part *part;
	uint64_t offset, size;
	bool header;
};

struct mime_text {
	mime_text_callback *callback;
	void *context;
	struct text_segment *segs;
	unsigned int seg_count, seg_cap, cur;
	uint64_t offset; /* of the next byte fed */
	/* the current segment's state */
	bool started, in_tag;
	struct buf header;
	struct mime_decoder *dec;
	struct mime_charset_conv *conv;
	struct buf decoded, converted, stripped;
};

static void text_add(struct mime_text *t, const struct mime_part *part, bool header)
{
	if (t->seg_count == t->seg_cap) {
		t->seg_cap = t->seg_cap == 0 ? 16 : t->seg_cap * 2;
		t->segs = xreallocarray(t->segs, t->seg_cap, sizeof(*t->segs));
	}
	struct text_segment *s = &t->segs[t->seg_count++];
	s->part = part;
	s->header = header;
	s->offset = header ? part->header_offset : part->body_offset;
	s->size = header ? part->header_size : part->body_size;
}

/* Pre-order, so segments come in increasing offset order. */
static void text_collect(struct mime_text *t, const struct mime_part *root)
{
	const struct mime_part *part = root;
	while (part != NULL) {
		if (part->envelope != NULL)
			text_add(t, part, true);
		bool empty_mp = (part->flags & MIME_PART_MULTIPART) != 0 && part->children == NULL;
		if (mime_part_is_text(part) || empty_mp)
			text_add(t, part, false);
		if (part->children != NULL) {
			part = part->children;
			continue;
		}
		while (part != NULL && part != root && part->next == NULL)
			part = part->parent;
		if (part == NULL || part == root)
			break;
		part = part->next;
	}
}

struct mime_text *mime_text_create(const struct mime_part *root, mime_text_callback *callback,
				   void *context)
{
	struct mime_text *t = xcalloc(1, sizeof(*t));
	t->callback = callback;
	t->context = context;
	buf_init(&t->header, mime_default_limits.max_header_size);
	buf_init(&t->decoded, 0);
	buf_init(&t->converted, 0);
	buf_init(&t->stripped, 0);
	text_collect(t, root);
	return t;
}

static bool text_is_html(const struct mime_part *part)
{
	return part->subtype != NULL && strcasecmp(part->subtype, "html") == 0;
}

static void text_start(struct mime_text *t, const struct text_segment *s)
{
	t->started = true;
	t->in_tag = false;
	if (s->header)
		return;
	const char *charset = mime_param_get(s->part->params, s->part->param_count, "charset");
	t->dec = mime_decoder_create(mime_cte_parse(s->part->encoding));
	t->conv = mime_charset_conv_create(charset);
}

/* Crude: drops everything between '<' and '>'. */
static void text_strip_html(struct mime_text *t, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '<')
			t->in_tag = true;
		else if (s[i] == '>' && t->in_tag)
			t->in_tag = false;
		else if (!t->in_tag)
			(void)buf_append_char(&t->stripped, s[i]);
	}
}

static void text_emit(struct mime_text *t, const struct text_segment *s, bool end)
{
	struct buf *b = &t->converted;
	if (text_is_html(s->part)) {
		text_strip_html(t, b->data != NULL ? b->data : "", b->len);
		b = &t->stripped;
	}
	if (b->len > 0 || end)
		t->callback(t->context, s->part, false, buf_str(b), b->len, end);
	buf_reset(&t->decoded);
	buf_reset(&t->converted);
	buf_reset(&t->stripped);
}

static void text_body(struct mime_text *t, const struct text_segment *s, const char *data,
		      size_t len)
{
	(void)mime_decoder_feed(t->dec, data, len, &t->decoded);
	(void)mime_charset_conv_feed(t->conv, buf_str(&t->decoded), t->decoded.len, &t->converted);
	text_emit(t, s, false);
}

static void text_end(struct mime_text *t, const struct text_segment *s)
{
	if (s->header) {
		struct buf out = BUF_INIT(0);
		(void)mime_header_text(buf_str(&t->header), t->header.len, &out);
		t->callback(t->context, s->part, true, buf_str(&out), out.len, true);
		buf_free(&out);
		buf_reset(&t->header);
	} else {
		(void)mime_decoder_finish(t->dec, &t->decoded);
		(void)mime_charset_conv_feed(t->conv, buf_str(&t->decoded), t->decoded.len,
					     &t->converted);
		(void)mime_charset_conv_finish(t->conv, &t->converted);
		text_emit(t, s, true);
		mime_decoder_destroy(&t->dec);
		mime_charset_conv_destroy(&t->conv);
	}
	t->started = false;
	t->cur++;
}

/* Feeds the bytes of the current segment that lie in [offset, offset+len). */
static void text_segment_bytes(struct mime_text *t, const struct text_segment *s,
			       const char *data, uint64_t offset, size_t len)
{
	uint64_t start = s->offset > offset ? s->offset : offset;
	uint64_t end = offset + len < s->offset + s->size ? offset + len : s->offset + s->size;
	if (!t->started)
		text_start(t, s);
	if (end > start) {
		const char *p = data + (start - offset);
		size_t n = (size_t)(end - start);
		if (s->header) {
			size_t room = t->header.max - t->header.len;
			(void)buf_append(&t->header, p, n < room ? n : room);
		} else {
			text_body(t, s, p, n);
		}
	}
}

void mime_text_feed(struct mime_text *t, const void *data, size_t len)
{
	while (t->cur < t->seg_count) {
		const struct text_segment *s = &t->segs[t->cur];
		if (s->offset >= t->offset + len)
			break;
		text_segment_bytes(t, s, data, t->offset, len);
		if (s->offset + s->size > t->offset + len)
			break;
		text_end(t, s);
	}
	t->offset += len;
}

void mime_text_finish(struct mime_text **tp)
{
	struct mime_text *t = *tp;
	if (t == NULL)
		return;
	/* segments past the end of what was fed (a shorter message) end empty */
	while (t->cur < t->seg_count) {
		const struct text_segment *s = &t->segs[t->cur];
		if (!t->started)
			text_start(t, s);
		text_end(t, s);
	}
	free(t->segs);
	buf_free(&t->header);
	buf_free(&t->decoded);
	buf_free(&t->converted);
	buf_free(&t->stripped);
	free(t);
	*tp = NULL;
}
