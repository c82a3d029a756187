/* Content-Transfer-Encoding decoders as streaming filters. They never fail
 * on bad input: base64 skips bytes outside its alphabet (line breaks, junk)
 * and restarts after padding, so concatenated encodings decode; quoted-
 * printable keeps a bad escape as it is, removes trailing whitespace of a
 * line (RFC 2045 6.7 rule 3) and joins soft line breaks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define QP_PENDING_MAX 256

enum qp_state {
	QP_NORMAL,
	QP_EQ,    /* after '=' */
	QP_EQ_HEX, /* after '=' and one hex digit */
	QP_EQ_WS, /* after '=' and whitespace: a soft break if the line ends */
};

struct mime_decoder {
	enum mime_cte cte;
	/* base64 */
	uint32_t quantum;
	unsigned int sextets;
	/* quoted-printable */
	enum qp_state qp;
	char pending[QP_PENDING_MAX]; /* bytes whose meaning the next ones decide */
	size_t pending_len;
};

static const struct {
	const char *name;
	enum mime_cte cte;
} cte_names[] = {
	{"7bit", MIME_CTE_7BIT},
	{"8bit", MIME_CTE_8BIT},
	{"binary", MIME_CTE_BINARY},
	{"base64", MIME_CTE_BASE64},
	{"quoted-printable", MIME_CTE_QP},
};

enum mime_cte mime_cte_parse(const char *encoding)
{
	if (encoding == NULL || encoding[0] == '\0')
		return MIME_CTE_7BIT;
	for (size_t i = 0; i < sizeof(cte_names) / sizeof(cte_names[0]); i++) {
		if (strcasecmp(encoding, cte_names[i].name) == 0)
			return cte_names[i].cte;
	}
	return MIME_CTE_UNKNOWN;
}

struct mime_decoder *mime_decoder_create(enum mime_cte cte)
{
	struct mime_decoder *dec = xcalloc(1, sizeof(*dec));
	dec->cte = cte;
	return dec;
}

void mime_decoder_destroy(struct mime_decoder **dec)
{
	xfree(*dec);
}


/* Writes what a partial quantum holds (2 sextets: 1 byte, 3: 2 bytes). */
static int b64_flush(struct mime_decoder *dec, struct buf *out)
{
	unsigned char b[2];
	size_t n = dec->sextets == 2 ? 1 : dec->sextets == 3 ? 2 : 0;
	uint32_t q = dec->quantum << (6 * (4 - dec->sextets));
	b[0] = (unsigned char)(q >> 16);
	b[1] = (unsigned char)(q >> 8);
	dec->quantum = 0;
	dec->sextets = 0;
	return buf_append(out, b, n);
}

static int b64_feed(struct mime_decoder *dec, const unsigned char *s, size_t len, struct buf *out)
{
	unsigned char chunk[768];
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=') {
			if (buf_append(out, chunk, n) < 0 || b64_flush(dec, out) < 0)
				return -1;
			n = 0;
			continue;
		}
		int v = base64_value(s[i]);
		if (v < 0)
			continue;
		dec->quantum = (dec->quantum << 6) | (uint32_t)v;
		if (++dec->sextets < 4)
			continue;
		chunk[n++] = (unsigned char)(dec->quantum >> 16);
		chunk[n++] = (unsigned char)(dec->quantum >> 8);
		chunk[n++] = (unsigned char)dec->quantum;
		dec->quantum = 0;
		dec->sextets = 0;
		if (n == sizeof(chunk)) {
			if (buf_append(out, chunk, n) < 0)
				return -1;
			n = 0;
		}
	}
	return buf_append(out, chunk, n);
}


static bool qp_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int qp_flush_pending(struct mime_decoder *dec, struct buf *out)
{
	int ret = buf_append(out, dec->pending, dec->pending_len);
	dec->pending_len = 0;
	dec->qp = QP_NORMAL;
	return ret;
}

static int qp_hold(struct mime_decoder *dec, unsigned char c, struct buf *out)
{
	if (dec->pending_len == QP_PENDING_MAX && qp_flush_pending(dec, out) < 0)
		return -1;
	dec->pending[dec->pending_len++] = (char)c;
	return 0;
}

/* A line end: trailing whitespace (and a soft break's '=') disappear. A
 * hard line break is CRLF whether the stored line ended in LF or CRLF:
 * "a line break in the encoded text represents a CRLF sequence in the
 * canonical form" (RFC 2045 6.7 rule 5), and IMAP sends the stored LF as
 * CRLF anyway (Dovecot's BINARY agrees). */
