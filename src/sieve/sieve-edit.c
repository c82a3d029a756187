/* editheader (RFC 5293): addheader and deleteheader on the header block
 * the later tests and scripts see (result->edited_header). Received and
 * Auto-Submitted fields are never deleted (RFC 5293 6 and 9: they guard
 * against loops); such a deleteheader does nothing, as in Pigeonhole. */
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"
#include "sieve/sieve-run.h"

#define EDIT_MAX_HEADER (1024 * 1024)
#define EDIT_MAX_VALUE 4096

static const char *const protected_fields[] = {"received", "auto-submitted"};

static bool field_protected(const char *name)
{
	for (size_t i = 0; i < sizeof(protected_fields) / sizeof(protected_fields[0]); i++) {
		if (strcasecmp(name, protected_fields[i]) == 0)
			return true;
	}
	return false;
}

/* RFC 5322 2.2: printable US-ASCII except ':' */
static bool field_name_valid(const char *name)
{
	if (name[0] == '\0' || strlen(name) > 997)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == ':')
			return false;
	}
	return true;
}

static const char *header_eol(const struct sieve_run *run)
{
	size_t len;
	const char *h = sieve_run_header(run, &len);
	const char *nl = memchr(h, '\n', len);

	return nl != NULL && nl > h && nl[-1] == '\r' ? "\r\n" : "\n";
}

static void set_header(struct sieve_run *run, struct buf *b)
{
	free(run->result->edited_header);
	run->result->edited_header_len = b->len;
	run->result->edited_header = buf_steal(b);
}

/* The value as it goes into the header: line breaks become spaces, and a
 * non-ASCII value becomes RFC 2047 encoded-words (RFC 5293 4). */
static void append_value(struct buf *out, const char *value, const char *eol)
{
	bool ascii = true;

	for (const char *p = value; *p != '\0'; p++)
		ascii = ascii && (unsigned char)*p < 0x80;
	if (ascii) {
		for (const char *p = value; *p != '\0'; p++)
			(void)buf_append_char(out, *p == '\r' || *p == '\n' ? ' ' : *p);
		return;
	}
	/* 45 octets -> 60 base64 characters per word; never split a UTF-8
	 * sequence, but always take one octet (a run of stray continuation
	 * octets has no place to cut) */
	size_t len = strlen(value), pos = 0;
	while (pos < len) {
		size_t n = len - pos > 45 ? 45 : len - pos;
		while (pos + n < len && n > 1 && ((unsigned char)value[pos + n] & 0xc0) == 0x80)
			n--;
		if (pos > 0)
			(void)buf_printf(out, "%s ", eol);
		(void)buf_append_str(out, "=?UTF-8?B?");
		(void)base64_encode(value + pos, n, out);
		(void)buf_append_str(out, "?=");
		pos += n;
	}
}

/* Length of the blank line that ends a header block: the whole block when
 * it is only that line, else a line end right after another one; 0 when
 * the block has none. */
static size_t header_blank_line(const char *h, size_t len)
{
	if ((len == 1 && h[0] == '\n') || (len == 2 && h[0] == '\r' && h[1] == '\n'))
		return len;
	if (len >= 3 && h[len - 3] == '\n' && h[len - 2] == '\r' && h[len - 1] == '\n')
		return 2;
	if (len >= 2 && h[len - 2] == '\n' && h[len - 1] == '\n')
		return 1;
	return 0;
}

int sieve_cmd_addheader(struct sieve_run *run, const struct sieve_node *node)
{
	char *name = sieve_arg_string(run, &node->args[0]);
	char *value = sieve_arg_string(run, &node->args[1]);
	const char *eol = header_eol(run);
	size_t len;
	const char *h = sieve_run_header(run, &len);
	struct buf b = BUF_INIT(EDIT_MAX_HEADER);
	int ret = 0;

	if (!field_name_valid(name) || strlen(value) > EDIT_MAX_VALUE) {
		ret = sieve_run_error(run, node->line, "addheader: invalid field name or value");
		goto out;
	}
	/* fields, then the blank line (possibly missing: a message that is all
	 * header, or one cut short); :last inserts between them */
	size_t blank = header_blank_line(h, len);
	size_t fields = len - blank;
	bool open_line = fields > 0 && h[fields - 1] != '\n';
	bool last = sieve_node_tag(node, ":last") != NULL;
	(void)buf_append_str(&b, "");
	if (last) {
		(void)buf_append(&b, h, fields);
		if (open_line)
			(void)buf_append_str(&b, eol);
	}
	(void)buf_printf(&b, "%s: ", name);
	append_value(&b, value, eol);
	(void)buf_append_str(&b, eol);
	if (!last) {
		(void)buf_append(&b, h, fields);
		if (open_line)
			(void)buf_append_str(&b, eol);
	}
	ret = blank > 0 ? buf_append(&b, h + fields, blank) : buf_append_str(&b, eol);
	if (ret < 0)
		ret = sieve_run_error(run, node->line, "addheader: header too large");
	else
		set_header(run, &b);
out:
	buf_free(&b);
	free(name);
	free(value);
	return ret;
}

