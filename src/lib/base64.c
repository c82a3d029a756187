#include "lib/base64.h"

#include <stdbool.h>
#include <stdint.h>

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Whether len more bytes fit under the buffer's maximum, so that a failed
 * call leaves the buffer as it was. */
static bool buf_fits(const struct buf *out, size_t len)
{
	if (len > SIZE_MAX - out->len - 1)
		return false;
	return out->max == 0 || out->len + len <= out->max;
}

static void encode_group(const unsigned char *in, size_t n, char out[4])
{
	uint32_t v = (uint32_t)in[0] << 16;
	if (n > 1)
		v |= (uint32_t)in[1] << 8;
	if (n > 2)
		v |= in[2];
	out[0] = base64_alphabet[(v >> 18) & 63];
	out[1] = base64_alphabet[(v >> 12) & 63];
	out[2] = n > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
	out[3] = n > 2 ? base64_alphabet[v & 63] : '=';
}

int base64_encode(const void *data, size_t len, struct buf *out)
{
	const unsigned char *in = data;
	size_t groups = len / 3 + (len % 3 != 0);
	if (groups > SIZE_MAX / 4 || !buf_fits(out, groups * 4))
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		char group[4];
		size_t n = len - i < 3 ? len - i : 3;
		encode_group(in + i, n, group);
		if (buf_append(out, group, sizeof(group)) < 0)
			return -1;
	}
	return 0;
}

int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes one 4-character group into out[3]; returns the number of bytes
 * (1..3) or -1. Padding is allowed only when last is true, and the bits
 * that padding discards must be zero (canonical encoding). */
static int decode_group(const char *in, bool last, unsigned char out[3])
{
	int pad = 0;
	if (last && in[3] == '=')
		pad = in[2] == '=' ? 2 : 1;
	uint32_t v = 0;
	for (int i = 0; i < 4 - pad; i++) {
		int d = base64_value(in[i]);
		if (d < 0)
			return -1;
		v = (v << 6) | (uint32_t)d;
	}
	v <<= 6 * pad;
	if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
		return -1;
	out[0] = (unsigned char)(v >> 16);
	out[1] = (unsigned char)(v >> 8);
	out[2] = (unsigned char)v;
	return 3 - pad;
}

int base64_decode(const char *text, size_t len, struct buf *out)
{
	if (len % 4 != 0)
		return -1;
	size_t start = out->len;
	unsigned char bytes[3];
	for (size_t i = 0; i < len; i += 4) {
		int n = decode_group(text + i, i + 4 == len, bytes);
		if (n < 0 || buf_append(out, bytes, (size_t)n) < 0) {
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}
