/* Writes the cleaned message: every byte outside the infected parts is
 * copied from the original, each infected leaf part (its header and body)
 * becomes a text/plain notice, and the top-level Subject gets a prefix. The
 * original message is read with pread in chunks, never whole. */
#include "deliver/deliver-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/fdio.h"
#include "lib/xmalloc.h"
#include "mime/mime.h"

#define STRIP_CHUNK 65536
#define STRIP_MAX_NAME 200

/* One replaced byte range of the original and its new bytes. */
struct strip_edit {
	uint64_t start, end;
	struct buf text;
};

static const char *const strip_content_fields[] = {
	"Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-MD5", NULL,
};

static int strip_pread(int fd, void *data, size_t len, uint64_t offset)
{
	char *p = data;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

/* Copies [from, to) of in_fd to out_fd; to = UINT64_MAX copies to the end. */
static int strip_copy(int in_fd, uint64_t from, uint64_t to, int out_fd)
{
	char chunk[STRIP_CHUNK];
	while (from < to) {
		size_t want = to - from < sizeof(chunk) ? (size_t)(to - from) : sizeof(chunk);
		ssize_t n = pread(in_fd, chunk, want, (off_t)from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return to == UINT64_MAX ? 0 : -1;
		if (fd_write_all(out_fd, chunk, (size_t)n) < 0)
			return -1;
		from += (uint64_t)n;
	}
	return 0;
}

/* Length of the field at p, continuation lines included. */
static size_t strip_field_len(const char *p, size_t len)
{
	size_t i = 0;
	for (;;) {
		const char *nl = memchr(p + i, '\n', len - i);
		if (nl == NULL)
			return len;
		i = (size_t)(nl - p) + 1;
		if (i >= len || (p[i] != ' ' && p[i] != '\t'))
			return i;
	}
}

static bool strip_is_blank(const char *p, size_t len)
{
	return p[0] == '\n' || (len >= 2 && p[0] == '\r' && p[1] == '\n');
}

static bool strip_field_is(const char *f, size_t flen, const char *name)
{
	size_t n = strlen(name);
	if (flen <= n || strncasecmp(f, name, n) != 0)
		return false;
	while (n < flen && (f[n] == ' ' || f[n] == '\t'))
		n++;
	return n < flen && f[n] == ':';
}

static bool strip_is_content_field(const char *f, size_t flen)
{
	for (size_t i = 0; strip_content_fields[i] != NULL; i++)
		if (strip_field_is(f, flen, strip_content_fields[i]))
			return true;
	return false;
}

/* The prefix goes before the first word of the value (an encoded word
 * stays whole; the prefix ends with a space, as RFC 2047 5 wants). */
static void strip_subject(const char *f, size_t flen, struct buf *out)
{
	const char *colon = memchr(f, ':', flen);
	size_t start = (size_t)(colon - f) + 1, i = start;
	while (i < flen && (f[i] == ' ' || f[i] == '\t'))
		i++;
	buf_append(out, f, i);
	if (i == start)
		buf_append_char(out, ' ');
	bool empty = i >= flen || f[i] == '\r' || f[i] == '\n';
	buf_append_str(out, empty ? "[WARNING: VIRUS REMOVED]" : DELIVER_VIRUS_SUBJECT_PREFIX);
	buf_append(out, f + i, flen - i);
}

struct strip_header {
	bool root;          /* the message's own header: Subject prefixed */
	const char *fields; /* new content fields (replacing the old), or NULL */
	const char *eol;
};

/* Copies a header block, changed as h says, blank line included. */
static void strip_rewrite_header(const char *hdr, size_t len, const struct strip_header *h,
                                 struct buf *out)
{
	size_t pos = 0;
	bool subject = false, mime_version = false;
	while (pos < len && !strip_is_blank(hdr + pos, len - pos)) {
		const char *f = hdr + pos;
		size_t flen = strip_field_len(f, len - pos);
		if (h->root && !subject && strip_field_is(f, flen, "Subject")) {
			strip_subject(f, flen, out);
			subject = true;
		} else if (h->fields == NULL || !strip_is_content_field(f, flen)) {
			buf_append(out, f, flen);
		}
		mime_version |= strip_field_is(f, flen, "MIME-Version");
		pos += flen;
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_append_str(out, h->eol);
	if (h->root && !subject)
		buf_printf(out, "Subject: [WARNING: VIRUS REMOVED]%s", h->eol);
	if (h->root && h->fields != NULL && !mime_version)
		buf_printf(out, "MIME-Version: 1.0%s", h->eol);
	if (h->fields != NULL)
		buf_append_str(out, h->fields);
	if (pos < len)
		buf_append(out, hdr + pos, len - pos);
	else
		buf_append_str(out, h->eol);
}

/* Control bytes become '?', and a long value is cut (not inside a UTF-8
 * sequence): the notice is for people. */
static char *strip_clean_text(const char *s)
{
	size_t len = strlen(s);
	if (len > STRIP_MAX_NAME) {
		len = STRIP_MAX_NAME;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	char *copy = xstrndup(s, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)copy[i] < 0x20 || copy[i] == 0x7f)
			copy[i] = '?';
	return copy;
}

static char *strip_file_name(const struct mime_part *part)
{
	char *name = mime_param_get_utf8(part->disp_params, part->disp_param_count, "filename");
	if (name == NULL)
		name = mime_param_get_utf8(part->params, part->param_count, "name");
	char *clean = strip_clean_text(name != NULL ? name : "(none)");
	free(name);
	return clean;
}

static bool strip_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* The notice's text, and its content fields (7bit, or base64 when the
 * file name is not ASCII, so the message stays 7-bit clean). */
static void strip_notice(const struct deliver_virus_hit *hit, const char *eol,
                         struct buf *fields, struct buf *body)
{
	const struct mime_part *part = hit->part;
	char *name = strip_file_name(part);
	char *virus = strip_clean_text(hit->virus);
	char *type = strip_clean_text(part->type != NULL ? part->type : "text");
	char *subtype = strip_clean_text(part->subtype != NULL ? part->subtype : "plain");
	struct buf text = BUF_INIT(0);
	buf_printf(&text,
	           "This part of the message contained a virus and was removed by the mail server.\n\n"
	           "File name: %s\nContent type: %s/%s\nVirus: %s\n",
	           name, type, subtype, virus);
	free(name);
	free(virus);
	free(type);
	free(subtype);
	bool ascii = strip_is_ascii(text.data, text.len);
	buf_printf(fields, "Content-Type: text/plain; charset=utf-8%sContent-Transfer-Encoding: %s%s"
	           "Content-Disposition: inline%s", eol, ascii ? "7bit" : "base64", eol, eol);
	if (ascii) {
		for (size_t i = 0; i < text.len; i++) {
			if (text.data[i] == '\n')
				buf_append_str(body, eol);
			else
				buf_append_char(body, text.data[i]);
		}
	} else {
		struct buf b64 = BUF_INIT(0);
		base64_encode(text.data, text.len, &b64);
		for (size_t i = 0; i < b64.len; i += 76) {
			buf_append(body, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
			buf_append_str(body, eol);
		}
		buf_free(&b64);
	}
	buf_free(&text);
}

/* Reads a part's header block. */
static char *strip_read_header(int fd, const struct mime_part *part)
{
	char *hdr = xmalloc(part->header_size + 1);
	if (strip_pread(fd, hdr, part->header_size, part->header_offset) < 0) {
		free(hdr);
		return NULL;
	}
	hdr[part->header_size] = '\0';
	return hdr;
}

/* The edit for a part's header (fields NULL) or for a whole infected part. */
static int strip_make_edit(int fd, const struct mime_part *root, const struct mime_part *part,
                           const struct deliver_virus_hit *hit, const char *eol,
                           struct strip_edit *edit)
{
	char *hdr = strip_read_header(fd, part);
	if (hdr == NULL)
		return -1;
	struct buf fields = BUF_INIT(0), body = BUF_INIT(0);
	if (hit != NULL)
		strip_notice(hit, eol, &fields, &body);
	struct strip_header h = {.root = part == root, .fields = hit != NULL ? fields.data : NULL,
	                         .eol = eol};
	buf_init(&edit->text, 0);
	strip_rewrite_header(hdr, part->header_size, &h, &edit->text);
	buf_append(&edit->text, body.data, body.len);
	edit->start = part->header_offset;
	edit->end = hit != NULL ? part->body_offset + part->body_size
	                        : part->header_offset + part->header_size;
	free(hdr);
	buf_free(&fields);
	buf_free(&body);
	return 0;
}

static int strip_edit_cmp(const void *a, const void *b)
{
	const struct strip_edit *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The root header decides the line ends of what is added. */
static const char *strip_eol(int fd, const struct mime_part *root)
{
	char head[STRIP_CHUNK];
	size_t len = root->header_size < sizeof(head) ? (size_t)root->header_size : sizeof(head);
	if (len == 0 || strip_pread(fd, head, len, 0) < 0)
		return "\r\n";
	const char *nl = memchr(head, '\n', len);
	return nl != NULL && nl > head && nl[-1] != '\r' ? "\n" : "\r\n";
}

static int strip_write_edits(int in_fd, const struct strip_edit *edits, size_t count,
                             int out_fd)
{
	uint64_t pos = 0;
	for (size_t i = 0; i < count; i++) {
		if (edits[i].start < pos)
			return -1;
		if (strip_copy(in_fd, pos, edits[i].start, out_fd) < 0 ||
		    fd_write_all(out_fd, edits[i].text.data, edits[i].text.len) < 0)
			return -1;
		pos = edits[i].end;
	}
	return strip_copy(in_fd, pos, UINT64_MAX, out_fd);
}

int deliver_strip_write(int in_fd, const struct mime_part *root,
                        const struct deliver_virus_hit *hits, size_t count, int out_fd,
                        const char **error_r)
{
	const char *eol = strip_eol(in_fd, root);
	struct strip_edit *edits = xcalloc(count + 1, sizeof(*edits));
	size_t n = 0;
	bool root_hit = false;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++) {
		root_hit |= hits[i].part == root;
		ret = strip_make_edit(in_fd, root, hits[i].part, &hits[i], eol, &edits[n]);
		n += ret == 0;
	}
	if (ret == 0 && !root_hit) {
		ret = strip_make_edit(in_fd, root, root, NULL, eol, &edits[n]);
		n += ret == 0;
	}
	qsort(edits, n, sizeof(*edits), strip_edit_cmp);
	if (ret == 0)
		ret = strip_write_edits(in_fd, edits, n, out_fd);
	for (size_t i = 0; i < n; i++)
		buf_free(&edits[i].text);
	free(edits);
	if (ret < 0)
		*error_r = "writing the cleaned message failed";
	return ret;
}
