/* A growable byte buffer with a hard maximum size: it carries its length,
 * stays NUL-terminated, and refuses to grow past `max` (nothing grows just
 * because a peer sends more). */
#ifndef YUBIN_BUF_H
#define YUBIN_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;   /* always NUL-terminated once anything was added */
	size_t len;
	size_t cap;
	size_t max;   /* 0 = no limit (only for trusted, locally produced data) */
};

#define BUF_INIT(maxsize) { NULL, 0, 0, (maxsize) }

void buf_init(struct buf *buf, size_t max);
/* Returns -1 (leaving the buffer unchanged) when the result would exceed max. */
int buf_append(struct buf *buf, const void *data, size_t len);
int buf_append_str(struct buf *buf, const char *s);
int buf_append_char_grow(struct buf *buf, char c);
/* Inline: output writers append many single bytes (quoted strings,
 * separators), and a call per byte showed in FETCH profiles. */
static inline int buf_append_char(struct buf *buf, char c)
{
	if (buf->len + 2 > buf->cap || (buf->max != 0 && buf->len + 1 > buf->max))
		return buf_append_char_grow(buf, c);
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
	return 0;
}
int buf_printf(struct buf *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *buf, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* The contents as a C string ("" when empty). */
const char *buf_str(const struct buf *buf);
void buf_reset(struct buf *buf);
/* Drops the first n bytes. */
void buf_consume(struct buf *buf, size_t n);
/* Hands the malloc'd contents to the caller and leaves the buffer empty. */
char *buf_steal(struct buf *buf);
void buf_free(struct buf *buf);

#endif
