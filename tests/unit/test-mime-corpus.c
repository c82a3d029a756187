/* Every message of ../shared/corpus (mbox files split on "From " lines):
 * parses, gives syntactically valid BODY / BODYSTRUCTURE / ENVELOPE,
 * round-trips through serialization, yields valid UTF-8 text, and (on a
 * sample) gives the same tree fed one byte at a time. Skipped with a
 * message when the corpus is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mime/mime.h"
#include "corpus.h"
#include "test.h"

#define BYTEWISE_EVERY 2
#define BYTEWISE_MAX_SIZE (256 * 1024)

static unsigned int messages, bytewise_checked;

/* ---- a tiny IMAP syntax checker: one parenthesised list of NIL, numbers,
 * quoted strings and literals, separated by single spaces ---- */

static bool syn_string(const char **p, const char *end)
{
	const char *s = *p;
	if (*s == '"') {
		for (s++; s < end && *s != '"'; s++) {
			unsigned char c = (unsigned char)*s;
			if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
				return false;
			if (c == '\\' && (s + 1 >= end || (s[1] != '"' && s[1] != '\\')))
				return false;
			if (c == '\\')
				s++;
		}
		if (s >= end)
			return false;
		*p = s + 1;
		return true;
	}
	/* {n}\r\n then n bytes */
	char *num_end;
	unsigned long n = strtoul(s + 1, &num_end, 10);
	if (num_end == s + 1 || end - num_end < 3 || memcmp(num_end, "}\r\n", 3) != 0 ||
	    n > (unsigned long)(end - num_end - 3))
		return false;
	*p = num_end + 3 + n;
	return true;
}

static bool syn_atom(const char **p, const char *end)
{
	const char *s = *p;
	if (end - s >= 3 && memcmp(s, "NIL", 3) == 0) {
		*p = s + 3;
		return true;
	}
	while (s < end && *s >= '0' && *s <= '9')
		s++;
	if (s == *p)
		return false;
	*p = s;
	return true;
}

static bool imap_syntax_ok(const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	int depth = 0;
	bool need_sep = false;
	if (len == 0 || *s != '(')
		return false;
	while (p < end) {
		if (*p == ')') {
			if (--depth < 0)
				return false;
			p++;
			need_sep = true;
			if (depth == 0)
				break;
			continue;
		}
		if (need_sep && *p == ' ') {
			p++;
			need_sep = false;
			continue;
		}
		if (*p == '(') {
			depth++;
			p++;
			need_sep = false;
			continue;
		}
		if (*p == '"' || *p == '{') {
			if (!syn_string(&p, end))
				return false;
		} else if (!syn_atom(&p, end)) {
			return false;
		}
		need_sep = true;
	}
	return depth == 0 && p == end;
}

/* ---- per message ---- */

static void text_cb(void *context, const struct mime_part *part, bool header, const char *text,
		    size_t len, bool part_end)
{
	bool *ok = context;
	if (!mime_utf8_is_valid(text, len))
		*ok = false;
}

static bool same_tree(const struct mime_part *a, const struct mime_part *b)
{
	struct buf x = BUF_INIT(0), y = BUF_INIT(0);
	mime_part_serialize(a, &x);
	mime_part_serialize(b, &y);
	bool same = x.len == y.len && memcmp(buf_str(&x), buf_str(&y), x.len) == 0;
	buf_free(&x);
	buf_free(&y);
	return same;
}

static void check_output(const char *name, const struct mime_part *root)
{
	struct buf out = BUF_INIT(0);
	for (int ext = 0; ext < 2; ext++) {
		buf_reset(&out);
		CHECK_INT(mime_write_bodystructure(&out, root, ext != 0), 0);
		if (!imap_syntax_ok(buf_str(&out), out.len)) {
			fprintf(stderr, "%s: bad BODYSTRUCTURE: %.300s\n", name, buf_str(&out));
			CHECK(false);
		}
	}
	buf_reset(&out);
	CHECK_INT(mime_write_envelope(&out, root->envelope), 0);
	if (!imap_syntax_ok(buf_str(&out), out.len)) {
		fprintf(stderr, "%s: bad ENVELOPE: %.300s\n", name, buf_str(&out));
		CHECK(false);
	}
	buf_free(&out);
}

static void check_serialize(const char *name, const struct mime_part *root)
{
	struct buf ser = BUF_INIT(0);
	CHECK_INT(mime_part_serialize(root, &ser), 0);
	const char *error = NULL;
	struct mime_part *copy = mime_part_deserialize(ser.data, ser.len, &error);
	if (copy == NULL || !same_tree(root, copy)) {
		fprintf(stderr, "%s: serialization round trip failed: %s\n", name,
			error != NULL ? error : "different tree");
		CHECK(false);
	}
	if (copy != NULL && (root->cached_header == NULL) != (copy->cached_header == NULL)) {
		fprintf(stderr, "%s: cached header lost in the round trip\n", name);
		CHECK(false);
	} else if (copy != NULL && root->cached_header != NULL &&
	           (copy->cached_header_len != root->cached_header_len ||
	            memcmp(copy->cached_header, root->cached_header, root->cached_header_len) != 0)) {
		fprintf(stderr, "%s: cached header differs after the round trip\n", name);
		CHECK(false);
	}
	mime_part_free(&copy);
	buf_free(&ser);
}

