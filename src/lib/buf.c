#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

void buf_init(struct buf *buf, size_t max)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->max = max;
}

static int buf_reserve(struct buf *buf, size_t extra)
{
	if (extra > (size_t)-1 - buf->len - 1)
		return -1;
	size_t need = buf->len + extra;
	if (buf->max != 0 && need > buf->max)
		return -1;
	if (need + 1 <= buf->cap)
		return 0;
	size_t cap = buf->cap == 0 ? 64 : buf->cap;
	while (cap < need + 1)
		cap = cap > ((size_t)-1) / 2 ? need + 1 : cap * 2;
	buf->data = xrealloc(buf->data, cap);
	buf->cap = cap;
	return 0;
}

int buf_append(struct buf *buf, const void *data, size_t len)
{
	if (buf_reserve(buf, len) < 0)
		return -1;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *buf, const char *s)
{
	return buf_append(buf, s, strlen(s));
}

int buf_append_char_grow(struct buf *buf, char c)
{
	return buf_append(buf, &c, 1);
}

int buf_vprintf(struct buf *buf, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0 || buf_reserve(buf, (size_t)n) < 0)
		return -1;
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = buf_vprintf(buf, fmt, ap);
	va_end(ap);
	return ret;
}

const char *buf_str(const struct buf *buf)
{
	return buf->data != NULL ? buf->data : "";
}

void buf_reset(struct buf *buf)
{
	buf->len = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

void buf_consume(struct buf *buf, size_t n)
{
	if (n >= buf->len) {
		buf_reset(buf);
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

char *buf_steal(struct buf *buf)
{
	char *data = buf->data != NULL ? buf->data : xstrdup("");
	buf->data = NULL;
	buf->len = buf->cap = 0;
	return data;
}

void buf_free(struct buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}
