/* Charset conversion to UTF-8 through glibc iconv, never failing: an
 * invalid sequence becomes U+FFFD and conversion goes on. MIME names are
 * mapped to the converter real mail needs (the table below, documented in
 * docs/mime.md): every Japanese charset goes through a Microsoft variant
 * (CP932, EUC-JP-MS, our own ISO-2022-JP decoder onto CP932), so one text
 * gives the same UTF-8 whichever of the three encodings carried it. */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mime/mime-private.h"

#define CHARSET_NAME_MAX 40
/* Our own decoders, not iconv names. */
#define CS_UTF8 "UTF-8"
#define CS_ASCII "US-ASCII"
#define CS_2022JP "ISO-2022-JP"

static const struct {
	const char *mime;
	const char *conv;
} charset_aliases[] = {
	{"utf-8", CS_UTF8},          {"utf8", CS_UTF8},
	{"us-ascii", CS_ASCII},      {"ascii", CS_ASCII},
	{"ansi_x3.4-1968", CS_ASCII}, {"x-unknown", CS_ASCII},
	{"iso-2022-jp", CS_2022JP},  {"csiso2022jp", CS_2022JP},
	{"cp50220", CS_2022JP},      {"cp50221", CS_2022JP},
	{"cp50222", CS_2022JP},      {"iso-2022-jp-1", CS_2022JP},
	{"iso-2022-jp-ms", CS_2022JP}, {"iso-2022-jp-2", "ISO-2022-JP-2"},
	{"iso-2022-jp-3", "ISO-2022-JP-3"},
	{"shift_jis", "CP932"},      {"shift-jis", "CP932"},
	{"sjis", "CP932"},           {"x-sjis", "CP932"},
	{"ms932", "CP932"},          {"cp932", "CP932"},
	{"windows-31j", "CP932"},    {"ms_kanji", "CP932"},
	{"csshiftjis", "CP932"},     {"x-ms-cp932", "CP932"},
	{"euc-jp", "EUC-JP-MS"},     {"x-euc-jp", "EUC-JP-MS"},
	{"eucjp", "EUC-JP-MS"},      {"ujis", "EUC-JP-MS"},
	{"cseucpkdfmtjapanese", "EUC-JP-MS"},
	{"gb2312", "GB18030"},       {"gbk", "GB18030"},
	{"cp936", "GB18030"},        {"x-gbk", "GB18030"},
	{"euc-cn", "GB18030"},       {"csgb2312", "GB18030"},
	{"gb18030", "GB18030"},      {"chinese", "GB18030"},
	{"big5", "CP950"},           {"big-5", "CP950"},
	{"cn-big5", "CP950"},        {"x-x-big5", "CP950"},
	{"csbig5", "CP950"},         {"cp950", "CP950"},
	{"big5-hkscs", "BIG5-HKSCS"},
	{"euc-kr", "CP949"},         {"ks_c_5601-1987", "CP949"},
	{"ks_c_5601", "CP949"},      {"korean", "CP949"},
	{"cp949", "CP949"},          {"uhc", "CP949"},
	{"x-windows-949", "CP949"},  {"csksc56011987", "CP949"},
	/* WHATWG: labels of Latin-1 mean windows-1252 (what senders meant) */
	{"iso-8859-1", "CP1252"},    {"iso8859-1", "CP1252"},
	{"latin1", "CP1252"},        {"l1", "CP1252"},
	{"windows-1252", "CP1252"},  {"cp1252", "CP1252"},
	{"windows-1250", "CP1250"},  {"windows-1251", "CP1251"},
	{"windows-1253", "CP1253"},  {"windows-1254", "CP1254"},
	{"windows-1255", "CP1255"},  {"windows-1256", "CP1256"},
	{"windows-1257", "CP1257"},  {"windows-1258", "CP1258"},
	{"windows-874", "CP874"},    {"tis-620", "CP874"},
	{"koi8-r", "KOI8-R"},        {"koi8-u", "KOI8-U"},
	{"utf-7", "UTF-7"},          {"unicode-1-1-utf-7", "UTF-7"},
	{"utf-16", "UTF-16"},        {"utf-16le", "UTF-16LE"},
	{"utf-16be", "UTF-16BE"},    {"utf-32", "UTF-32"},
	{"utf-32le", "UTF-32LE"},    {"utf-32be", "UTF-32BE"},
};

/* Only plain names reach iconv_open ("//" suffixes and paths never do). */
static bool charset_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > CHARSET_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return false;
	}
	return true;
}