/* ---- deleteheader ---- */

struct field_span {
	size_t start, end; /* bytes of the header block, line ends included */
	bool drop;
};

static size_t field_end(const char *h, size_t len, size_t pos)
{
	do {
		const char *nl = memchr(h + pos, '\n', len - pos);
		pos = nl != NULL ? (size_t)(nl - h) + 1 : len;
	} while (pos < len && (h[pos] == ' ' || h[pos] == '\t'));
	return pos;
}

/* The fields named name, in order. */
static struct field_span *find_fields(const char *h, size_t len, const char *name, size_t *count_r)
{
	struct field_span *spans = NULL;
	size_t count = 0, pos = 0, nlen = strlen(name);

	while (pos < len && h[pos] != '\r' && h[pos] != '\n') {
		size_t end = field_end(h, len, pos);
		const char *colon = memchr(h + pos, ':', end - pos);

		if (colon != NULL) {
			size_t flen = (size_t)(colon - h) - pos;
			while (flen > 0 && (h[pos + flen - 1] == ' ' || h[pos + flen - 1] == '\t'))
				flen--;
			if (flen == nlen && strncasecmp(h + pos, name, nlen) == 0) {
				if ((count & (count - 1)) == 0) /* room doubles */
					spans = xreallocarray(spans, count == 0 ? 1 : count * 2,
					                      sizeof(*spans));
				spans[count++] = (struct field_span){pos, end, false};
			}
		}
		pos = end;
	}
	*count_r = count;
	return spans;
}

static bool value_matches(struct sieve_matcher *m, const char *h, const struct field_span *f)
{
	const char *colon = memchr(h + f->start, ':', f->end - f->start);
	struct sieve_strlist raw = {NULL, 0};
	bool hit = false;

	if (m->keys.count == 0)
		return true;
	/* reuse the header parser on this one field for the unfolded value */
	char *name = xstrndup(h + f->start, (size_t)(colon - h) - f->start);
	sieve_header_values(h + f->start, f->end - f->start, name, &raw);
	if (raw.count > 0) {
		char *dec = mime_header_decode(raw.items[0], strlen(raw.items[0]));
		for (size_t k = 0; k < m->keys.count && !hit; k++)
			hit = sieve_match_one(m, dec, m->keys.items[k], NULL);
		free(dec);
	}
	sieve_strlist_free(&raw);
	free(name);
	return hit;
}

static void mark_fields(const struct sieve_node *node, struct sieve_matcher *m, const char *h,
                        struct field_span *spans, size_t count)
{
	const struct sieve_tag *index = sieve_node_tag(node, ":index");
	bool last = sieve_node_tag(node, ":last") != NULL;

	for (size_t i = 0; i < count; i++) {
		if (index != NULL && index->value != NULL) {
			uint64_t n = index->value->number;
			size_t want = last ? count - (size_t)n : (size_t)n - 1;
			if (n == 0 || n > count || i != want)
				continue;
		}
		spans[i].drop = value_matches(m, h, &spans[i]);
	}
}

int sieve_cmd_deleteheader(struct sieve_run *run, const struct sieve_node *node)
{
	char *name = sieve_arg_string(run, &node->args[0]);
	struct sieve_matcher m;
	size_t len, count;

	if (!field_name_valid(name)) {
		free(name);
		return sieve_run_error(run, node->line, "deleteheader: invalid field name");
	}
	if (field_protected(name) ||
	    sieve_matcher_init(run, node, node->arg_count > 1 ? &node->args[1] : NULL, &m) < 0) {
		free(name);
		return run->result->error != NULL ? -1 : 0;
	}
	const char *h = sieve_run_header(run, &len);
	struct field_span *spans = find_fields(h, len, name, &count);
	mark_fields(node, &m, h, spans, count);
	/* the time budget ran out while matching: no edit */
	bool expired = run->result->error != NULL;

	struct buf b = BUF_INIT(0);
	size_t pos = 0;
	bool changed = false;
	(void)buf_append_str(&b, "");
	for (size_t i = 0; i < count && !expired; i++) {
		if (!spans[i].drop)
			continue;
		(void)buf_append(&b, h + pos, spans[i].start - pos);
		pos = spans[i].end;
		changed = true;
	}
	(void)buf_append(&b, h + pos, len - pos);
	if (changed)
		set_header(run, &b);
	buf_free(&b);
	free(spans);
	sieve_matcher_free(&m);
	free(name);
	return expired ? -1 : 0;
}
