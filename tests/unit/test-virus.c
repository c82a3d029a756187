/* Virus scanning without clamd: the built-in EICAR check finds the test
 * file in a base64 attachment, a quoted-printable part and a top-level
 * body; the cleaned message keeps every other byte, names the part in a
 * notice and prefixes the Subject; every ../shared/corpus message scans
 * clean, and each multipart one with an EICAR part spliced in comes back
 * with only that part and the Subject changed (skipped without the
 * corpus). The clamd client is tested against a real clamd in
 * tests/integration/test_virus.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "deliver/deliver-private.h"
#include "deliver/deliver.h"
#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "mime/mime.h"
#include "corpus.h"
#include "test.h"

#define EICAR "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
#define PREFIX "[WARNING: VIRUS REMOVED] "

static struct yubin_config config;
static unsigned int corpus_messages, corpus_spliced;

static int memfd_with(const char *data, size_t len)
{
	int fd = memfd_create("test-virus", 0);
	CHECK(fd >= 0 && fd_write_all(fd, data, len) == 0);
	return fd;
}

static int read_chunk(void *context, const void *data, size_t len)
{
	return buf_append(context, data, len) < 0 ? 1 : 0;
}

/* Scans data; returns the status and the cleaned message in out. */
static enum deliver_scan_status scan(const char *data, size_t len, struct buf *out)
{
	int fd = memfd_with(data, len), cleaned;
	const char *error = NULL;
	enum deliver_scan_status st = deliver_scan(&config, fd, &cleaned, &error);
	buf_reset(out);
	if (cleaned >= 0) {
		CHECK(fd_read_all(cleaned, read_chunk, out) == 0);
		close(cleaned);
	}
	close(fd);
	return st;
}

static void test_eicar_check(void)
{
	static const struct {
		const char *data;
		int want;
	} cases[] = {
		{ EICAR, 1 },
		{ EICAR "\r\n", 1 },
		{ EICAR "  \t\r\n\x1a", 1 },
		{ EICAR "x", 0 },
		{ " " EICAR, 0 },
		{ "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H", 0 },
		{ "", 0 },
		{ "hello", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].data);
		CHECK_INT(deliver_virus_is_eicar(cases[i].data, len, len), cases[i].want);
	}
	char big[200];
	memcpy(big, EICAR, 68);
	memset(big + 68, ' ', sizeof(big) - 68);
	CHECK(deliver_virus_is_eicar(big, 128, 128));
	CHECK(!deliver_virus_is_eicar(big, 129, 129));
	CHECK(!deliver_virus_is_eicar(big, 129, 5000));
}

static char *eicar_base64(void)
{
	struct buf b = BUF_INIT(0);
	base64_encode(EICAR, strlen(EICAR), &b);
	return buf_steal(&b);
}

static const char *find(const struct buf *b, const char *needle)
{
	/* memmem: a message may hold NUL bytes */
	return b->data != NULL ? memmem(b->data, b->len, needle, strlen(needle)) : NULL;
}