static bool charset_iconv_exists(const char *name)
{
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

const char *mime_charset_canonical(const char *charset)
{
	if (charset == NULL || !charset_name_ok(charset))
		return NULL;
	for (size_t i = 0; i < sizeof(charset_aliases) / sizeof(charset_aliases[0]); i++) {
		if (strcasecmp(charset, charset_aliases[i].mime) == 0)
			return charset_aliases[i].conv;
	}
	return charset_iconv_exists(charset) ? charset : NULL;
}

bool mime_charset_is_utf8(const char *charset)
{
	const char *c = mime_charset_canonical(charset);
	return c != NULL && strcmp(c, CS_UTF8) == 0;
}

/* ---- UTF-8 ---- */

void mime_utf8_append_cp(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	(void)buf_append(out, b, n);
}

int mime_utf8_append_replacement(struct buf *out)
{
	return buf_append(out, "\xef\xbf\xbd", 3);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF); 0 when invalid, -1 when cut short. */
static int utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (n == 0)
		return 0;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (int i = 1; i < n; i++) {
		if ((size_t)i >= len)
			return -1;
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return 0;
	}
	return n;
}

bool mime_utf8_is_valid(const void *data, size_t len)
{
	const unsigned char *s = data;
	for (size_t i = 0; i < len;) {
		int n = utf8_seq_len(s + i, len - i);
		if (n <= 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

/* Returns how many trailing bytes form a cut-short sequence (kept for the
 * next call when partial_ok). */
static size_t utf8_sanitize(struct buf *out, const unsigned char *s, size_t len, bool partial_ok,
			    int *ret_r)
{
	size_t i = 0, run = 0;
	*ret_r = 0;
	while (i < len) {
		int n = utf8_seq_len(s + i, len - i);
		if (n > 0) {
			i += (size_t)n;
			continue;
		}
		if (n < 0 && partial_ok)
			break;
		*ret_r |= buf_append(out, s + run, i - run);
		*ret_r |= mime_utf8_append_replacement(out);
		run = ++i;
	}
	*ret_r |= buf_append(out, s + run, i - run);
	return len - i;
}

int mime_utf8_append_sanitized(struct buf *out, const void *data, size_t len)
{
	int ret;
	(void)utf8_sanitize(out, data, len, false, &ret);
	return ret;
}

/* ---- ISO-2022-JP, decoded as CP50221: JIS X 0208 rows (NEC row 13 and
 * the IBM extensions of rows 89-92 included) mapped onto CP932, JIS X 0201
 * kana by ESC ( I or SO/SI. ---- */

enum jis_set {
	JIS_ASCII,
	JIS_KANA,
	JIS_X0208,
	JIS_UNKNOWN, /* a set we do not map (JIS X 0212): U+FFFD per char */
};

struct jis_state {
	enum jis_set set;
	bool shift_out;
	unsigned char pending[4]; /* an escape or the first byte of a pair */
	size_t pending_len;
};

static void jis_to_sjis(unsigned char j1, unsigned char j2, unsigned char *s)
{
	s[0] = (unsigned char)(((j1 + 1) >> 1) + (j1 <= 0x5e ? 0x70 : 0xb0));
	s[1] = (unsigned char)(j2 + ((j1 & 1) != 0 ? (j2 >= 0x60 ? 0x20 : 0x1f) : 0x7e));
}

static const struct {
	const char *seq;
	enum jis_set set;
} jis_escapes[] = {
	{"(B", JIS_ASCII},  {"(J", JIS_ASCII},   {"(I", JIS_KANA},
	{"$@", JIS_X0208},  {"$B", JIS_X0208},   {"$(B", JIS_X0208},
	{"$(Q", JIS_X0208}, {"$(O", JIS_X0208},  {"$(D", JIS_UNKNOWN},
	{"&@\x1b$B", JIS_X0208},
};

/* pending holds ESC + bytes: 1 = matched a set, 0 = need more, -1 = junk. */
static int jis_escape(struct jis_state *st)
{
	const char *seq = (const char *)st->pending + 1;
	size_t len = st->pending_len - 1;
	bool prefix = false;
	for (size_t i = 0; i < sizeof(jis_escapes) / sizeof(jis_escapes[0]); i++) {
		size_t elen = strlen(jis_escapes[i].seq);
		if (len == elen && memcmp(seq, jis_escapes[i].seq, len) == 0) {
			st->set = jis_escapes[i].set;
			return 1;
		}
		if (len < elen && memcmp(seq, jis_escapes[i].seq, len) == 0)
			prefix = true;
	}
	return prefix && st->pending_len < sizeof(st->pending) ? 0 : -1;
}

/* Appends CP932 bytes (or U+FFFD markers as 0xFF, never valid CP932). */
static void jis_byte(struct jis_state *st, unsigned char c, struct buf *sjis)
{
	if (st->pending_len > 0 && st->pending[0] == 0x1b) {
		st->pending[st->pending_len++] = c;
		int r = jis_escape(st);
		if (r != 0) {
			if (r < 0) /* an unknown escape: its bytes as they are */
				(void)buf_append(sjis, st->pending, st->pending_len);
			st->pending_len = 0;
		}
		return;
	}
	if (c == 0x1b) {
		st->pending[0] = c;
		st->pending_len = 1;
		return;
	}
	if (c == 0x0e || c == 0x0f) {
		st->shift_out = c == 0x0e;
		return;
	}
	if (c == '\n' || c == '\r' || c < 0x21 || c > 0x7e || (st->set == JIS_ASCII && !st->shift_out)) {
		(void)buf_append_char(sjis, (char)c); /* line ends and 8-bit junk pass */
		st->pending_len = 0;
		return;
	}
	if (st->set == JIS_KANA || st->shift_out) {
		(void)buf_append_char(sjis, (char)(c < 0x60 ? c + 0x80 : 0xff));
		return;
	}
	if (st->pending_len == 0) {
		st->pending[0] = c;
		st->pending_len = 1;
		return;
	}
	unsigned char s[2];
	jis_to_sjis(st->pending[0], c, s);
	st->pending_len = 0;
	if (st->set == JIS_UNKNOWN)
		(void)buf_append_char(sjis, (char)0xff);
	else
		(void)buf_append(sjis, s, 2);
}

/* ---- the streaming converter ---- */

enum conv_kind {
	CONV_UTF8,    /* validate, U+FFFD for invalid */
	CONV_ICONV,
	CONV_2022JP,  /* jis_state -> CP932 -> iconv */
};

struct mime_charset_conv {
	enum conv_kind kind;
	iconv_t cd;
	struct jis_state jis;
	unsigned char pending[16]; /* a sequence cut between feeds */
	size_t pending_len;
};

struct mime_charset_conv *mime_charset_conv_create(const char *charset)
{
	struct mime_charset_conv *conv = xcalloc(1, sizeof(*conv));
	const char *name = mime_charset_canonical(charset);
	conv->kind = CONV_UTF8;
	if (name == NULL || strcmp(name, CS_UTF8) == 0 || strcmp(name, CS_ASCII) == 0)
		return conv;
	bool jis = strcmp(name, CS_2022JP) == 0;
	conv->cd = iconv_open("UTF-8", jis ? "CP932" : name);
	if (conv->cd != (iconv_t)-1)
		conv->kind = jis ? CONV_2022JP : CONV_ICONV;
	return conv;
}

void mime_charset_conv_destroy(struct mime_charset_conv **conv)
{
	if (*conv == NULL)
		return;
	if ((*conv)->kind != CONV_UTF8)
		iconv_close((*conv)->cd);
	xfree(*conv);
}

/* Runs iconv over in; returns the bytes of an incomplete tail left. */
static size_t conv_iconv(iconv_t cd, const unsigned char *in, size_t len, bool final,
			 struct buf *out, int *ret_r)
{
	char tmp[4096];
	char *ip = (char *)in;
	size_t left = len;
	*ret_r = 0;
	while (left > 0) {
		char *op = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &ip, &left, &op, &oleft);
		int err = errno;
		*ret_r |= buf_append(out, tmp, (size_t)(op - tmp));
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		if (err == EINVAL && !final)
			return left;
		/* EILSEQ, or a sequence cut by the end of the text */
		*ret_r |= mime_utf8_append_replacement(out);
		ip++;
		left--;
	}
	if (final) {
		char *op = tmp;
		size_t oleft = sizeof(tmp);
		(void)iconv(cd, NULL, NULL, &op, &oleft);
		*ret_r |= buf_append(out, tmp, (size_t)(op - tmp));
	}
	return 0;
}

static size_t conv_run(struct mime_charset_conv *conv, const unsigned char *s, size_t len,
		       bool final, struct buf *out, int *ret_r)
{
	if (conv->kind == CONV_UTF8)
		return utf8_sanitize(out, s, len, !final, ret_r);
	if (conv->kind == CONV_ICONV)
		return conv_iconv(conv->cd, s, len, final, out, ret_r);
	struct buf sjis = BUF_INIT(0);
	for (size_t i = 0; i < len; i++)
		jis_byte(&conv->jis, s[i], &sjis);
	if (final && conv->jis.pending_len > 0) {
		(void)buf_append_char(&sjis, (char)0xff);
		conv->jis.pending_len = 0;
	}
	(void)conv_iconv(conv->cd, (const unsigned char *)buf_str(&sjis), sjis.len, true, out,
			 ret_r);
	buf_free(&sjis);
	return 0;
}

int mime_charset_conv_feed(struct mime_charset_conv *conv, const void *data, size_t len,
			   struct buf *out)
{
	const unsigned char *s = data;
	int ret = 0;
	/* finish a sequence cut at the previous feed, byte by byte */
	while (conv->pending_len > 0 && len > 0) {
		conv->pending[conv->pending_len++] = *s++;
		len--;
		size_t left = conv_run(conv, conv->pending, conv->pending_len, false, out, &ret);
		memmove(conv->pending, conv->pending + conv->pending_len - left, left);
		conv->pending_len = left;
		if (left == sizeof(conv->pending)) /* cannot complete: give up on it */
			conv->pending_len = 0;
	}
	if (len == 0)
		return ret;
	size_t left = conv_run(conv, s, len, false, out, &ret);
	if (left >= sizeof(conv->pending)) {
		ret |= mime_utf8_append_replacement(out);
		left = 0;
	}
	memcpy(conv->pending, s + len - left, left);
	conv->pending_len = left;
	return ret < 0 ? -1 : 0;
}

int mime_charset_conv_finish(struct mime_charset_conv *conv, struct buf *out)
{
	int ret = 0;
	if (conv->pending_len > 0 || conv->kind == CONV_2022JP)
		(void)conv_run(conv, conv->pending, conv->pending_len, true, out, &ret);
	conv->pending_len = 0;
	return ret < 0 ? -1 : 0;
}

int mime_charset_to_utf8(const char *charset, const void *data, size_t len, struct buf *out)
{
	struct mime_charset_conv *conv = mime_charset_conv_create(charset);
	int ret = mime_charset_conv_feed(conv, data, len, out);
	if (mime_charset_conv_finish(conv, out) < 0)
		ret = -1;
	mime_charset_conv_destroy(&conv);
	return ret;
}

/* ---- guessing raw 8-bit text ---- */

static bool guess_has_jis_escape(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++) {
		if (s[i] == 0x1b && ((s[i + 1] == '$' && (s[i + 2] == 'B' || s[i + 2] == '@')) ||
				     (s[i + 1] == '(' && s[i + 2] == 'I')))
			return true;
	}
	return false;
}

/* Valid Shift_JIS/CP932 without user-defined rows; lead bytes 0x81-0x9F
 * other than EUC's 0x8E/0x8F make it Shift_JIS for sure. */
static bool guess_sjis(const unsigned char *s, size_t len, bool *sure_r)
{
	*sure_r = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c < 0x80 || (c >= 0xa1 && c <= 0xdf))
			continue;
		bool lead = (c >= 0x81 && c <= 0x9f) || (c >= 0xe0 && c <= 0xef) ||
			    (c >= 0xfa && c <= 0xfc);
		if (!lead || i + 1 >= len)
			return false;
		unsigned char t = s[++i];
		if (t < 0x40 || t == 0x7f || t > 0xfc)
			return false;
		if (c != 0x8e && c != 0x8f && c <= 0x9f)
			*sure_r = true;
	}
	return true;
}

static bool guess_eucjp(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c < 0x80)
			continue;
		size_t need = c == 0x8f ? 2 : 1;
		if (c != 0x8e && c != 0x8f && (c < 0xa1 || c > 0xfe))
			return false;
		for (size_t k = 0; k < need; k++) {
			if (++i >= len || s[i] < 0xa1 || s[i] > 0xfe)
				return false;
		}
	}
	return true;
}

int mime_charset_guess_to_utf8(const void *data, size_t len, struct buf *out)
{
	const unsigned char *s = data;
	if (mime_utf8_is_valid(s, len) && !guess_has_jis_escape(s, len))
		return buf_append(out, s, len);
	if (guess_has_jis_escape(s, len))
		return mime_charset_to_utf8("iso-2022-jp", s, len, out);
	bool sure_sjis;
	bool sjis = guess_sjis(s, len, &sure_sjis);
	if (sjis && (sure_sjis || !guess_eucjp(s, len)))
		return mime_charset_to_utf8("cp932", s, len, out);
	if (guess_eucjp(s, len))
		return mime_charset_to_utf8("euc-jp", s, len, out);
	return mime_utf8_append_sanitized(out, s, len);
}