/* Line ends aside (FETCH sends CRLF either way), filtering the cached
 * lines must give what filtering the whole header gives. */
static void normalize_crlf(struct buf *b)
{
	size_t w = 0;
	for (size_t r = 0; r < b->len; r++) {
		if (b->data[r] == '\r' && r + 1 < b->len && b->data[r + 1] == '\n')
			continue;
		b->data[w++] = b->data[r];
	}
	b->len = w;
}

static void check_cached_header(const char *name, struct mime_part *root, const char *data)
{
	static char *const lists[][6] = {
	        {"From", "To", "Cc", "Subject", "Date", "Message-ID"},
	        {"subject", NULL},
	        {"REFERENCES", "In-Reply-To", "Content-Type", "X-Priority", "List-Id", "Bcc"},
	};
	static const unsigned int counts[] = {6, 1, 6};
	mime_part_cache_header(root, data, root->header_size);
	if (root->cached_header == NULL)
		return;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		CHECK(mime_fields_cached(lists[i], counts[i]));
		struct buf full = BUF_INIT(0), cached = BUF_INIT(0);
		mime_header_filter(data, root->header_size, lists[i], counts[i], false, &full);
		mime_header_filter(root->cached_header, root->cached_header_len, lists[i],
		                   counts[i], false, &cached);
		normalize_crlf(&full);
		normalize_crlf(&cached);
		if (full.len != cached.len || memcmp(full.data, cached.data, full.len) != 0) {
			fprintf(stderr, "%s: HEADER.FIELDS from the cached lines differs (list %zu)\n",
			        name, i);
			CHECK(false);
		}
		buf_free(&full);
		buf_free(&cached);
	}
}

static void check_text(const char *name, const struct mime_part *root, const char *data,
		       size_t len)
{
	bool ok = true;
	struct mime_text *t = mime_text_create(root, text_cb, &ok);
	for (size_t off = 0; off < len; off += 4093)
		mime_text_feed(t, data + off, len - off < 4093 ? len - off : 4093);
	mime_text_finish(&t);
	if (!ok) {
		fprintf(stderr, "%s: text is not valid UTF-8\n", name);
		CHECK(false);
	}
}

static void check_bytewise(const char *name, const struct mime_part *root, const char *data,
			   size_t len)
{
	struct mime_parser *p = mime_parser_create(NULL);
	for (size_t i = 0; i < len; i++)
		mime_parser_feed(p, data + i, 1);
	struct mime_part *bytewise = mime_parser_finish(&p);
	if (root->cached_header != NULL)
		mime_part_cache_header(bytewise, data, bytewise->header_size);
	if (!same_tree(root, bytewise)) {
		fprintf(stderr, "%s: byte-at-a-time parse differs\n", name);
		CHECK(false);
	}
	mime_part_free(&bytewise);
	bytewise_checked++;
}

static void check_message(const char *name, const char *data, size_t len)
{
	struct mime_part *root = mime_parse(data, len, NULL);
	CHECK(root != NULL && root->header_size + root->body_size == len);
	check_output(name, root);
	check_cached_header(name, root, data);
	check_serialize(name, root);
	check_text(name, root, data, len);
	if (messages++ % BYTEWISE_EVERY == 0 && len <= BYTEWISE_MAX_SIZE)
		check_bytewise(name, root, data, len);
	mime_part_free(&root);
}

static void corpus_message(void *context, const char *name, const char *data, size_t len)
{
	(void)context;
	check_message(name, data, len);
}

static void test_syntax_checker(void)
{
	const char ok[] = "(NIL \"a\\\"b\" {3}\r\nx)y 12 (NIL))";
	CHECK(imap_syntax_ok(ok, strlen(ok)));
	CHECK(!imap_syntax_ok("(NIL", 4));
	CHECK(!imap_syntax_ok("(NIL))", 6));
	CHECK(!imap_syntax_ok("(\"a\\b\")", 7));
	CHECK(!imap_syntax_ok("({5}\r\nab)", 9));
	CHECK(!imap_syntax_ok("(NIL  NIL)", 10));
}

int main(void)
{
	test_syntax_checker();
	struct corpus_count count;
	if (corpus_each_message(corpus_message, NULL, &count) < 0)
		return test_report();
	printf("corpus: %u files, %u messages, %u checked byte by byte\n", count.files, messages,
	       bytewise_checked);
	CHECK_INT(count.unreadable, 0);
	CHECK(count.files > 0);
	return test_report();
}