static int qp_line_end(struct mime_decoder *dec, struct buf *out)
{
	bool soft = dec->qp == QP_EQ || dec->qp == QP_EQ_WS;
	dec->pending_len = 0;
	dec->qp = QP_NORMAL;
	if (soft)
		return 0;
	return buf_append(out, "\r\n", 2);
}

static int qp_normal(struct mime_decoder *dec, unsigned char c, struct buf *out)
{
	if (c == '=') {
		if (qp_flush_pending(dec, out) < 0)
			return -1;
		dec->qp = QP_EQ;
		return qp_hold(dec, c, out);
	}
	if (qp_is_ws(c) || c == '\r')
		return qp_hold(dec, c, out);
	if (qp_flush_pending(dec, out) < 0)
		return -1;
	return buf_append_char(out, (char)c);
}

static int qp_byte(struct mime_decoder *dec, unsigned char c, struct buf *out)
{
	if (c == '\n')
		return qp_line_end(dec, out);
	switch (dec->qp) {
	case QP_NORMAL:
		return qp_normal(dec, c, out);
	case QP_EQ:
		if (hex_digit_value(c) >= 0) {
			dec->qp = QP_EQ_HEX;
			return qp_hold(dec, c, out);
		}
		if (qp_is_ws(c) || c == '\r') {
			dec->qp = QP_EQ_WS;
			return qp_hold(dec, c, out);
		}
		break;
	case QP_EQ_HEX:
		if (hex_digit_value(c) >= 0) {
			char b = (char)(hex_digit_value((unsigned char)dec->pending[1]) * 16 + hex_digit_value(c));
			dec->pending_len = 0;
			dec->qp = QP_NORMAL;
			return buf_append_char(out, b);
		}
		break;
	case QP_EQ_WS:
		if (qp_is_ws(c) || c == '\r')
			return qp_hold(dec, c, out);
		break;
	}
	/* a bad escape: keep its bytes as they are */
	if (qp_flush_pending(dec, out) < 0)
		return -1;
	return qp_normal(dec, c, out);
}

int mime_decoder_feed(struct mime_decoder *dec, const void *data, size_t len, struct buf *out)
{
	const unsigned char *s = data;
	if (dec->cte == MIME_CTE_BASE64)
		return b64_feed(dec, s, len, out);
	if (dec->cte != MIME_CTE_QP)
		return buf_append(out, s, len);
	for (size_t i = 0; i < len; i++) {
		if (dec->qp == QP_NORMAL && dec->pending_len == 0) {
			/* fast path: copy the run of plain bytes */
			size_t j = i;
			while (j < len && s[j] != '=' && s[j] != '\n' && s[j] != '\r' &&
			       !qp_is_ws(s[j]))
				j++;
			if (j > i && buf_append(out, s + i, j - i) < 0)
				return -1;
			i = j;
			if (i == len)
				break;
		}
		if (qp_byte(dec, s[i], out) < 0)
			return -1;
	}
	return 0;
}

int mime_decoder_finish(struct mime_decoder *dec, struct buf *out)
{
	if (dec->cte == MIME_CTE_BASE64)
		return b64_flush(dec, out);
	if (dec->cte != MIME_CTE_QP)
		return 0;
	/* trailing whitespace at the end is dropped, a lone '=' kept */
	int ret = 0;
	if (dec->qp == QP_EQ_HEX || (dec->qp == QP_EQ && dec->pending_len > 0))
		ret = qp_flush_pending(dec, out);
	dec->pending_len = 0;
	dec->qp = QP_NORMAL;
	return ret;
}

uint64_t mime_decoded_size(enum mime_cte cte, const void *data, size_t len)
{
	if (cte != MIME_CTE_BASE64 && cte != MIME_CTE_QP)
		return len;
	struct mime_decoder *dec = mime_decoder_create(cte);
	struct buf out = BUF_INIT(0);
	uint64_t total = 0;
	const char *s = data;
	for (size_t off = 0; off < len; off += 65536) {
		size_t n = len - off < 65536 ? len - off : 65536;
		(void)mime_decoder_feed(dec, s + off, n, &out);
		total += out.len;
		buf_reset(&out);
	}
	(void)mime_decoder_finish(dec, &out);
	total += out.len;
	buf_free(&out);
	mime_decoder_destroy(&dec);
	return total;
}
