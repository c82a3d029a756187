/* The streaming structure parser. Input is cut into lines; only the first
 * bytes of a body line are kept (enough to recognise a boundary), and a
 * part's header up to max_header_size, so memory does not depend on the
 * message size. Positions carry running counts of LFs and bare LFs, which
 * give line counts and CRLF sizes of any range in O(1). Boundaries follow
 * Dovecot: a line "--" + boundary + anything matches, the longest active
 * boundary wins (so an inner boundary that is a prefix of an outer one does
 * not steal its lines), and a matching outer boundary closes inner parts. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

/* Bytes of a body line kept: "--" + the longest boundary we accept + "--". */
#define BOUNDARY_MAX_LEN 1000
#define BODY_LINE_KEEP (BOUNDARY_MAX_LEN + 4)

struct parser_pos {
	uint64_t offset, lines, bare;
};

struct parser_open {
	struct mime_part *part;
	struct parser_pos header_start, body_start;
	bool in_header;
	char *boundary; /* active boundary of a multipart, or NULL */
	size_t boundary_len;
};

struct mime_parser {
	struct mime_limits limits;
	struct mime_part *root;
	struct parser_open *stack; /* root .. innermost open part */
	unsigned int depth, stack_cap;
	unsigned int part_count;

	struct parser_pos pos; /* at the start of the current line */
	unsigned int last_eol; /* bytes of the previous line's end: 0, 1, 2 */
	bool last_boundary;    /* the previous line was a boundary line */
	struct buf line;       /* the kept head of the current line */
	uint64_t line_len;     /* the full length of the current line so far */
	bool line_cr;          /* the last byte of the line so far was CR */
	struct buf header;     /* the current part's header */
};

static struct parser_open *parser_top(struct mime_parser *p)
{
	return &p->stack[p->depth - 1];
}

static void parser_push(struct mime_parser *p, struct mime_part *part, struct parser_pos at)
{
	if (p->depth == p->stack_cap) {
		p->stack_cap = p->stack_cap == 0 ? 8 : p->stack_cap * 2;
		p->stack = xreallocarray(p->stack, p->stack_cap, sizeof(*p->stack));
	}
	struct parser_open *o = &p->stack[p->depth++];
	memset(o, 0, sizeof(*o));
	o->part = part;
	o->header_start = at;
	o->in_header = true;
	part->header_offset = at.offset;
	p->part_count++;
	buf_reset(&p->header);
}

struct mime_parser *mime_parser_create(const struct mime_limits *limits)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	p->limits = limits != NULL ? *limits : mime_default_limits;
	if (p->limits.max_depth == 0)
		p->limits.max_depth = 1;
	buf_init(&p->line, 0);
	buf_init(&p->header, 0);
	p->root = mime_part_new(NULL);
	parser_push(p, p->root, p->pos);
	return p;
}

static bool parser_is(const char *s, const char *want)
{
	return s != NULL && strcasecmp(s, want) == 0;
}

/* message/rfc822 is parsed as a message only with an identity encoding
 * (RFC 2046 5.2.1 allows no other). */
static bool parser_is_message(const struct mime_part *part)
{
	if (!parser_is(part->type, "message"))
		return false;
	if (!parser_is(part->subtype, "rfc822") && !parser_is(part->subtype, "global"))
		return false;
	enum mime_cte cte = mime_cte_parse(part->encoding);
	return cte == MIME_CTE_7BIT || cte == MIME_CTE_8BIT || cte == MIME_CTE_BINARY;
}

static bool parser_may_nest(const struct mime_parser *p)
{
	return p->depth < p->limits.max_depth && p->part_count < p->limits.max_parts;
}

/* The header of the innermost part ends at `at`: parse it and decide what
 * its body holds. */
