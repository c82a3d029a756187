#include "imap/imap-utf7.h"

#include <stdint.h>
#include <string.h>

#include "lib/buf.h"

/* RFC 3501 5.1.3: base64 with ',' in place of '/'. */
static const char imap_utf7_b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static bool imap_utf7_printable(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 when invalid. */
static size_t imap_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80) {
		*cp_r = c;
		return c == 0 ? 0 : 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

bool imap_utf8_is_valid(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t n = imap_utf8_decode(s + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static int imap_utf8_append(struct buf *dest, uint32_t cp)
{
	unsigned char out[4];
	size_t n;
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (unsigned char)(0xf0 | (cp >> 18));
		out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(dest, out, n);
}

/* Bits not yet written out of an encoded (shifted) run. */
struct imap_utf7_enc {
	uint32_t bits;
	unsigned int nbits;
	bool shifted;
};

static int imap_utf7_put_unit(struct imap_utf7_enc *enc, struct buf *dest, uint32_t unit)
{
	enc->bits = (enc->bits << 16) | unit;
	enc->nbits += 16;
	while (enc->nbits >= 6) {
		enc->nbits -= 6;
		if (buf_append_char(dest, imap_utf7_b64[(enc->bits >> enc->nbits) & 0x3f]) < 0)
			return -1;
	}
	enc->bits &= (1u << enc->nbits) - 1;
	return 0;
}

static int imap_utf7_put_cp(struct imap_utf7_enc *enc, struct buf *dest, uint32_t cp)
{
	if (!enc->shifted) {
		if (buf_append_char(dest, '&') < 0)
			return -1;
		enc->shifted = true;
	}
	if (cp < 0x10000)
		return imap_utf7_put_unit(enc, dest, cp);
	cp -= 0x10000;
	if (imap_utf7_put_unit(enc, dest, 0xd800 | (cp >> 10)) < 0)
		return -1;
	return imap_utf7_put_unit(enc, dest, 0xdc00 | (cp & 0x3ff));
}

static int imap_utf7_unshift(struct imap_utf7_enc *enc, struct buf *dest)
{
	if (!enc->shifted)
		return 0;
	if (enc->nbits > 0 &&
	    buf_append_char(dest, imap_utf7_b64[(enc->bits << (6 - enc->nbits)) & 0x3f]) < 0)
		return -1;
	enc->bits = 0;
	enc->nbits = 0;
	enc->shifted = false;
	return buf_append_char(dest, '-');
}

int imap_utf8_to_utf7(const char *src, struct buf *dest)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t len = strlen(src), i = 0;
	struct imap_utf7_enc enc = {0, 0, false};
	while (i < len) {
		uint32_t cp;
		size_t n = imap_utf8_decode(s + i, len - i, &cp);
		if (n == 0)
			return -1;
		i += n;
		int ret;
		if (!imap_utf7_printable(cp))
			ret = imap_utf7_put_cp(&enc, dest, cp);
		else if (imap_utf7_unshift(&enc, dest) < 0)
			ret = -1;
		else
			ret = cp == '&' ? buf_append_str(dest, "&-")
			                : buf_append_char(dest, (char)cp);
		if (ret < 0)
			return -1;
	}
	return imap_utf7_unshift(&enc, dest);
}

static int imap_utf7_b64_value(char c)
{
	const char *p = c == '\0' ? NULL : strchr(imap_utf7_b64, c);
	return p == NULL ? -1 : (int)(p - imap_utf7_b64);
}

/* State of decoding one shifted run. */
struct imap_utf7_dec {
	uint32_t bits;
	unsigned int nbits;
	uint32_t high; /* pending high surrogate, 0 if none */
	unsigned int units;
};

static int imap_utf7_get_unit(struct imap_utf7_dec *dec, struct buf *dest, uint32_t unit)
{
	uint32_t cp;
	dec->units++;
	if (dec->high != 0) {
		if (unit < 0xdc00 || unit > 0xdfff)
			return -1;
		cp = 0x10000 + ((dec->high - 0xd800) << 10) + (unit - 0xdc00);
		dec->high = 0;
	} else if (unit >= 0xd800 && unit <= 0xdbff) {
		dec->high = unit;
		return 0;
	} else if (unit >= 0xdc00 && unit <= 0xdfff) {
		return -1;
	} else {
		cp = unit;
	}
	/* Printable ASCII must represent itself; NUL is never a name byte. */
	if (cp == 0 || imap_utf7_printable(cp))
		return -1;
	if (dest == NULL)
		return 0;
	return imap_utf8_append(dest, cp);
}

/* Decodes the base64 run at *pp up to its '-'; dest may be NULL (check only). */
static int imap_utf7_decode_run(const char **pp, struct buf *dest)
{
	struct imap_utf7_dec dec = {0, 0, 0, 0};
	const char *p = *pp;
	for (; *p != '-'; p++) {
		int v = imap_utf7_b64_value(*p);
		if (v < 0)
			return -1;
		dec.bits = (dec.bits << 6) | (uint32_t)v;
		dec.nbits += 6;
		if (dec.nbits >= 16) {
			dec.nbits -= 16;
			if (imap_utf7_get_unit(&dec, dest, (dec.bits >> dec.nbits) & 0xffff) < 0)
				return -1;
			dec.bits &= (1u << dec.nbits) - 1;
		}
	}
	/* Canonical form: fewer than 6 leftover bits, all zero. */
	if (dec.units == 0 || dec.high != 0 || dec.nbits >= 6 || dec.bits != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

static int imap_utf7_decode(const char *src, struct buf *dest)
{
	const char *p = src;
	bool after_run = false;
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		if (!imap_utf7_printable(c))
			return -1;
		if (c != '&') {
			if (dest != NULL && buf_append_char(dest, (char)c) < 0)
				return -1;
			p++;
			after_run = false;
			continue;
		}
		p++;
		if (*p == '-') {
			if (dest != NULL && buf_append_char(dest, '&') < 0)
				return -1;
			p++;
			after_run = false;
			continue;
		}
		/* An encoder joins adjacent runs, so "&..-&..-" is not canonical. */
		if (after_run || imap_utf7_decode_run(&p, dest) < 0)
			return -1;
		after_run = true;
	}
	return 0;
}

int imap_utf7_to_utf8(const char *src, struct buf *dest)
{
	return imap_utf7_decode(src, dest);
}

bool imap_utf7_is_valid(const char *src)
{
	return imap_utf7_decode(src, NULL) == 0;
}
