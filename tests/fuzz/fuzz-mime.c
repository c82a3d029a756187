/* libFuzzer target for the MIME module. The input is a message (every
 * corpus file is a seed): it is parsed whole and in two chunks (the trees
 * must be equal), written as BODY, BODYSTRUCTURE and ENVELOPE, serialized
 * and read back (equal again), its text extracted and its header fields
 * decoded and parsed as addresses (all text must be valid UTF-8), and its
 * first line tried as a section spec. An input starting with the
 * serialization magic "YMT" goes to the deserializer raw instead, since
 * the index cache on disk is untrusted too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_utf8(const char *s, size_t len)
{
	if (!mime_utf8_is_valid(s, len))
		abort();
}

static struct buf fuzz_serialize(const struct mime_part *root)
{
	struct buf out = BUF_INIT(0);
	if (mime_part_serialize(root, &out) < 0)
		abort();
	return out;
}

static void fuzz_same(const struct mime_part *a, const struct mime_part *b)
{
	struct buf x = fuzz_serialize(a), y = fuzz_serialize(b);
	if (x.len != y.len || memcmp(buf_str(&x), buf_str(&y), x.len) != 0)
		abort();
	buf_free(&x);
	buf_free(&y);
}

static void fuzz_write(const struct mime_part *root)
{
	struct buf out = BUF_INIT(0);
	(void)mime_write_bodystructure(&out, root, true);
	(void)mime_write_bodystructure(&out, root, false);
	(void)mime_write_envelope(&out, root->envelope);
	if (out.len == 0 || out.data[0] != '(')
		abort();
	buf_free(&out);
}

static void fuzz_text_cb(void *context, const struct mime_part *part, bool header,
			 const char *text, size_t len, bool part_end)
{
	fuzz_check_utf8(text, len);
}

static void fuzz_headers(const struct mime_part *root, const char *msg)
{
	const char *hdr = msg + root->header_offset;
	size_t len = (size_t)root->header_size;
	const char *p = hdr, *end = hdr + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *dec = mime_header_decode(p, n);
		fuzz_check_utf8(dec, strlen(dec));
		free(dec);
		struct mime_address *list = mime_address_parse(p, n, 100);
		mime_address_free(&list);
		p += n + 1;
	}
	struct buf text = BUF_INIT(0);
	(void)mime_header_text(hdr, len, &text);
	fuzz_check_utf8(buf_str(&text), text.len);
	buf_free(&text);
	char *name = mime_param_get_utf8(root->params, root->param_count, "name");
	if (name != NULL)
		fuzz_check_utf8(name, strlen(name));
	free(name);
}

static void fuzz_section(const struct mime_part *root, const char *msg, size_t size)
{
	const char *nl = memchr(msg, '\n', size);
	size_t n = nl != NULL ? (size_t)(nl - msg) : size;
	if (n > 200)
		return;
	char spec[201];
	memcpy(spec, msg, n);
	spec[n] = '\0';
	struct mime_section sec;
	struct mime_section_range r;
	const char *error;
	if (mime_section_parse(spec, &sec, &error) < 0)
		return;
	if (mime_section_resolve(root, &sec, &r, &error) == 0) {
		if (r.offset + r.size > size)
			abort();
		struct buf out = BUF_INIT(0);
		if (r.filter)
			(void)mime_header_filter(msg + r.offset, (size_t)r.size, sec.fields,
						 sec.field_count, false, &out);
		(void)mime_decoded_size(mime_cte_parse(r.part->encoding), msg + r.offset,
					(size_t)r.size);
		buf_free(&out);
	}
	mime_section_free(&sec);
}

static void fuzz_message(const char *msg, size_t size)
{
	struct mime_part *root = mime_parse(msg, size, NULL);
	if (root->header_size + root->body_size != size)
		abort();
	struct mime_parser *p = mime_parser_create(NULL);
	mime_parser_feed(p, msg, size / 3);
	mime_parser_feed(p, msg + size / 3, size - size / 3);
	struct mime_part *chunked = mime_parser_finish(&p);
	fuzz_same(root, chunked);
	mime_part_free(&chunked);

	fuzz_write(root);
	struct buf ser = fuzz_serialize(root);
	const char *error;
	struct mime_part *copy = mime_part_deserialize(ser.data, ser.len, &error);
	if (copy == NULL)
		abort();
	fuzz_same(root, copy);
	mime_part_free(&copy);
	buf_free(&ser);

	struct mime_text *text = mime_text_create(root, fuzz_text_cb, NULL);
	mime_text_feed(text, msg, size / 2);
	mime_text_feed(text, msg + size / 2, size - size / 2);
	mime_text_finish(&text);
	fuzz_headers(root, msg);
	fuzz_section(root, msg, size);
	mime_part_free(&root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	if (size >= 3 && memcmp(data, "YMT", 3) == 0) {
		const char *error;
		struct mime_part *root = mime_part_deserialize(data, size, &error);
		if (root != NULL) {
			fuzz_write(root);
			mime_part_free(&root);
		}
		return 0;
	}
	fuzz_message(msg, size);
	return 0;
}