static void parser_end_header(struct mime_parser *p, struct parser_pos at)
{
	struct parser_open *o = parser_top(p);
	struct mime_part *part = o->part;
	o->in_header = false;
	o->body_start = at;
	part->header_size = at.offset - o->header_start.offset;
	part->header_lines = at.lines - o->header_start.lines;
	part->header_vsize = part->header_size + (at.bare - o->header_start.bare);
	part->body_offset = at.offset;
	bool want_env = part->parent == NULL || (part->parent->flags & MIME_PART_MESSAGE) != 0;
	mime_part_parse_header(part, buf_str(&p->header), p->header.len, want_env);
	buf_reset(&p->header);
	if (part->type == NULL && part->parent != NULL && parser_is(part->parent->subtype, "digest") &&
	    (part->parent->flags & MIME_PART_MULTIPART) != 0) {
		/* RFC 2046 5.1.5: the default type in a digest */
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
	}

	const char *boundary = mime_param_get(part->params, part->param_count, "boundary");
	/* a multipart without a usable boundary stays a multipart without
	 * parts, as in Dovecot (its body is then searched as text) */
	if (parser_is(part->type, "multipart")) {
		part->flags |= MIME_PART_MULTIPART;
		if (boundary != NULL && boundary[0] != '\0' && strlen(boundary) <= BOUNDARY_MAX_LEN &&
		    parser_may_nest(p)) {
			o->boundary = xstrdup(boundary);
			o->boundary_len = strlen(boundary);
		}
	} else if (parser_is_message(part) && parser_may_nest(p)) {
		part->flags |= MIME_PART_MESSAGE;
		parser_push(p, mime_part_new(part), at);
	}
}

static void parser_close_top(struct mime_parser *p, struct parser_pos end)
{
	struct parser_open *o = parser_top(p);
	if (o->in_header)
		parser_end_header(p, end);
	o = parser_top(p);
	if (o->in_header) /* a message child pushed just now: empty */
		return;
	struct mime_part *part = o->part;
	part->body_size = end.offset - o->body_start.offset;
	part->body_lines = end.lines - o->body_start.lines;
	part->body_vsize = part->body_size + (end.bare - o->body_start.bare);
	free(o->boundary);
	p->depth--;
}

/* The innermost active boundary matching the line: longest match wins. */
static int parser_find_boundary(struct mime_parser *p, const char *s, size_t len)
{
	if (len < 3 || s[0] != '-' || s[1] != '-')
		return -1;
	int best = -1;
	size_t best_len = 0;
	for (int i = (int)p->depth - 1; i >= 0; i--) {
		const struct parser_open *o = &p->stack[i];
		if (o->boundary == NULL || o->boundary_len > len - 2 || o->boundary_len <= best_len)
			continue;
		if (memcmp(s + 2, o->boundary, o->boundary_len) == 0) {
			best = i;
			best_len = o->boundary_len;
		}
	}
	return best;
}

/* Position just before the line end that precedes the current line (it
 * belongs to the boundary), but never before floor. */
static struct parser_pos parser_pos_before_eol(const struct mime_parser *p, uint64_t floor)
{
	struct parser_pos at = p->pos;
	/* after a boundary line, its line end was the boundary's own */
	if (p->last_eol == 0 || p->last_boundary || at.offset - p->last_eol < floor)
		return at;
	at.offset -= p->last_eol;
	at.lines--;
	if (p->last_eol == 1)
		at.bare--;
	return at;
}

static void parser_boundary(struct mime_parser *p, unsigned int level, const char *s, size_t len,
			    bool has_lf)
{
	struct parser_open *mp = &p->stack[level];
	bool close = len >= mp->boundary_len + 4 && s[mp->boundary_len + 2] == '-' &&
		     s[mp->boundary_len + 3] == '-';
	/* The innermost part decides where all the closed parts end: a part
	 * still in its header keeps the line end before the boundary. */
	struct parser_open *inner = parser_top(p);
	struct parser_pos end = inner->in_header
					? p->pos
					: parser_pos_before_eol(p, inner->body_start.offset);
	while (p->depth > level + 1)
		parser_close_top(p, end);
	if (close) {
		xfree(p->stack[level].boundary);
		return;
	}
	/* a boundary as the last line, without a line end, starts no part */
	if (p->part_count >= p->limits.max_parts || !has_lf)
		return;
	struct parser_pos next = p->pos;
	next.offset += p->line_len;
	next.lines++;
	if (!p->line_cr)
		next.bare++;
	parser_push(p, mime_part_new(p->stack[level].part), next);
}