static void test_base64_attachment(void)
{
	char *b64 = eicar_base64();
	const char *first = "--b1\r\nContent-Type: text/plain\r\n\r\nHello, clean text.\r\n";
	const char *last = "\r\n--b1--\r\nepilogue\r\n";
	struct buf msg = BUF_INIT(0), out = BUF_INIT(0);
	buf_printf(&msg,
	           "From: Mallory <m@example.org>\r\nSubject: =?UTF-8?B?5pel5pys6Kqe?=\r\n"
	           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
	           "preamble\r\n%s--b1\r\nContent-Type: application/x-msdownload; name=\"x.exe\"\r\n"
	           "Content-Disposition: attachment; filename*=UTF-8''%%E6%%97%%A5.com\r\n"
	           "Content-Transfer-Encoding: base64\r\n\r\n%s%s",
	           first, b64, last);
	CHECK_INT(scan(msg.data, msg.len, &out), DELIVER_SCAN_CLEANED);
	CHECK(find(&out, "Subject: " PREFIX "=?UTF-8?B?5pel5pys6Kqe?=\r\n") != NULL);
	CHECK(find(&out, first) != NULL);
	CHECK(out.len > strlen(last) &&
	      strcmp(out.data + out.len - strlen(last), last) == 0);
	CHECK(find(&out, "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
	CHECK(find(&out, "x-msdownload") == NULL);
	CHECK(find(&out, b64) == NULL);
	/* the non-ASCII file name makes the notice base64: decode and read it */
	struct mime_part *root = mime_parse(out.data, out.len, NULL);
	CHECK_INT(mime_part_count(root), 3);
	const struct mime_part *notice = root->children != NULL ? root->children->next : NULL;
	CHECK(notice != NULL && notice->encoding != NULL && strcmp(notice->encoding, "base64") == 0);
	if (notice != NULL) {
		struct buf text = BUF_INIT(0);
		struct mime_decoder *dec = mime_decoder_create(MIME_CTE_BASE64);
		mime_decoder_feed(dec, out.data + notice->body_offset, notice->body_size, &text);
		mime_decoder_finish(dec, &text);
		mime_decoder_destroy(&dec);
		CHECK(find(&text, "File name: \xe6\x97\xa5.com\n") != NULL);
		CHECK(find(&text, "Content type: application/x-msdownload\n") != NULL);
		CHECK(find(&text, "Virus: Eicar-Test-Signature\n") != NULL);
		buf_free(&text);
	}
	char *subject = mime_header_get(out.data, root->header_size, "Subject");
	char *decoded = mime_header_decode(subject, strlen(subject));
	CHECK_STR(decoded, PREFIX "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	free(subject);
	free(decoded);
	mime_part_free(&root);
	buf_free(&msg);
	buf_free(&out);
	free(b64);
}

/* Quoted-printable with a soft line break in the middle of the string. */
static void test_qp_part(void)
{
	const char *msg =
	        "From: a@example.org\nSubject: hi\nContent-Type: multipart/mixed; boundary=\"q\"\n\n"
	        "--q\nContent-Type: text/plain\n\nkeep me\n"
	        "--q\nContent-Type: application/octet-stream; name=test.txt\n"
	        "Content-Transfer-Encoding: quoted-printable\n\n"
	        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-=\nANTIVIRUS-TEST-FILE!$H+H*\n"
	        "--q--\n";
	struct buf out = BUF_INIT(0);
	CHECK_INT(scan(msg, strlen(msg), &out), DELIVER_SCAN_CLEANED);
	CHECK(find(&out, "Subject: " PREFIX "hi\n") != NULL);
	CHECK(find(&out, "--q\nContent-Type: text/plain\n\nkeep me\n--q\n") != NULL);
	CHECK(find(&out, "File name: test.txt\nContent type: application/octet-stream\n"
	                 "Virus: Eicar-Test-Signature\n\n--q--\n") != NULL);
	CHECK(find(&out, "\r") == NULL); /* LF message: LF stays */
	/* a QP part whose decoded text only looks alike is clean */
	const char *near = "Subject: x\nContent-Transfer-Encoding: quoted-printable\n\n"
	                   "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*=\n"
	                   "and more text\n";
	CHECK_INT(scan(near, strlen(near), &out), DELIVER_SCAN_CLEAN);
	buf_free(&out);
}

static void test_top_level_body(void)
{
	const char *msg = "Received: by x\r\nFrom: a@example.org\r\nMessage-ID: <1@x>\r\n"
	                  "Content-Type: application/octet-stream; name=\"eicar.com\"\r\n"
	                  "Content-Transfer-Encoding: 7bit\r\n\r\n" EICAR "\r\n";
	struct buf out = BUF_INIT(0);
	CHECK_INT(scan(msg, strlen(msg), &out), DELIVER_SCAN_CLEANED);
	CHECK(find(&out, "Received: by x\r\nFrom: a@example.org\r\nMessage-ID: <1@x>\r\n"
	                 "Subject: [WARNING: VIRUS REMOVED]\r\nMIME-Version: 1.0\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n"
	                 "Content-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\n"
	                 "This part") == out.data);
	CHECK(find(&out, "File name: eicar.com\r\n") != NULL);
	CHECK(find(&out, "octet-stream") != NULL && find(&out, EICAR) == NULL);
	/* clean mail and scanning switched off: nothing to do */
	const char *clean = "Subject: x\r\n\r\nhello\r\n";
	CHECK_INT(scan(clean, strlen(clean), &out), DELIVER_SCAN_CLEAN);
	CHECK_INT(out.len, 0);
	config.virus.enabled = false;
	CHECK_INT(scan(msg, strlen(msg), &out), DELIVER_SCAN_CLEAN);
	config.virus.enabled = true;
	buf_free(&out);
}

/* An embedded message whose body is the virus: part 2.1, its own header
 * (From, Subject of the inner message) kept but for the content fields. */
static void test_embedded_message(void)
{
	const char *msg = "Subject: fwd\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
	                  "--z\r\n\r\nsee attached\r\n--z\r\nContent-Type: message/rfc822\r\n\r\n"
	                  "From: inner@example.org\r\nSubject: inner\r\n"
	                  "Content-Type: text/plain\r\n\r\n" EICAR "\r\n--z--\r\n";
	struct buf out = BUF_INIT(0);
	CHECK_INT(scan(msg, strlen(msg), &out), DELIVER_SCAN_CLEANED);
	CHECK(find(&out, "Subject: " PREFIX "fwd\r\n") != NULL);
	CHECK(find(&out, "From: inner@example.org\r\nSubject: inner\r\n"
	                 "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
	CHECK(find(&out, EICAR) == NULL);
	buf_free(&out);
}

/* ---- the corpus ---------------------------------------------------------- */

/* Splices a base64 EICAR part after the first part of a multipart message
 * and checks that only that part and the Subject change. */
static void check_spliced(const char *name, const char *data, size_t len,
                          const struct mime_part *root)
{
	const char *boundary = mime_param_get(root->params, root->param_count, "boundary");
	const struct mime_part *first = root->children;
	if (boundary == NULL || first == NULL || first->next == NULL ||
	    root->envelope == NULL || root->envelope->fields[MIME_ENV_SUBJECT] == NULL)
		return;
	const char *nl = memchr(data, '\n', len);
	const char *eol = nl != NULL && nl > data && nl[-1] == '\r' ? "\r\n" : "\n";
	size_t at = first->body_offset + first->body_size;
	char *b64 = eicar_base64();
	struct buf msg = BUF_INIT(0), out = BUF_INIT(0);
	/* a multipart child's epilogue may have taken the line end before
	 * the next boundary: then the new part brings its own */
	bool line_start = at > 0 && data[at - 1] == '\n';
	buf_append(&msg, data, at);
	buf_printf(&msg, "%s--%s%sContent-Type: application/octet-stream; name=eicar.com%s"
	           "Content-Transfer-Encoding: base64%s%s%s%s", line_start ? "" : eol, boundary, eol,
	           eol, eol, eol, b64, line_start ? eol : "");
	size_t tail = msg.len;
	buf_append(&msg, data + at, len - at);
	enum deliver_scan_status st = scan(msg.data, msg.len, &out);
	struct mime_part *got = st == DELIVER_SCAN_CLEANED ? mime_parse(out.data, out.len, NULL)
	                                                    : NULL;
	size_t body_len = at - root->body_offset;
	/* the Subject got the prefix (a blank added or the last one dropped) */
	char *subject = got != NULL ? mime_header_get(out.data, got->header_size, "Subject") : NULL;
	bool ok = subject != NULL && strstr(subject, "[WARNING: VIRUS REMOVED]") != NULL &&
	          got->header_size + 1 >= root->header_size + strlen(PREFIX) &&
	          got->header_size <= root->header_size + strlen(PREFIX) + 1 &&
	          memcmp(out.data + got->body_offset, data + root->body_offset, body_len) == 0 &&
	          out.len >= len - at &&
	          memcmp(out.data + out.len - (len - at), msg.data + tail, len - at) == 0 &&
	          find(&out, "Virus: Eicar-Test-Signature") != NULL && find(&out, b64) == NULL;
	if (!ok)
		fprintf(stderr, "spliced %s: status %d, not cleaned as expected\n", name, st);
	if (!ok && getenv("TEST_VIRUS_DUMP") != NULL) {
		FILE *f = fopen(getenv("TEST_VIRUS_DUMP"), "w");
		fwrite(msg.data, 1, msg.len, f);
		fputs("\n=====\n", f);
		fwrite(out.data, 1, out.len, f);
		fclose(f);
	}
	CHECK(ok);
	corpus_spliced++;
	free(subject);
	mime_part_free(&got);
	buf_free(&msg);
	buf_free(&out);
	free(b64);
}

static void check_message(const char *name, const char *data, size_t len)
{
	struct buf out = BUF_INIT(0);
	enum deliver_scan_status st = scan(data, len, &out);
	if (st != DELIVER_SCAN_CLEAN)
		fprintf(stderr, "corpus %s: false positive (status %d)\n", name, st);
	CHECK_INT(st, DELIVER_SCAN_CLEAN);
	buf_free(&out);
	corpus_messages++;
	struct mime_part *root = mime_parse(data, len, NULL);
	if ((root->flags & MIME_PART_MULTIPART) != 0)
		check_spliced(name, data, len, root);
	mime_part_free(&root);
}

static void corpus_message(void *context, const char *name, const char *data, size_t len)
{
	(void)context;
	check_message(name, data, len);
}

static void test_corpus(void)
{
	struct corpus_count count;
	if (corpus_each_message(corpus_message, NULL, &count) < 0)
		return;
	CHECK_INT(count.unreadable, 0);
	printf("corpus: %u messages scanned clean, %u with an EICAR part spliced in\n",
	       corpus_messages, corpus_spliced);
	CHECK(corpus_messages > 0 && corpus_spliced > 0);
}

int main(void)
{
	const char *error;
	config.virus.enabled = true;
	config.virus.clamd = "";
	config.virus.on_failure = "tempfail";
	config.virus.timeout = 1000;
	config.virus.max_scan_size = 25 * 1024 * 1024;
	log_open("stderr", LOG_LEVEL_ERROR, "test-virus", &error);
	test_eicar_check();
	test_base64_attachment();
	test_qp_part();
	test_top_level_body();
	test_embedded_message();
	test_corpus();
	return test_report();
}