static void parser_header_line(struct mime_parser *p, const char *s, size_t kept)
{
	struct parser_open *o = parser_top(p);
	size_t content = kept;
	while (content > 0 && (s[content - 1] == '\n' || s[content - 1] == '\r'))
		content--;
	if (content == 0 && p->line_len <= 2) {
		struct parser_pos at = p->pos;
		at.offset += p->line_len;
		if (p->line_len > 0 && s[kept - 1] == '\n') {
			at.lines++;
			at.bare += p->line_cr ? 0 : 1;
		}
		parser_end_header(p, at);
		return;
	}
	if (p->header.len + kept > p->limits.max_header_size) {
		o->part->flags |= MIME_PART_HEADER_TRUNCATED;
		return;
	}
	(void)buf_append(&p->header, s, kept);
}

static void parser_line(struct mime_parser *p, bool has_lf)
{
	const char *s = buf_str(&p->line);
	size_t kept = p->line.len;
	int level = parser_find_boundary(p, s, kept);
	if (level >= 0) {
		parser_boundary(p, (unsigned int)level, s, kept, has_lf);
	} else if (parser_top(p)->in_header) {
		if (p->line_len > p->limits.max_line_length) {
			parser_top(p)->part->flags |= MIME_PART_HEADER_TRUNCATED;
			parser_end_header(p, p->pos);
		} else {
			parser_header_line(p, s, kept);
		}
	}
	p->last_boundary = level >= 0;
	p->pos.offset += p->line_len;
	if (has_lf) {
		p->pos.lines++;
		p->pos.bare += p->line_cr ? 0 : 1;
		p->last_eol = p->line_cr ? 2 : 1;
	} else {
		p->last_eol = 0;
	}
	buf_reset(&p->line);
	p->line_len = 0;
	p->line_cr = false;
}

static size_t parser_keep_limit(struct mime_parser *p)
{
	if (parser_top(p)->in_header)
		return p->limits.max_line_length + 2;
	return BODY_LINE_KEEP;
}

static void parser_add(struct mime_parser *p, const char *data, size_t len)
{
	size_t limit = parser_keep_limit(p);
	if (p->line.len < limit) {
		size_t n = limit - p->line.len < len ? limit - p->line.len : len;
		(void)buf_append(&p->line, data, n);
	}
	p->line_len += len;
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const char *s = data;
	while (len > 0) {
		const char *nl = memchr(s, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - s) : len;
		if (n > 0) {
			parser_add(p, s, n);
			p->line_cr = s[n - 1] == '\r';
		}
		if (nl == NULL)
			return;
		parser_add(p, "\n", 1);
		parser_line(p, true);
		s += n + 1;
		len -= n + 1;
	}
}

struct mime_part *mime_parser_finish(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p->line_len > 0)
		parser_line(p, false);
	while (p->depth > 0)
		parser_close_top(p, p->pos);
	struct mime_part *root = p->root;
	p->root = NULL;
	mime_parser_destroy(pp);
	return root;
}

void mime_parser_destroy(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p == NULL)
		return;
	for (unsigned int i = 0; i < p->depth; i++)
		free(p->stack[i].boundary);
	free(p->stack);
	buf_free(&p->line);
	buf_free(&p->header);
	mime_part_free(&p->root);
	free(p);
	*pp = NULL;
}

struct mime_part *mime_parse(const void *data, size_t len, const struct mime_limits *limits)
{
	struct mime_parser *p = mime_parser_create(limits);
	mime_parser_feed(p, data, len);
	return mime_parser_finish(&p);
}
